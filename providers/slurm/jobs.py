"""A Slurm job's life, shared by training and batch jobs: submit it (or adopt the one
already submitted under its name), follow it, and read its outcome.

Each job has a directory on the shared filesystem: the provider writes `job.json`
(what to run), `job.sh` (the batch script) and, once sbatch answered,
`submitted.json`; the job writes its log, `progress.json` and finally `outcome.json`
(runtime.py, or the script itself when the interpreter could not record one). Finished
jobs leave squeue after MinJobAge and sacct needs a database, so the outcome record is
what tells a finished job from one that was cancelled: a job the controller no longer
runs that left no outcome was cancelled (scancel), timed out or was lost with its node.
"""

from __future__ import annotations

import shlex
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlform.engine.provider import Progress

from . import commands
from .storage import LOG_NAME, OUTCOME, SUBMITTED, read_json, write_json

RUNTIME = "mlform.providers.slurm.runtime"
LOG = LOG_NAME
SETTLE_SECONDS = 10.0
"""How long an ended job may take to show its outcome record (filesystem caches)."""


@dataclass(frozen=True)
class JobPlan:
    """One job to run: its Slurm name, its directory and what it runs."""

    resource: str
    name: str
    directory: Path
    spec: dict[str, Any]
    flags: list[str]
    comment: str
    files: dict[str, bytes] = field(default_factory=dict)
    """Files to put in the directory before submitting (a training script)."""


@dataclass(frozen=True)
class Seen:
    """What is known of a job directory's job: `succeeded` / `failed` (its outcome),
    `active` (Slurm runs or queues it), `gone` (submitted, no outcome, no longer run),
    `none` (never submitted)."""

    state: str
    outcome: dict[str, Any] | None = None
    job: commands.Job | None = None
    job_id: str | None = None
    detail: str = ""


def look(name: str, directory: Path, stack: str) -> Seen:
    """The state of the job named `name` whose directory is `directory`."""
    outcome = read_json(directory / OUTCOME)
    if outcome is not None:
        return Seen(outcome["status"], outcome, job_id=outcome.get("job_id"),
                    detail=_outcome_detail(outcome, directory))
    active = [j for j in commands.named(name) if j.active and _ours(j, stack)]
    if active:
        job = active[-1]
        return Seen("active", job=job, job_id=job.id,
                    detail=f"Slurm job {job.id} ({name}) is {job.state}"
                           + (f" ({job.reason})" if job.reason not in ("", "None") else ""))
    submitted = read_json(directory / SUBMITTED)
    if submitted is None:
        return Seen("none")
    outcome = read_json(directory / OUTCOME)  # it may have ended since the first look
    if outcome is not None:
        return Seen(outcome["status"], outcome, job_id=outcome.get("job_id"),
                    detail=_outcome_detail(outcome, directory))
    return Seen("gone", job_id=submitted["job_id"],
                detail=gone_detail(submitted["job_id"], name, directory))


def gone_detail(job_id: str, name: str, directory: Path) -> str:
    job = commands.by_id(job_id)
    how = f"ended {job.state}" + (f" ({job.reason})" if job.reason not in ("", "None") else "") \
        if job is not None else "is gone from the queue"
    return (f"Slurm job {job_id} ({name}) {how} without recording an outcome: cancelled "
            f"outside mlform (scancel), timed out or lost with its node; log: "
            f"{directory / LOG.replace('%j', job_id)}")


def _ours(job: commands.Job, stack: str) -> bool:
    from .naming import owner

    return owner(job.comment).get("stack") == stack


def _outcome_detail(outcome: dict[str, Any], directory: Path) -> str:
    if outcome["status"] == "succeeded":
        return f"Slurm job {outcome.get('job_id')} succeeded on {outcome.get('node')}"
    return f"Slurm job {outcome.get('job_id')} failed: {outcome.get('error')}"


