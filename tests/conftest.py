"""Fixtures shared by the whole suite: running the installed `mlform` command on a stack."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

COMMAND = [sys.executable, "-m", "mlform.engine.cli.main"]
"""The installed command, run by this interpreter so that it uses the same environment."""


def _environment(env: dict[str, str] | None) -> dict[str, str]:
    # The suite's own MLFORM_* settings or CI flag must not leak into the command under test.
    full = {k: v for k, v in os.environ.items() if not k.startswith("MLFORM_") and k != "CI"}
    full.update(env or {})
    return full


def mlform(args: list, cwd: Path | str, env: dict[str, str] | None = None,
           input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `mlform ARGS` in `cwd` with no terminal; `env` adds to the environment."""
    return subprocess.run(COMMAND + [str(a) for a in args], cwd=cwd, env=_environment(env),
                          input=input if input is not None else "", capture_output=True,
                          text=True, timeout=timeout)


def write_stack(directory: Path, spec_text: str, **files: str) -> Path:
    """Write `mlform.yaml` (dedented) and any extra files into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "mlform.yaml").write_text(textwrap.dedent(spec_text).lstrip("\n"))
    for name, text in files.items():
        (directory / name).write_text(textwrap.dedent(text).lstrip("\n"))
    return directory


@pytest.fixture(scope="session")
def run_mlform():
    """`run_mlform(args, cwd, env=None, input=None)`: the installed command, as a user runs it."""
    return mlform


def _default_sigint() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def spawn_mlform():
    """`spawn_mlform(args, cwd, env=None)`: start the command in the background (a Popen).

    Whatever is still running at the end of the test is killed.
    """
    started: list[subprocess.Popen] = []

    def spawn(args: list, cwd: Path | str, env: dict[str, str] | None = None):
        # Ctrl-C as a terminal delivers it: a test process that ignores SIGINT (some
        # library in the worker set it so) would hand the ignore on, and a Python started
        # with SIGINT ignored never raises KeyboardInterrupt (a watch then outlived it)
        proc = subprocess.Popen(COMMAND + [str(a) for a in args], cwd=cwd,
                                env=_environment(env), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=_default_sigint)
        started.append(proc)
        return proc

    yield spawn
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


@pytest.fixture(scope="session")
def stack_writer():
    """`stack_writer(directory, spec_text, **extra_files)`, for fixtures wider than a test."""
    return write_stack


@pytest.fixture
def null_stack(tmp_path):
    """A factory: `null_stack(spec_text, **extra_files)` writes a stack and returns its dir."""
    def make(spec_text: str, **files: str) -> Path:
        return write_stack(tmp_path / "stack", spec_text, **files)
    return make


# --- an apply held inside its one resource (the null provider's latency) until released

HELD_APPLY = textwrap.dedent("""
    import os, sys, time, types
    import mlform.providers.null.provider as null

    release = sys.argv[1]

    class Held(types.ModuleType):
        # The null provider's `time`, whose sleep (its latency) lasts until the test says.
        def __getattr__(self, name):
            return getattr(time, name)

        @staticmethod
        def sleep(seconds):
            while not os.path.exists(release):
                time.sleep(0.02)

    null.time = Held("time")
    sys.argv = ["mlform", "apply", "--auto-approve"]
    from mlform.engine.cli.main import main
    main()
""")


@pytest.fixture
def held_apply(tmp_path):
    """`held_apply(stack_dir)`: start `mlform apply` in the background (a Popen) with the null
    provider's latency held until `.release()` is called on it, so that what a test does
    while the apply runs cannot come too late on a loaded machine."""
    started: list[subprocess.Popen] = []

    def start(stack_dir):
        release = tmp_path / f"release-{len(started)}"
        proc = subprocess.Popen([sys.executable, "-c", HELD_APPLY, str(release)], cwd=stack_dir,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        proc.release = release.touch  # type: ignore[attr-defined]
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


# --- running the suite in worker processes (`make test` uses pytest-xdist) ----------

SHARED_CLUSTERS = ("ray", "slurm")
"""Services started once per process that are too heavy to start once per worker: every
test that uses one runs in the same worker."""


def worker_scope(nodeid: str) -> str:
    """The unit of work a worker takes whole: a test's file, so that a module's shared
    fixtures (a stack trained once for several tests) are built once and its tests run in
    order; or the cluster it needs, so that each cluster starts in one worker only."""
    path = nodeid.split("::")[0]
    for cluster in SHARED_CLUSTERS:
        if f"/providers/{cluster}/" in path or f"[{cluster}" in nodeid:
            return cluster
    return path


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """Schedule by `worker_scope`. (xdist's `--dist loadgroup` would do it from marks,
    but under pytest 9 the group suffix it adds to each test id does not take.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ByScope(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return worker_scope(nodeid)

    return ByScope(config, log)
