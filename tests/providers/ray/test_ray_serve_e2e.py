"""Endpoints on Ray Serve through the installed `mlform` command, on the session's real
single-node Ray cluster: the contract's example stack (dataset -> training_job -> model
-> endpoint, with a monitor) trains, registers and serves the local provider's API
(scores and explanations included); new data retrains and rolls out as a canary while a
client keeps sending requests, none of which fails; a `better_than: champion` gate
judges the next run against the registry's champion; an experiment assigns users to
variants by their key and its verdict shows after feedback; a Serve application deleted
out of band is drift that apply restores, and the restarted router assigns every key as
before; and destroy leaves no application.

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
{gates}
  fraud_endpoint:
    type: endpoint
{endpoint}
  drift_monitor:
    type: monitor
    endpoint: ${{fraud_endpoint.id}}
    reference: ${{transactions.uri}}
    min_rows: 1
    schedule: 1s
outputs:
  url: {{value: "${{fraud_endpoint.url}}"}}
"""


ENDPOINT = """\
    variants:
      champion:
        model: ${fraud_model.uri}
    rollout: {strategy: canary, steps: [30, 100], wait: 1s}
    rollback: {min_requests: 5}"""
"""The endpoint's fields (written into STACK as they are)."""
EXPERIMENT = "fraud-ab"
AB_ENDPOINT = """\
    variants:
      champion: {model: "${fraud_model.uri}", weight: 50}
      challenger: {model: "ray://models/fraud_model/1", weight: 50}
    rollout: {strategy: all_at_once, wait: 0s}
    rollback: {min_requests: 0}
    experiment: {name: EXPERIMENT, key: user_id, mde: 0.3, baseline: 0.5}
""".replace("EXPERIMENT", EXPERIMENT).rstrip()
BETTER_THAN = """\
      - metric: auc
        better_than: champion
        margin: {margin}"""
