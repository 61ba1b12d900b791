"""Batch jobs: a command job scoring the dataset in chunks with mlform's runtime, named by
the stack, the resource and the fingerprint of its inputs (an interrupted apply adopts it).

Why a command job rather than a batch endpoint: a batch endpoint is a standing resource
(an endpoint, a deployment, a compute cluster) for repeated invocations, while a portable
`batch_job` is one scoring run of one model on one dataset; a command job is exactly that,
runs on serverless compute like training, reuses the same code-folder mechanism, and is
adopted by name like a training job. The job writes `predictions.jsonl` under
`batch/<name>/<digest>/output/`, which is the `output_uri`, and `summary.json` beside it
(the rows it scored, read back as the `rows` output).

A `batch_job` has no portable `compute`: its VM size is `provider_options.azure.
instance_type`, else the provider's `vm_sizes.batch`, else the smallest CPU size.
"""

from __future__ import annotations

import json
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

from .compute import environment, vm_size
from .errors import AzureError
from .handler import Handler
from .jobs import Jobs
from .naming import FINGERPRINT_TAG, fingerprint, job_name
from .ownership import short_uri
from .waiting import FAILED, status_of

REPLACE_ON = frozenset({"model", "dataset", "feature_view", "chunk_rows", "provider_options"})
SUMMARY = "summary.json"
COMMAND = ("python batch.py --model ${{inputs.model}} --data ${{inputs.data}} "
           "--out ${{outputs.scored}}")


class BatchJobHandler(Handler):
    rtype = "batch_job"

    def diff(self, req: DiffRequest) -> DiffResponse:
        return default_diff(req, REPLACE_ON, {k: "new inputs: the data is scored again"
                                              for k in REPLACE_ON})

    def digest(self, spec: Any) -> str:
        return fingerprint({"model": spec.model, "dataset": spec.dataset,
                            "chunk": spec.chunk_rows, "options": spec.provider_options})

    def _find(self, resource: str, digest: str) -> tuple[str, dict[str, Any] | None]:
        jobs = Jobs(self.clients, resource)
        for attempt in range(1, 50):
            name = job_name(self.ctx.stack, resource, digest, attempt)
            job = jobs.read(name)
            if job is None or (status_of(job) not in FAILED and not jobs.archived(job)):
                return name, job
        raise AzureError(f"too many released runs of batch job '{resource}'")

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        from azure.ai.ml import Input, Output, command

        resource = req.resource.name
        spec = self.spec(req.inputs)
        digest = self.digest(spec)
        name, job = self._find(resource, digest)
        out = self.layout.uri(self.layout.batch_prefix(resource, digest) + "output/")
        jobs = Jobs(self.clients, resource)
        if job is None:
            model = str(spec.model)
            try:
                _, model_name, version = model.split(":", 2)
            except ValueError:
                raise AzureError(f"batch job '{resource}': '{model}' is not a model version "
                                 "(azureml:<name>:<version>); score an azure model "
                                 "resource's `uri`") from None
            found = self.clients.call("models", lambda: self.ml.models.get(
                model_name, version=version), resource=resource)
            dataset = str(spec.dataset or "")
            if not dataset.startswith("azureml://"):
                raise AzureError(f"batch job '{resource}': data '{dataset}' is not in a "
                                 "workspace datastore; score an azure dataset's `uri`")
            options = self.options(spec)
            code = self.upload_code(resource, "batch", {"chunk_rows": spec.chunk_rows},
                                    spec=spec)
            progress(f"starting job {name}: scoring {dataset} with {model}")
            jobs.start(command(
                name=name, display_name=resource, tags=self.tags(resource, spec, **{
                    FINGERPRINT_TAG: digest}), code=code, command=COMMAND,
                environment=environment(self.cfg, "training", options),
                inputs={"model": Input(type="uri_folder", path=short_uri(str(found.path))),
                        "data": Input(type="uri_file", path=dataset)},
                outputs={"scored": Output(type="uri_folder", path=out, mode="rw_mount")},
                compute=options.get("compute") or self.cfg.compute_cluster,
                instance_type=vm_size(self.cfg, "batch", None, options),
                instance_count=1))
        else:
            progress(f"job {name} exists ({status_of(job)}): adopting it")
        job = jobs.wait(name, f"job {name}", self.cfg.timeout(self.rtype), progress,
                        self.rtype)
        if status_of(job) != "Completed":
            return ApplyResponse(id=name, error=f"batch job {name} "
                                                f"{status_of(job).lower()}: "
                                                f"{jobs.failure(name, job)}")
        prefix = self.layout.batch_prefix(resource, digest) + "output/"
        return ApplyResponse(id=name, outputs={"output_uri": out, "job": name,
                                               "rows": self._rows(resource, prefix)})

    def _rows(self, resource: str, prefix: str) -> int | None:
        """The rows the job scored, from the `summary.json` its script wrote."""
        body = self.blob(resource).get(prefix + SUMMARY)
        return int(json.loads(body)["rows"]) if body else None

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        return ApplyResponse(id=req.resource.id, outputs=req.prior_outputs)

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        name = (req.outputs or {}).get("job") or req.resource.id
        jobs = Jobs(self.clients, req.resource.name)
        job = jobs.read(str(name)) if name else None
        if job is None or jobs.archived(job):
            return ObserveResponse(exists=False, detail="batch job not found")
        return ObserveResponse(exists=True, id=name, outputs=req.outputs,
                               healthy=status_of(job) == "Completed", detail=status_of(job))

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        name = (req.outputs or {}).get("job") or req.resource.id
        if name:
            Jobs(self.clients, req.resource.name).release(
                str(name), progress, self.cfg.timeout(self.rtype), self.rtype)
        self.blob(req.resource.name).delete_prefix(
            self.layout.key("batch", req.resource.name) + "/")
        return DeleteResponse()
