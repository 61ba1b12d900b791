"""Held-out metrics of a model artifact: the numbers a run reports and gates judge.

Classification: accuracy, auc (binary; macro one-vs-rest for more classes), f1
(of the second class for a binary task; macro for more classes), log_loss.
Regression: rmse, mae, r2. A metric that is undefined on the rows at hand (auc
when the held-out rows hold a single class) is left out rather than reported as NaN.
"""

from __future__ import annotations

from typing import Any

CLASSIFICATION = ("accuracy", "auc", "f1", "log_loss")
REGRESSION = ("rmse", "mae", "r2")
GREATER_IS_BETTER = {"accuracy": True, "auc": True, "f1": True, "r2": True,
                     "log_loss": False, "rmse": False, "mae": False}


def main_metric(task: str, n_classes: int = 2) -> str:
    """The metric a robustness gate bounds when none is named."""
    if task == "regression":
        return "rmse"
    return "auc" if n_classes == 2 else "accuracy"


def evaluate(predictor, frame) -> dict[str, float]:
    """Metrics of `predictor` (a loaded artifact) on `frame`, which holds the target."""
    if predictor.target not in frame.columns:
        raise ValueError(f"the held-out rows lack the target column '{predictor.target}'")
    y_true = frame[predictor.target].tolist()
    if predictor.task == "classification":
        return classification_metrics(y_true, predictor.predict_proba(frame), predictor.classes)
    return regression_metrics(y_true, predictor.predict(frame))


def class_indices(labels, classes: list[Any]):
    """Each label's position in `classes`; -1 for a label the model never saw."""
    import numpy as np

    index = {c: i for i, c in enumerate(classes)}
    index.update({str(c): i for i, c in enumerate(classes)})
    return np.array([index.get(y, index.get(str(y), -1)) for y in labels])


def classification_metrics(y_true, proba, classes: list[Any]) -> dict[str, float]:
    import numpy as np
    from sklearn import metrics

    proba = np.asarray(proba, dtype=np.float64)
    y = class_indices(y_true, classes)
    predicted = proba.argmax(axis=1)
    labels = list(range(len(classes)))
    binary = len(classes) == 2
    # rows whose label the model never saw count as wrong, but have no probability
    seen = y >= 0
    out = {
        "accuracy": float(metrics.accuracy_score(y, predicted)),
        "f1": float(metrics.f1_score(y, predicted, labels=labels, zero_division=0,
                                     average="binary" if binary else "macro")),
    }
    if seen.any():
        out["log_loss"] = float(metrics.log_loss(y[seen], np.clip(proba[seen], 1e-15, 1.0),
                                                 labels=labels))
    present = set(y[seen].tolist())
    if binary and len(present) == 2:
        out["auc"] = float(metrics.roc_auc_score(y[seen] == 1, proba[seen, 1]))
    elif not binary and present == set(labels):
        out["auc"] = float(metrics.roc_auc_score(y[seen], proba[seen], multi_class="ovr",
                                                 average="macro", labels=labels))
    return {k: out[k] for k in CLASSIFICATION if k in out}


def regression_metrics(y_true, y_pred) -> dict[str, float]:
    import numpy as np
    from sklearn import metrics

    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    return {"rmse": float(np.sqrt(metrics.mean_squared_error(y_true, y_pred))),
            "mae": float(metrics.mean_absolute_error(y_true, y_pred)),
            "r2": float(metrics.r2_score(y_true, y_pred))}
