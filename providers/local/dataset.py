"""The local `dataset`: a CSV or Parquet file stored once per content version.

The version is the first 12 hex digits of the sha256 of the file's bytes, so the
uri changes exactly when the content does. Each version lives in
`datasets/<name>/<version>/` with `data.<ext>`, `meta.json` and `profile.json`,
and every version is kept until the dataset is destroyed. The declared column
schema and the quality rules are checked before a version is stored.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from mlform.engine.provider import (
    ApplyResponse,
    AttributeChange,
    CreateRequest,
    DeleteRequest,
    DeleteResponse,
    DiffRequest,
    DiffResponse,
    ObserveRequest,
    ObserveResponse,
    Progress,
    ProviderContext,
    UpdateRequest,
    default_diff,
)
from mlform.engine.values import contains_secret, contains_unknown, reveal
from mlform.ml.datasets import content_version

from .paths import LocalPaths, dataset_uri

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def read_table(path: Path, fmt: str):
    import pandas as pd

    return pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)


def load_dataset(paths: LocalPaths, uri: str):
    """The table a `local://datasets/...` uri names, as a DataFrame."""
    directory = paths.resolve(uri)
    meta_file = directory / "meta.json"
    if not meta_file.is_file():
        raise FileNotFoundError(f"dataset '{uri}' is not stored at {directory}: apply the "
                                "dataset resource first")
    meta = json.loads(meta_file.read_text())
    return read_table(directory / meta["file"], meta["format"])


def stored_versions(paths: LocalPaths, name: str) -> list[dict[str, Any]]:
    """{version, rows, created} of every stored version, oldest first."""
    root = paths.dataset_versions(name)
    found = []
    for meta_file in root.glob("*/meta.json"):
        meta = json.loads(meta_file.read_text())
        found.append({"version": meta["version"], "rows": meta["rows"],
                      "created": meta["created"]})
    return sorted(found, key=lambda v: v["created"])


class DatasetHandler:
    def __init__(self, ctx: ProviderContext):
        self.ctx = ctx
        self.paths = LocalPaths(ctx.data_dir)

    # --- plan ---------------------------------------------------------------

    def diff(self, req: DiffRequest) -> DiffResponse:
        base = default_diff(req)
        source = req.desired_inputs.get("source")
        if contains_unknown(source):
            return base
        try:
            path, fmt = self._source(req.desired_inputs)
        except ValueError as e:
            return DiffResponse(error=str(e))
        version = content_version(path)
        name = req.resource.name
        planned = {"uri": dataset_uri(name, version), "version": version}
        meta = self._meta(name, version)
        if meta:
            planned.update(rows=meta["rows"], columns=meta["columns"],
                           path=str(self.paths.dataset(name, version)))
        elif fmt == "parquet":
            planned.update(_parquet_shape(path))
        elif (header := _csv_header(path)) is not None:
            planned["columns"] = header
        prior = (req.prior_outputs or {}).get("version")
        if req.prior_inputs is None or prior is None or prior == version:
            return DiffResponse(changes=base.changes, planned_outputs=planned)
        changes = [*base.changes, AttributeChange("version", prior, version)]
        note = "" if base.changes else \
            f"source {source} changed: version {prior} -> {version}"
        return DiffResponse(changes=changes, planned_outputs=planned, note=note)

    # --- read ---------------------------------------------------------------

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        name = req.resource.name
        version = (req.outputs or {}).get("version")
        if version is None and req.inputs:
            # an interrupted create: adopt the stored version of the current source
            try:
                version = content_version(self._source(req.inputs)[0])
            except (ValueError, OSError):
                return ObserveResponse(exists=False)
        meta = self._meta(name, version) if version else None
        if meta is None:
            detail = f"stored version {version} is gone from {self.paths.dataset(name, version)}" \
                if version else ""
            return ObserveResponse(exists=False, detail=detail)
        return ObserveResponse(exists=True, id=name, outputs=self._outputs(name, meta))

    # --- apply --------------------------------------------------------------

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        return self._store(req.resource.name, req.inputs, progress)

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        return self._store(req.resource.name, req.inputs, progress)

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        shutil.rmtree(self.paths.dataset_versions(req.resource.name), ignore_errors=True)
        return DeleteResponse()

    def _store(self, name: str, inputs: dict[str, Any], progress: Progress) -> ApplyResponse:
        from mlform.engine.spec.models import Dataset

        spec = Dataset.model_validate({**reveal(inputs), "type": "dataset"})
        try:
            source, fmt = self._source(inputs)
        except ValueError as e:
            return ApplyResponse(error=str(e))
        root = self.paths.dataset_versions(name)
        root.mkdir(parents=True, exist_ok=True)
        # Hash the copy, not the source: the source may change while we read it.
        staging = Path(tempfile.mkdtemp(dir=root, prefix=".incoming-"))
        try:
            staged = staging / f"data.{fmt}"
            shutil.copyfile(source, staged)
            version = content_version(staged)
            meta = self._meta(name, version)
            if meta is None:
                progress(f"checking {_shown(inputs)} (version {version})")
                frame = read_table(staged, fmt)
                failures = check_schema(frame, spec) + check_quality(frame, spec)
                if failures:
                    return ApplyResponse(error=f"dataset '{name}' version {version} "
                                         "failed its checks:\n  " + "\n  ".join(failures))
                meta = self._write_version(staging, staged, frame, name, version, fmt,
                                           _shown(inputs, quoted=False))
                target = self.paths.dataset(name, version)
                shutil.rmtree(target, ignore_errors=True)
                staging.rename(target)
                progress(f"stored version {version}: {meta['rows']} rows")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return ApplyResponse(id=name, outputs=self._outputs(name, meta))

    def _write_version(self, directory: Path, staged: Path, frame, name: str, version: str,
                       fmt: str, source: str) -> dict[str, Any]:
        from mlform.ml.profile import profile_frame

        meta = {"name": name, "version": version, "source": source, "format": fmt,
                "file": staged.name, "rows": int(len(frame)),
                "columns": [str(c) for c in frame.columns],
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (directory / "profile.json").write_text(json.dumps(profile_frame(frame), indent=1))
        (directory / "meta.json").write_text(json.dumps(meta, indent=1))
        return meta

    # --- helpers ------------------------------------------------------------

    def _source(self, inputs: dict[str, Any]) -> tuple[Path, str]:
        source = str(reveal(inputs["source"]))
        shown = _shown(inputs)
        if "://" in source and not source.startswith("file://"):
            raise ValueError(f"source {shown}: the local provider reads files on this "
                             "machine; give a path relative to the stack directory")
        path = Path(source.removeprefix("file://"))
        path = path if path.is_absolute() else self.ctx.stack_dir / path
        fmt = reveal(inputs.get("format")) or FORMATS.get(path.suffix.lower())
        if fmt is None:
            suffix = "" if contains_secret(inputs["source"]) else f" '{path.suffix}'"
            raise ValueError(f"source {shown}: cannot tell the format from the extension"
                             f"{suffix}; set 'format: csv' or 'format: parquet'")
        if not path.is_file():
            looked = "" if contains_secret(inputs["source"]) else f" (looked at {path})"
            raise ValueError(f"source {shown} not found{looked}")
        return path, fmt

    def _meta(self, name: str, version: str) -> dict[str, Any] | None:
        meta_file = self.paths.dataset(name, version) / "meta.json"
        return json.loads(meta_file.read_text()) if meta_file.is_file() else None

    def _outputs(self, name: str, meta: dict[str, Any]) -> dict[str, Any]:
        version = meta["version"]
        return {"uri": dataset_uri(name, version), "version": version, "rows": meta["rows"],
                "columns": meta["columns"], "path": str(self.paths.dataset(name, version)),
                "versions": stored_versions(self.paths, name)}


def _shown(inputs: dict[str, Any], quoted: bool = True) -> str:
    """The source as messages and meta.json may show it: a path built from a sensitive
    value is itself sensitive."""
    source = inputs["source"]
    if contains_secret(source):
        return "(sensitive)"
    return f"'{reveal(source)}'" if quoted else str(reveal(source))


def _parquet_shape(path: Path) -> dict[str, Any]:
    import pyarrow.parquet as pq

    metadata = pq.ParquetFile(path).metadata
    return {"rows": metadata.num_rows, "columns": list(metadata.schema.names)}


def _csv_header(path: Path) -> list[str] | None:
    """The column names of a CSV file from its first line (what plan knows before the
    file is stored), or None when they cannot be told apart as pandas will read them:
    no header, empty or repeated names, undecodable text."""
    import csv

    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f), None)
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    if not header or any(not name for name in header) or len(set(header)) != len(header):
        return None
    return header


# --- checks ---------------------------------------------------------------------

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
