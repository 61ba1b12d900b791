"""The local `batch_job`: scores a dataset (or a feature view's offline table) with a
registered model version, writing `batch/<name>/<version>/predictions.parquet`.

The version is a digest of the model uri and the input uri, so scoring the same
data with the same model again adopts the stored predictions. Input is read
`chunk_rows` at a time (Parquet record batches, CSV chunks) and each chunk's
predictions are appended through one Parquet writer, so memory stays bounded by
the chunk, not the input. The predictions file holds every input column and a
`prediction` column.

With a `schedule`, each pass of `mlform watch` (at most once per interval) follows
the model and input to the uris their resources hold now, and scores again when
those changed since the last run. Every run, adopted or scored, is appended to
`batch/<name>/runs.jsonl`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from mlform.engine.dispatch import ResourceHandler
from mlform.engine.durations import seconds
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
    ProviderContext,
    TickRequest,
    TickResponse,
    UpdateRequest,
    default_diff,
)
from mlform.engine.values import contains_unknown, reveal

from .paths import SCHEME, LocalPaths, batch_uri

PREDICTIONS = "predictions.parquet"
PREDICTION_COLUMN = "prediction"
RUNS = "runs.jsonl"
DIGEST_CHARS = 12


def output_version(model_uri: str, input_uri: str) -> str:
    return hashlib.sha256(f"{model_uri}\n{input_uri}".encode()).hexdigest()[:DIGEST_CHARS]


class BatchJobHandler(ResourceHandler):
    rtype = "batch_job"

    def __init__(self, ctx: ProviderContext):
        self.ctx = ctx
        self.paths = LocalPaths(ctx.data_dir)

    # --- plan ---------------------------------------------------------------

    def diff(self, req: DiffRequest) -> DiffResponse:
        base = default_diff(req)
        inputs = req.desired_inputs
        model, source = inputs.get("model"), _input_uri(inputs)
        if contains_unknown([model, source]) or not model or not source:
            return base
        version = output_version(str(reveal(model)), str(reveal(source)))
        planned = {"output_uri": batch_uri(req.resource.name, version), "version": version}
        note = ""
        if req.prior_inputs is not None and base.changes and \
                (req.prior_outputs or {}).get("version") not in (None, version):
            note = f"scores again as version {version} ({planned['output_uri']})"
        return DiffResponse(changes=base.changes, planned_outputs=planned, note=note)

    # --- read ---------------------------------------------------------------

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        name = req.resource.name
        version = (req.outputs or {}).get("version")
        if version is None and req.inputs and not contains_unknown(req.inputs):
            version = output_version(str(reveal(req.inputs["model"])),
                                     str(reveal(_input_uri(req.inputs))))
        meta = self._meta(name, version) if version else None
        if meta is None:
            return ObserveResponse(exists=False, detail=f"predictions {version} are gone "
                                   f"from {self.paths.batch(name, version)}" if version else "")
        return ObserveResponse(exists=True, id=name,
                               outputs={**(req.outputs or {}), **self._outputs(name, meta)})

    # --- apply --------------------------------------------------------------

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        return self._run(req.resource.name, reveal(req.inputs), progress, {})

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        return self._run(req.resource.name, reveal(req.inputs), progress,
                         req.prior_outputs or {})

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        shutil.rmtree(self.paths.batch_versions(req.resource.name), ignore_errors=True)
        return DeleteResponse()

    def _run(self, name: str, inputs: dict[str, Any], progress: Progress,
             prior: dict[str, Any]) -> ApplyResponse:
        source = _input_uri(inputs)
        if not source:
            return ApplyResponse(error=f"batch job '{name}': set 'dataset' or 'feature_view'")
        try:
            meta = self.score(name, str(inputs["model"]), str(source),
                              int(inputs.get("chunk_rows") or 100_000), progress)
        except ValueError as e:
            return ApplyResponse(error=f"batch job '{name}': {e}")
        return ApplyResponse(id=name, outputs={**prior, **self._outputs(name, meta)})

    def score(self, name: str, model: str, source: str, chunk_rows: int,
              progress: Progress) -> dict[str, Any]:
        """Score `source` with `model` (adopting stored predictions); returns the run's meta."""
        from mlform.ml.artifact import load_predictor

        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be at least 1, not {chunk_rows}")
        version = output_version(model, source)
        started = time.monotonic()
        meta = self._meta(name, version)
        if meta:
            progress(f"predictions {version} already exist: adopting them")
            self._record(name, meta, adopted=True, took=time.monotonic() - started)
            return meta
        artifact = self._artifact(model)
        data, fmt, total = self._input(source)
        predictor = load_predictor(artifact)
        root = self.paths.batch_versions(name)
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=root, prefix=".incoming-"))
        try:
            rows = score_file(predictor, data, fmt, staging / PREDICTIONS, chunk_rows,
                              progress, total)
            meta = {"version": version, "model": model, "input": source, "rows": rows,
                    "chunk_rows": chunk_rows, "seconds": round(time.monotonic() - started, 3),
                    "created": _now()}
            (staging / "meta.json").write_text(json.dumps(meta, indent=1))
            staging.rename(self.paths.batch(name, version))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self._record(name, meta, adopted=False, took=meta["seconds"])
        return meta

    # --- watch --------------------------------------------------------------

    def tick(self, req: TickRequest) -> TickResponse | None:
        inputs = reveal(req.inputs)
        if not inputs.get("schedule"):
            return None
        outputs = req.outputs or {}
        last = outputs.get("last_run_at")
        if last is not None and req.now < last + seconds(inputs["schedule"]):
            return TickResponse()
        model = _current(str(inputs["model"]), req.stack_outputs)
        source = _current(str(_input_uri(inputs)), req.stack_outputs)
        if output_version(model, source) == outputs.get("version"):
            return TickResponse()
        name = req.resource.name
        try:
            meta = self.score(name, model, source, int(inputs.get("chunk_rows") or 100_000),
                              Progress())
        except ValueError as e:
            return TickResponse(error=f"batch job '{name}': {e}")
        return TickResponse(outputs={**self._outputs(name, meta), "last_run_at": req.now},
                            events=[f"scored {meta['rows']} rows of {source} with {model}: "
                                    f"{batch_uri(name, meta['version'])}"])

    # --- helpers ------------------------------------------------------------

    def _artifact(self, model: str) -> Path:
        if not model.startswith(f"{SCHEME}models/"):
            raise ValueError(f"model '{model}' is not a registered local model version; set "
                             "'model: ${<model>.uri}'")
        directory = self.paths.resolve(model)
        if not (directory / "meta.json").is_file():
            raise ValueError(f"model '{model}' is not in the registry at {directory}")
        if not (directory / "artifact").is_dir():
            raise ValueError(f"model '{model}' is retired: its artifact was removed; "
                             "score with a version that is not retired")
        return directory / "artifact"

    def _input(self, source: str) -> tuple[Path, str, int | None]:
        """(file, format, rows) of a dataset or feature view uri."""
        try:
            directory = self.paths.resolve(source)
        except ValueError as e:
            raise ValueError(f"'{source}' is not data the local provider holds: {e}") from None
        meta_file = directory / "meta.json"
        if not meta_file.is_file():
            raise ValueError(f"'{source}' is not stored at {directory}: apply it first")
        meta = json.loads(meta_file.read_text())
        if source.startswith(f"{SCHEME}features/"):
            return directory / "offline.parquet", "parquet", meta.get("rows")
        return directory / meta["file"], meta["format"], meta.get("rows")

    def _meta(self, name: str, version: str) -> dict[str, Any] | None:
        meta_file = self.paths.batch(name, version) / "meta.json"
        return json.loads(meta_file.read_text()) if meta_file.is_file() else None

    def _record(self, name: str, meta: dict[str, Any], adopted: bool, took: float) -> None:
        log = self.paths.batch_versions(name) / RUNS
        log.parent.mkdir(parents=True, exist_ok=True)
        entry = {"time": _now(), "version": meta["version"], "model": meta["model"],
                 "input": meta["input"], "rows": meta["rows"], "adopted": adopted,
                 "seconds": round(took, 3)}
        with log.open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    def _outputs(self, name: str, meta: dict[str, Any]) -> dict[str, Any]:
        version = meta["version"]
        return {"output_uri": batch_uri(name, version), "version": version,
                "rows": meta["rows"], "model": meta["model"], "input": meta["input"],
                "path": str(self.paths.batch(name, version) / PREDICTIONS),
                "runs": str(self.paths.batch_versions(name) / RUNS)}


