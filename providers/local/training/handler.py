"""The local `training_job`: each distinct set of inputs is one run, trained in its own
process (`runner.py`) and kept under `runs/<job>/<run_id>/` (layout in `runs.py`).

A change to what the model learns from (data, code, algorithm, hyperparameters,
seed, split, target, features) replaces the resource with a new run, for the
reasons every provider gives (`mlform.ml.fingerprint`). The run id is derived
from those inputs, so `create` adopts a finished run, waits for
one that is still running (an apply interrupted mid-training), and re-runs a
failed one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlform.engine.dispatch import ResourceHandler
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
    ProviderContext,
    UpdateRequest,
    default_diff,
)
from mlform.engine.values import contains_secret, contains_unknown, reveal
from mlform.ml import trainers
from mlform.ml.fingerprint import (
    CODE_PATH,
    RERUN_INPUTS,
    RERUN_REASONS,
    code_change_reason,
    code_digest,
    fingerprint,
    run_id_for,
)

from ..moves import TrainingMoves
from ..paths import LocalPaths, run_uri
from .runs import (
    RUNNER_MODULE,
    RUNNING,
    SUCCEEDED,
    current_status,
    is_alive,
    list_runs,
    process_started,
    read_json,
    runner_command,
    runs_in,
    write_json,
)

POLL_SECONDS = 0.2


@dataclass(frozen=True)
class RunPlan:
    """A job's inputs resolved into the run they name."""

    job: str
    run_id: str
    run_dir: Path
    params: dict[str, Any]
    timeout_s: float | None


