"""The statistical profile of a table: per column, what monitors compare traffic with
and what a model card summarises.

    {"rows": n,
     "columns": {
       "<numeric column>": {"kind": "numeric", "count", "nulls", "mean", "std", "min",
                            "max", "quantiles": {"p05", "p25", "p50", "p75", "p95"},
                            "histogram": {"edges": [21 numbers], "counts": [20 ints]}},
       "<other column>":   {"kind": "categorical", "count", "nulls", "unique",
                            "histogram": {"values": [top 50], "counts": [...]}}}}

`count` is the number of non-null values. Booleans are categorical.
"""

from __future__ import annotations

from typing import Any

NUMERIC_BINS = 20
TOP_CATEGORIES = 50
QUANTILES = {"p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95}


def is_numeric(series) -> bool:
    from pandas.api import types

    return types.is_numeric_dtype(series) and not types.is_bool_dtype(series)


def profile_frame(frame) -> dict[str, Any]:
    return {"rows": int(len(frame)),
            "columns": {str(name): profile_column(frame[name]) for name in frame.columns}}


def profile_column(series) -> dict[str, Any]:
    values = series.dropna()
    base = {"count": int(len(values)), "nulls": int(series.isna().sum())}
    if is_numeric(series):
        return {"kind": "numeric", **base, **_numeric(values.astype("float64"))}
    return {"kind": "categorical", **base, **_categorical(values)}


def _numeric(values) -> dict[str, Any]:
    import numpy as np

    if values.empty:
        return {"mean": None, "std": None, "min": None, "max": None,
                "quantiles": dict.fromkeys(QUANTILES), "histogram": {"edges": [], "counts": []}}
    counts, edges = np.histogram(values.to_numpy(), bins=NUMERIC_BINS)
    return {
        "mean": float(values.mean()),
        "std": float(values.std(ddof=0)),
        "min": float(values.min()),
        "max": float(values.max()),
        "quantiles": {k: float(values.quantile(q)) for k, q in QUANTILES.items()},
        "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
    }


def _categorical(values) -> dict[str, Any]:
    counts = values.astype(str).value_counts()
    top = counts.head(TOP_CATEGORIES)
    return {"unique": int(len(counts)),
            "histogram": {"values": top.index.tolist(), "counts": [int(c) for c in top]}}


def summary(profile: dict[str, Any]) -> dict[str, Any]:
    """A few lines' worth of a profile (for model cards): rows and, per column, kind,
    nulls and either mean/std or the number of distinct values."""
    columns = {}
    for name, col in profile.get("columns", {}).items():
        brief = {"kind": col["kind"], "nulls": col["nulls"]}
        if col["kind"] == "numeric":
            brief.update(mean=col["mean"], std=col["std"])
        else:
            brief.update(unique=col["unique"])
        columns[name] = brief
    return {"rows": profile.get("rows"), "columns": columns}
