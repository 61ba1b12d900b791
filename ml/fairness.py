"""Group fairness measures of a binary classifier's decisions, with numpy only.

The definitions are fairlearn's (`demographic_parity_difference`,
`demographic_parity_ratio`, `equalized_odds_difference` with its default
between-groups worst case, `MetricFrame` by group); written here so that a job
container without fairlearn measures the same numbers as the local provider.
"""

from __future__ import annotations

from typing import Any


def _rate(hits, mask) -> float:
    """The share of `hits` among the rows of `mask`; 0 for no rows, as fairlearn counts it."""
    return float(hits[mask].mean()) if mask.any() else 0.0


def measure(kind: str, y_true, y_pred, groups) -> float:
    """`kind` over the groups; NaN for a selection-rate ratio where nothing is selected.

    `y_true` and `y_pred` are booleans (the positive class), `groups` strings.
    """
    import numpy as np

    names = np.unique(groups)
    selection = [_rate(y_pred, groups == g) for g in names]
    if kind == "demographic_parity_difference":
        return max(selection) - min(selection)
    if kind in ("demographic_parity_ratio", "four_fifths_rule"):
        return min(selection) / max(selection) if max(selection) else float("nan")
    if kind == "equalized_odds_difference":
        tpr = [_rate(y_pred, (groups == g) & y_true) for g in names]
        fpr = [_rate(y_pred, (groups == g) & ~y_true) for g in names]
        return max(max(tpr) - min(tpr), max(fpr) - min(fpr))
    raise ValueError(f"unknown fairness measure '{kind}'")


def by_group(y_true, y_pred, groups) -> dict[str, dict[str, Any]]:
    """Per group (sorted): selection_rate, accuracy and count, as the model card shows."""
    import numpy as np

    out = {}
    for g in np.unique(groups):
        mask = groups == g
        out[str(g)] = {"selection_rate": _rate(y_pred, mask),
                       "accuracy": _rate(y_pred == y_true, mask),
                       "count": float(mask.sum())}
    return out
