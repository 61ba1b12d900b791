"""Training jobs: a Vertex AI `CustomJob` running mlform's runtime in a prebuilt PyTorch
training image, found again by its labels.

Custom jobs take no caller-chosen id, so each job carries the stack, the resource and
the fingerprint of everything its result depends on (`mlform.ml.fingerprint`, as on
every provider, plus the gcp settings) as labels. A create lists the jobs with those
labels first and adopts a queued, running or succeeded one (waiting while it runs)
instead of starting a second; a failed or cancelled one is not adopted: a new run
starts. `delete` cancels a running job, deletes its outputs and the job itself, so a
retrain (a replacement with the same inputs) starts a new run.
"""

from __future__ import annotations

import json
import time
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

from . import packaging
from .compute import image_uri, machine_spec
from .errors import GcpError, is_not_found
from .handler import Handler
from .layout import split_uri
from .moves import MOVED, TrainingMoves
from .naming import FINGERPRINT_LABEL, label_filter, label_value, owned_by
from .naming import fingerprint as name_digest
from .waiting import SETTLED, state_name, wait_for_job

REASONS = {**RERUN_REASONS,
           "provider_options": "Vertex AI settings of a finished job cannot change: "
                               "a new job runs"}
REPLACE_ON = frozenset(REASONS)
LIVE = frozenset({"QUEUED", "PENDING", "RUNNING", "SUCCEEDED", "UNSPECIFIED", "PAUSED",
                  "UPDATING"})
"""States of a job worth adopting: it will produce (or has produced) the result."""


