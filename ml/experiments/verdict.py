"""An experiment's verdict from an endpoint's logged traffic.

Each answered request is logged with the variant that answered it (`reqlog`); its
feedback carries the true labels and/or a business `outcome`. For metric `accuracy`
every labelled instance is one observation (1 when the predicted class is the label);
for `outcome` every request with a reported outcome is one. Each challenger is tested
against the control (`statistics`), at alpha divided by the number of challengers
(Bonferroni), so that several comparisons together keep the stated false-positive
rate.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from . import statistics

HIGHER_IS_BETTER = {"accuracy": True, "outcome": True}


def observations(requests: Iterable[Mapping[str, Any]], feedback: Iterable[Mapping[str, Any]],
                 metric: str) -> dict[str, list[tuple[float, float]]]:
    """Per variant, `(time, value)` for each observation of `metric`, oldest first.
    A request logged twice (a shadow's copy) counts once, as first logged."""
    from mlform.ml.monitoring.performance import predicted_classes

    answers: dict[Any, Mapping[str, Any]] = {}
    for logged in requests:
        rid = logged.get("id")
        if rid is not None and rid not in answers and "variant" in logged:
            answers[rid] = logged
    found: dict[str, list[tuple[float, float]]] = {}
    for fb in feedback:
        record = answers.get(fb.get("id"))
        if record is None:
            continue
        t, out = float(record.get("t", 0.0)), found.setdefault(record["variant"], [])
        if metric == "outcome":
            value = fb.get("outcome")
            if isinstance(value, int | float) and not isinstance(value, bool):
                out.append((t, float(value)))
            continue
        labels, predictions = fb.get("labels"), record.get("predictions") or []
        if not isinstance(labels, list):
            continue
        pairs = [(lab, p) for lab, p in zip(labels, predictions, strict=False)
                 if lab is not None and p is not None]
        if not pairs:
            continue
        classes = predicted_classes([lab for lab, _ in pairs], [p for _, p in pairs])
        out.extend((t, float(str(c) == str(lab))) for (lab, _), c in
                   zip(pairs, classes, strict=True))
    for values in found.values():
        values.sort(key=lambda tv: tv[0])
    return found


def labelled_scores(requests: Iterable[Mapping[str, Any]],
                    feedback: Iterable[Mapping[str, Any]]) -> dict[str, tuple[list, list]]:
    """Per variant, (labels, scores) of every labelled instance: its class probabilities
    when the request asked for them, else its prediction (for the variants' AUC)."""
    answers: dict[Any, Mapping[str, Any]] = {}
    for logged in requests:
        rid = logged.get("id")
        if rid is not None and rid not in answers and "variant" in logged:
            answers[rid] = logged
    out: dict[str, tuple[list, list]] = {}
    for fb in feedback:
        record = answers.get(fb.get("id"))
        labels = fb.get("labels")
        if record is None or not isinstance(labels, list):
            continue
        scores = record.get("scores") or record.get("predictions") or []
        kept = out.setdefault(record["variant"], ([], []))
        for label, score in zip(labels, scores, strict=False):
            if label is not None and score is not None:
                kept[0].append(label)
                kept[1].append(score)
    return out


def _auc(labels: list, scores: list) -> float | None:
    from mlform.ml.monitoring.performance import score

    if len(set(map(str, labels))) < 2:
        return None
    try:
        return score("auc", labels, scores)
    except (ValueError, TypeError):
        return None


def evaluate(experiment: Mapping[str, Any], variants: list[str],
             requests: Iterable[Mapping[str, Any]], feedback: Iterable[Mapping[str, Any]],
             now: float | None = None,
             serving: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The verdict: per-variant counts, means and (labelled feedback) AUC, each
    challenger's test against the control, and the winner once one is decided.
    `serving`: per variant, what the server measured (`requests`, `errors`,
    `error_rate`, `p99_ms`), shown beside the outcomes; it does not decide the verdict
    (the rollout's rollback conditions judge it)."""
    requests, feedback = list(requests), list(feedback)
    metric, test = experiment["metric"], experiment["test"]
    control = experiment.get("control") or variants[0]
    challengers = [v for v in variants if v != control]
    alpha = float(experiment["alpha"]) / max(len(challengers), 1)
    seen = observations(requests, feedback, metric)
    served: dict[str, int] = {}
    for record in {r.get("id"): r for r in reversed(requests)}.values():
        if "variant" in record:
            served[record["variant"]] = served.get(record["variant"], 0) + 1
    scored = labelled_scores(requests, feedback) if metric == "accuracy" else {}
    per_variant = {v: {"requests": served.get(v, 0), "observations": len(seen.get(v, [])),
                       "mean": _mean(seen.get(v, [])),
                       "auc": _auc(*scored[v]) if v in scored else None,
                       "serving": dict((serving or {}).get(v) or {})} for v in variants}
    comparisons, winners, undecided = {}, [], False
    for challenger in challengers:
        a, b = seen.get(control, []), seen.get(challenger, [])
        if test == "sequential":
            result = statistics.sequential(a, b, alpha=alpha, mde=experiment["mde"])
        else:
            result = statistics.fixed_horizon(
                [v for _, v in a], [v for _, v in b], alpha=alpha, power=experiment["power"],
                mde=experiment["mde"], binary=metric == "accuracy",
                baseline=experiment.get("baseline"))
        comparisons[challenger] = result.as_dict()
        if result.status == "collecting":
            undecided = True
        elif result.status == "significant" and result.difference is not None:
            better = result.difference > 0 if HIGHER_IS_BETTER[metric] else \
                result.difference < 0
            winners.append((challenger if better else control, result))
    status, winner = _decide(control, challengers, comparisons, winners, undecided)
    return {"name": experiment["name"], "metric": metric, "test": test, "control": control,
            "alpha": float(experiment["alpha"]), "variants": per_variant,
            "comparisons": comparisons, "status": status, "winner": winner,
            "time": now if now is not None else time.time(),
            "summary": summary(experiment["name"], metric, status, winner, comparisons)}


def _decide(control: str, challengers: list[str], comparisons: dict, winners: list,
            undecided: bool) -> tuple[str, str | None]:
    """`winner` when one challenger beats the control (the largest gain among those
    that do) or the control beats every challenger; `no_difference` when every
    comparison ended without one; else `collecting`."""
    beats_control = [(c, r) for c, r in winners if c != control]
    if beats_control:
        return "winner", max(beats_control, key=lambda cr: abs(cr[1].difference))[0]
    if winners and len(winners) == len(challengers):
        return "winner", control
    if not undecided:
        return "no_difference", None
    return "collecting", None


def summary(name: str, metric: str, status: str, winner: str | None,
            comparisons: Mapping[str, Mapping[str, Any]]) -> str:
    parts = []
    for challenger, c in comparisons.items():
        diff = c.get("difference")
        p = c.get("p_value")
        need = c.get("required_per_arm")
        text = f"{challenger}: n={c['n_a']}/{c['n_b']}"
        if diff is not None:
            text += f", difference {diff:+.4f}"
        if p is not None:
            text += f", p={p:.3g}"
        if status == "collecting" and need:
            text += f", needs {need} per arm"
        parts.append(text)
    head = {"winner": f"winner {winner}", "no_difference": "no difference",
            "collecting": "collecting"}[status]
    return f"experiment {name} ({metric}): {head} ({'; '.join(parts)})"


def _mean(values: list[tuple[float, float]]) -> float | None:
    return sum(v for _, v in values) / len(values) if values else None
