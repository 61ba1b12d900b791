"""Evaluation gates: the checks a model must pass on its run's held-out rows to be
registered, judged the same way by every provider.

    metric      a held-out metric (`mlform.ml.metrics`) within [min, max]
    fairness    across the groups of `sensitive_column`, for a binary classifier:
                demographic_parity_difference (largest gap in selection rate),
                demographic_parity_ratio (smallest over largest selection rate),
                four_fifths_rule (that ratio, at least `min`, default 0.8) and
                equalized_odds_difference (the larger of the largest gaps in true- and
                false-positive rate); fairlearn's definitions, computed with numpy
                so that a job container without fairlearn measures the same numbers
    robustness  gaussian_noise: the drop of a metric when noise of `noise` × each
                numeric feature's std is added to the held-out rows; bounded by `max`
    cost        a binary classifier's expected cost per held-out row, given a cost per
                false positive and per false negative, at the decision threshold that
                minimises it (`mlform.ml.decision`); the threshold is in the result
    better_than with `metric` or `cost`: the candidate against the current champion on
                the same held-out rows, at least as good as the champion by `margin`
                (`auc >= champion + 0.01`, `cost <= champion - 0.5`); bounds, when
                given, must hold too. With no champion yet (a first version, or the
                champion is this very run) there is nothing to beat and the gate passes

Semantics every provider shares:
- the positive class is the second of the model's two classes (its `classes`
  order, the one `predict_proba` columns follow), and a row's predicted class is
  the most probable one, ties to the first: the decision `accuracy` counts and an
  endpoint serves;
- a group with no actual positives (negatives) has a true (false) positive rate of
  0, as fairlearn counts it; a selection-rate ratio with no selection at all is
  undefined and the gate fails;
- robustness noise is scaled by the std the model was trained with (its
  preprocessing), or the held-out std for a numeric feature without one (custom
  scripts), and drawn from a generator seeded with the training run's seed, so a
  verdict repeats for the same artifact, held-out rows and run.

A bound written from a sensitive value is judged with its value but never shown:
the gate's label, its failure message and its result say "(sensitive)", so neither
the terminal, the audit log, incidents, state nor the card hold it.

A provider that cannot score the champion on the candidate's held-out rows says why in
`champion` (a string): a `better_than` gate then fails with that reason rather than
passing unjudged.

Gates are read by attribute or by key, so a job container passes the JSON of
`engine.spec.models.Gate` without importing the engine.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .metrics import GREATER_IS_BETTER, evaluate, main_metric

FOUR_FIFTHS = 0.8
HIDDEN = "(sensitive)"
"""What a sensitive bound reads as (the engine's `redaction.HIDDEN`)."""
NO_CHAMPION_HERE = ("comparing with the champion needs its predictions on the same held-out "
                    "rows, which this provider does not evaluate")
"""Why a `better_than` gate fails where the caller gave no champion to compare with."""


@dataclass(frozen=True)
class Champion:
    """The model a candidate is compared with: its loaded artifact and its name in words."""

    predictor: Any
    name: str
    """"version 3", for the result's detail."""


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict, as `model.gates` holds it on every provider."""

    gate: str
    """The gate in words, thresholds included: "auc >= 0.9"."""
    kind: str
    """metric, fairness or robustness."""
    passed: bool
    measured: float | None
    """The measured value; None when it could not be measured (see `detail`)."""
    min: float | None = None
    max: float | None = None
    detail: str = ""
    groups: dict[str, dict[str, float]] = field(default_factory=dict)
    """Fairness gates: per group, selection rate, accuracy and count."""
    sensitive: tuple[str, ...] = ()
    """The bounds ("min", "max") written from sensitive values; those are None here."""
    champion: float | None = None
    """`better_than` gates: the champion's value on the same rows (None without one)."""
    threshold: float | None = None
    """Cost gates: the decision threshold (predict the positive class when its
    probability is at least this) that minimises the expected cost."""
    costs: dict[str, float] = field(default_factory=dict)
    """Cost gates: {"false_positive", "false_negative"}, the cost of each error."""

    def failure(self) -> str:
        measured = "nothing" if self.measured is None else f"{self.measured:.4f}"
        return f"gate '{self.gate}' failed: measured {measured}" + \
            (f" ({self.detail})" if self.detail else "")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, as state and the model card keep it. The fields only business
        gates fill are left out when unset, so other gates' results read as before."""
        out = asdict(self) | {"sensitive": list(self.sensitive)}
        for name in ("champion", "threshold", "costs"):
            if not out[name] and out[name] != 0:
                del out[name]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateResult:
        """The result `to_dict` wrote (read back from a job's output file)."""
        return cls(**{**data, "sensitive": tuple(data.get("sensitive") or ())})


def evaluate_gates(gates, predictor, holdout, seed: int = 0,
                   sensitive: Collection[tuple[int, str]] = (),
                   champion: Champion | str | None = NO_CHAMPION_HERE) -> list[GateResult]:
    """Each gate judged on `holdout` (a DataFrame holding the target), in order.

    `seed` is the training run's seed; `sensitive` holds (gate index, "min" or
    "max") for each bound written from a sensitive value; `champion` is the model
    `better_than` gates compare with, None when there is none yet, or why it cannot
    be compared here.
    """
    metrics = evaluate(predictor, holdout) if gates else {}
    results = []
    for i, gate in enumerate(gates):
        if _get(gate, "better_than"):
            from .comparison import champion_gate

            result = champion_gate(gate, predictor, holdout, metrics, champion,
                                   _hidden(i, sensitive))
        elif _get(gate, "cost"):
            from .comparison import cost_gate

            result = cost_gate(gate, predictor, holdout, _hidden(i, sensitive))
        elif _get(gate, "metric"):
            result = _metric_gate(gate, metrics, f"this {predictor.task} model",
                                  _hidden(i, sensitive))
        elif _get(gate, "fairness"):
            result = _fairness_gate(gate, predictor, holdout, _hidden(i, sensitive))
        else:
            result = _robustness_gate(gate, predictor, holdout, metrics, seed,
                                      _hidden(i, sensitive))
        results.append(_redacted(result, _hidden(i, sensitive)))
    return results


def metric_gates(gates, metrics: Mapping[str, float], source: str,
                 sensitive: Collection[tuple[int, str]] = (),
                 champion: str | None = NO_CHAMPION_HERE) -> list[GateResult]:
    """Metric gates judged on held-out metrics measured already (a training job's,
    from `mlform.ml.metrics.evaluate` on the same rows); `source` names who measured
    them, for the message when one is missing. `better_than` gates need the champion
    scored on the same rows, which metrics alone cannot do: `champion` is None when
    there is none yet (the gate then judges the bounds alone), else why not."""
    results = []
    for i, gate in enumerate(gates):
        if not _get(gate, "metric") or _get(gate, "cost"):
            raise ValueError("metric_gates judges metric gates only; use evaluate_gates")
        hidden = _hidden(i, sensitive)
        if _get(gate, "better_than"):
            from .comparison import champion_gate

            # the metrics measured already are the candidate's: no champion to score
            result = champion_gate(gate, None, None, metrics, champion, hidden)
        else:
            result = _metric_gate(gate, metrics, source, hidden)
        results.append(_redacted(result, hidden))
    return results


def _get(gate: Any, name: str) -> Any:
    return gate.get(name) if isinstance(gate, Mapping) else getattr(gate, name, None)


def _hidden(index: int, sensitive: Collection[tuple[int, str]]) -> frozenset[str]:
    return frozenset(b for j, b in sensitive if j == index)


def _redacted(result: GateResult, hidden: frozenset[str]) -> GateResult:
    if not hidden:
        return result
    return replace(result, sensitive=tuple(sorted(hidden)),
                   min=None if "min" in hidden else result.min,
                   max=None if "max" in hidden else result.max)


def _bounds(gate, default_min: float | None = None) -> tuple[float | None, float | None]:
    low, high = _get(gate, "min"), _get(gate, "max")
    if low is None and high is None:
        low = default_min
    return (None if low is None else float(low)), (None if high is None else float(high))


def _label(name: str, low: float | None, high: float | None,
           hidden: Collection[str] = ()) -> str:
    lo = HIDDEN if "min" in hidden else f"{low:g}" if low is not None else None
    hi = HIDDEN if "max" in hidden else f"{high:g}" if high is not None else None
    if lo is not None and hi is not None:
        return f"{lo} <= {name} <= {hi}"
    return f"{name} >= {lo}" if lo is not None else f"{name} <= {hi}"


def _within(value: float, low: float | None, high: float | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def _metric_gate(gate, metrics: Mapping[str, float], source: str,
                 hidden: Collection[str]) -> GateResult:
    name = _get(gate, "metric")
    low, high = _bounds(gate)
    label = _label(name, low, high, hidden)
    if name not in metrics:
        return GateResult(label, "metric", False, None, low, high,
                          f"'{name}' is not measured for {source}; "
                          f"measured: {', '.join(sorted(metrics)) or 'nothing'}")
    value = float(metrics[name])
    return GateResult(label, "metric", _within(value, low, high), value, low, high)


def _fairness_gate(gate, predictor, holdout, hidden: Collection[str]) -> GateResult:
    import numpy as np

    from . import fairness

    kind, column = _get(gate, "fairness"), _get(gate, "sensitive_column")
    low, high = _bounds(gate, FOUR_FIFTHS if kind == "four_fifths_rule" else None)
    name = "selection_rate_ratio" if kind == "four_fifths_rule" else kind
    label = f"{kind}({column}): " + _label(name, low, high, hidden)
    if predictor.task != "classification" or len(predictor.classes or []) != 2:
        return GateResult(label, "fairness", False, None, low, high,
                          "fairness gates need a binary classification model")
    if column not in holdout.columns:
        return GateResult(label, "fairness", False, None, low, high,
                          f"the held-out rows have no column '{column}'")
    from .metrics import class_indices

    y_true = class_indices(holdout[predictor.target].tolist(), predictor.classes) == 1
    y_pred = np.asarray(predictor.predict_proba(holdout)).argmax(axis=1) == 1
    groups = holdout[column].astype(str).to_numpy()
    value = fairness.measure(kind, y_true, y_pred, groups)
    by_group = fairness.by_group(y_true, y_pred, groups)
    if np.isnan(value):
        return GateResult(label, "fairness", False, None, low, high,
                          "undefined: no group has a positive prediction", groups=by_group)
    return GateResult(label, "fairness", _within(value, low, high), value, low, high,
                      groups=by_group)


def _robustness_gate(gate, predictor, holdout, metrics: Mapping[str, float],
                     seed: int, hidden: Collection[str]) -> GateResult:
    import numpy as np

    from .profile import is_numeric

    metric = _get(gate, "robustness_metric") or \
        main_metric(predictor.task, len(predictor.classes or []))
    noise = float(_get(gate, "noise") if _get(gate, "noise") is not None else 0.1)
    low, high = _bounds(gate)
    label = f"gaussian_noise({noise:g}): " + _label(f"{metric} drop", low, high, hidden)
    if metric not in metrics:
        return GateResult(label, "robustness", False, None, low, high,
                          f"'{metric}' is not measured for this {predictor.task} model")
    rng = np.random.default_rng(seed)
    noisy = holdout.copy()
    prep = predictor.meta.get("preprocessing", {})
    for name in predictor.features:
        spec = prep.get(name)
        if spec is None and not is_numeric(holdout[name]):
            continue
        if spec is not None and spec["kind"] != "numeric":
            continue
        std = spec["std"] if spec else float(holdout[name].std(ddof=0))
        values = noisy[name].astype("float64")
        noisy[name] = values + rng.normal(0.0, noise * std, len(values))
    perturbed = evaluate(predictor, noisy).get(metric)
    clean = metrics[metric]
    if perturbed is None:
        return GateResult(label, "robustness", False, None, low, high,
                          f"'{metric}' is undefined on the noisy rows")
    drop = clean - perturbed if GREATER_IS_BETTER[metric] else perturbed - clean
    return GateResult(label, "robustness", _within(drop, low, high), drop, low, high,
                      f"{metric} {clean:.4f} clean, {perturbed:.4f} with noise")