class Runner:
    """Submits and follows the jobs of one provider."""

    def __init__(self, stack: str, python: str, poll_seconds: float):
        self.stack = stack
        self.python = python
        self.poll = poll_seconds

    def realise(self, plan: JobPlan, progress: Progress) -> Seen:
        """The job's outcome: adopted when it succeeded or runs already, else submitted
        (again, when it failed or was cancelled) and waited for."""
        seen = look(plan.name, plan.directory, self.stack)
        if seen.state == "succeeded":
            progress(f"Slurm job {seen.job_id} already succeeded: adopting it")
            return seen
        if seen.state == "active":
            assert seen.job is not None
            progress(f"Slurm job {seen.job.id} ({plan.name}) is {seen.job.state}: adopting it")
            return self.wait(plan, seen.job.id, progress)
        if seen.state in ("failed", "gone"):
            progress(f"the last job {seen.state}: submitting it again")
        return self.wait(plan, self.submit(plan, progress), progress)

    def submit(self, plan: JobPlan, progress: Progress) -> str:
        shutil.rmtree(plan.directory, ignore_errors=True)
        plan.directory.mkdir(parents=True)
        for name, data in plan.files.items():
            (plan.directory / name).write_bytes(data)
        write_json(plan.directory / "job.json", plan.spec)
        script = plan.directory / "job.sh"
        script.write_text(self.script(plan))
        script.chmod(0o755)
        args = [f"--job-name={plan.name}", f"--comment={plan.comment}",
                f"--output={plan.directory / LOG}", f"--chdir={plan.directory}", *plan.flags]
        job_id = commands.submit(args, str(script))
        write_json(plan.directory / SUBMITTED, {"job_id": job_id, "name": plan.name,
                                                "sbatch": args, "submitted": _now()})
        progress(f"submitted Slurm job {job_id} ({plan.name})")
        return job_id

    def script(self, plan: JobPlan) -> str:
        """The batch script: the runtime with mlform's interpreter, and an outcome
        written here when the interpreter could not write one (not installed on the
        node, killed by the OOM killer)."""
        py, d = shlex.quote(self.python), shlex.quote(str(plan.directory))
        return f"""#!/bin/sh
# mlform: {plan.comment} (written by the slurm provider; submitted with sbatch)
PY={py}
DIR={d}
"$PY" -m {RUNTIME} "$DIR"
code=$?
if [ ! -f "$DIR/{OUTCOME}" ]; then
  printf '{{"status": "failed", "exit_code": %d, "job_id": "%s", "node": "%s", "error": "%s exited with status %d without recording an outcome: is mlform installed at that path on node %s? see the log"}}\\n' \\
    "$code" "$SLURM_JOB_ID" "$(hostname)" "$PY" "$code" "$(hostname)" > "$DIR/.{OUTCOME}.tmp" \\
    && mv "$DIR/.{OUTCOME}.tmp" "$DIR/{OUTCOME}"
fi
exit $code
"""

    def wait(self, plan: JobPlan, job_id: str, progress: Progress) -> Seen:
        """Poll until the job's outcome is recorded, or Slurm ended the job without one."""
        last = None
        ended_at = None
        while True:
            outcome = read_json(plan.directory / OUTCOME)
            if outcome is not None:
                return Seen(outcome["status"], outcome, job_id=job_id,
                            detail=_outcome_detail(outcome, plan.directory))
            job = commands.by_id(job_id)
            if job is None or not job.active:
                ended_at = ended_at or time.monotonic()
                if time.monotonic() - ended_at > SETTLE_SECONDS:
                    return Seen("gone", job_id=job_id,
                                detail=gone_detail(job_id, plan.name, plan.directory))
            else:
                report = read_json(plan.directory / "progress.json")
                said = _progress(report) if job.state == "RUNNING" and report else \
                    (f"Slurm job {job_id} is {job.state}"
                     + (f" ({job.reason})" if job.reason not in ("", "None") else ""), None)
                if said != last:
                    last = said
                    progress(*said)
            time.sleep(min(self.poll, 0.5) if ended_at else self.poll)


def _progress(report: dict[str, Any]) -> tuple[str, float | None]:
    if "epoch" in report:
        return (f"epoch {report['epoch']}/{report['epochs']} loss {report['loss']:.4f} on "
                f"{report['device']}", report["epoch"] / report["epochs"])
    return str(report.get("message", "running")), None


def cancel(name: str, directory: Path, stack: str, progress: Progress) -> None:
    """Cancel this stack's queued or running jobs of that name, and wait until Slurm
    stopped them, so that nothing writes into the directory being removed."""
    ids = [j.id for j in commands.named(name) if j.active and _ours(j, stack)]
    submitted = read_json(directory / SUBMITTED)
    if submitted and submitted["job_id"] not in ids:
        job = commands.by_id(submitted["job_id"])
        if job is not None and job.active:
            ids.append(job.id)
    for job_id in ids:
        progress(f"cancelling Slurm job {job_id} ({name})")
        commands.cancel(job_id)
    deadline = time.monotonic() + 60
    while ids and time.monotonic() < deadline:
        ids = [i for i in ids if (j := commands.by_id(i)) is not None and j.active
               and j.state != "COMPLETING"]
        if ids:
            time.sleep(0.3)


def failure_text(what: str, seen: Seen, directory: Path) -> str:
    """The apply error of a job that did not succeed, with the end of its log."""
    lines = [f"{what}: {seen.detail}"]
    if seen.job_id:
        log = directory / LOG.replace("%j", str(seen.job_id))
        tail = log.read_text(errors="replace").splitlines()[-12:] if log.is_file() else []
        lines.append(f"  log: {log}")
        if tail:
            lines += ["  last lines:"] + [f"    {line}" for line in tail]
    return "\n".join(lines)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
