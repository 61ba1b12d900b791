"""Explanations of a model artifact: which features matter, overall and for one answer.

    permutation_importance   global: the drop of the model's main metric (auc for a
                             binary classifier, accuracy for more classes, rmse for
                             regression, as robustness gates use) when one feature's
                             held-out values are shuffled, averaged over `repeats`
                             seeded shuffles; the model card shows it
    occlusion                per instance: how much each feature moves the answer from
                             what the model says when that feature alone is replaced by
                             its training mean (a categorical one by "unknown", which
                             encodes as no category at all). Classification explains the
                             probability of the predicted class; regression the value.
                             One forward pass of n × (features + 1) rows per request, so
                             cheap enough to serve on `POST /explain`

Neither needs the training code or data beyond the artifact's own preprocessing and the
held-out rows, so every provider computes the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .metrics import GREATER_IS_BETTER, evaluate, main_metric

REPEATS = 5
SAMPLE_ROWS = 2000
"""Held-out rows permutation importance is measured on (a seeded sample of larger sets)."""
MAX_EXPLAINED = 100
"""Instances one `/explain` request may ask about."""


def permutation_importance(predictor, holdout, repeats: int = REPEATS, seed: int = 0,
                           max_rows: int = SAMPLE_ROWS) -> dict[str, Any]:
    """{"method", "metric", "baseline", "repeats", "rows", "features": [{"feature",
    "importance", "std"}, ...]}, most important first (ties in feature order). A
    positive importance is how much worse the metric gets without the feature."""
    import numpy as np

    if len(holdout) == 0:
        raise ValueError("there are no held-out rows to measure feature importance on")
    if len(holdout) > max_rows:
        holdout = holdout.sample(n=max_rows, random_state=seed)
    frame = holdout.reset_index(drop=True).copy()
    metric = main_metric(predictor.task, len(predictor.classes or []))
    baseline = evaluate(predictor, frame).get(metric)
    if baseline is None and predictor.task == "classification":
        metric = "accuracy"  # auc is undefined on held-out rows of one class
        baseline = evaluate(predictor, frame)[metric]
    assert baseline is not None
    sign = 1.0 if GREATER_IS_BETTER[metric] else -1.0
    rng = np.random.default_rng(seed)
    features = []
    for name in predictor.features:
        original = frame[name].copy()
        drops = []
        for _ in range(repeats):
            frame[name] = original.to_numpy()[rng.permutation(len(frame))]
            drops.append(sign * (baseline - evaluate(predictor, frame)[metric]))
        frame[name] = original
        features.append({"feature": name, "importance": float(np.mean(drops)),
                         "std": float(np.std(drops))})
    order = sorted(range(len(features)), key=lambda i: (-features[i]["importance"], i))
    return {"method": "permutation", "metric": metric, "baseline": float(baseline),
            "repeats": repeats, "rows": len(frame), "features": [features[i] for i in order]}


def baseline_values(predictor) -> dict[str, Any]:
    """Each feature's stand-in when it is occluded: its training mean, or None (no
    category; NaN for a number the artifact has no statistics for, read as 0)."""
    prep = predictor.meta.get("preprocessing", {})
    out: dict[str, Any] = {}
    for name in predictor.features:
        spec = prep.get(name)
        if spec is None:
            out[name] = math.nan
        elif spec["kind"] == "numeric":
            out[name] = float(spec.get("mean", 0.0))
        else:
            out[name] = None
    return out


def occlusion(predictor, instances: Sequence[Any]) -> list[dict[str, Any]]:
    """Per instance: {"prediction", "score", "attributions": {feature: change}}, where
    `score` is the probability of the predicted class (classification) or the predicted
    value (regression) and each attribution is `score` minus the score with that
    feature at its baseline. Instances are lists in feature order or objects by name;
    ValueError says what is wrong with one."""
    import numpy as np
    import pandas as pd

    rows = _rows(predictor.features, instances)
    baseline = baseline_values(predictor)
    width = len(predictor.features) + 1
    expanded = []
    for row in rows:
        expanded.append(row)
        expanded.extend({**row, name: baseline[name]} for name in predictor.features)
    frame = pd.DataFrame(expanded, columns=predictor.features)
    if predictor.task == "classification":
        proba = np.asarray(predictor.predict_proba(frame), dtype=np.float64)
        picked = proba[::width].argmax(axis=1)
        scores = proba[np.arange(len(proba)), np.repeat(picked, width)]
        predictions = [predictor.classes[i] for i in picked]
    else:
        scores = np.asarray(predictor.predict(frame), dtype=np.float64)
        predictions = scores[::width].tolist()
    out = []
    for i, prediction in enumerate(predictions):
        block = scores[i * width:(i + 1) * width]
        out.append({"prediction": prediction, "score": float(block[0]),
                    "attributions": {name: float(block[0] - block[j + 1])
                                     for j, name in enumerate(predictor.features)}})
    return out


def _rows(features: list[str], instances: Sequence[Any]) -> list[dict[str, Any]]:
    rows = []
    for i, instance in enumerate(instances):
        if isinstance(instance, Mapping):
            missing = [f for f in features if f not in instance]
            if missing:
                raise ValueError(f"instance {i} lacks feature(s) "
                                 f"{', '.join(repr(m) for m in missing)}")
            rows.append({f: instance[f] for f in features})
        elif isinstance(instance, list | tuple):
            if len(instance) != len(features):
                raise ValueError(f"instance {i} has {len(instance)} values; expected "
                                 f"{len(features)} ({', '.join(features)})")
            rows.append(dict(zip(features, instance, strict=True)))
        else:
            raise ValueError(f"instance {i} is not a list of values or an object by "
                             "feature name")
    return rows
