"""One evaluation of a monitor: recent traffic, or a batch job's output, against the
reference dataset.

    current    the newest `window_rows` logged instances (for a batch output: its last
               `window_rows` rows); fewer than `min_rows` and the verdict is
               `insufficient_data` (nothing is claimed)
    reference  the dataset's rows (a seeded sample of at most 100,000)
    features   per feature: kind (numeric / categorical, Evidently's rule applied to
               the reference column), method, value, threshold, drifted
    dataset    drift when drifted / evaluated features >= `drift_share`
    output     the predictions of the current window against the earliest logged
               predictions not in it (the model's first answers, the nearest thing
               to its behaviour at deployment; for a batch output, its rows before
               the window); reported, not counted in the share. Where clients asked
               for probabilities (`scores` logged for at least `min_rows` instances on
               each side), the scores are compared instead, as numbers: a binary
               classifier's positive-class probability, else the probability of the
               class predicted; the entry's "on" says which ("scores" or "predictions")
    performance  the newest `window_rows` instances that have labels (feedback, or a
               batch input's target column), scored with `performance.metric` and
               checked against its min / max

The result is a JSON-ready dict (stored as `evaluations/<time>.json`):

    {"monitor", "time", "t", "endpoint", "batch_job", "batch_output", "reference",
     "verdict": "ok" | "drift" | "performance" | "insufficient_data",
     "breaches": ["drift", "performance"],   # what failed; verdict names the worst
     "rows": {"current", "reference"},
     "settings": {"window_rows", "min_rows", "drift_share",
                  "numeric_method", "categorical_method"},
     "features": [{"name", "kind", "method", "value", "threshold", "drifted", "note",
                   "histogram": {"labels", "reference", "current"}}],
     "drift": {"share", "drift_share", "drifted_features", "evaluated", "dataset_drift"},
     "output_drift": {same keys as a feature, plus "baseline_rows", "on"} | null,
     "performance": {"metric", "value", "min", "max", "rows", "passed", "note"} | null,
     "summary": one line in words}

Histogram shares are fractions of each sample, over 20 equal bins of the two samples'
range (numeric) or the 20 most frequent values and "(other)" (categorical).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from . import performance as perf
from . import stats
from .traffic import Traffic

REFERENCE_SAMPLE_ROWS = 100_000
SAMPLE_SEED = 0
HISTOGRAM_BINS = 20
TOP_VALUES = 20
METRICS_TO_MAXIMISE = frozenset({"accuracy", "f1", "auc", "r2"})


def read_reference(dataset_dir: Path, max_rows: int = REFERENCE_SAMPLE_ROWS):
    """The rows of a dataset folder (data.parquet or data.csv) as a DataFrame, sampled
    (seeded) down to `max_rows`."""
    import pandas as pd

    if (dataset_dir / "data.parquet").exists():
        frame = pd.read_parquet(dataset_dir / "data.parquet")
    elif (dataset_dir / "data.csv").exists():
        frame = pd.read_csv(dataset_dir / "data.csv")
    else:
        raise FileNotFoundError(f"no data.csv or data.parquet in '{dataset_dir}'")
    return sample_reference(frame, max_rows)


def sample_reference(frame, max_rows: int = REFERENCE_SAMPLE_ROWS):
    """`frame` sampled (seeded) down to `max_rows`: every provider compares with the same
    reference rows, so the same data gives the same numbers wherever it is stored."""
    if len(frame) > max_rows:
        frame = frame.sample(n=max_rows, random_state=SAMPLE_SEED).reset_index(drop=True)
    return frame


def evaluate(monitor, traffic: Traffic, reference, now: float, name: str = "",
             batch_output: str | None = None, feedback: str | None = None) -> dict[str, Any]:
    """Evaluate `traffic` against `reference` (a DataFrame) with the settings of
    `monitor`, a validated `mlform.engine.spec.models.Monitor`; `batch_output` is the
    uri of the batch output `traffic` was read from, if it was. `feedback` says why a
    provider has no labels to give (its platform keeps no ground truth): performance is
    then reported unscored with that note, in the same shape."""
    current = traffic.rows(max(0, len(traffic) - monitor.window_rows))
    result: dict[str, Any] = {
        "monitor": name,
        "time": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
        "t": now,
        "endpoint": monitor.endpoint,
        "batch_job": monitor.batch_job,
        "batch_output": batch_output,
        "reference": monitor.reference,
        "rows": {"current": len(current), "reference": len(reference)},
        "settings": {"window_rows": monitor.window_rows, "min_rows": monitor.min_rows,
                     "drift_share": monitor.drift_share,
                     "numeric_method": monitor.numeric_method,
                     "categorical_method": monitor.categorical_method},
        "features": [], "drift": None, "output_drift": None, "performance": None,
        "breaches": [],
    }
    if len(current) < monitor.min_rows:
        result["verdict"] = "insufficient_data"
        rows = "row(s) in the batch output" if batch_output else "logged instance(s)"
        result["summary"] = (f"{len(current)} {rows}, fewer than min_rows "
                             f"{monitor.min_rows}: no verdict yet")
        return result

    names = monitor.features or [c for c in current.features.columns if c in reference.columns]
    missing = [n for n in names if n not in reference.columns]
    if missing:
        raise ValueError(f"feature(s) {', '.join(repr(n) for n in missing)} not in the "
                         f"reference dataset '{monitor.reference}'")
    features = [feature_drift(n, reference[n].to_numpy(), _column(current.features, n),
                               monitor) for n in names]
    evaluated = [f for f in features if f["method"]]
    drifted = [f["name"] for f in evaluated if f["drifted"]]
    share = len(drifted) / len(evaluated) if evaluated else 0.0
    dataset_drift = bool(evaluated) and share >= monitor.drift_share
    result["features"] = features
    result["drift"] = {"share": share, "drift_share": monitor.drift_share,
                       "drifted_features": drifted, "evaluated": len(evaluated),
                       "dataset_drift": dataset_drift}
    result["output_drift"] = _output_drift(traffic, len(current), monitor)
    if monitor.performance:
        result["performance"] = _performance(monitor, traffic, feedback)

    failed_performance = bool(result["performance"]) and result["performance"]["passed"] is False
    result["breaches"] = ([*(["drift"] if dataset_drift else []),
                           *(["performance"] if failed_performance else [])])
    result["verdict"] = ("performance" if failed_performance
                         else "drift" if dataset_drift else "ok")
    result["summary"] = _summary(result)
    return result


def feature_drift(name: str, reference: np.ndarray, current: np.ndarray,
                  monitor) -> dict[str, Any]:
    """One feature's entry: its kind, the monitor's method for that kind, the value,
    the threshold, the verdict and the histograms for the report."""
    kind = stats.feature_kind(reference)
    entry: dict[str, Any] = {"name": name, "kind": kind, "method": None, "value": None,
                             "threshold": None, "drifted": False, "note": "",
                             "histogram": None}
    if kind == "text":
        entry["note"] = "free text (most values distinct): not compared"
        return entry
    # current values come from JSON: read them as the reference column's values are
    if kind == "numeric" or reference.dtype.kind in "iufb":
        current = _as_numbers(current)
    else:
        reference, current = _as_text(reference), _as_text(current)
    reference, current = stats.clean(reference), stats.clean(current)
    if not len(current) or not len(reference):
        entry["note"] = "no values in the " + ("current window" if len(reference) else "reference")
        return entry
    method = monitor.numeric_method if kind == "numeric" else monitor.categorical_method
    threshold = getattr(monitor.thresholds, method)
    value, drifted = stats.METHODS[method](reference, current, threshold)
    entry.update(method=method, value=value, threshold=threshold, drifted=bool(drifted),
                 histogram=_histogram(reference, current, kind))
    return entry


def _output_drift(traffic: Traffic, current_rows: int, monitor) -> dict[str, Any] | None:
    on_scores = _score_drift(traffic, current_rows, monitor)
    if on_scores is not None:
        return on_scores
    baseline_rows = min(monitor.window_rows, len(traffic) - current_rows)
    if baseline_rows < monitor.min_rows:
        return None
    baseline = _prediction_values(traffic.predictions[:baseline_rows])
    current = _prediction_values(traffic.predictions[len(traffic) - current_rows:])
    entry = feature_drift("prediction", baseline, current, monitor)
    entry["baseline_rows"] = baseline_rows
    entry["on"] = "predictions"
    return entry


def _score_drift(traffic: Traffic, current_rows: int, monitor) -> dict[str, Any] | None:
    """Output drift on the logged scores, when each side has `min_rows` of them."""
    if not traffic.scores:
        return None
    start = len(traffic) - current_rows
    current = [s for s in traffic.scores[start:] if s is not None]
    baseline = [s for s in traffic.scores[:start] if s is not None][:monitor.window_rows]
    if min(len(current), len(baseline)) < monitor.min_rows:
        return None
    entry = feature_drift("score", _score_values(baseline), _score_values(current), monitor)
    entry["baseline_rows"] = len(baseline)
    entry["on"] = "scores"
    return entry


def _score_values(scores: list[Any]) -> np.ndarray:
    """One number per instance: the positive-class probability of a binary classifier,
    else the probability of the class predicted (its confidence)."""
    rows = [s for s in scores if isinstance(s, list) and s]
    return np.asarray([float(s[1]) if len(s) == 2 else float(max(s)) for s in rows],
                      dtype=float)


def _performance(monitor, traffic: Traffic, no_feedback: str | None = None) -> dict[str, Any]:
    check = monitor.performance
    labelled = [i for i, (label, answer) in enumerate(zip(traffic.labels, traffic.predictions,
                                                          strict=True))
                if label is not None and answer is not None][-monitor.window_rows:]
    entry = {"metric": check.metric, "value": None, "min": check.min, "max": check.max,
             "rows": len(labelled), "passed": None, "note": ""}
    if no_feedback and not labelled:
        entry["note"] = no_feedback
        return entry
    if len(labelled) < monitor.min_rows:
        entry["note"] = f"fewer labelled instances than min_rows {monitor.min_rows}"
        return entry
    try:
        value = perf.score(check.metric, [traffic.labels[i] for i in labelled],
                           [traffic.predictions[i] for i in labelled])
    except ValueError as err:  # a metric the labels cannot give, e.g. auc of one class
        entry["note"] = f"not scored: {err}"
        return entry
    entry["value"] = value
    entry["passed"] = ((check.min is None or value >= float(check.min))
                       and (check.max is None or value <= float(check.max)))
    return entry


def _histogram(reference: np.ndarray, current: np.ndarray, kind: str) -> dict[str, Any]:
    if kind == "numeric":
        edges = np.histogram_bin_edges(np.concatenate([reference, current]), HISTOGRAM_BINS)
        return {"labels": [f"{edge:.4g}" for edge in edges[:-1]],
                "reference": (np.histogram(reference, edges)[0] / len(reference)).tolist(),
                "current": (np.histogram(current, edges)[0] / len(current)).tolist()}
    import pandas as pd

    codes, values = pd.factorize(np.concatenate([reference, current]))
    ref_counts = np.bincount(codes[:len(reference)], minlength=len(values))
    cur_counts = np.bincount(codes[len(reference):], minlength=len(values))
    top = np.argsort(-(ref_counts / len(reference) + cur_counts / len(current)),
                     kind="stable")[:TOP_VALUES]
    labels = [str(values[i]) for i in top]
    ref_shares = (ref_counts[top] / len(reference)).tolist()
    cur_shares = (cur_counts[top] / len(current)).tolist()
    if len(values) > TOP_VALUES:
        labels.append("(other)")
        ref_shares.append(1.0 - sum(ref_shares))
        cur_shares.append(1.0 - sum(cur_shares))
    return {"labels": labels, "reference": ref_shares, "current": cur_shares}


def _column(frame, name: str) -> np.ndarray:
    if name in frame.columns:
        return frame[name].to_numpy()
    return np.full(len(frame), None, dtype=object)


def _as_numbers(values: np.ndarray) -> np.ndarray:
    import pandas as pd

    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)


def _as_text(values: np.ndarray) -> np.ndarray:
    import pandas as pd

    if pd.api.types.infer_dtype(values, skipna=True) == "string":
        return values  # already text: converting 100,000 strings costs more than the test
    text = values.astype(str).astype(object)
    text[pd.isna(values)] = None
    return text


def _prediction_values(predictions: list[Any]) -> np.ndarray:
    """Predictions as one value each, missing ones left out: a list of class
    probabilities counts as its class."""
    return np.asarray([int(np.argmax(p)) if isinstance(p, list) else p
                       for p in predictions if p is not None])


def _summary(result: dict[str, Any]) -> str:
    drift = result["drift"]
    parts = [f"{len(drift['drifted_features'])} of {drift['evaluated']} feature(s) drifted "
             f"(share {drift['share']:.2f}, threshold {drift['drift_share']:.2f})"]
    performance = result["performance"]
    if performance and performance["value"] is not None:
        bounds = " ".join(f"{k} {performance[k]}" for k in ("min", "max")
                          if performance[k] is not None)
        parts.append(f"{performance['metric']} {performance['value']:.4f} ({bounds})")
    elif performance:
        parts.append(f"{performance['metric']} not scored ({performance['note']})")
    return "; ".join(parts)