def score_file(predictor, data: Path, fmt: str, out: Path, chunk_rows: int,
               progress: Progress, total: int | None = None) -> int:
    """Score `data` `chunk_rows` rows at a time into the Parquet file `out`; returns the rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    rows = 0
    try:
        for number, chunk in enumerate(_chunks(data, fmt, chunk_rows), 1):
            chunk[PREDICTION_COLUMN] = predictor.predict(chunk)
            table = pa.Table.from_pandas(chunk, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(out, table.schema)
            elif table.schema != writer.schema:
                table = _conform(table, writer.schema, rows)
            writer.write_table(table)
            rows += len(chunk)
            progress(f"chunk {number}: {rows}" + (f"/{total}" if total else "") +
                     " rows scored", rows / total if total else None)
        if writer is None:  # an empty input still gets a (schema-only) predictions file
            pq.write_table(pa.table({PREDICTION_COLUMN: pa.array([], pa.null())}), out)
    finally:
        if writer is not None:
            writer.close()
    return rows


def _chunks(data: Path, fmt: str, chunk_rows: int):
    """DataFrames of at most `chunk_rows` rows, in file order."""
    if fmt == "csv":
        import pandas as pd

        with pd.read_csv(data, chunksize=chunk_rows) as reader:
            yield from reader
        return
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(data).iter_batches(batch_size=chunk_rows):
        yield batch.to_pandas()


def _conform(table, schema, offset: int):
    """`table` cast to the first chunk's schema (a CSV chunk may read a column's numbers
    as integers where the first one read floats)."""
    import pyarrow as pa

    try:
        return table.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, KeyError) as e:
        raise ValueError(f"rows from {offset} on do not have the columns and types of the "
                         f"first chunk ({e}); store the input as Parquet, or raise "
                         "chunk_rows") from None


def _input_uri(inputs: dict[str, Any]):
    return inputs.get("dataset") or inputs.get("feature_view")


def _current(uri: str, stack_outputs: dict[str, dict[str, Any]]) -> str:
    """The uri the resource that produced `uri` holds now (`local://<kind>/<name>/...`
    names it); `uri` itself when no resource in state holds that kind and name."""
    prefix = uri.rsplit("/", 1)[0] + "/"
    for outputs in stack_outputs.values():
        now = outputs.get("uri")
        if isinstance(now, str) and now.startswith(prefix):
            return now
    return uri


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
