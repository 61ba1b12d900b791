"""Endpoints on Ray Serve through the installed `mlform` command, on the session's real
single-node Ray cluster: the contract's example stack (dataset -> training_job -> model
-> endpoint, with a monitor) trains, registers and serves the local provider's API; new
data retrains and rolls out as a canary while a client keeps sending requests, none of
which fails; a Serve application deleted out of band is drift that apply restores; and
destroy leaves no application.

The cases share one stack and run in file order.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.e2e]

APPLY = ["apply", "--auto-approve", "--no-color"]
STACK_NAME = "fraud-serve"
ROUTER = f"mlform-{STACK_NAME}-fraud_endpoint"
STACK = """
version: 1
stack: fraud-serve
providers:
  gpu: {{type: ray, address: "{address}", storage: "{storage}", poll_interval: 0.2,
         serve_port: {serve_port}}}
resources:
  transactions:
    type: dataset
    source: data/transactions.csv
  train:
    type: training_job
    dataset: ${{transactions.uri}}
    algorithm: mlp_classifier
    target: is_fraud
    hyperparameters: {{epochs: 2, lr: 0.01}}
  fraud_model:
    type: model
    artifact: ${{train.artifact}}
    gates:
      - metric: auc
        min: 0.5
  fraud_endpoint:
    type: endpoint
    variants:
      champion:
        model: ${{fraud_model.uri}}
    rollout: {{strategy: canary, steps: [30, 100], wait: 1s}}
    rollback: {{min_requests: 5}}
  drift_monitor:
    type: monitor
    endpoint: ${{fraud_endpoint.id}}
    reference: ${{transactions.uri}}
    min_rows: 1
    schedule: 1s
