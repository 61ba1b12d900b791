"""Evaluation gates: checks a model must pass on its run's held-out rows to be registered.

    metric      a held-out metric within [min, max]
    fairness    across the groups of `sensitive_column` (binary classification, the
                second class being the positive one), with fairlearn:
                demographic_parity_difference, demographic_parity_ratio,
                equalized_odds_difference, and four_fifths_rule (the selection-rate
                ratio, at least `min`, default 0.8)
    robustness  gaussian_noise: the drop of a metric when noise of `noise` × each
                numeric feature's training std (seeded) is added; bounded by `max`

A bound written from a sensitive value is judged with its value but never shown:
the gate's label, its failure message and its stored result say "(sensitive)",
so neither the terminal, the audit log, incidents, state nor the card hold it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from mlform.engine.redaction import HIDDEN
from mlform.ml.metrics import GREATER_IS_BETTER, evaluate, main_metric

FOUR_FIFTHS = 0.8


@dataclass(frozen=True)
class GateResult:
    gate: str
    """The gate in words, thresholds included: "auc >= 0.9"."""
    kind: str
    passed: bool
    measured: float | None
    min: float | None = None
    max: float | None = None
    detail: str = ""
    groups: dict[str, dict[str, float]] = field(default_factory=dict)
    """Fairness gates: per group, selection rate, accuracy and count."""
    sensitive: tuple[str, ...] = ()
    """The bounds ("min", "max") written from sensitive values; those are None here."""

    def failure(self) -> str:
        measured = "nothing" if self.measured is None else f"{self.measured:.4f}"
        return f"gate '{self.gate}' failed: measured {measured}" + \
            (f" ({self.detail})" if self.detail else "")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_gates(gates, predictor, holdout, seed: int = 0,
                   sensitive: Collection[tuple[int, str]] = ()) -> list[GateResult]:
    """Each gate (an `engine.spec.models.Gate`) judged on `holdout`, in order.

    `sensitive` holds (gate index, "min" or "max") for each bound written from a
    sensitive value (`engine.redaction.sensitive_gate_bounds`).
    """
    metrics = evaluate(predictor, holdout) if gates else {}
    results = []
    for i, gate in enumerate(gates):
        hidden = frozenset(b for j, b in sensitive if j == i)
        if gate.metric:
            result = _metric_gate(gate, metrics, predictor.task, hidden)
        elif gate.fairness:
            result = _fairness_gate(gate, predictor, holdout, hidden)
        else:
            result = _robustness_gate(gate, predictor, holdout, metrics, seed, hidden)
        if hidden:
            result = replace(result, sensitive=tuple(sorted(hidden)),
                             min=None if "min" in hidden else result.min,
                             max=None if "max" in hidden else result.max)
        results.append(result)
    return results


def _bounds(gate, default_min: float | None = None) -> tuple[float | None, float | None]:
    low = float(gate.min) if gate.min is not None else default_min
    high = float(gate.max) if gate.max is not None else None
    return low, high


def _label(name: str, low: float | None, high: float | None,
           hidden: Collection[str] = ()) -> str:
    lo = HIDDEN if "min" in hidden else f"{low:g}" if low is not None else None
    hi = HIDDEN if "max" in hidden else f"{high:g}" if high is not None else None
    if lo is not None and hi is not None:
        return f"{lo} <= {name} <= {hi}"
    return f"{name} >= {lo}" if lo is not None else f"{name} <= {hi}"


def _within(value: float, low: float | None, high: float | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def _metric_gate(gate, metrics: dict[str, float], task: str,
                 hidden: Collection[str]) -> GateResult:
    low, high = _bounds(gate)
    label = _label(gate.metric, low, high, hidden)
    if gate.metric not in metrics:
        return GateResult(label, "metric", False, None, low, high,
                          f"'{gate.metric}' is not measured for this {task} model; "
                          f"measured: {', '.join(metrics)}")
    value = metrics[gate.metric]
    return GateResult(label, "metric", _within(value, low, high), value, low, high)


def _fairness_gate(gate, predictor, holdout, hidden: Collection[str]) -> GateResult:
    import numpy as np
    from fairlearn import metrics as fair
    from mlform.ml.metrics import class_indices
    from sklearn.metrics import accuracy_score

    default_min = FOUR_FIFTHS if gate.fairness == "four_fifths_rule" and gate.max is None \
        else None
    low, high = _bounds(gate, default_min)
    name = "selection_rate_ratio" if gate.fairness == "four_fifths_rule" else gate.fairness
    label = f"{gate.fairness}({gate.sensitive_column}): " + _label(name, low, high, hidden)
    if predictor.task != "classification" or len(predictor.classes) != 2:
        return GateResult(label, "fairness", False, None, low, high,
                          "fairness gates need a binary classification model")
    if gate.sensitive_column not in holdout.columns:
        return GateResult(label, "fairness", False, None, low, high,
                          f"the held-out rows have no column '{gate.sensitive_column}'")
    y_true = (class_indices(holdout[predictor.target].tolist(), predictor.classes) == 1)
    y_pred = np.asarray(predictor.predict_proba(holdout))[:, 1] >= 0.5
    groups = holdout[gate.sensitive_column].astype(str)
    y_true, y_pred = y_true.astype(int), y_pred.astype(int)
    measure = {
        "demographic_parity_difference": fair.demographic_parity_difference,
        "demographic_parity_ratio": fair.demographic_parity_ratio,
        "four_fifths_rule": fair.demographic_parity_ratio,
        "equalized_odds_difference": fair.equalized_odds_difference,
    }[gate.fairness]
    value = float(measure(y_true, y_pred, sensitive_features=groups))
    frame = fair.MetricFrame(
        metrics={"selection_rate": fair.selection_rate, "accuracy": accuracy_score,
                 "count": fair.count},
        y_true=y_true, y_pred=y_pred, sensitive_features=groups)
    by_group = {str(g): {k: float(v) for k, v in row.items()}
                for g, row in frame.by_group.to_dict(orient="index").items()}
    passed = not np.isnan(value) and _within(value, low, high)
    return GateResult(label, "fairness", passed, value, low, high, groups=by_group)


def _robustness_gate(gate, predictor, holdout, metrics: dict[str, float],
                     seed: int, hidden: Collection[str]) -> GateResult:
    import numpy as np
    from mlform.ml.profile import is_numeric

    metric = gate.robustness_metric or main_metric(predictor.task, len(predictor.classes or []))
    low, high = _bounds(gate)
    label = f"gaussian_noise({float(gate.noise):g}): " + _label(f"{metric} drop", low, high,
                                                                 hidden)
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
        noisy[name] = values + rng.normal(0.0, float(gate.noise) * std, len(values))
    perturbed = evaluate(predictor, noisy).get(metric)
    clean = metrics[metric]
    if perturbed is None:
        return GateResult(label, "robustness", False, None, low, high,
                          f"'{metric}' is undefined on the noisy rows")
    drop = clean - perturbed if GREATER_IS_BETTER[metric] else perturbed - clean
    return GateResult(label, "robustness", _within(drop, low, high), drop, low, high,
                      f"{metric} {clean:.4f} clean, {perturbed:.4f} with noise")
