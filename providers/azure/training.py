"""Training jobs: an Azure ML command job running mlform's runtime in the curated PyTorch
environment, named by the stack, the resource and the fingerprint of its inputs.

The name is deterministic (`naming.job_name`), so a create first reads the job by name and
adopts a queued, running or completed one (waiting while it runs) instead of starting a
second; a failed, cancelled or archived one is passed over: the next name (`-r2`, ...)
starts a new run. `delete` cancels a running job and archives it (Azure ML keeps jobs),
and deletes its outputs, so a retrain (a replacement with the same inputs) starts anew.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlform.engine.durations import seconds
from mlform.engine.provider import (
    ApplyResponse,
    AttributeChange,
    CheckRequest,
    CheckResponse,
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
from mlform.ml.fingerprint import (
    CODE_PATH,
    RERUN_REASONS,
    code_change_reason,
    code_digest,
    fingerprint,
)

from .compute import environment, vm_size
from .errors import AzureError
from .handler import Handler
from .jobs import Jobs
from .naming import FINGERPRINT_TAG, job_name, owned_by
from .naming import fingerprint as name_digest
from .waiting import FAILED, SETTLED, failure_reason, status_of

REASONS = {**RERUN_REASONS,
           "provider_options": "Azure ML settings of a finished job cannot change: "
                               "a new job runs"}
REPLACE_ON = frozenset(REASONS)
MAX_RUNS = 50
"""Names tried per inputs (`-r2` ... `-r50`) before giving up: each is a run released."""
COMMAND = "python train.py --data ${{inputs.data}} --model ${{outputs.model}}"


class TrainingJobHandler(Handler):
    rtype = "training_job"

    def _code_digest(self, spec: Any) -> str:
        return code_digest(self._entrypoint_path(spec) if spec.entrypoint else None)

    def _entrypoint_path(self, spec: Any) -> Path:
        path = (self.ctx.stack_dir / spec.entrypoint).resolve()
        if not path.is_file():
            raise AzureError(f"training script '{spec.entrypoint}' not found (looked at "
                             f"{path})")
        return path

    def job_fingerprint(self, inputs: dict[str, Any]) -> str:
        spec = self.spec(inputs)
        fields = spec.model_dump(mode="json")
        return name_digest({**fingerprint(fields, self._code_digest(spec)),
                            "provider_options": fields["provider_options"]})

    def jobs(self, resource: str) -> Jobs:
        return Jobs(self.clients, resource)

    def find(self, resource: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
        """(name, job): the job of these inputs worth adopting, or the free name a new run
        takes (job None)."""
        jobs = self.jobs(resource)
        digest = self.job_fingerprint(inputs)
        for attempt in range(1, MAX_RUNS + 1):
            name = job_name(self.ctx.stack, resource, digest, attempt)
            job = jobs.read(name)
            if job is None:
                return name, None
            if not owned_by(jobs.tags(job), self.ctx.stack, resource):
                raise AzureError(f"job '{name}' exists in the workspace but is not tagged as "
                                 f"resource '{resource}' of stack '{self.ctx.stack}'; rename the "
                                 "stack or the resource")
            if not jobs.archived(job) and status_of(job) not in FAILED:
                return name, job
        raise AzureError(f"{MAX_RUNS} runs of training job '{resource}' with these inputs were "
                         "released already; change an input to start anew")

    def check(self, req: CheckRequest) -> CheckResponse:
        # The job trains with the local provider's built-in trainers: same checks.
        from mlform.ml.hyperparameters import training_problems

        return CheckResponse(problems=super().check(req).problems
                             + training_problems(req.inputs, req.upstream))

    def diff(self, req: DiffRequest) -> DiffResponse:
        base = default_diff(req, REPLACE_ON, REASONS)
        if req.prior_inputs is None or contains_unknown(req.desired_inputs):
            return base
        before = (req.prior_outputs or {}).get("code_digest")
        now = self._code_digest(self.spec(req.desired_inputs))
        reason = code_change_reason(req.desired_inputs, before, now,
                                    [c.path for c in base.changes])
        if reason:
            change = AttributeChange(CODE_PATH, before, now, True, reason)
            return DiffResponse(changes=[*base.changes, change],
                                note=f"{reason}: code digest {before} -> {now}")
        return base

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        spec = self.spec(req.inputs)
        resource = req.resource.name
        name, job = self.find(resource, req.inputs)
        if job is None:
            self._start(resource, spec, name, req.inputs, progress)
        else:
            progress(f"job {name} exists ({status_of(job)}): adopting it")
        job = self.jobs(resource).wait(name, f"job {name}", self.cfg.timeout(self.rtype),
                                       progress, self.rtype)
        status = status_of(job)
        if status != "Completed":
            # the job exists: its id goes with the error, so the next plan replaces it
            return ApplyResponse(id=name, error=(
                f"job {name} {status.lower()}: {self.jobs(resource).failure(name, job)}; apply again to start a "
                "new run (a failed run is not adopted)"))
        return ApplyResponse(id=name, outputs=self._outputs(name, job, spec, resource))

    def _start(self, resource: str, spec: Any, name: str, inputs: dict[str, Any],
               progress: Progress) -> None:
        from azure.ai.ml import Input, Output, command

        dataset = str(spec.dataset)
        if contains_unknown(spec.dataset) or not dataset.startswith("azureml://"):
            raise AzureError(f"training job '{resource}': data '{dataset}' is not in a "
                             "workspace datastore; on azure the dataset must come from an "
                             "azure dataset resource")
        options = self.options(spec)
        size = vm_size(self.cfg, "training", spec.compute.model_dump(), options)
        code = self._upload_code(resource, spec)
        out = self.layout.uri(self.layout.training_prefix(resource, name) + "model/")
        if int(spec.compute.instances) > 1:
            progress("compute.instances > 1: the built-in trainers train on one node; "
                     "Azure ML runs one")
        cluster = options.get("compute") or self.cfg.compute_cluster
        progress(f"starting job {name} on {cluster or 'serverless compute'} ({size})")
        job = command(
            name=name, display_name=resource, experiment_name=_experiment(self.ctx.stack),
            description=f"mlform training job {resource} of {self.ctx.stack}",
            tags=self.tags(resource, spec, **{FINGERPRINT_TAG: self.job_fingerprint(inputs)}),
            code=code, command=COMMAND,
            environment=environment(self.cfg, "training", options),
            inputs={"data": Input(type="uri_file", path=dataset)},
            outputs={"model": Output(type="uri_folder", path=out, mode="rw_mount")},
            compute=cluster, instance_type=size, instance_count=1,
            timeout=int(seconds(spec.timeout)) if spec.timeout else None)
        self.jobs(resource).start(job)

    def _upload_code(self, resource: str, spec: Any) -> str:
        settings = {"resource": resource, "algorithm": spec.algorithm, "target": spec.target,
                    "features": spec.features, "exclude": spec.exclude,
                    "hyperparameters": spec.hyperparameters, "seed": spec.seed,
                    "test_size": spec.test_size, "gpus": spec.compute.gpus,
                    "entrypoint": Path(spec.entrypoint).name if spec.entrypoint else None}
        extra = {}
        if spec.entrypoint:
            extra[settings["entrypoint"]] = self._entrypoint_path(spec).read_bytes()
        return self.upload_code(resource, "train", settings, extra, spec)

    def _outputs(self, name: str, job: dict[str, Any], spec: Any,
                 resource: str) -> dict[str, Any]:
        prefix = self.layout.training_prefix(resource, name) + "model/"
        blob = self.blob(resource)
        metrics = json.loads(blob.get(prefix + "metrics.json") or b"{}")
        run = json.loads(blob.get(prefix + "run.json") or b"{}")
        props = job.get("properties") or {}
        resources = props.get("resources") or {}
        return {"artifact": self.layout.uri(prefix), "run_id": name, "metrics": metrics,
                "device": run.get("device", "cpu"), "device_note": run.get("device_note", ""),
                "code_digest": self._code_digest(spec), "job": name,
                "instance_type": resources.get("instanceType", "")}

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        """What can change in place (tags, timeout) is recorded; the finished job is kept."""
        return ApplyResponse(id=req.prior_outputs.get("job") or req.resource.id,
                             outputs=req.prior_outputs)

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        resource = req.resource.name
        name = (req.outputs or {}).get("job") or req.resource.id
        job: dict[str, Any] | None = None
        if name:
            job = self.jobs(resource).read(name)
        elif req.inputs and not contains_unknown(req.inputs):
            name, job = self.find(resource, req.inputs)
        if job is None or self.jobs(resource).archived(job):
            return ObserveResponse(exists=False, detail=f"job {name or ''} not found")
        status = status_of(job)
        if status != "Completed" and not (req.outputs or {}).get("artifact"):
            # Started by an apply that was interrupted, with no result yet: nothing to
            # adopt now. The next apply's create finds the job by its name and waits.
            detail = "apply waits for it" if status not in SETTLED else failure_reason(job)
            return ObserveResponse(exists=False, detail=f"job {name} is {status}: {detail}")
        outputs = self._outputs(str(name), job, self.spec(req.inputs), resource) \
            if status == "Completed" and req.inputs else req.outputs
        return ObserveResponse(exists=True, id=name, outputs=outputs,
                               healthy=status == "Completed",
                               detail=status if status == "Completed" else
                               f"{status}: {failure_reason(job)}")

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        """The recorded job is cancelled when it runs and archived, and its outputs go.
        Other runs of the resource stay: a replacement made first (create_before_destroy)
        is not touched."""
        resource = req.resource.name
        name = (req.outputs or {}).get("job") or req.resource.id
        if not name and req.inputs and not contains_unknown(req.inputs):
            name, job = self.find(resource, req.inputs)
            if job is None:
                return DeleteResponse()
        if name:
            self.jobs(resource).release(str(name), progress, self.cfg.timeout(self.rtype),
                                        self.rtype)
            self.blob(resource).delete_prefix(self.layout.training_prefix(resource, str(name)))
        return DeleteResponse()


def _experiment(stack: str) -> str:
    clean = "".join(c if c.isalnum() or c in "-_" else "-" for c in stack)
    return f"mlform-{clean}"[:255]