class TrainingJobHandler(TrainingMoves, ResourceHandler):
    rtype = "training_job"

    def __init__(self, ctx: ProviderContext):
        self.ctx = ctx
        self.paths = LocalPaths(ctx.data_dir)

    # --- plan ---------------------------------------------------------------

    def check(self, req: CheckRequest) -> CheckResponse:
        from mlform.engine.input_checks import sensitive_problems
        from mlform.ml.hyperparameters import training_problems

        return CheckResponse(problems=sensitive_problems(
            req.inputs, "training_job", "the run's params.json",
            help="use a value that is not sensitive; a secret the training script needs "
                 "belongs in its environment, not in the job's inputs")
            + training_problems(req.inputs, req.upstream))

    def diff(self, req: DiffRequest) -> DiffResponse:
        base = default_diff(req, frozenset(RERUN_INPUTS), RERUN_REASONS)
        inputs = req.desired_inputs
        try:
            code = None if contains_unknown(inputs.get("entrypoint")) else self._code_digest(inputs)
        except ValueError as e:
            return DiffResponse(error=str(e))
        changes, note = list(base.changes), ""
        prior_code = (req.prior_outputs or {}).get("code_digest")
        reason = code_change_reason(inputs, prior_code, code, [c.path for c in changes]) \
            if req.prior_inputs is not None else None
        if reason:
            changes.append(AttributeChange(CODE_PATH, prior_code, code, True, reason))
            note = f"{reason}: code digest {prior_code} -> {code}"
        if req.prior_inputs is not None and not changes:
            return DiffResponse()
        planned: dict[str, Any] = {}
        if code and not contains_unknown({k: inputs.get(k) for k in RERUN_INPUTS}):
            run = run_id_for(req.resource.name, fingerprint(reveal(inputs), code))
            planned = {"run_id": run, "artifact": run_uri(req.resource.name, run),
                       "code_digest": code}
        return DiffResponse(changes=changes, planned_outputs=planned, note=note)

    # --- read ---------------------------------------------------------------

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        job = req.resource.name
        run_id = (req.outputs or {}).get("run_id")
        if run_id is None and req.inputs:
            try:
                run_id = self._plan(job, req.inputs).run_id
            except ValueError:
                return ObserveResponse(exists=False)
        if run_id is None:
            return ObserveResponse(exists=False)
        run_dir = self.paths.run(job, run_id)
        status = current_status(run_dir)
        if status and status["status"] == SUCCEEDED and (run_dir / "artifact").is_dir():
            return ObserveResponse(exists=True, id=run_id,
                                   outputs=self._outputs(job, run_id, status))
        if status is None:
            detail = f"run {run_id} is gone from {run_dir}"
        elif status["status"] == RUNNING:
            detail = f"run {run_id} is still running (pid {status['pid']}); apply waits for it"
        else:
            detail = f"run {run_id} failed: {status.get('error')}"
        return ObserveResponse(exists=False, detail=detail)

    # --- apply --------------------------------------------------------------

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        return self._realise(req.resource.name, req.inputs, progress)

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        # Only inputs that do not change the run (compute, timeout, tags) update in place.
        return self._realise(req.resource.name, req.inputs, progress)

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        run_id = (req.outputs or {}).get("run_id")
        if run_id:
            run_dir = self.paths.run(req.resource.name, run_id)
            status = read_json(run_dir / "status.json")
            if status and status["status"] == RUNNING and is_alive(status, run_dir):
                progress(f"stopping run {run_id}")
                _stop(status["pid"])
            shutil.rmtree(run_dir, ignore_errors=True)
            job_dir = run_dir.parent
            if job_dir.is_dir() and not any(job_dir.iterdir()):
                job_dir.rmdir()
        return DeleteResponse()

    def _realise(self, job: str, inputs: dict[str, Any], progress: Progress) -> ApplyResponse:
        try:
            plan = self._plan(job, inputs)
        except ValueError as e:
            return ApplyResponse(error=str(e))
        status = current_status(plan.run_dir) or self._unrecorded_run(plan)
        if status and status["status"] == SUCCEEDED and (plan.run_dir / "artifact").is_dir():
            progress(f"run {plan.run_id} already succeeded: adopting it")
        elif status and status["status"] == RUNNING:
            progress(f"run {plan.run_id} is already running (pid {status['pid']}): waiting for it")
            status = self._wait(plan, None, progress)
        else:
            if status:
                progress(f"run {plan.run_id} failed before: running it again")
            status = self._wait(plan, self._start(plan), progress)
        if status["status"] != SUCCEEDED:
            return ApplyResponse(error=_failure(plan, status))
        return ApplyResponse(id=plan.run_id, outputs=self._outputs(job, plan.run_id, status))

    def _start(self, plan: RunPlan) -> subprocess.Popen:
        shutil.rmtree(plan.run_dir, ignore_errors=True)
        plan.run_dir.mkdir(parents=True)
        write_json(plan.run_dir / "params.json", plan.params)
        with open(plan.run_dir / "train.log", "wb") as log:
            # A session of its own: the run outlives an interrupted apply, which adopts it.
            process = subprocess.Popen(
                runner_command(plan.run_dir),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.ctx.stack_dir, start_new_session=True)
        write_json(plan.run_dir / "status.json", {
            "status": RUNNING, "pid": process.pid, "pid_started": process_started(process.pid),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        return process

    def _unrecorded_run(self, plan: RunPlan) -> dict[str, Any] | None:
        """The status of a runner that an apply started for this run and was killed
        before recording (its command line names the run directory), now recorded;
        None when there is none. Starting the run again would train it twice in one
        directory."""
        import psutil

        for proc in psutil.process_iter(["cmdline", "create_time"]):
            if (proc.info["cmdline"] or [])[1:3] == ["-m", RUNNER_MODULE] and \
                    runs_in(proc, plan.run_dir):
                status = {"status": RUNNING, "pid": proc.pid,
                          "pid_started": proc.info["create_time"]}
                write_json(plan.run_dir / "status.json", status)
                return status
        return None

    def _wait(self, plan: RunPlan, process: subprocess.Popen | None,
              progress: Progress) -> dict[str, Any]:
        """Poll until the run ends, relaying its progress; stop it at the job's timeout."""
        started = time.monotonic()
        last = None
        while True:
            status = current_status(plan.run_dir) or {}
            finished = process.poll() is not None if process else status.get("status") != RUNNING
            report = read_json(plan.run_dir / "progress.json")
            if report and report != last:
                last = report
                if "epoch" in report:
                    progress(f"epoch {report['epoch']}/{report['epochs']} loss "
                             f"{report['loss']:.4f} on {report['device']}",
                             report["epoch"] / report["epochs"])
                else:
                    progress(report["message"])
            if finished:
                return current_status(plan.run_dir) or {"status": "failed",
                                                        "error": "the run left no status"}
            if plan.timeout_s is not None and time.monotonic() - started > plan.timeout_s:
                _stop(process.pid if process else status["pid"])
                if process:
                    process.wait()
                failed = {**status, "status": "failed",
                          "error": f"timed out after {plan.timeout_s:g}s"}
                write_json(plan.run_dir / "status.json", failed)
                return failed
            time.sleep(POLL_SECONDS)

    # --- resolution ---------------------------------------------------------

    def _plan(self, job: str, inputs: dict[str, Any]) -> RunPlan:
        from mlform.engine.spec.models import TrainingJob
        from pydantic import ValidationError

        if contains_secret(inputs):
            raise ValueError("a training_job's inputs cannot be sensitive: they are "
                             "recorded in the run's params.json")
        try:
            spec = TrainingJob.model_validate({**inputs, "type": "training_job"})
        except ValidationError as e:
            raise ValueError(f"training_job '{job}': {e}") from None
        if spec.algorithm:
            trainers.settings(spec.algorithm, spec.hyperparameters)
        code = self._code_digest(inputs)
        run = run_id_for(job, fingerprint(reveal(inputs), code))
        data = self._data(spec)
        entrypoint = str(self.ctx.stack_dir / spec.entrypoint) if spec.entrypoint else None
        params = {"job": job, "run_id": run, "data": data, "algorithm": spec.algorithm,
                  "entrypoint": entrypoint, "stack_dir": str(self.ctx.stack_dir),
                  "hyperparameters": spec.hyperparameters, "seed": spec.seed,
                  "test_size": spec.test_size, "target": spec.target,
                  "features": spec.features, "exclude": spec.exclude,
                  "gpus": spec.compute.gpus, "code_digest": code}
        timeout = seconds(spec.timeout) if spec.timeout else None
        return RunPlan(job, run, self.paths.run(job, run), params, timeout)

    def _code_digest(self, inputs: dict[str, Any]) -> str:
        entrypoint = inputs.get("entrypoint")
        if not entrypoint:
            return code_digest(None)
        path = self.ctx.stack_dir / str(entrypoint)
        if not path.is_file():
            raise ValueError(f"entrypoint '{entrypoint}' not found (looked at {path})")
        return code_digest(path)

    def _data(self, spec) -> dict[str, Any]:
        """Where the run reads its table, and which version it is."""
        uri = spec.dataset or spec.feature_view
        if spec.labels and not spec.feature_view:
            raise ValueError("'labels' are joined onto a 'feature_view'; with 'dataset' "
                             "the target is a column of the dataset")
        if spec.labels:
            from ..features.offline import training_set

            try:
                path, version = training_set(self.paths, uri, spec.labels)
            except ValueError as e:
                raise ValueError(f"training data from '{uri}' and labels "
                                 f"'{spec.labels}': {e}") from None
            return {"uri": uri, "labels": spec.labels, "path": str(path),
                    "format": "parquet", "version": version}
        try:
            directory = self.paths.resolve(uri)
        except ValueError as e:
            raise ValueError(f"'{uri}' is not data the local provider holds: {e}") from None
        if spec.dataset:
            meta = read_json(directory / "meta.json")
            if meta is None:
                raise ValueError(f"dataset '{uri}' is not stored at {directory}: apply "
                                 "the dataset first")
            return {"uri": uri, "path": str(directory / meta["file"]),
                    "format": meta["format"], "version": meta["version"]}
        offline = directory / "offline.parquet"
        if not offline.is_file():
            raise ValueError(f"feature view '{uri}' has no offline features at {offline}: "
                             "apply the feature view first")
        return {"uri": uri, "path": str(offline), "format": "parquet",
                "version": directory.name}

    def _outputs(self, job: str, run_id: str, status: dict[str, Any]) -> dict[str, Any]:
        run_dir = self.paths.run(job, run_id)
        params = read_json(run_dir / "params.json") or {}
        return {"artifact": run_uri(job, run_id), "run_id": run_id,
                "metrics": read_json(run_dir / "metrics.json") or {},
                "device": status.get("device"),
                "device_note": status.get("device_note") or "",
                "data_version": params.get("data", {}).get("version"),
                "code_digest": params.get("code_digest"),
                "log": str(run_dir / "train.log"),
                "runs": list_runs(run_dir.parent),
                # private: what experiment tracking keeps with the run (engine/tracking.py)
                "tracking_artifacts": {"model": str(run_dir / "artifact"),
                                       **{f: str(run_dir / f) for f in (
                                           "params.json", "metrics.json", "train.log")}}}


def _failure(plan: RunPlan, status: dict[str, Any]) -> str:
    if status.get("input_error"):  # the job's inputs, not the run, are at fault: one line
        return f"training_job '{plan.job}': {status.get('error')}"
    log = plan.run_dir / "train.log"
    tail = log.read_text(errors="replace").splitlines()[-15:] if log.is_file() else []
    lines = [f"training run {plan.run_id} of job '{plan.job}' failed: {status.get('error')}",
             f"  log: {log}"]
    if tail:
        lines += ["  last lines:"] + [f"    {line}" for line in tail]
    return "\n".join(lines)


def _stop(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)

