"""The cost-minimising decision threshold of a binary classifier on held-out rows.

Fraud and credit teams do not act on the most probable class: they act when the
positive class's probability reaches a threshold chosen from what each mistake
costs. Given a cost per false positive and per false negative, the threshold here
is the one that minimises the expected cost per row on the held-out rows:

- the rule is "predict the positive class (the second of the model's classes) when
  its probability is at least `threshold`";
- the candidates are every distinct held-out probability, and one just above the
  largest (flag nothing); any other threshold decides exactly as one of these;
- among thresholds of equal cost the highest wins (the fewest rows flagged).

numpy only, so a job container measures the same numbers as the local provider.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Decision:
    threshold: float
    cost: float
    """Expected cost per held-out row at `threshold`."""
    false_positives: int
    false_negatives: int
    default_cost: float
    """Expected cost per row of the model's default decision (the most probable class)."""
    rows: int


def positive_scores(predictor, frame) -> tuple[Any, Any]:
    """(whether each row's label is the positive class, its positive-class probability)."""
    import numpy as np

    from .metrics import class_indices

    if predictor.task != "classification" or len(predictor.classes or []) != 2:
        raise ValueError("a cost gate needs a binary classification model")
    truth = class_indices(frame[predictor.target].tolist(), predictor.classes) == 1
    proba = np.asarray(predictor.predict_proba(frame), dtype=np.float64)
    return truth, proba[:, 1]


def cheapest_threshold(positive, scores, false_positive: float,
                       false_negative: float) -> Decision:
    """The threshold of least expected cost for labels `positive` (booleans) and
    positive-class probabilities `scores`."""
    import numpy as np

    positive = np.asarray(positive, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    rows = len(scores)
    if rows == 0:
        raise ValueError("there are no held-out rows to choose a threshold on")
    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], positive[order]
    # flagging every row down to the last of each run of equal scores
    last = np.r_[np.nonzero(ranked[1:] != ranked[:-1])[0], rows - 1]
    thresholds = np.r_[np.nextafter(ranked[0], np.inf), ranked[last]]
    fps = np.r_[0, np.cumsum(~hits)[last]]
    fns = int(positive.sum()) - np.r_[0, np.cumsum(hits)[last]]
    costs = (false_positive * fps + false_negative * fns) / rows
    best = int(np.argmin(costs))
    default = scores > 0.5  # the most probable class, ties to the first (negative) one
    default_cost = (false_positive * int((default & ~positive).sum())
                    + false_negative * int((~default & positive).sum())) / rows
    return Decision(threshold=float(thresholds[best]), cost=float(costs[best]),
                    false_positives=int(fps[best]), false_negatives=int(fns[best]),
                    default_cost=float(default_cost), rows=rows)
