"""Slurm's own commands (`sbatch`, `squeue`, `scancel`), run as the user runs them.

The commands read the cluster's configuration the usual way (`SLURM_CONF` or
/etc/slurm/slurm.conf) from the environment mlform runs in, which they inherit. A
command that is missing, or a controller that does not answer, is a `SlurmError`
in words (the provider turns it into a response error, never a traceback).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

ACTIVE = frozenset({"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED",
                    "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SIGNALING",
                    "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD"})
"""Job states in which the job may still run and record its outcome."""
FORMAT = "%i|%j|%T|%r|%k"
"""squeue's fields: id, name, state, reason, comment (the comment last: it may hold '|')."""
TIMEOUT = 60.0


class SlurmError(Exception):
    """A Slurm command failed; the message says what to do."""


@dataclass(frozen=True)
class Job:
    """One line of squeue."""

    id: str
    name: str
    state: str
    reason: str
    comment: str

    @property
    def active(self) -> bool:
        return self.state in ACTIVE


def run(argv: list[str], timeout: float = TIMEOUT) -> str:
    """stdout of a Slurm command; a SlurmError naming the cause when it fails."""
    if shutil.which(argv[0]) is None:
        raise SlurmError(f"'{argv[0]}' is not on PATH: install Slurm's client commands "
                         "(Debian: slurm-client) on this machine, or run mlform on a "
                         "login node of the cluster")
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise SlurmError(f"'{argv[0]}' did not answer within {timeout:g}s: is slurmctld "
                         "reachable from here?") from None
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        text = said[-1] if said else f"exit status {done.returncode}"
        if any(s in text for s in ("Unable to contact slurm controller",
                                   "Socket timed out", "Connection refused",
                                   "Zero Bytes were transmitted", "Could not establish")):
            raise SlurmError(f"the Slurm controller is unreachable ({text}): check that "
                             "slurmctld runs and that SLURM_CONF (or /etc/slurm/slurm.conf) "
                             "names it")
        raise SlurmError(f"{' '.join(argv[:2])} failed: {text}")
    return done.stdout


def submit(args: list[str], script: str) -> str:
    """The id of the job `sbatch <args> <script>` queued."""
    out = run(["sbatch", "--parsable", *args, script]).strip()
    job_id = out.split(";")[0]  # --parsable: "<id>" or "<id>;<cluster>"
    if not job_id.isdigit():
        raise SlurmError(f"sbatch answered '{out}' instead of a job id")
    return job_id


def _parse(out: str) -> list[Job]:
    jobs = []
    for line in out.splitlines():
        parts = line.split("|", 4)
        if len(parts) == 5:
            jobs.append(Job(*(p.strip() for p in parts)))
    return jobs


def named(name: str) -> list[Job]:
    """Every job of any user with this name that the controller still knows, finished
    ones included (they stay for MinJobAge)."""
    return _parse(run(["squeue", "--noheader", "--all", "--states=all", f"--name={name}",
                       f"--format={FORMAT}"]))


def by_id(job_id: str) -> Job | None:
    """The job with this id, or None once the controller forgot it."""
    try:
        found = _parse(run(["squeue", "--noheader", "--all", "--states=all",
                            f"--jobs={job_id}", f"--format={FORMAT}"]))
    except SlurmError as e:
        if "Invalid job id" in str(e):
            return None
        raise
    return found[0] if found else None


def every_job() -> list[Job]:
    """Every job the controller knows, any user, any state."""
    return _parse(run(["squeue", "--noheader", "--all", "--states=all",
                       f"--format={FORMAT}"]))


def cancel(job_id: str) -> None:
    """Cancel a job; one that already ended is fine."""
    try:
        run(["scancel", job_id])
    except SlurmError as e:
        if "Invalid job id" not in str(e) and "already completing or completed" not in str(e):
            raise

