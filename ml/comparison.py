"""The business-outcome gates of `mlform.ml.gates`: a cost gate (the expected cost of a
binary classifier's mistakes at its cheapest threshold, `decision`) and `better_than:
champion` gates, which judge a candidate against the model it would replace on the
same held-out rows.

Kept apart from `gates` because they need more than the candidate's own metrics: the
champion's predictions, or a threshold search.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from .gates import Champion, GateResult, _bounds, _get, _label, _within
from .metrics import GREATER_IS_BETTER, evaluate

COST = "expected_cost"
"""The name a cost gate's measure goes by in labels."""


def _costs(gate) -> dict[str, float]:
    cost = _get(gate, "cost")
    return {k: float(_get(cost, k)) for k in ("false_positive", "false_negative")}


def _cost_name(costs: Mapping[str, float]) -> str:
    return f"{COST}(fp={costs['false_positive']:g}, fn={costs['false_negative']:g})"


def cost_gate(gate, predictor, holdout, hidden: Collection[str]) -> GateResult:
    from .decision import cheapest_threshold, positive_scores

    costs = _costs(gate)
    low, high = _bounds(gate)
    label = _label(_cost_name(costs), low, high, hidden)
    try:
        decision = cheapest_threshold(*positive_scores(predictor, holdout), **costs)
    except ValueError as e:
        return GateResult(label, "cost", False, None, low, high, str(e), costs=costs)
    return GateResult(label, "cost", _within(decision.cost, low, high), decision.cost,
                      low, high, _decision_words(decision), threshold=decision.threshold,
                      costs=costs)


def _decision_words(decision) -> str:
    return (f"at threshold {decision.threshold:.4f}: {decision.false_positives} false "
            f"positive(s), {decision.false_negatives} false negative(s) in "
            f"{decision.rows} rows; {decision.default_cost:.4f} per row at the default "
            "decision (the most probable class)")


def champion_gate(gate, predictor, holdout, metrics: Mapping[str, float],
                  champion: Champion | str | None, hidden: Collection[str]) -> GateResult:
    """A `better_than: champion` gate on a metric or a cost. `metrics` are the
    candidate's on `holdout`; `predictor` and `holdout` may be None when only those
    metrics are known (then `champion` is the reason no comparison is possible)."""
    margin = float(_get(gate, "margin") or 0.0)
    low, high = _bounds(gate)
    costs = _costs(gate) if _get(gate, "cost") else {}
    name = _cost_name(costs) if costs else _get(gate, "metric")
    greater = False if costs else GREATER_IS_BETTER.get(name, True)
    sign = ("+" if greater else "-")
    compared = f"{name} {'>=' if greater else '<='} champion" + \
        (f" {sign} {margin:g}" if margin else "")
    label = compared + (", " + _label(name, low, high, hidden)
                        if low is not None or high is not None else "")
    kind = "cost" if costs else "metric"

    def result(passed: bool, measured: float | None, detail: str, **more: Any) -> GateResult:
        return GateResult(label, kind, passed, measured, low, high, detail,
                          costs=costs, **more)

    try:
        mine, more = _measure(name, costs, predictor, holdout, metrics)
    except (KeyError, ValueError) as e:
        return result(False, None, f"the candidate: {_reason(e)}")
    if isinstance(champion, str):
        return result(False, mine, champion, **more)
    if champion is None:
        return result(_within(mine, low, high), mine,
                      "no champion to compare with yet", **more)
    try:
        theirs, _ = _measure(name, costs, champion.predictor, holdout,
                             evaluate(champion.predictor, holdout) if not costs else {})
    except (KeyError, ValueError) as e:
        return result(False, mine, f"the champion ({champion.name}) cannot be measured on "
                                   f"these held-out rows: {_reason(e)}", **more)
    better = mine >= theirs + margin if greater else mine <= theirs - margin
    return result(better and _within(mine, low, high), mine,
                  f"champion ({champion.name}) {theirs:.4f}, candidate {mine:.4f}",
                  champion=theirs, **more)


def _measure(name: str, costs: Mapping[str, float], predictor, holdout,
             metrics: Mapping[str, float]) -> tuple[float, dict[str, Any]]:
    if not costs:
        if name not in metrics:
            raise KeyError(f"'{name}' is not measured; measured: "
                           f"{', '.join(sorted(metrics)) or 'nothing'}")
        return float(metrics[name]), {}
    from .decision import cheapest_threshold, positive_scores

    decision = cheapest_threshold(*positive_scores(predictor, holdout), **costs)
    return decision.cost, {"threshold": decision.threshold}


def _reason(error: Exception) -> str:
    return error.args[0] if isinstance(error, KeyError) and error.args else str(error)
