"""A training run's runner is recognised by its command line, which names the run's
directory, not by its start time (a regression: psutil derives a process's create time
from the wall clock, so a clock step made a live run read as failed and the next apply
started a second runner into the same directory)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlform.providers.local.training.runs import (
    FAILED,
    RUNNER_MODULE,
    RUNNING,
    current_status,
    is_alive,
    process_started,
    write_json,
)


@pytest.fixture
def runner(tmp_path):
    """A process whose command line is a runner's for `run_dir` (a stand-in module of the
    runner's name that only waits), with the run's status recorded as apply records it."""
    stub = tmp_path / "stub"
    package = stub.joinpath(*RUNNER_MODULE.split(".")[:-1])
    package.mkdir(parents=True)
    for folder in [stub.joinpath(*RUNNER_MODULE.split(".")[:i])
                   for i in range(1, len(RUNNER_MODULE.split(".")))]:
        (folder / "__init__.py").write_text("")
    (package / "runner.py").write_text("import time\ntime.sleep(120)\n")
    run_dir = tmp_path / "runs" / "train" / "abc123"
    run_dir.mkdir(parents=True)
    process = subprocess.Popen([sys.executable, "-m", RUNNER_MODULE, str(run_dir)],
                               env={**os.environ, "PYTHONPATH": str(stub)})
    deadline = time.monotonic() + 10
    while process_started(process.pid) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    yield run_dir, process
    process.kill()
    process.wait()


def test_a_live_run_is_alive_though_the_clock_stepped(runner):
    run_dir, process = runner
    stepped = process_started(process.pid) - 30.0  # as if the clock moved 30 s since
    status = {"status": RUNNING, "pid": process.pid, "pid_started": stepped}
    write_json(run_dir / "status.json", status)
    assert is_alive(status, run_dir)
    assert current_status(run_dir)["status"] == RUNNING


def test_a_pid_that_runs_something_else_is_not_the_run(runner, tmp_path):
    run_dir, process = runner
    status = {"status": RUNNING, "pid": process.pid,
              "pid_started": process_started(process.pid)}
    other = tmp_path / "runs" / "train" / "def456"
    other.mkdir()
    assert not is_alive(status, other)  # the runner of another run
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        assert not is_alive({**status, "pid": sleeper.pid,
                             "pid_started": process_started(sleeper.pid)}, run_dir)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_run_whose_process_ended_reads_as_failed(runner):
    run_dir, process = runner
    write_json(run_dir / "status.json", {"status": RUNNING, "pid": process.pid,
                                         "pid_started": process_started(process.pid)})
    process.kill()
    process.wait()
    status = current_status(Path(run_dir))
    assert status["status"] == FAILED
    assert "ended without recording a result" in status["error"]
