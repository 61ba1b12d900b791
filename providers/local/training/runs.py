"""Training runs on disk: identity, status and history.

A run lives in `runs/<job>/<run_id>/`:

    params.json     everything the run depends on (the fingerprint) and how to run it
    status.json     {status: running | succeeded | failed, pid, pid_started, started,
                     finished, device, error}
    progress.json   {epoch, epochs, loss, message}: the latest progress (written by the runner)
    train.log       the runner's (and a custom script's) stdout and stderr
    metrics.json    held-out metrics
    holdout.parquet the held-out rows, every column, for the registry's gates
    artifact/       the model (see `artifact.py`)

The run id is a digest of the job name and the fingerprint
(`mlform.ml.fingerprint.run_id_for`), so the same inputs name the same run: a finished run is adopted, a running one waited on.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"
RUNNER_MODULE = "mlform.providers.local.training.runner"


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace `path` atomically, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)


def runner_command(run_dir: Path) -> list[str]:
    """The command line of a run's runner: it names the run directory, which is how the
    runner is recognised later (`is_alive`, and an apply finding a runner it started but
    did not record)."""
    return [sys.executable, "-m", RUNNER_MODULE, str(run_dir)]


def process_started(pid: int) -> float | None:
    """Start time of process `pid` as psutil tells it, None when there is none; recorded
    for reading only (see `is_alive`)."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def runs_in(proc: Any, run_dir: Path) -> bool:
    """Whether psutil process `proc` is the runner of `run_dir`: its command line names
    that directory (resolved against the process's own working directory)."""
    import psutil

    try:
        command = proc.cmdline()
        if command[1:3] != ["-m", RUNNER_MODULE] or len(command) != 4:
            return False
        named = Path(command[3])
        if not named.is_absolute():
            named = Path(proc.cwd()) / named
        return os.path.realpath(named) == os.path.realpath(run_dir)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def is_alive(status: dict[str, Any], run_dir: Path) -> bool:
    """Whether the process a running status names is still that run's runner.

    Recognised by its command line, not by its start time: psutil derives a process's
    create time from the boot time as the wall clock has it now, so a clock step (NTP, a
    VM's time sync) made a live run read as failed, and the next apply trained it again
    into the same directory beside the first. A reused pid cannot carry the command
    line that names this run's directory."""
    import psutil

    pid = status.get("pid")
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and runs_in(proc, run_dir)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def current_status(run_dir: Path) -> dict[str, Any] | None:
    """The run's status; a `running` run whose process is gone reads as failed."""
    status = read_json(run_dir / "status.json")
    if status and status["status"] == RUNNING and not is_alive(status, run_dir):
        return {**status, "status": FAILED,
                "error": "the training process ended without recording a result "
                         "(killed or crashed); see train.log"}
    return status


def list_runs(job_dir: Path) -> list[dict[str, Any]]:
    """{run_id, status, metrics, created} of every run of a job, oldest first."""
    runs = []
    for run_dir in job_dir.glob("*/"):
        status = current_status(run_dir)
        if status is None:
            continue
        runs.append({"run_id": run_dir.name, "status": status["status"],
                     "metrics": read_json(run_dir / "metrics.json") or {},
                     "created": status.get("started")})
    return sorted(runs, key=lambda r: r["created"] or "")
