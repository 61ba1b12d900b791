"""Datasets as every provider sees them: the content digest recorded as a dataset's
`version` (and compared by the engine with the source on disk to see new data), and the
checks of the declared `columns` and `quality` rules a version must pass to be stored.

The version is the first 12 hex digits of the sha256 of the file's bytes, so the same
file has the same version on every provider and a changed byte is a new version. The
checks read the table as pandas reads it; a failed check is one line naming the rule,
what was measured and the bound, and the same lines fail the apply on every provider.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

VERSION_LENGTH = 12


def content_version(path: Path) -> str:
    """The version of the file at `path`, read in blocks (datasets may be large)."""
    with open(path, "rb") as data:
        return hashlib.file_digest(data, "sha256").hexdigest()[:VERSION_LENGTH]


def check_table(frame, spec) -> list[str]:
    """Every violation of `spec`'s (a `Dataset`) declared columns and quality rules by
    `frame`, one line each; empty when the table passes."""
    return check_schema(frame, spec) + check_quality(frame, spec)


def checks_failed(name: str, version: str, failures: list[str]) -> str:
    """The apply error of a version that failed its checks."""
    return f"dataset '{name}' version {version} failed its checks:\n  " + "\n  ".join(failures)


def check_schema(frame, spec) -> list[str]:
    """One line per violation of the declared `columns`."""
    failures = []
    for name, col in spec.columns.items():
        if name not in frame.columns:
            failures.append(f"column '{name}' is declared but missing from the data "
                            f"(found: {', '.join(map(str, frame.columns))})")
            continue
        series = frame[name]
        values = series.dropna()
        nulls = int(series.isna().sum())
        if not col.nullable and nulls:
            failures.append(f"column '{name}': rule 'nullable: false' failed: "
                            f"measured {nulls} null value(s)")
        bad_type = _type_violation(values, col.type)
        if bad_type:
            failures.append(f"column '{name}': rule 'type: {col.type}' failed: {bad_type}")
            continue
        if col.allowed is not None:
            allowed = {str(a) for a in col.allowed}
            outside = sorted({str(v) for v in values} - allowed)
            if outside:
                failures.append(f"column '{name}': rule 'allowed' failed: measured values "
                                f"{outside[:5]} not in {sorted(allowed)}")
        for bound, pick, worse in (("min", "min", lambda m, b: m < b),
                                   ("max", "max", lambda m, b: m > b)):
            limit = getattr(col, bound)
            if limit is None or values.empty:
                continue
            measured = getattr(values.astype("float64"), pick)()
            if worse(measured, float(limit)):
                op = ">=" if bound == "min" else "<="
                failures.append(f"column '{name}': rule '{bound}' failed: measured "
                                f"{bound} {measured:g}, bound {op} {float(limit):g}")
    return failures


def _type_violation(values, declared: str) -> str:
    """Why `values` (no nulls) are not of the declared type; empty when they are."""
    import pandas as pd
    from pandas.api import types

    if declared in ("string", "category"):
        return ""
    if declared == "bool":
        ok = types.is_bool_dtype(values) or set(values.unique()) <= {True, False}  # 0 and 1 compare equal
        return "" if ok else f"measured non-boolean values such as {values.iloc[0]!r}"
    if declared == "datetime":
        if types.is_datetime64_any_dtype(values):
            return ""
        parsed = pd.to_datetime(values, errors="coerce", format="mixed")
        bad = int(parsed.isna().sum())
        return f"measured {bad} value(s) that are not dates" if bad else ""
    if not types.is_numeric_dtype(values) or types.is_bool_dtype(values):
        return f"measured non-numeric values such as {values.iloc[0]!r}"
    if declared == "int" and not types.is_integer_dtype(values):
        fractional = int((values.astype("float64") % 1 != 0).sum())
        return f"measured {fractional} non-integer value(s)" if fractional else ""
    return ""


def check_quality(frame, spec) -> list[str]:
    """One line per failed quality rule."""
    q = spec.quality
    rows = len(frame)
    failures = []
    if q.min_rows is not None and rows < int(q.min_rows):
        failures.append(f"quality rule 'min_rows' failed: measured {rows} rows, "
                        f"bound >= {int(q.min_rows)}")
    if q.max_rows is not None and rows > int(q.max_rows):
        failures.append(f"quality rule 'max_rows' failed: measured {rows} rows, "
                        f"bound <= {int(q.max_rows)}")
    if q.max_null_fraction is not None:
        bounds = q.max_null_fraction if isinstance(q.max_null_fraction, dict) else \
            dict.fromkeys(map(str, frame.columns), q.max_null_fraction)
        for column, bound in bounds.items():
            if column not in frame.columns:
                failures.append(f"quality rule 'max_null_fraction' names column "
                                f"'{column}', which is missing from the data")
                continue
            fraction = float(frame[column].isna().mean()) if rows else 0.0
            if fraction > float(bound):
                failures.append(f"quality rule 'max_null_fraction' failed on column "
                                f"'{column}': measured {fraction:.4g}, bound <= {float(bound):g}")
    for column in q.unique:
        if column not in frame.columns:
            failures.append(f"quality rule 'unique' names column '{column}', which is "
                            "missing from the data")
            continue
        repeated = int(frame[column].duplicated().sum())
        if repeated:
            failures.append(f"quality rule 'unique' failed on column '{column}': "
                            f"measured {repeated} repeated value(s)")
    return failures
