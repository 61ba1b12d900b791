"""The ray `training_job`: one Ray Job per distinct set of inputs, running mlform's
training runtime (`job_train.py`) with the cluster's interpreter, its results kept in
`runs/<job>/<submission id>/` on the shared storage.

The submission id is derived from the engine's idempotency key (see jobs.py), so an
apply killed while the job trains finds it again and waits for it. A change to what
the model learns from replaces the resource with a new run, for the reasons every
provider gives (`mlform.ml.fingerprint`); `compute` maps to the entrypoint's (or, with
several instances, each Ray Train worker's) CPUs, GPUs and memory.
"""

from __future__ import annotations

import re
import shlex
import shutil
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
    Problem,
    Progress,
    UpdateRequest,
    default_diff,
)
from mlform.engine.values import contains_unknown
from mlform.ml.fingerprint import CODE_PATH, RERUN_REASONS, code_change_reason, code_digest

from .errors import RayError
from .handler import RayHandler
from .jobs import JobRunner, failure_reason, metadata, placement, status_of, submission_id
from .paths import read_json, uri, write_json

EPOCH = re.compile(r"epoch (\d+)/(\d+) loss ([-+0-9.eE]+|nan|inf)")
RUNTIME = "mlform.providers.ray.job_train"


class TrainingJobHandler(RayHandler):
    rtype = "training_job"

    @property
    def runner(self) -> JobRunner:
        return JobRunner(self.cluster.jobs, self.cluster.cfg.poll_interval)

    # --- plan ---------------------------------------------------------------

    def check(self, req: CheckRequest) -> CheckResponse:
        from mlform.ml.hyperparameters import training_problems

        problems = training_problems(req.inputs, req.upstream)
        instances = (req.inputs.get("compute") or {}).get("instances")
        if req.inputs.get("entrypoint") and isinstance(instances, int) and instances > 1:
            problems.append(Problem(
                ("compute", "instances"), "a training script runs once, in the job's "
                "entrypoint; several instances train a built-in algorithm with Ray Train",
                help="set 'instances: 1', or train with 'algorithm:' across instances"))
        return CheckResponse(problems=problems)

    def diff(self, req: DiffRequest) -> DiffResponse:
        base = default_diff(req, frozenset(RERUN_REASONS), RERUN_REASONS)
        if req.prior_inputs is None or contains_unknown(req.desired_inputs.get("entrypoint")):
            return base
        before = (req.prior_outputs or {}).get("code_digest")
        now = self._code_digest(req.desired_inputs)
        reason = code_change_reason(req.desired_inputs, before, now,
                                    [c.path for c in base.changes])
        if reason:
            change = AttributeChange(CODE_PATH, before, now, True, reason)
            return DiffResponse(changes=[*base.changes, change],
                                note=f"{reason}: code digest {before} -> {now}")
        return base

    # --- read ---------------------------------------------------------------

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        job = req.resource.name
        sid = req.resource.id or (req.outputs or {}).get("run_id")
        if not sid and req.idempotency_key:
            sid = submission_id(self.ctx.stack, job, req.idempotency_key)
        if not sid:
            return ObserveResponse(exists=False)
        info = self.runner.info(sid)
        if info is None:
            known = bool(req.resource.id)
            return ObserveResponse(exists=False, detail=f"Ray job {sid} is gone from the "
                                   "cluster" if known else "")
        status = status_of(info)
        run_dir = self.paths.run(job, sid)
        if status == "SUCCEEDED":
            if not (run_dir / "artifact" / "model.json").is_file():
                return ObserveResponse(exists=False, detail=f"the artifact of Ray job {sid} "
                                       f"is gone from {run_dir}")
            return ObserveResponse(exists=True, id=sid, outputs=self._outputs(job, sid))
        if status in ("PENDING", "RUNNING"):
            # An apply that was interrupted: its create, repeated, finds the job and waits.
            return ObserveResponse(exists=False, detail=f"Ray job {sid} is {status}: apply "
                                   "waits for it")
        return ObserveResponse(exists=False, detail=f"Ray job {sid} is {status}: "
                               f"{info.message or 'no reason given'}")

    # --- apply --------------------------------------------------------------

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        job = req.resource.name
        spec = self.spec(req.inputs)
        sid = submission_id(self.ctx.stack, job, req.idempotency_key)
        runner = self.runner
        found = runner.info(sid)
        if found is not None and status_of(found) == "SUCCEEDED" and not \
                (self.paths.run(job, sid) / "artifact" / "model.json").is_file():
            # A finished job whose results are gone (storage cleaned, another storage):
            # adopting it would answer with nothing; it runs again.
            progress(f"Ray job {sid} succeeded before but its results are gone: running "
                     "it again")
            runner.client.delete_job(sid)
            found = None
        if found is None or status_of(found) in ("FAILED", "STOPPED"):
            params, where = self._prepare(job, sid, spec, req.inputs)
            progress(f"submitting Ray job {sid}")
            runner.submit_or_adopt(
                sid, progress, entrypoint=self._entrypoint(sid, job),
                metadata=metadata(self.ctx.stack, job, self.rtype), **where.entrypoint)
        else:
            progress(f"Ray job {sid} exists ({status_of(found)}): adopting it")
        timeout = seconds(spec.timeout) if spec.timeout else self.cluster.cfg.timeout(self.rtype)
        info = runner.wait(sid, timeout, progress, _progress_from_logs)
        run_dir = self.paths.run(job, sid)
        state = read_json(run_dir / "status.json") or {}
        if status_of(info) != "SUCCEEDED" or state.get("status") != "succeeded":
            if state.get("input_error"):  # the inputs, not the run, are at fault: one line
                return ApplyResponse(id=sid, error=f"training_job '{job}': {state['error']}")
            return ApplyResponse(id=sid, error=(
                f"Ray job {sid} of training_job '{job}' {status_of(info).lower()}: "
                + failure_reason(info, runner.logs(sid))))
        progress("trained", 1.0)
        return ApplyResponse(id=sid, outputs=self._outputs(job, sid))

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        """What changes in place (compute, timeout, tags) concerns a job that already ran:
        the run stays; its outputs are read back."""
        sid = req.resource.id or req.prior_outputs["run_id"]
        if self.runner.info(sid) is None:
            return ApplyResponse(error=f"Ray job {sid} is gone from the cluster: run "
                                 "'mlform apply -replace' to train again")
        return ApplyResponse(id=sid, outputs=self._outputs(req.resource.name, sid))

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        sid = req.resource.id or (req.outputs or {}).get("run_id")
        if sid:
            self.runner.stop_and_forget(sid, progress)
            shutil.rmtree(self.paths.run(req.resource.name, sid), ignore_errors=True)
        return DeleteResponse()

    # --- helpers ------------------------------------------------------------

    def _prepare(self, job: str, sid: str, spec: Any, inputs: dict[str, Any]):
        """Write the run's params (and script) to the shared storage for the job to read."""
        self.cluster.require_storage()
        data = self._data(spec)
        where = placement(spec.compute, self.cluster.gpus() if spec.compute.gpus and not
                          self.options(spec).get("require_gpus") else None)
        run_dir = self.paths.run(job, sid)
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        entrypoint = None
        if spec.entrypoint:
            script = self._script(spec.entrypoint)
            (run_dir / "code").mkdir()
            shutil.copyfile(script, run_dir / "code" / script.name)
            entrypoint = script.name
        params = {"job": job, "run_id": sid, "data": data, "algorithm": spec.algorithm,
                  "entrypoint": entrypoint, "hyperparameters": spec.hyperparameters,
                  "seed": spec.seed, "test_size": spec.test_size, "target": spec.target,
                  "features": spec.features, "exclude": spec.exclude,
                  "gpus": where.worker_gpus, "asked_gpus": spec.compute.gpus,
                  "device_note": where.device_note, "workers": where.workers,
                  "worker_cpus": where.worker_cpus, "code_digest": self._code_digest(inputs)}
        write_json(run_dir / "params.json", params)
        return params, where

    def _entrypoint(self, sid: str, job: str) -> str:
        python = self.cluster.cfg.python
        return shlex.join([python, "-m", RUNTIME, str(self.paths.run(job, sid))])

    def options(self, spec: Any) -> dict[str, Any]:
        return dict(spec.provider_options.get("ray") or {})

    def _data(self, spec: Any) -> dict[str, Any]:
        if spec.feature_view or spec.labels:
            raise RayError("the ray provider trains on a dataset: set 'dataset: "
                           "${<dataset>.uri}' of a ray dataset")
        where = str(spec.dataset)
        try:
            directory = self.paths.resolve(where)
        except ValueError:
            raise RayError(f"dataset '{where}' is not in the Ray cluster's storage: train on a "
                           "dataset of the same ray provider ('${<dataset>.uri}')") from None
        meta = read_json(directory / "meta.json")
        if meta is None:
            raise RayError(f"dataset '{where}' is not stored at {directory}: apply the "
                           "dataset first")
        return {"uri": where, "path": str(directory / meta["file"]), "format": meta["format"],
                "version": meta["version"]}

    def _script(self, entrypoint: str) -> Path:
        path = (self.ctx.stack_dir / entrypoint).resolve()
        if not path.is_file():
            raise RayError(f"entrypoint '{entrypoint}' not found (looked at {path})")
        return path

    def _code_digest(self, inputs: dict[str, Any]) -> str:
        entrypoint = inputs.get("entrypoint")
        return code_digest(self._script(str(entrypoint)) if entrypoint else None)

    def _outputs(self, job: str, sid: str) -> dict[str, Any]:
        run_dir = self.paths.run(job, sid)
        params = read_json(run_dir / "params.json") or {}
        state = read_json(run_dir / "status.json") or {}
        return {"artifact": uri("runs", job, sid), "run_id": sid,
                "metrics": read_json(run_dir / "metrics.json") or {},
                "device": state.get("device") or "cpu",
                "device_note": state.get("device_note") or "",
                "data_version": (params.get("data") or {}).get("version"),
                "code_digest": params.get("code_digest")}


def _progress_from_logs(logs: str) -> tuple[str, float | None] | None:
    """The latest epoch the job's log reports, as a progress message and fraction."""
    found = EPOCH.findall(logs[-20_000:])
    if found:
        epoch, epochs, loss = found[-1]
        return f"epoch {epoch}/{epochs} loss {float(loss):.4f}", int(epoch) / int(epochs)
    for line in reversed(logs[-5_000:].splitlines()):
        if "training on" in line:
            return line.strip()[:200], None
    return None
