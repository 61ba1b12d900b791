"""The local `dataset`: a CSV or Parquet file stored once per content version.

The version is the first 12 hex digits of the sha256 of the file's bytes, so the
uri changes exactly when the content does. Each version lives in
`datasets/<name>/<version>/` with `data.<ext>`, `meta.json` and `profile.json`,
and every version is kept until the dataset is destroyed. The declared column
schema and the quality rules are checked (`mlform.ml.datasets`, as on every provider)
before a version is stored.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from mlform.engine.dispatch import ResourceHandler
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
from mlform.ml.datasets import check_table, checks_failed, content_version

from .moves import DatasetMoves
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


class DatasetHandler(DatasetMoves, ResourceHandler):
    rtype = "dataset"

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
        spec = self.spec(inputs)
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
                failures = check_table(frame, spec)
                if failures:
                    return ApplyResponse(error=checks_failed(name, version, failures))
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