class TrainingJobHandler(TrainingMoves, Handler):
    rtype = "training_job"

    def _code_digest(self, spec: Any) -> str:
        return code_digest(self._entrypoint_path(spec) if spec.entrypoint else None)

    def _entrypoint_path(self, spec: Any) -> Path:
        path = (self.ctx.stack_dir / spec.entrypoint).resolve()
        if not path.is_file():
            raise GcpError(f"training script '{spec.entrypoint}' not found (looked at {path})")
        return path

    def job_fingerprint(self, inputs: dict[str, Any]) -> str:
        spec = self.spec(inputs)
        fields = spec.model_dump(mode="json")
        return name_digest({**fingerprint(fields, self._code_digest(spec)),
                            "provider_options": fields["provider_options"]})

    def _jobs(self, resource: str, job_fp: str | None = None) -> list[Any]:
        """This stack's custom jobs of `resource` (with `job_fp`), newest first."""
        pairs = {"mlform-stack": label_value(self.ctx.stack),
                 "mlform-resource": label_value(resource)}
        if job_fp:
            pairs[FINGERPRINT_LABEL] = job_fp
        listed = self.clients.call("jobs", "list_custom_jobs",
                                   {"parent": self.cfg.parent, "filter": label_filter(**pairs)},
                                   resource=resource)
        jobs = [j for j in listed if owned_by(j.labels, self.ctx.stack, resource)
                and (job_fp is None or j.labels.get(FINGERPRINT_LABEL) == job_fp)]
        return sorted(jobs, key=lambda j: j.create_time.timestamp() if j.create_time else 0,
                      reverse=True)

    def find(self, resource: str, inputs: dict[str, Any]) -> Any:
        """The newest job of these inputs worth adopting, or None."""
        for job in self._jobs(resource, self.job_fingerprint(inputs)):
            if state_name(job.state) in LIVE:
                return job
        return None

    def check(self, req: CheckRequest) -> CheckResponse:
        # The container trains with the local provider's built-in trainers: same checks.
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
        job = self.find(req.resource.name, req.inputs)
        if job is None:
            job = self._start(req, spec, progress)
        else:
            progress(f"custom job {job.name} exists ({state_name(job.state)}): adopting it")
        name = job.name
        base = job.job_spec.base_output_directory.output_uri_prefix
        job = wait_for_job(
            lambda: self.clients.call("jobs", "get_custom_job", {"name": name},
                                      resource=req.resource.name),
            what=f"custom job {name.rsplit('/', 1)[-1]}", timeout=self.cfg.timeout(self.rtype),
            interval=self.cfg.poll_interval, progress=progress, resource_type=self.rtype,
            detail=lambda: self._progress(base))
        state = state_name(job.state)
        if state != "SUCCEEDED":
            reason = (job.error.message if job.error and job.error.message
                      else "no reason given")
            # the job exists: its id goes with the error, so the next plan replaces it
            return ApplyResponse(id=name, error=(
                f"custom job {name} {state.lower()}: {reason}; apply again to start a new "
                "run (a failed run is not adopted)"))
        return ApplyResponse(id=name, outputs=self._outputs(job, spec, req.resource.name))

    def _start(self, req: CreateRequest, spec: Any, progress: Progress) -> Any:
        dataset = spec.dataset
        if contains_unknown(dataset) or not str(dataset).startswith("gs://"):
            raise GcpError(f"training job '{req.resource.name}': data '{dataset}' is not in "
                           "GCS; on gcp the dataset must come from a gcp dataset resource")
        options = self.options(spec)
        compute = spec.compute.model_dump()
        machine = machine_spec(self.cfg, "training", compute, options)
        bundle_uri = self._upload_code(req.resource.name, spec)
        job_fp = self.job_fingerprint(req.inputs)
        # a new folder per run: a retrain never reads the outputs of the run it replaces
        base = self.layout.uri(self.layout.training_dir(
            req.resource.name, f"{job_fp}-{int(time.time() * 1000)}")) + "/"
        command, args = packaging.command(bundle_uri, "train")
        image = image_uri(self.cfg, "training", bool(spec.compute.gpus), options)
        job_spec: dict[str, Any] = {
            "worker_pool_specs": [{
                "machine_spec": machine, "replica_count": 1,
                "container_spec": {"image_uri": image, "command": command, "args": args}}],
            "base_output_directory": {"output_uri_prefix": base}}
        if spec.timeout:
            job_spec["scheduling"] = {"timeout": f"{int(seconds(spec.timeout))}s"}
        if self.cfg.service_account:
            job_spec["service_account"] = self.cfg.service_account
        if int(spec.compute.instances) > 1:
            progress("compute.instances > 1: the built-in trainers train on one replica; "
                     "Vertex AI runs one")
        progress(f"starting a custom job on {machine['machine_type']}"
                 + (f" with {machine.get('accelerator_count')} x {machine.get('accelerator_type')}"
                    if machine.get("accelerator_count") else ""))
        return self.clients.call("jobs", "create_custom_job", {
            "parent": self.cfg.parent,
            "custom_job": {"display_name": self.vertex_id(req.resource.name, job_fp),
                           "job_spec": job_spec,
                           "labels": self.labels(req.resource.name, spec,
                                                 **{FINGERPRINT_LABEL: job_fp})}},
            resource=req.resource.name)

    def _upload_code(self, resource: str, spec: Any) -> str:
        settings = {"resource": resource, "dataset": str(spec.dataset),
                    "algorithm": spec.algorithm, "target": spec.target,
                    "features": spec.features, "exclude": spec.exclude,
                    "hyperparameters": spec.hyperparameters, "seed": spec.seed,
                    "test_size": spec.test_size, "gpus": spec.compute.gpus,
                    # in a folder of its own: a script named like the bundle's entry
                    # script (train.py, the usual name) must not replace it
                    "entrypoint": f"{packaging.SCRIPT_FOLDER}/{Path(spec.entrypoint).name}"
                    if spec.entrypoint else None}
        extra = {}
        if spec.entrypoint:
            extra[settings["entrypoint"]] = self._entrypoint_path(spec).read_bytes()
        data = packaging.tarball(packaging.bundle("train", settings, extra))
        key = self.layout.code_key(resource, packaging.digest(data))
        self.gcs(resource).put_once(self.cfg.bucket, key, data, self.labels(resource, spec))
        return self.layout.uri(key)

    def _progress(self, base: str) -> str:
        """The running job's last epoch, as its container wrote it ('' before the first)."""
        found = self.gcs().get(*split_uri(base.rstrip("/") + "/progress.json"))
        if not found:
            return ""
        try:
            seen = json.loads(found)
            return f"epoch {seen['epoch']}/{seen['epochs']}, loss {float(seen['loss']):.4f}"
        except (ValueError, KeyError, TypeError):
            return ""

    def _outputs(self, job: Any, spec: Any, resource: str) -> dict[str, Any]:
        base = job.job_spec.base_output_directory.output_uri_prefix.rstrip("/")
        artifact = f"{base}/model/"
        gcs = self.gcs(resource)
        bucket, key = split_uri(artifact)
        metrics = json.loads(gcs.get(bucket, key + "metrics.json") or b"{}")
        run = json.loads(gcs.get(bucket, key + "run.json") or b"{}")
        pool = job.job_spec.worker_pool_specs[0]
        return {"artifact": artifact, "run_id": job.name.rsplit("/", 1)[-1],
                "metrics": metrics, "device": run.get("device", "cpu"),
                "device_note": run.get("device_note", ""),
                "code_digest": self._code_digest(spec), "job": job.name,
                "machine_type": pool.machine_spec.machine_type}

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        """What can change in place (tags, timeout) is recorded; the finished job is kept."""
        return ApplyResponse(id=req.prior_outputs.get("job") or req.resource.id,
                             outputs=req.prior_outputs)

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        moved = req.outputs or {}
        if moved.get(MOVED):  # carried over: no custom job; its copied run folder
            found = self.gcs(req.resource.name).exists(
                *split_uri(str(moved["artifact"]) + "metrics.json"))
            return ObserveResponse(exists=found, id=moved["run_id"], outputs=moved,
                                   detail="" if found else f"{moved['artifact']} is gone")
        name = (req.outputs or {}).get("job") or req.resource.id
        if name:
            job = self.clients.get_or_none("jobs", "get_custom_job", name, req.resource.name)
        elif req.inputs and not contains_unknown(req.inputs):
            job = self.find(req.resource.name, req.inputs)
        else:
            job = None
        if job is None:
            return ObserveResponse(exists=False, detail="custom job not found")
        state = state_name(job.state)
        if state != "SUCCEEDED" and not (req.outputs or {}).get("artifact"):
            # Started by an apply that was interrupted, with no result yet: nothing to
            # adopt now. The next apply's create finds the job by its labels and waits.
            detail = "apply waits for it" if state not in SETTLED else \
                (job.error.message if job.error else "no reason given")
            return ObserveResponse(exists=False, detail=f"custom job {job.name} is {state}: "
                                                        f"{detail}")
        outputs = self._outputs(job, self.spec(req.inputs), req.resource.name) \
            if state == "SUCCEEDED" and req.inputs else req.outputs
        return ObserveResponse(exists=True, id=job.name, outputs=outputs,
                               healthy=state == "SUCCEEDED",
                               detail=state if state == "SUCCEEDED" else
                               f"{state}: {job.error.message if job.error else ''}")

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        """The recorded job (and any other run of the same inputs) is cancelled when it
        runs, then it goes with its outputs and its code bundle. Other runs of the
        resource stay: a replacement made first (create_before_destroy) is not touched."""
        resource = req.resource.name
        if (req.outputs or {}).get(MOVED):  # a carried-over run: its copied folder only
            self.gcs(resource).delete_prefix(self.cfg.bucket, self.layout.training_dir(
                resource, str(req.outputs["run_id"])) + "/")
            return DeleteResponse()
        every = self._jobs(resource)
        doomed = {j.name for j in every}
        if req.inputs and not contains_unknown(req.inputs):
            job_fp = self.job_fingerprint(req.inputs)
            doomed = {j.name for j in every if j.labels.get(FINGERPRINT_LABEL) == job_fp}
        recorded = (req.outputs or {}).get("job") or req.resource.id
        if recorded and "/customJobs/" in recorded:
            doomed.add(recorded)
        kept_bundles = {_bundle_of(j) for j in every if j.name not in doomed}
        gcs = self.gcs(resource)
        for name in sorted(doomed):
            job = self.clients.get_or_none("jobs", "get_custom_job", name, resource)
            if job is None:
                continue
            self._delete_job(job, resource, progress)
            base = job.job_spec.base_output_directory.output_uri_prefix
            if base:
                gcs.delete_prefix(*split_uri(base.rstrip("/") + "/"))
            bundle = _bundle_of(job)
            if bundle and bundle not in kept_bundles:
                gcs.delete_prefix(*split_uri(bundle))
        return DeleteResponse()

    def _delete_job(self, job: Any, resource: str, progress: Progress) -> None:
        name = job.name
        if state_name(job.state) not in SETTLED:
            progress(f"cancelling custom job {name}")
            self.clients.call("jobs", "cancel_custom_job", {"name": name}, resource=resource)
            wait_for_job(lambda: self.clients.call("jobs", "get_custom_job", {"name": name},
                                                   resource=resource),
                         what=f"custom job {name.rsplit('/', 1)[-1]}",
                         timeout=self.cfg.timeout(self.rtype), interval=self.cfg.poll_interval,
                         progress=progress, resource_type=self.rtype)
        try:
            self.clients.operation("jobs", "delete_custom_job", {"name": name},
                                   self.cfg.timeout(self.rtype), resource=resource)
        except Exception as exc:
            if not is_not_found(exc):
                raise


def _bundle_of(job: Any) -> str:
    """The gs:// bundle a job's container fetches (its first argument), or ''."""
    try:
        args = list(job.job_spec.worker_pool_specs[0].container_spec.args)
    except (IndexError, AttributeError):
        return ""
    return args[0] if args and str(args[0]).startswith("gs://") else ""