ASSIGNED: dict[str, str] = {}
"""User key -> the variant the experiment's router answered it with (for the restart)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write(stack_dir: Path, cluster, serve_port: int, seed: int, gates: str = "",
          endpoint: str = ENDPOINT) -> None:
    from mlform.engine.scaffold import write_sample_data

    storage = cluster.storage / stack_dir.name
    storage.mkdir(exist_ok=True)
    (stack_dir / "mlform.yaml").write_text(STACK.format(
        address=cluster.address, storage=storage, serve_port=serve_port, gates=gates,
        endpoint=endpoint))
    write_sample_data(stack_dir / "data" / "transactions.csv", rows=600, seed=seed)


def ok(run_mlform, args: list, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    proc = run_mlform(args, cwd, **kwargs)
    assert proc.returncode == 0, (f"mlform {' '.join(map(str, args))} exited "
                                  f"{proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def resources(stack_dir: Path) -> dict:
    return json.loads((stack_dir / ".mlform" / "state.json").read_text())["resources"]


def applications(cluster, deleting: bool = False) -> dict:
    """The cluster's Serve applications, less those Serve is deleting unless `deleting`
    (a removal is asynchronous: an apply asks for it and does not wait)."""
    answer = httpx.get(f"{cluster.address}/api/serve/applications/", timeout=30)
    answer.raise_for_status()
    return {name: app for name, app in (answer.json().get("applications") or {}).items()
            if deleting or app.get("status") != "DELETING"}


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


def test_scores_and_explanations_are_the_artifacts_in_the_local_providers_shapes(
        stack_dir, ray_cluster):
    from mlform.ml.artifact import load_predictor
    from mlform.ml.explain import occlusion

    url = resources(stack_dir)["fraud_endpoint"]["outputs"]["url"]
    predictor = load_predictor(_registry(stack_dir, ray_cluster) / "1" / "artifact")
    rows = instances(stack_dir, 5)

    answer = httpx.post(f"{url}/predict", timeout=30,
                        json={"instances": rows, "return": "probabilities"})

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert sorted(body) == ["classes", "id", "predictions", "probabilities", "variant"]
    assert body["classes"] == list(predictor.classes)
    for row, label, own in zip(body["probabilities"], body["predictions"],
                               predictor.predict_proba(rows), strict=True):
        assert row == pytest.approx(list(own), abs=1e-6)
        assert sum(row) == pytest.approx(1.0, abs=1e-6)
        assert body["classes"][row.index(max(row))] == label
    assert body["predictions"] == predictor.predict(rows)
    # logged with its scores: what the monitor's output drift compares
    logged = _wait_logged(stack_dir, ray_cluster, "requests.jsonl", body["id"])
    assert logged["scores"] == body["probabilities"]
    assert logged["predictions"] == body["predictions"]
    wrong = httpx.post(f"{url}/predict", json={"instances": rows, "return": "logits"},
                       timeout=30)
    assert (wrong.status_code, wrong.json()["error"]) == (
        400, "'return' must be one of 'labels', 'probabilities', not 'logits'")

    explained = httpx.post(f"{url}/explain", json={"instances": rows[:2]}, timeout=30)

    assert explained.status_code == 200, explained.text
    expected = occlusion(predictor, rows[:2])
    got = explained.json()
    assert {k: got[k] for k in ("method", "baseline", "variant", "model")} == {
        "method": "occlusion", "baseline": "training means", "variant": "champion",
        "model": "ray://models/fraud_model/1"}
    assert [e["prediction"] for e in got["explanations"]] == \
        [e["prediction"] for e in expected]
    for mine, theirs in zip(got["explanations"], expected, strict=True):
        assert mine["score"] == pytest.approx(theirs["score"], abs=1e-6)
        assert mine["attributions"] == pytest.approx(theirs["attributions"], abs=1e-6)
    too_many = httpx.post(f"{url}/explain", json={"instances": rows * 21}, timeout=30)
    assert (too_many.status_code, too_many.json()["error"]) == (
        400, "at most 100 instances can be explained in one request; this one has 105")


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


def test_a_better_than_champion_gate_fails_a_run_worse_than_the_champion_by_its_margin(
        stack_dir, ray_cluster, run_mlform):
    write(stack_dir, ray_cluster, _serve_port(stack_dir), seed=3,
          gates=BETTER_THAN.format(margin=1))

    failed = run_mlform(APPLY, stack_dir, timeout=400)

    assert failed.returncode == 1, failed.stdout + failed.stderr
    # judged by the core on the new run's held-out rows against the champion's artifact
    mine, theirs = _aucs(stack_dir, ray_cluster, champion=2)
    said = failed.stdout + failed.stderr
    assert (f"gate 'auc >= champion + 1' failed: measured {mine:.4f} (champion (version 2) "
            f"{theirs:.4f}, candidate {mine:.4f})") in said, said
    state = resources(stack_dir)
    assert state["fraud_model"]["outputs"]["version"] == 2
    assert state["fraud_endpoint"]["inputs"]["variants"]["champion"]["model"] == \
        "ray://models/fraud_model/2"


def test_a_better_run_passes_and_an_experiment_assigns_keys_and_shows_its_verdict(
        stack_dir, ray_cluster, run_mlform):
    from mlform.ml.experiments.assignment import assign

    mine, theirs = _aucs(stack_dir, ray_cluster, champion=2)
    margin = round(mine - theirs - 0.01, 4)  # the run beats the champion by this margin
    write(stack_dir, ray_cluster, _serve_port(stack_dir), seed=3,
          gates=BETTER_THAN.format(margin=margin), endpoint=AB_ENDPOINT)

    ok(run_mlform, APPLY, stack_dir, timeout=400)

    state = resources(stack_dir)
    model = state["fraud_model"]["outputs"]
    assert model["version"] == 3
    compared = model["gates"][1]
    assert compared["passed"], compared
    assert (compared["measured"], compared["champion"]) == (pytest.approx(mine),
                                                            pytest.approx(theirs))
    endpoint = state["fraud_endpoint"]["outputs"]
    assert endpoint["traffic"] == {"champion": 50.0, "challenger": 50.0}
    rows = instances(stack_dir, 4)
    weights = {"champion": 50, "challenger": 50}
    answered = []
    with httpx.Client(timeout=30) as http:
        for i in range(60):
            key = f"user-{i}"
            body = http.post(f"{endpoint['url']}/predict",
                             json={"instances": rows, "user_id": key}).json()
            assert body["variant"] == assign(EXPERIMENT, key, weights), (key, body)
            answered.append((key, body))
        for key, body in answered[:10]:  # the same key, the same variant
            again = http.post(f"{endpoint['url']}/predict",
                              json={"instances": rows[:1], "user_id": key}).json()
            assert again["variant"] == body["variant"]
        # the challenger is always right, the champion always wrong
        for _, body in answered:
            labels = body["predictions"] if body["variant"] == "challenger" \
                else [1 - p for p in body["predictions"]]
            sent = http.post(f"{endpoint['url']}/feedback",
                             json={"id": body["id"], "labels": labels})
            assert sent.status_code == 202, sent.text
    ASSIGNED.update({key: body["variant"] for key, body in answered})
    assert set(ASSIGNED.values()) == {"champion", "challenger"}
    _wait_logged(stack_dir, ray_cluster, "feedback.jsonl", answered[-1][1]["id"])

    shown = ok(run_mlform, ["experiment", "--no-color"], stack_dir, timeout=120)

    assert f"endpoint fraud_endpoint: experiment {EXPERIMENT}: winner: challenger" \
        in shown.stdout, shown.stdout
    verdict = resources(stack_dir)["fraud_endpoint"]["private"]["experiment"]
    challengers = sum(v == "challenger" for v in ASSIGNED.values())
    assert verdict["variants"]["challenger"]["observations"] == 4 * challengers
    # (the champion's three labels from the first test are in its log too)
    assert verdict["variants"]["champion"]["mean"] < 0.05
    # what the router measured per variant is shown beside the outcomes
    assert verdict["variants"]["challenger"]["serving"]["requests"] >= challengers
    # a refresh keeps the verdict of the experiment the endpoint runs
    ok(run_mlform, ["refresh", "--no-color"], stack_dir, timeout=120)
    assert resources(stack_dir)["fraud_endpoint"]["private"]["experiment"] == verdict


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
    endpoint = resources(stack_dir)["fraud_endpoint"]
    url = endpoint["outputs"]["url"]
    answer = httpx.post(f"{url}/predict", json={"instances": instances(stack_dir, 1)},
                        timeout=30)
    assert answer.status_code == 200, answer.text
    # the restarted router assigns every key as before
    assert ASSIGNED, "the experiment's test ran first"
    with httpx.Client(timeout=30) as http:
        for key, variant in ASSIGNED.items():
            again = http.post(f"{url}/predict", json={"instances": instances(stack_dir, 1),
                                                      "user_id": key}).json()
            assert again["variant"] == variant, key


def test_destroy_leaves_no_application(stack_dir, ray_cluster, run_mlform):
    ok(run_mlform, ["destroy", "--auto-approve", "--no-color"], stack_dir, timeout=300)

    assert [n for n in applications(ray_cluster) if n.startswith(f"mlform-{STACK_NAME}-")] == []


def _registry(stack_dir: Path, cluster) -> Path:
    return cluster.storage / stack_dir.name / STACK_NAME / "registry" / "fraud_model"


def _aucs(stack_dir: Path, cluster, champion: int) -> tuple[float, float]:
    """The AUC of the training job's latest run and of version `champion`, on the run's
    held-out rows (measured here, with the core)."""
    import pandas as pd
    from mlform.ml.artifact import load_predictor
    from mlform.ml.metrics import evaluate

    artifact = resources(stack_dir)["train"]["outputs"]["artifact"]
    run = cluster.storage / stack_dir.name / STACK_NAME / artifact.removeprefix("ray://")
    holdout = pd.read_parquet(run / "holdout.parquet")
    theirs = load_predictor(_registry(stack_dir, cluster) / str(champion) / "artifact")
    return (evaluate(load_predictor(run / "artifact"), holdout)["auc"],
            evaluate(theirs, holdout)["auc"])


def _wait_logged(stack_dir: Path, cluster, log: str, rid: str, timeout: float = 30.0) -> dict:
    """The row of request `rid` in the endpoint's `log`, once the router has written it
    (it writes every half second)."""
    import time

    path = cluster.storage / stack_dir.name / STACK_NAME / "endpoints" / ROUTER / log
    deadline = time.monotonic() + timeout
    while True:
        if path.is_file():
            for line in path.read_text().splitlines():
                row = json.loads(line)
                if row.get("id") == rid:
                    return row
        assert time.monotonic() < deadline, f"request {rid} is not in {path}"
        time.sleep(0.2)


def _serve_port(stack_dir: Path) -> int:
    import yaml

    spec = yaml.safe_load((stack_dir / "mlform.yaml").read_text())
    return int(spec["providers"]["gpu"]["serve_port"])


def _wait_gone(cluster, name: str, timeout: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while name in applications(cluster, deleting=True):
        assert time.monotonic() < deadline, f"{name} was not removed"
        time.sleep(0.5)