outputs:
  url: {{value: "${{fraud_endpoint.url}}"}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write(stack_dir: Path, cluster, serve_port: int, seed: int) -> None:
    from mlform.engine.scaffold import write_sample_data

    storage = cluster.storage / stack_dir.name
    storage.mkdir(exist_ok=True)
    (stack_dir / "mlform.yaml").write_text(STACK.format(
        address=cluster.address, storage=storage, serve_port=serve_port))
    write_sample_data(stack_dir / "data" / "transactions.csv", rows=600, seed=seed)


def ok(run_mlform, args: list, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    proc = run_mlform(args, cwd, **kwargs)
    assert proc.returncode == 0, (f"mlform {' '.join(map(str, args))} exited "
                                  f"{proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def resources(stack_dir: Path) -> dict:
    return json.loads((stack_dir / ".mlform" / "state.json").read_text())["resources"]


def applications(cluster) -> dict:
    answer = httpx.get(f"{cluster.address}/api/serve/applications/", timeout=30)
    answer.raise_for_status()
    return answer.json().get("applications") or {}


def instances(stack_dir: Path, rows: int) -> list[list]:
    import pandas as pd

    frame = pd.read_csv(stack_dir / "data" / "transactions.csv").drop(columns=["is_fraud"])
    return frame.head(rows).values.tolist()


@pytest.fixture(scope="module")
def stack_dir(tmp_path_factory, ray_cluster):
    directory = tmp_path_factory.mktemp("ray-serve")
    write(directory, ray_cluster, _free_port(), seed=1)
    return directory


def test_the_example_stack_trains_registers_and_serves_the_local_api(stack_dir, ray_cluster,
                                                                     run_mlform):
    from mlform.ml.artifact import load_predictor

    ok(run_mlform, APPLY, stack_dir, timeout=400)

    endpoint = resources(stack_dir)["fraud_endpoint"]
    url = endpoint["outputs"]["url"]
    assert endpoint["id"] == ROUTER
    assert url.endswith(f"/{STACK_NAME}/fraud_endpoint")
    assert endpoint["outputs"]["traffic"] == {"champion": 100.0}
    rows = instances(stack_dir, 3)
    answer = httpx.post(f"{url}/predict", json={"instances": rows}, timeout=30)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    # the local provider's shape, and the artifact's own predictions
    assert sorted(body) == ["id", "predictions", "variant"]
    assert body["variant"] == "champion" and len(body["id"]) == 32
    artifact = ray_cluster.storage / stack_dir.name / STACK_NAME / "registry" / \
        "fraud_model" / "1" / "artifact"
    assert body["predictions"] == load_predictor(artifact).predict(rows)
    bad = httpx.post(f"{url}/predict", json={"rows": rows}, timeout=30)
    assert (bad.status_code, bad.json()["error"]) == (400, (
        "'instances' must be a non-empty list of instances, each a list of feature values "
        "or an object keyed by feature name"))
    assert httpx.get(f"{url}/health", timeout=30).json()["status"] == "ok"
    metrics = httpx.get(f"{url}/metrics", timeout=30).text
    assert 'mlform_endpoint_requests_total{model="ray://models/fraud_model/1",' \
           'variant="champion"} 1.0' in metrics
    feedback = httpx.post(f"{url}/feedback", json={"id": body["id"], "labels": [0, 0, 1]},
                          timeout=30)
    assert feedback.status_code == 202
    plan = run_mlform(["plan", "--detailed-exitcode", "--no-color"], stack_dir)
    assert plan.returncode == 0, plan.stdout + plan.stderr


def test_new_data_retrains_and_rolls_out_as_a_canary_with_no_failed_request(
        stack_dir, ray_cluster, run_mlform):
    url = resources(stack_dir)["fraud_endpoint"]["outputs"]["url"]
    before = {n for n in applications(ray_cluster) if n.startswith(ROUTER + "--")}
    rows = instances(stack_dir, 2)
    write(stack_dir, ray_cluster, _serve_port(stack_dir), seed=2)
    stop, answers, failures = threading.Event(), [], []

    def client() -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                try:
                    got = http.post(f"{url}/predict", json={"instances": rows})
                except httpx.HTTPError as e:
                    failures.append(repr(e))
                    continue
                answers.append(got.json().get("variant") if got.status_code == 200 else None)
                if got.status_code != 200:
                    failures.append(f"{got.status_code} {got.text}")

    sender = threading.Thread(target=client)
    sender.start()
    try:
        applied = ok(run_mlform, APPLY, stack_dir, timeout=400)
    finally:
        stop.set()
        sender.join()

    assert failures == [], failures[:5]
    assert len(answers) > 20
    assert "fraud_endpoint: canary step 30%:" in applied.stdout, applied.stdout
    endpoint = resources(stack_dir)["fraud_endpoint"]
    assert endpoint["inputs"]["variants"]["champion"]["model"] == "ray://models/fraud_model/2"
    assert endpoint["outputs"]["traffic"] == {"champion": 100.0}
    after = {n for n in applications(ray_cluster) if n.startswith(ROUTER + "--")}
    assert len(after) == 1 and not after & before, (before, after)
    health = httpx.get(f"{url}/health", timeout=30).json()
    assert health["models"] == ["ray://models/fraud_model/2"]
    # the router's request log is the local provider's: the monitor evaluates it
    ok(run_mlform, ["watch", "--once", "--no-color"], stack_dir, timeout=120)
    last = resources(stack_dir)["drift_monitor"]["outputs"]["last_evaluation"]
    assert last is not None and last["verdict"] != "insufficient_data", last


def test_a_serve_application_deleted_out_of_band_is_drift_and_apply_restores_it(
        stack_dir, ray_cluster, run_mlform):
    current = applications(ray_cluster)
    kept = [app["deployed_app_config"] for name, app in current.items() if name != ROUTER]
    put = httpx.put(f"{ray_cluster.address}/api/serve/applications/", timeout=30,
                    json={"http_options": {"host": "127.0.0.1",
                                           "port": _serve_port(stack_dir)},
                          "applications": kept})
    assert put.status_code == 200, put.text
    _wait_gone(ray_cluster, ROUTER)

    drift = run_mlform(["drift", "--no-color"], stack_dir)

    assert drift.returncode == 2, drift.stdout + drift.stderr
    assert "fraud_endpoint" in drift.stdout and "deleted" in drift.stdout, drift.stdout
    ok(run_mlform, APPLY, stack_dir, timeout=300)
    url = resources(stack_dir)["fraud_endpoint"]["outputs"]["url"]
    answer = httpx.post(f"{url}/predict", json={"instances": instances(stack_dir, 1)},
                        timeout=30)
    assert answer.status_code == 200, answer.text


def test_destroy_leaves_no_application(stack_dir, ray_cluster, run_mlform):
    ok(run_mlform, ["destroy", "--auto-approve", "--no-color"], stack_dir, timeout=300)

    assert [n for n in applications(ray_cluster) if n.startswith(f"mlform-{STACK_NAME}-")] == []


def _serve_port(stack_dir: Path) -> int:
    import yaml

    spec = yaml.safe_load((stack_dir / "mlform.yaml").read_text())
    return int(spec["providers"]["gpu"]["serve_port"])


def _wait_gone(cluster, name: str, timeout: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while name in applications(cluster):
        assert time.monotonic() < deadline, f"{name} was not removed"
        time.sleep(0.5)
