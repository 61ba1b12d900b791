"""Experiment tracking against a real MLflow tracking server started here: an apply of a
stack with `tracking: {mlflow: ...}` logs the training run (parameters, held-out metrics,
the artifact, the log) and the model registration (gate results, the card), and a
registration a gate refused as a failed run; all read back through MLflow's REST API.

The server is the full `mlflow` package, which pins other versions of libraries the
project's venv holds, so it runs from its own venv: `make mlflow-venv`
(build/mlflow-venv); without it these tests skip.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from .conftest import mlform_ok, write_fraud_data

pytestmark = pytest.mark.e2e

SERVER = Path(__file__).resolve().parents[4] / "build" / "mlflow-venv" / "bin" / "mlflow"

STACK = """
    version: 1
    stack: tracked
    tracking:
      mlflow: {uri: "http://127.0.0.1:PORT", experiment: fraud-experiments}
    resources:
      transactions:
        type: dataset
        source: data/transactions.csv
      train:
        type: training_job
        dataset: ${transactions.uri}
        algorithm: logistic_regression
        target: is_fraud
        hyperparameters: {epochs: 2, lr: 0.05}
        seed: 4
      fraud_model:
        type: model
        artifact: ${train.artifact}
        gates:
          - metric: auc
            min: 0.5
      strict_model:
        type: model
        artifact: ${train.artifact}
        gates:
          - metric: auc
            min: 0.9999
    """


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_url(tmp_path_factory):
    if not SERVER.exists():
        pytest.skip(f"no MLflow server at {SERVER}: run 'make mlflow-venv'")
    root = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    with open(root / "server.log", "w") as log:
        proc = subprocess.Popen([str(SERVER), "server", "--host", "127.0.0.1", "--port",
                                 str(port), "--workers", "1",
                                 "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
                                 "--artifacts-destination", str(root / "artifacts")],
                                cwd=root, stdout=log, stderr=subprocess.STDOUT,
                                # no background job runner (its consumers outlive a stop);
                                # a session of its own, so that teardown stops every process
                                env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300  # a cold start on a busy machine takes minutes
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            pytest.fail("the MLflow server did not start:\n" +
                        (root / "server.log").read_text()[-3000:])
        time.sleep(0.5)
    yield url
    _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    """Stop the server and every process it started (uvicorn's workers)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=20)
            time.sleep(0.5)  # the group's other members, after its leader
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def tracked(mlflow_url, tmp_path_factory, stack_writer, run_mlform):
    """The stack applied once: (stack dir, the apply's output, {run name: run})."""
    port = mlflow_url.rsplit(":", 1)[1]
    directory = stack_writer(tmp_path_factory.mktemp("tracked"), STACK.replace("PORT", port))
    write_fraud_data(directory, seed=5, rows=400)
    proc = run_mlform(["apply", "--auto-approve", "--no-color"], directory, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # strict_model's gate fails
    yield directory, proc.stdout + proc.stderr, _runs(mlflow_url)
    mlform_ok(run_mlform, ["destroy", "--auto-approve", "--no-color"], directory)


def _api(url: str, method: str, path: str, **kwargs) -> dict:
    r = httpx.request(method, f"{url}/api/2.0/mlflow/{path}", timeout=30, **kwargs)
    assert r.status_code == 200, r.text
    return r.json()


def _runs(url: str) -> dict[str, dict]:
    experiment = _api(url, "GET", "experiments/get-by-name",
                      params={"experiment_name": "fraud-experiments"})["experiment"]
    found = _api(url, "POST", "runs/search",
                 json={"experiment_ids": [experiment["experiment_id"]]}).get("runs", [])
    return {r["info"]["run_name"]: r for r in found}


def _as_dict(run: dict, kind: str) -> dict:
    return {e["key"]: e["value"] for e in run["data"].get(kind, [])}


def _artifacts(url: str, run_id: str, path: str = "") -> set[str]:
    listed = _api(url, "GET", "artifacts/list", params={"run_id": run_id, "path": path})
    return {f["path"] for f in listed.get("files", [])}


def _state(directory: Path, name: str) -> dict:
    return json.loads((directory / ".mlform" / "state.json").read_text())["resources"][name]


def test_the_training_run_is_logged_with_its_params_metrics_and_artifacts(tracked,
                                                                          mlflow_url):
    directory, _, runs = tracked
    job = _state(directory, "train")["outputs"]
    run = runs[f"train run {job['run_id']}"]
    assert run["info"]["status"] == "FINISHED"
    params = _as_dict(run, "params")
    assert params["algorithm"] == "logistic_regression"
    assert params["target"] == "is_fraud"
    assert (params["hyperparameters.epochs"], params["hyperparameters.lr"]) == ("2", "0.05")
    assert params["seed"] == "4"
    assert params["dataset"] == _state(directory, "transactions")["outputs"]["uri"]
    metrics = _as_dict(run, "metrics")
    assert metrics and metrics == pytest.approx(
        {k: v for k, v in job["metrics"].items() if isinstance(v, int | float)})
    assert _as_dict(run, "tags")["mlform.run_id"] == job["run_id"]
    files = _artifacts(mlflow_url, run["info"]["run_id"])
    assert {"model", "params.json", "metrics.json", "train.log"} <= files
    assert "model/model.json" in _artifacts(mlflow_url, run["info"]["run_id"], "model")
    got = httpx.get(f"{mlflow_url}/get-artifact", timeout=30,
                    params={"run_id": run["info"]["run_id"], "path": "metrics.json"})
    assert got.status_code == 200 and json.loads(got.text) == json.loads(
        (directory / ".mlform" / "local" / "runs" / "train" / job["run_id"] /
         "metrics.json").read_text())


def test_the_registration_is_logged_with_its_gate_results_and_card(tracked, mlflow_url):
    directory, _, runs = tracked
    model = _state(directory, "fraud_model")["outputs"]
    run = runs[f"fraud_model version {model['version']}"]
    assert run["info"]["status"] == "FINISHED"
    metrics = _as_dict(run, "metrics")
    [gate] = model["gates"]
    assert metrics["gates_passed"] == 1.0
    assert [v for k, v in metrics.items() if k.startswith("gate.0.")] == \
        [pytest.approx(gate["measured"])]
    assert _as_dict(run, "tags")["mlform.uri"] == model["uri"]
    assert {"registered/card.md", "registered/artifact"} <= \
        _artifacts(mlflow_url, run["info"]["run_id"], "registered")


def test_a_refused_registration_is_a_failed_run_with_the_reason(tracked):
    directory, output, runs = tracked
    [run] = [r for name, r in runs.items() if name.startswith("strict_model refused")]
    assert run["info"]["status"] == "FAILED"
    reason = _as_dict(run, "tags")["mlform.error"]
    assert "model 'strict_model' was not registered" in reason
    assert _as_dict(run, "metrics")["gates_passed"] == 0.0
    assert "not logged to MLflow" not in output


def test_an_update_of_the_same_version_logs_nothing_twice(tracked, mlflow_url, run_mlform):
    directory, _, _ = tracked
    before = _run_names(mlflow_url)
    spec = directory / "mlform.yaml"
    text = spec.read_text()
    assert text.count("min: 0.5\n") == 1
    spec.write_text(text.replace("min: 0.5\n",
                                 "min: 0.5\n    aliases: [champion, production]\n"))
    proc = run_mlform(["apply", "--auto-approve", "--no-color", "--target", "fraud_model"],
                      directory, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "fraud_model: updated" in proc.stdout  # it was registered again, as the same version
    assert _run_names(mlflow_url) == before


def _run_names(url: str) -> list[str]:
    experiment = _api(url, "GET", "experiments/get-by-name",
                      params={"experiment_name": "fraud-experiments"})["experiment"]
    found = _api(url, "POST", "runs/search",
                 json={"experiment_ids": [experiment["experiment_id"]]}).get("runs", [])
    return sorted(r["info"]["run_name"] for r in found)
