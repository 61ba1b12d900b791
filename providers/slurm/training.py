"""The slurm `training_job`: one Slurm batch job per distinct set of inputs, running
mlform's runtime (runtime.py) on a node, with its run kept on the shared filesystem
under `runs/<job>/<run_id>/`.

The run id is `mlform.ml.fingerprint.run_id_for` (the same inputs name the same run on
every provider) and the Slurm job name carries it, so a create repeated after an
interrupted apply adopts the job it submitted: finished (its outcome record), or still
queued or running (`squeue --name`), in which case it waits for it. A refresh that
finds such a job adopts it into state while it runs; the next plan then updates it
("apply waits for it"). A job that Slurm no longer runs and that left no outcome was
cancelled behind mlform's back: drift.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
from mlform.engine.values import contains_secret, contains_unknown, reveal
from mlform.ml.fingerprint import (
    CODE_PATH,
    RERUN_INPUTS,
    RERUN_REASONS,
    code_change_reason,
    code_digest,
    fingerprint,
    run_id_for,
)

from . import jobs
from .compute import sbatch_flags
from .handler import Handler
from .naming import comment, job_name
from .storage import LOG_NAME, path_of, read_json, uri

ACTIVE, SUCCEEDED = "active", "succeeded"


class TrainingJobHandler(Handler):
    rtype = "training_job"

    # --- plan ---------------------------------------------------------------

    def check(self, req: CheckRequest) -> CheckResponse:
        from mlform.engine.input_checks import sensitive_problems
        from mlform.ml.hyperparameters import training_problems

        return CheckResponse(problems=super().check(req).problems + sensitive_problems(
            req.inputs, "training_job", "the job's job.json on the shared storage",
            help="use a value that is not sensitive; a secret the training script needs "
                 "belongs in the cluster's environment, not in the job's inputs")
            + training_problems(req.inputs, req.upstream))

    def diff(self, req: DiffRequest) -> DiffResponse:
        base = default_diff(req, frozenset(RERUN_INPUTS), RERUN_REASONS)
        inputs = req.desired_inputs
        code = None if contains_unknown(inputs.get("entrypoint")) else self._code(inputs)
        changes, note = list(base.changes), ""
        prior = req.prior_outputs or {}
        reason = code_change_reason(inputs, prior.get("code_digest"), code,
                                    [c.path for c in changes]) \
            if req.prior_inputs is not None else None
        if reason:
            changes.append(AttributeChange(CODE_PATH, prior.get("code_digest"), code, True,
                                           reason))
            note = f"{reason}: code digest {prior.get('code_digest')} -> {code}"
        planned: dict[str, Any] = {}
        if code and not contains_unknown({k: inputs.get(k) for k in RERUN_INPUTS}):
            run = run_id_for(req.resource.name, fingerprint(reveal(inputs), code))
            planned = {"run_id": run, "code_digest": code,
                       "artifact": uri(self.storage.run(req.resource.name, run))}
            if req.prior_inputs is None and not changes:
                note = self._left_behind(req.resource.name, run)
        if req.prior_inputs is not None and not changes:
            if prior.get("job_state") == ACTIVE:  # adopted by a refresh while it ran
                return DiffResponse(note=f"Slurm job {prior.get('job_id')} submitted by an "
                                         "interrupted apply is still running: apply waits "
                                         "for it")
            return DiffResponse()
        return DiffResponse(changes=changes, planned_outputs=planned, note=note)

    def _left_behind(self, resource: str, run_id: str) -> str:
        """What an interrupted apply left of this run, in words for the plan: a job that
        was cancelled since, or one still queued or running (adopted by the apply)."""
        directory = self.storage.run(resource, run_id)
        if not (directory / "submitted.json").is_file():
            return ""
        seen = jobs.look(job_name(self.ctx.stack, resource, run_id), directory, self.ctx.stack)
        if seen.state == "gone":
            return f"{seen.detail}; a new job is submitted"
        if seen.state == "active":
            return f"{seen.detail}: apply adopts it"
        return ""

    # --- read ---------------------------------------------------------------

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        job = req.resource.name
        recorded = req.outputs or {}
        run_id = recorded.get("run_id")
        if run_id is None and req.inputs and not contains_unknown(req.inputs):
            run_id = self._run_id(job, req.inputs)
        if run_id is None:
            return ObserveResponse(exists=False)
        name, directory = job_name(self.ctx.stack, job, run_id), self.storage.run(job, run_id)
        seen = jobs.look(name, directory, self.ctx.stack)
        pending = not recorded  # a create that was interrupted: adopt only what is there
        if seen.state == SUCCEEDED:
            return ObserveResponse(exists=True, id=name,
                                   outputs=self._outputs(job, run_id, directory, seen))
        if seen.state == ACTIVE:
            return ObserveResponse(exists=True, id=name, detail=seen.detail, outputs={
                "artifact": uri(directory), "run_id": run_id, "job_name": name,
                "job_id": seen.job_id, "job_state": ACTIVE,
                "code_digest": (read_json(directory / "job.json") or {}).get("code_digest")})
        if seen.state == "failed":
            if pending:
                return ObserveResponse(exists=False, detail=seen.detail)
            return ObserveResponse(exists=True, id=name, outputs=recorded, healthy=False,
                                   detail=seen.detail)
        if seen.state == "gone":
            return ObserveResponse(exists=False, detail=seen.detail)
        return ObserveResponse(exists=False, detail="" if pending else
                               f"run {run_id} is gone from {directory}")

    # --- apply --------------------------------------------------------------

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        return self._realise(req.resource.name, req.inputs, progress)

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        # Only inputs that do not change the run (compute, timeout, tags) update in
        # place, and a job adopted while it ran is waited for.
        return self._realise(req.resource.name, req.inputs, progress)

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        import shutil

        run_id = (req.outputs or {}).get("run_id")
        if run_id is None and req.inputs and not contains_unknown(req.inputs):
            run_id = self._run_id(req.resource.name, req.inputs)
        if run_id:
            directory = self.storage.run(req.resource.name, run_id)
            jobs.cancel(job_name(self.ctx.stack, req.resource.name, run_id), directory,
                        self.ctx.stack, progress)
            shutil.rmtree(directory, ignore_errors=True)
            parent = directory.parent
            if parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
        return DeleteResponse()

    def _realise(self, job: str, inputs: dict[str, Any], progress: Progress) -> ApplyResponse:
        plan, run_id = self._job(job, inputs)
        seen = self.runner.realise(plan, progress)
        if seen.state != SUCCEEDED:
            outcome = seen.outcome or {}
            if outcome.get("input_error"):  # the inputs are at fault: one line
                return ApplyResponse(error=f"training_job '{job}': {outcome['error']}")
            return ApplyResponse(error=jobs.failure_text(
                f"training run {run_id} of job '{job}' did not succeed", seen, plan.directory))
        return ApplyResponse(id=plan.name,
                             outputs=self._outputs(job, run_id, plan.directory, seen))

    # --- resolution ---------------------------------------------------------

    def _run_id(self, job: str, inputs: dict[str, Any]) -> str:
        return run_id_for(job, fingerprint(reveal(inputs), self._code(inputs)))

    def _code(self, inputs: dict[str, Any]) -> str:
        return code_digest(self._entrypoint(inputs))

    def _entrypoint(self, inputs: dict[str, Any]) -> Path | None:
        entrypoint = inputs.get("entrypoint")
        if not entrypoint:
            return None
        path = self.ctx.stack_dir / str(entrypoint)
        if not path.is_file():
            raise ValueError(f"entrypoint '{entrypoint}' not found (looked at {path})")
        return path

    def _job(self, job: str, inputs: dict[str, Any]) -> tuple[jobs.JobPlan, str]:
        if contains_secret(inputs):
            raise ValueError("a training_job's inputs cannot be sensitive: they are "
                             "written to the job's job.json on the shared storage")
        spec = self.spec(inputs)
        if spec.algorithm:
            from mlform.ml import trainers

            trainers.settings(spec.algorithm, spec.hyperparameters)
        if not spec.dataset:
            raise ValueError("set 'dataset: ${<dataset>.uri}' (a dataset of this provider)")
        code, run_id = self._code(inputs), self._run_id(job, inputs)
        directory = self.storage.run(job, run_id)
        entrypoint = self._entrypoint(inputs)
        cfg, options = self.job_cfg(spec)
        params = {"kind": "train", "job": job, "run_id": run_id, "data": self._data(spec.dataset),
                  "algorithm": spec.algorithm,
                  "entrypoint": entrypoint.name if entrypoint else None,
                  "hyperparameters": spec.hyperparameters, "seed": spec.seed,
                  "test_size": spec.test_size, "target": spec.target,
                  "features": spec.features, "exclude": spec.exclude,
                  "gpus": spec.compute.gpus, "code_digest": code}
        plan = jobs.JobPlan(
            resource=job, name=job_name(self.ctx.stack, job, run_id), directory=directory,
            spec=params, comment=comment(self.ctx.stack, job, self.rtype),
            flags=sbatch_flags(cfg, spec.compute.model_dump(), spec.timeout, options),
            files={entrypoint.name: entrypoint.read_bytes()} if entrypoint else {})
        return plan, run_id

    def _data(self, dataset: str) -> dict[str, Any]:
        directory = path_of(str(dataset))
        meta = read_json(directory / "meta.json")
        if meta is None:
            raise ValueError(f"dataset '{dataset}' is not stored at {directory}: train on a "
                             "dataset of this provider (dataset: ${<dataset>.uri}), applied "
                             "first")
        return {"uri": str(dataset), "path": str(directory / meta["file"]),
                "format": meta["format"], "version": meta["version"]}

    def _outputs(self, job: str, run_id: str, directory: Path,
                 seen: jobs.Seen) -> dict[str, Any]:
        outcome = seen.outcome or {}
        params = read_json(directory / "job.json") or {}
        return {"artifact": uri(directory), "run_id": run_id,
                "metrics": outcome.get("metrics") or {},
                "device": outcome.get("device"), "device_note": outcome.get("device_note") or "",
                "data_version": params.get("data", {}).get("version"),
                "code_digest": params.get("code_digest"),
                "log": str(directory / LOG_NAME.replace("%j", str(outcome.get("job_id")))),
                "job_name": job_name(self.ctx.stack, job, run_id),
                "job_id": outcome.get("job_id"), "job_state": SUCCEEDED,
                "node": outcome.get("node")}
