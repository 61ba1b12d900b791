"""The ray `dataset`: the source file copied once per content version into the cluster's
shared storage, where every node reads it.

The version is the content digest every provider gives (`mlform.ml.datasets`), so the
uri (`ray://datasets/<name>/<version>`) changes exactly when the content does; the
declared columns and quality rules are checked (the same checks and words as on every
provider) before a version is stored. Every version is kept until the dataset is
destroyed.
"""

from __future__ import annotations

import csv
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
    UpdateRequest,
    default_diff,
)
from mlform.engine.values import contains_secret, contains_unknown, reveal
from mlform.ml.datasets import check_table, checks_failed, content_version

from .errors import RayError
from .handler import RayHandler
from .paths import read_json, uri, write_json

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def read_table(path: Path, fmt: str):
    import pandas as pd

    return pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)


class DatasetHandler(RayHandler):
    rtype = "dataset"

    def diff(self, req: DiffRequest) -> DiffResponse:
        base = default_diff(req)
        if contains_unknown(req.desired_inputs.get("source")):
            return base
        path, fmt = self._source(req.desired_inputs)
        version = content_version(path)
        name = req.resource.name
        planned: dict[str, Any] = {"uri": uri("datasets", name, version), "version": version,
                                   "path": str(self.paths.dataset(name, version))}
        meta = read_json(self.paths.dataset(name, version) / "meta.json")
        if meta:
            planned.update(rows=meta["rows"], columns=meta["columns"])
        elif fmt == "csv" and (header := _csv_header(path)):
            planned["columns"] = header  # what the training job's check compares with
        prior = (req.prior_outputs or {}).get("version")
        if req.prior_inputs is None or prior is None or prior == version:
            return DiffResponse(changes=base.changes, planned_outputs=planned)
        note = "" if base.changes else f"source content changed: version {prior} -> {version}"
        return DiffResponse(changes=[*base.changes, AttributeChange("version", prior, version)],
                            planned_outputs=planned, note=note)

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        name = req.resource.name
        version = (req.outputs or {}).get("version")
        if version is None and req.inputs:
            try:  # an interrupted create: adopt the stored version of the current source
                version = content_version(self._source(req.inputs)[0])
            except (RayError, OSError):
                return ObserveResponse(exists=False)
        if not version:
            return ObserveResponse(exists=False)
        stored = self.paths.dataset(name, str(version))
        meta = read_json(stored / "meta.json")
        if meta is None or not (stored / meta["file"]).is_file():
            return ObserveResponse(exists=False,
                                   detail=f"stored version {version} is gone from {stored}")
        return ObserveResponse(exists=True, id=name, outputs=self._outputs(name, meta))

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        return self._store(req.resource.name, req.inputs, progress)

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        return self._store(req.resource.name, req.inputs, progress)

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        shutil.rmtree(self.paths.dataset_versions(req.resource.name), ignore_errors=True)
        return DeleteResponse()

    def _store(self, name: str, inputs: dict[str, Any], progress: Progress) -> ApplyResponse:
        spec = self.spec(inputs)
        source, fmt = self._source(inputs)
        self.cluster.require_storage()
        root = self.paths.dataset_versions(name)
        root.mkdir(parents=True, exist_ok=True)
        # Hash the copy, not the source: the source may change while it is read.
        staging = Path(tempfile.mkdtemp(dir=root, prefix=".incoming-"))
        try:
            staged = staging / f"data.{fmt}"
            shutil.copyfile(source, staged)
            version = content_version(staged)
            target = self.paths.dataset(name, version)
            meta = read_json(target / "meta.json")
            if meta is None or not (target / meta["file"]).is_file():
                progress(f"checking {_shown(inputs)} (version {version})")
                frame = read_table(staged, fmt)
                failures = check_table(frame, spec)
                if failures:
                    return ApplyResponse(error=checks_failed(name, version, failures))
                meta = _write_version(staging, staged, frame, name, version, fmt,
                                      _shown(inputs, quoted=False))
                shutil.rmtree(target, ignore_errors=True)
                staging.rename(target)
                progress(f"stored version {version} in the shared storage: {meta['rows']} rows")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return ApplyResponse(id=name, outputs=self._outputs(name, meta))

    def _source(self, inputs: dict[str, Any]) -> tuple[Path, str]:
        source = str(reveal(inputs["source"]))
        shown = _shown(inputs)
        if "://" in source and not source.startswith("file://"):
            raise RayError(f"source {shown}: the ray provider copies files from this machine "
                           "into the cluster's shared storage; give a path relative to the "
                           "stack directory")
        path = Path(source.removeprefix("file://"))
        path = path if path.is_absolute() else self.ctx.stack_dir / path
        fmt = reveal(inputs.get("format")) or FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise RayError(f"source {shown}: cannot tell the format from the extension; set "
                           "'format: csv' or 'format: parquet'")
        if not path.is_file():
            looked = "" if contains_secret(inputs["source"]) else f" (looked at {path})"
            raise RayError(f"source {shown} not found{looked}")
        return path, fmt

    def _outputs(self, name: str, meta: dict[str, Any]) -> dict[str, Any]:
        version = meta["version"]
        return {"uri": uri("datasets", name, version), "version": version,
                "rows": meta["rows"], "columns": meta["columns"],
                "path": str(self.paths.dataset(name, version) / meta["file"])}


def _write_version(directory: Path, staged: Path, frame, name: str, version: str, fmt: str,
                   source: str) -> dict[str, Any]:
    from mlform.ml.profile import profile_frame

    meta = {"name": name, "version": version, "source": source, "format": fmt,
            "file": staged.name, "rows": int(len(frame)),
            "columns": [str(c) for c in frame.columns],
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_json(directory / "profile.json", profile_frame(frame))
    write_json(directory / "meta.json", meta)
    return meta


def _shown(inputs: dict[str, Any], quoted: bool = True) -> str:
    """The source as messages may show it: a path built from a sensitive value is sensitive."""
    source = inputs["source"]
    if contains_secret(source):
        return "(sensitive)"
    return f"'{reveal(source)}'" if quoted else str(reveal(source))


def _csv_header(path: Path) -> list[str] | None:
    """The column names of a CSV file from its first line, or None when they cannot be
    told apart as pandas will read them (no header, empty or repeated names)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f), None)
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    if not header or any(not name for name in header) or len(set(header)) != len(header):
        return None
    return header
