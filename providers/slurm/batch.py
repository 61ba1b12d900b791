"""The slurm `batch_job`: scores a dataset with a registered model version in a Slurm
job, writing `batch/<name>/<version>/predictions.parquet` on the shared filesystem
(every input column and `prediction`).

The version is a digest of the model and input uris, and the Slurm job name carries
it: scoring the same data with the same model again adopts the stored predictions, and
a create repeated after an interrupted apply adopts the job it submitted.
"""

from __future__ import annotations

import hashlib
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

from . import jobs
from .compute import sbatch_flags
from .handler import Handler
from .naming import comment, job_name
from .storage import path_of, read_json, uri

PREDICTIONS = "predictions.parquet"


def output_version(model: str, source: str) -> str:
    return hashlib.sha256(f"{model}\n{source}".encode()).hexdigest()[:12]


class BatchJobHandler(Handler):
    rtype = "batch_job"

    def diff(self, req: DiffRequest) -> DiffResponse:
        base = default_diff(req)
        model, source = req.desired_inputs.get("model"), req.desired_inputs.get("dataset")
        if contains_unknown([model, source]) or not model or not source:
            return base
        version = output_version(str(reveal(model)), str(reveal(source)))
        planned = {"output_uri": uri(self.storage.batch(req.resource.name, version)
                                     / PREDICTIONS)}
        prior = req.prior_outputs or {}
        if req.prior_inputs is not None and not base.changes and \
                prior.get("job_state") == "active":
            return DiffResponse(note=f"Slurm job {prior.get('job_id')} submitted by an "
                                     "interrupted apply is still running: apply waits for it")
        return DiffResponse(changes=base.changes, planned_outputs=planned)

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        name, recorded = req.resource.name, req.outputs or {}
        version = recorded.get("version")
        if version is None and req.inputs and not contains_unknown(req.inputs) \
                and req.inputs.get("dataset"):
            version = output_version(str(reveal(req.inputs["model"])),
                                     str(reveal(req.inputs["dataset"])))
        if version is None:
            return ObserveResponse(exists=False)
        directory = self.storage.batch(name, version)
        seen = jobs.look(job_name(self.ctx.stack, name, version), directory, self.ctx.stack)
        if seen.state == "succeeded":
            return ObserveResponse(exists=True, id=job_name(self.ctx.stack, name, version),
                                   outputs=self._outputs(name, version, seen))
        if seen.state == "active":
            return ObserveResponse(exists=True, id=job_name(self.ctx.stack, name, version),
                                   detail=seen.detail, outputs={
                                       "output_uri": uri(directory / PREDICTIONS),
                                       "version": version, "job_id": seen.job_id,
                                       "job_state": "active"})
        if seen.state == "failed" and recorded:
            return ObserveResponse(exists=True, id=job_name(self.ctx.stack, name, version),
                                   outputs=recorded, healthy=False, detail=seen.detail)
        return ObserveResponse(exists=False, detail=seen.detail if recorded else "")

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        return self._run(req.resource.name, req.inputs, progress)

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        return self._run(req.resource.name, req.inputs, progress)

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        root = self.storage.batch_versions(req.resource.name)
        for directory in root.glob("*/"):
            jobs.cancel(job_name(self.ctx.stack, req.resource.name, directory.name),
                        directory, self.ctx.stack, progress)
        shutil.rmtree(root, ignore_errors=True)
        return DeleteResponse()

    def _run(self, name: str, inputs: dict[str, Any], progress: Progress) -> ApplyResponse:
        spec = self.spec(inputs)
        if not spec.dataset:
            raise ValueError("set 'dataset: ${<dataset>.uri}' (a dataset of this provider)")
        model_dir = path_of(str(spec.model))
        if not (model_dir / "artifact" / "model.json").is_file():
            raise ValueError(f"model '{spec.model}' is not a registered version at {model_dir}; "
                             "set 'model: ${<model>.uri}' of a slurm model")
        data = path_of(str(spec.dataset))
        meta = read_json(data / "meta.json")
        if meta is None:
            raise ValueError(f"dataset '{spec.dataset}' is not stored at {data}: apply it first")
        version = output_version(str(spec.model), str(spec.dataset))
        cfg, options = self.job_cfg(spec)
        plan = jobs.JobPlan(
            resource=name, name=job_name(self.ctx.stack, name, version),
            directory=self.storage.batch(name, version),
            spec={"kind": "batch", "model_dir": str(model_dir / "artifact"),
                  "data": {"path": str(data / meta["file"]), "format": meta["format"]},
                  "chunk_rows": spec.chunk_rows},
            comment=comment(self.ctx.stack, name, self.rtype),
            flags=sbatch_flags(cfg, None, None, options))
        seen = self.runner.realise(plan, progress)
        if seen.state != "succeeded":
            return ApplyResponse(error=jobs.failure_text(
                f"batch job '{name}' did not score {spec.dataset}", seen, plan.directory))
        return ApplyResponse(id=plan.name, outputs=self._outputs(name, version, seen))

    def _outputs(self, name: str, version: str, seen: jobs.Seen) -> dict[str, Any]:
        outcome = seen.outcome or {}
        path = self.storage.batch(name, version) / PREDICTIONS
        return {"output_uri": uri(path), "rows": outcome.get("rows"), "version": version,
                "path": str(path), "job_id": outcome.get("job_id"), "job_state": "succeeded"}
