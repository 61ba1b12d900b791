"""The ray `batch_job`: scores a ray dataset with a registered model version in a Ray Job
(`job_batch.py`), writing `batch/<name>/<version>/predictions.parquet` on the shared
storage.

The version is a digest of the model uri and the input uri, so scoring the same data
with the same model again adopts the stored predictions; the job's submission id is the
stack, the resource and that version, so an apply interrupted while it scores finds
the job and waits for it. A finished job's record is removed from Ray once its
predictions are stored: the predictions are the resource.
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
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
from mlform.engine.values import contains_unknown, reveal

from .errors import RayError
from .handler import RayHandler
from .jobs import PREFIX, JobRunner, _slug, failure_reason, metadata, status_of
from .paths import read_json, uri, write_json

RUNTIME = "mlform.providers.ray.job_batch"


def output_version(model_uri: str, input_uri: str) -> str:
    return hashlib.sha256(f"{model_uri}\n{input_uri}".encode()).hexdigest()[:12]


class BatchJobHandler(RayHandler):
    rtype = "batch_job"

    @property
    def runner(self) -> JobRunner:
        return JobRunner(self.cluster.jobs, self.cluster.cfg.poll_interval)

    def submission_id(self, name: str, version: str) -> str:
        return PREFIX + "-".join(_slug(p)[:40] for p in (self.ctx.stack, name)) + f"-{version}"

    def diff(self, req: DiffRequest) -> DiffResponse:
        base = default_diff(req)
        model, source = req.desired_inputs.get("model"), req.desired_inputs.get("dataset")
        if contains_unknown([model, source]) or not model or not source:
            return base
        version = output_version(str(reveal(model)), str(reveal(source)))
        planned = {"output_uri": uri("batch", req.resource.name, version), "version": version}
        return DiffResponse(changes=base.changes, planned_outputs=planned)

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        name = req.resource.name
        version = (req.outputs or {}).get("version")
        if version is None and req.inputs and not contains_unknown(req.inputs) \
                and req.inputs.get("dataset"):
            version = output_version(str(reveal(req.inputs["model"])),
                                     str(reveal(req.inputs["dataset"])))
        meta = read_json(self.paths.batch(name, version) / "meta.json") if version else None
        if meta is None:
            return ObserveResponse(exists=False, detail=f"predictions {version} are gone from "
                                   f"{self.paths.batch(name, version)}" if version else "")
        return ObserveResponse(exists=True, id=name, outputs=self._outputs(name, meta))

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        return self._run(req.resource.name, reveal(req.inputs), progress)

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        return self._run(req.resource.name, reveal(req.inputs), progress)

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        version = (req.outputs or {}).get("version")
        if version:
            self.runner.stop_and_forget(self.submission_id(req.resource.name, version), progress)
        shutil.rmtree(self.paths.batch_versions(req.resource.name), ignore_errors=True)
        return DeleteResponse()

    def _run(self, name: str, inputs: dict[str, Any], progress: Progress) -> ApplyResponse:
        if not inputs.get("dataset"):
            raise RayError(f"batch job '{name}': the ray provider scores a 'dataset' (a ray "
                           "dataset's uri)")
        model, source = str(inputs["model"]), str(inputs["dataset"])
        version = output_version(model, source)
        out = self.paths.batch(name, version)
        meta = read_json(out / "meta.json")
        if meta is not None:
            progress(f"predictions {version} already exist: adopting them")
            return ApplyResponse(id=name, outputs=self._outputs(name, meta))
        sid = self.submission_id(name, version)
        runner = self.runner
        found = runner.info(sid)
        if found is None or status_of(found) in ("FAILED", "STOPPED"):
            self.cluster.require_storage()
            params = self._params(model, source, version, int(inputs.get("chunk_rows") or
                                                               100_000))
            shutil.rmtree(out, ignore_errors=True)
            write_json(out / "params.json", params)
            runner.submit_or_adopt(
                sid, progress, metadata=metadata(self.ctx.stack, name, self.rtype),
                entrypoint=shlex.join([self.cluster.cfg.python, "-m", RUNTIME, str(out)]),
                entrypoint_num_cpus=1)
        else:
            progress(f"Ray job {sid} exists ({status_of(found)}): adopting it")
        info = runner.wait(sid, self.cluster.cfg.timeout(self.rtype), progress, _scored)
        meta = read_json(out / "meta.json")
        if status_of(info) != "SUCCEEDED" or meta is None:
            return ApplyResponse(error=f"Ray job {sid} of batch job '{name}' "
                                 f"{status_of(info).lower()}: "
                                 + failure_reason(info, runner.logs(sid)))
        runner.client.delete_job(sid)  # the predictions are the resource now
        return ApplyResponse(id=name, outputs=self._outputs(name, meta))

    def _params(self, model: str, source: str, version: str, chunk_rows: int) -> dict[str, Any]:
        if chunk_rows < 1:
            raise RayError(f"chunk_rows must be at least 1, not {chunk_rows}")
        try:
            model_dir, data_dir = self.paths.resolve(model), self.paths.resolve(source)
        except ValueError as e:
            raise RayError(f"batch job: {e}; score a ray model version ('${{<model>.uri}}') "
                           "and a ray dataset ('${<dataset>.uri}')") from None
        if not model.startswith("ray://models/") or not (model_dir / "artifact").is_dir():
            raise RayError(f"model '{model}' is not a registered version in the ray registry")
        meta = read_json(data_dir / "meta.json")
        if not source.startswith("ray://datasets/") or meta is None:
            raise RayError(f"dataset '{source}' is not stored in the ray provider's storage: "
                           "apply it first")
        return {"version": version, "model": model, "input": source,
                "artifact": str(model_dir / "artifact"), "data": str(data_dir / meta["file"]),
                "format": meta["format"], "rows": meta.get("rows"), "chunk_rows": chunk_rows}

    def _outputs(self, name: str, meta: dict[str, Any]) -> dict[str, Any]:
        version = meta["version"]
        return {"output_uri": uri("batch", name, version), "version": version,
                "rows": meta["rows"], "model": meta["model"], "input": meta["input"],
                "path": str(self.paths.batch(name, version) / "predictions.parquet")}


def _scored(logs: str) -> tuple[str, float | None] | None:
    for line in reversed(logs[-5_000:].splitlines()):
        if line.startswith("scored ") and "/" in line:
            done, _, rest = line[len("scored "):].partition("/")
            total = rest.split(" ", 1)[0]
            fraction = int(done) / int(total) if total.isdigit() and int(total) else None
            return line.strip(), fraction
    return None
