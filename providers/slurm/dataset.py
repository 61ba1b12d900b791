"""The slurm `dataset`: a CSV or Parquet file copied once per content version onto the
shared filesystem, where every node reads it.

The version is `mlform.ml.datasets.content_version` (the same digest on every
provider), so the uri changes exactly when the content does. Each version lives in
`datasets/<name>/<version>/` with `data.<ext>` and `meta.json`; the declared columns
and quality rules are checked before a version is stored.
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
    UpdateRequest,
    default_diff,
)
from mlform.engine.values import contains_secret, contains_unknown, reveal
from mlform.ml.datasets import check_table, checks_failed, content_version

from .handler import Handler
from .storage import read_json, uri

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


class DatasetHandler(Handler):
    rtype = "dataset"

    def diff(self, req: DiffRequest) -> DiffResponse:
        base = default_diff(req)
        if contains_unknown(req.desired_inputs.get("source")):
            return base
        path, _fmt = self._source(req.resource.name, req.desired_inputs)
        version = content_version(path)
        planned = {"uri": uri(self.storage.dataset(req.resource.name, version)),
                   "version": version}
        prior = (req.prior_outputs or {}).get("version")
        if req.prior_inputs is None or prior in (None, version):
            return DiffResponse(changes=base.changes, planned_outputs=planned)
        note = "" if base.changes else \
            f"source {_shown(req.desired_inputs)} changed: version {prior} -> {version}"
        return DiffResponse(changes=[*base.changes, AttributeChange("version", prior, version)],
                            planned_outputs=planned, note=note)

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        name = req.resource.name
        version = (req.outputs or {}).get("version")
        if version is None and req.inputs and not contains_unknown(req.inputs):
            try:  # an interrupted create: adopt the stored version of the current source
                version = content_version(self._source(name, req.inputs)[0])
            except (ValueError, OSError):
                return ObserveResponse(exists=False)
        meta = read_json(self.storage.dataset(name, version) / "meta.json") if version else None
        if meta is None:
            return ObserveResponse(exists=False, detail=(
                f"stored version {version} is gone from {self.storage.dataset(name, version)}"
                if version else ""))
        return ObserveResponse(exists=True, id=name, outputs=self._outputs(name, meta))

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        return self._store(req.resource.name, req.inputs, progress)

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        return self._store(req.resource.name, req.inputs, progress)

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        shutil.rmtree(self.storage.dataset_versions(req.resource.name), ignore_errors=True)
        return DeleteResponse()

    def _store(self, name: str, inputs: dict[str, Any], progress: Progress) -> ApplyResponse:
        import pandas as pd

        spec = self.spec(inputs)
        source, fmt = self._source(name, inputs)
        root = self.storage.dataset_versions(name)
        root.mkdir(parents=True, exist_ok=True)
        # Hash the copy, not the source: the source may change while it is read.
        staging = Path(tempfile.mkdtemp(dir=root, prefix=".incoming-"))
        try:
            staged = staging / f"data.{fmt}"
            shutil.copyfile(source, staged)
            version = content_version(staged)
            meta = read_json(self.storage.dataset(name, version) / "meta.json")
            if meta is None:
                progress(f"checking {_shown(inputs)} (version {version})")
                frame = pd.read_csv(staged) if fmt == "csv" else pd.read_parquet(staged)
                failures = check_table(frame, spec)
                if failures:
                    return ApplyResponse(error=checks_failed(name, version, failures))
                meta = {"name": name, "version": version, "format": fmt,
                        "file": staged.name, "rows": int(len(frame)),
                        "columns": [str(c) for c in frame.columns],
                        "source": _shown(inputs, quoted=False),
                        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
                (staging / "meta.json").write_text(json.dumps(meta, indent=1))
                target = self.storage.dataset(name, version)
                shutil.rmtree(target, ignore_errors=True)
                staging.rename(target)
                progress(f"stored version {version} on the shared storage: {meta['rows']} rows")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return ApplyResponse(id=name, outputs=self._outputs(name, meta))

    def _source(self, name: str, inputs: dict[str, Any]) -> tuple[Path, str]:
        source = str(reveal(inputs["source"]))
        if "://" in source and not source.startswith("file://"):
            raise ValueError(f"source {_shown(inputs)}: the slurm provider copies files from "
                             "this machine; give a path relative to the stack directory")
        path = Path(source.removeprefix("file://"))
        path = path if path.is_absolute() else self.ctx.stack_dir / path
        fmt = reveal(inputs.get("format")) or FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise ValueError(f"source {_shown(inputs)}: cannot tell the format from the "
                             "extension; set 'format: csv' or 'format: parquet'")
        if not path.is_file():
            looked = "" if contains_secret(inputs["source"]) else f" (looked at {path})"
            raise ValueError(f"source {_shown(inputs)} not found{looked}")
        return path, fmt

    def _outputs(self, name: str, meta: dict[str, Any]) -> dict[str, Any]:
        directory = self.storage.dataset(name, meta["version"])
        return {"uri": uri(directory), "version": meta["version"], "rows": meta["rows"],
                "columns": meta["columns"], "path": str(directory / meta["file"])}


def _shown(inputs: dict[str, Any], quoted: bool = True) -> str:
    """The source as messages may show it: a path from a sensitive value is sensitive."""
    source = inputs["source"]
    if contains_secret(source):
        return "(sensitive)"
    return f"'{reveal(source)}'" if quoted else str(reveal(source))
