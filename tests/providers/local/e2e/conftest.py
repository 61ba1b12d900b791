"""Helpers for driving the local provider end to end through the installed command:
the contract's fraud stack, its data, live traffic, and the processes a stack leaves.

Every stack here is applied for real (training subprocesses, detached servers), so
each fixture destroys what it applied and checks that no process of the stack is left.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import psutil
import pytest

FRAUD_STACK = """
    version: 1
    stack: fraud-detection
    backend: {type: local}
    providers:
      local: {}
    variables:
      min_auc: {type: number, default: 0.7}
    resources:
      transactions:
        type: dataset
        source: data/transactions.csv
      train:
        type: training_job
        dataset: ${transactions.uri}
        algorithm: mlp_classifier
        target: is_fraud
        hyperparameters: {epochs: 3, lr: 0.01}
      fraud_model:
        type: model
        artifact: ${train.artifact}
        gates:
          - metric: auc
            min: ${var.min_auc}
      fraud_endpoint:
        type: endpoint
        variants:
          champion:
            model: ${fraud_model.uri}
            weight: 100
        rollout: {strategy: canary, steps: [10, 50, 100], wait: 200ms}
    outputs:
      url: {value: "${fraud_endpoint.url}"}
    """
"""CONTRACT.md's example stack: a lower AUC bound (3 epochs on 1,500 rows reach about
0.85), fewer epochs and a fast canary."""

INSTANCE = [250.0, 2, 0.95, 30, 12]
"""One transaction in the sample data's feature order."""


def write_fraud_data(stack_dir: Path, seed: int, rows: int = 1500, shift: float = 0.0,
                     name: str = "transactions.csv") -> Path:
    from mlform.engine.scaffold import write_sample_data

    path = Path(stack_dir) / "data" / name
    write_sample_data(path, rows=rows, seed=seed, shift=shift)
    return path


def stack_processes(stack_dir: Path) -> list[psutil.Process]:
    """Live processes whose command line mentions the stack directory (servers name
    their endpoint's directory, training runs their run directory)."""
    needle = str(Path(stack_dir).resolve()) + os.sep
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE or proc.pid == os.getpid():
                continue
            if any(needle in arg for arg in proc.info["cmdline"] or ()):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def servers_of(stack_dir: Path, endpoint: str) -> list[psutil.Process]:
    directory = str(Path(stack_dir).resolve() / ".mlform" / "local" / "endpoints" / endpoint)
    return [p for p in stack_processes(stack_dir)
            if "mlform.providers.local.serving.server" in p.cmdline() and directory in p.cmdline()]


def training_processes(stack_dir: Path) -> list[psutil.Process]:
    return [p for p in stack_processes(stack_dir)
            if "mlform.providers.local.training.runner" in p.cmdline()]


def assert_no_processes(stack_dir: Path, grace: float = 10.0) -> None:
    """Nothing of the stack runs any more (after `grace` seconds to exit)."""
    deadline = time.monotonic() + grace
    while (left := stack_processes(stack_dir)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, "processes left behind: " + "; ".join(
        " ".join(p.cmdline()) for p in left)


def server_record(stack_dir: Path, endpoint: str = "fraud_endpoint") -> dict:
    return json.loads((Path(stack_dir) / ".mlform" / "local" / "endpoints" / endpoint
                       / "server.json").read_text())


def port_open(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Traffic:
    """Prediction requests sent back to back on a thread until stopped; every answer's
    status (or the exception's type) is counted."""

    def __init__(self, url: str, instances: list[list[float]] | None = None,
                 pause: float = 0.005):
        self.url = url
        self.instances = instances or [INSTANCE]
        self.pause = pause
        self.outcomes: Counter[str] = Counter()
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        # the stream is under way before whatever it accompanies starts
        deadline = time.monotonic() + 10
        while not self.outcomes and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with httpx.Client(timeout=10.0) as client:
            while not self._stop.is_set():
                try:
                    r = client.post(f"{self.url}/predict", json={"instances": self.instances})
                    self.outcomes[str(r.status_code)] += 1
                    if r.status_code != 200:
                        self.failures.append(f"{r.status_code}: {r.text[:200]}")
                except httpx.HTTPError as e:
                    self.outcomes[type(e).__name__] += 1
                    self.failures.append(f"{type(e).__name__}: {e}")
                time.sleep(self.pause)


def mlform_ok(run_mlform, args: list, cwd: Path, **kwargs):
    """Run the command and fail the test with its output unless it exits 0."""
    proc = run_mlform(args, cwd, **kwargs)
    assert proc.returncode == 0, (f"mlform {' '.join(map(str, args))} exited "
                                  f"{proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def output(run_mlform, stack_dir: Path, name: str) -> str:
    return mlform_ok(run_mlform, ["output", name, "--raw"], stack_dir).stdout.strip()


def health(url: str) -> dict:
    r = httpx.get(f"{url}/health", timeout=10.0)
    assert r.status_code == 200, r.text
    return r.json()


def destroy_and_check(run_mlform, stack_dir: Path) -> None:
    """Destroy the stack and check that nothing of it still runs."""
    proc = run_mlform(["destroy", "--auto-approve", "--no-color"], stack_dir, timeout=180)
    assert_no_processes(stack_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def fraud_stack_dir(tmp_path_factory, stack_writer, run_mlform):
    """A written (not yet applied) fraud stack with data of seed 1; destroyed at the end
    of the module, with a check that no server or training process is left."""
    directory = stack_writer(tmp_path_factory.mktemp("fraud"), FRAUD_STACK)
    write_fraud_data(directory, seed=1)
    yield directory
    destroy_and_check(run_mlform, directory)
