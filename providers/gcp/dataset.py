"""Datasets: the source file uploaded to GCS once per content version, addressed by its
digest, after it passed its declared `columns` and `quality` checks (`mlform.ml.datasets`,
the local provider's checks and messages)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from mlform.engine.provider import (
    ApplyResponse,
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
from mlform.engine.values import contains_unknown
from mlform.ml.datasets import check_table, checks_failed, content_version

from .errors import GcpError
from .handler import Handler
from .layout import split_uri
from .moves import DatasetMoves


class DatasetHandler(DatasetMoves, Handler):
    rtype = "dataset"

    def _source(self, spec: Any) -> tuple[Path, str]:
        """The local file and its format (csv or parquet)."""
        source = str(spec.source)
        if "://" in source:
            raise GcpError(f"dataset source '{source}': the gcp provider uploads local files; "
                           "give a path relative to the stack directory")
        path = (self.ctx.stack_dir / source).resolve()
        if not path.is_file():
            raise GcpError(f"dataset source '{source}' not found (looked at {path})")
        fmt = spec.format or path.suffix.lstrip(".").lower()
        if fmt not in ("csv", "parquet"):
            raise GcpError(f"dataset source '{source}': cannot tell csv from parquet by its "
                           "extension; set `format: csv` or `format: parquet`")
        return path, fmt

    def _planned(self, name: str, spec: Any) -> dict[str, Any]:
        path, fmt = self._source(spec)
        version = content_version(path)
        uri = self.layout.uri(self.layout.dataset_key(name, version, fmt))
        return {"uri": uri, "version": version, "path": uri}

    def diff(self, req: DiffRequest) -> DiffResponse:
        if contains_unknown(req.desired_inputs.get("source")):
            return default_diff(req)
        planned = self._planned(req.resource.name, self.spec(req.desired_inputs))
        base = default_diff(req)
        before = (req.prior_outputs or {}).get("version")
        note = ""
        if before and before != planned["version"]:
            note = f"source content changed: version {before} -> {planned['version']}"
        return DiffResponse(changes=base.changes, planned_outputs=planned, note=note)

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        return self._upload(req.resource.name, req.inputs, progress)

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        return self._upload(req.resource.name, req.inputs, progress)

    def _upload(self, name: str, inputs: dict[str, Any], progress: Progress) -> ApplyResponse:
        spec = self.spec(inputs)
        path, fmt = self._source(spec)
        outputs = self._planned(name, spec)
        bucket, key = split_uri(outputs["uri"])
        gcs = self.gcs(name)
        if not gcs.exists(bucket, key):
            progress(f"checking {path.name} (version {outputs['version']})")
            failures = check_table(read_table(path, fmt), spec)
            if failures:
                return ApplyResponse(error=checks_failed(name, outputs["version"], failures))
            progress(f"uploading {path.name} to {outputs['uri']}")
            gcs.upload_file(bucket, key, str(path), self.labels(name, spec))
        else:
            progress(f"version {outputs['version']} already in {outputs['uri']}")
        return ApplyResponse(id=outputs["uri"], outputs=self._outputs(name, spec))

    def _outputs(self, name: str, spec: Any) -> dict[str, Any]:
        """The outputs of the version the source holds now: where it is stored, and its
        rows and columns, read from the local file rather than downloaded again."""
        path, fmt = self._source(spec)
        rows, columns = count_rows(path, fmt)
        return {**self._planned(name, spec), "rows": rows, "columns": columns}

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        uri = (req.outputs or {}).get("uri")
        if not uri and req.inputs and not contains_unknown(req.inputs):
            uri = self._planned(req.resource.name, self.spec(req.inputs))["uri"]
        if not uri:
            return ObserveResponse(exists=False)
        if not self.gcs(req.resource.name).exists(*split_uri(uri)):
            return ObserveResponse(exists=False, detail=f"{uri} is gone")
        if not req.outputs and req.inputs:
            # adopting an interrupted create: answer what the create would have returned,
            # or the resources that reference this one plan against nothing
            return ObserveResponse(exists=True, id=uri, outputs=self._outputs(
                req.resource.name, self.spec(req.inputs)))
        return ObserveResponse(exists=True, id=uri, outputs=req.outputs)

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        """Every stored version of the dataset goes: they all belong to this resource."""
        self.gcs(req.resource.name).delete_prefix(
            self.cfg.bucket, self.layout.key("datasets", req.resource.name) + "/")
        return DeleteResponse()


def read_table(path: Path, fmt: str) -> Any:
    import pandas as pd

    return pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)


def count_rows(path: Path, fmt: str) -> tuple[int, list[str]]:
    """Row count and column names, without loading the table into memory."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(path)
        return meta.metadata.num_rows, list(meta.schema_arrow.names)
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        return sum(1 for _ in reader), header
