"""The azure paths the lifecycle e2e does not drive, through the installed `mlform`
command on the Azure ML fake and Azurite: a batch job (a command job scoring the dataset
in chunks) writing one prediction per row, a monitor tick (`mlform watch --once`) over
the endpoint's request log in blob giving the local provider's drift numbers for the same
rows, and a canary rollout that passes every step and deletes the old deployment once the
new one serves 100%.

The steps share one stack (training is the slow part) and run in file order.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.ai.ml  # noqa: F401  imported before any MLClient names the fake's cloud
import pytest
import requests
from conftest import provider_env, provider_settings
from mlform.providers.azure.naming import asset_name, deployment_name, endpoint_name
from test_azure_cli_e2e import Env

pytestmark = pytest.mark.e2e

STACK = "fraud-azb"
CSV = "amount,age,is_fraud\n" + "".join(
    f"{i * 3.5 % 97},{20 + i % 40},{int(i % 7 == 0)}\n" for i in range(60))
NEW_CSV = CSV + "".join(f"{i * 1.5 % 89},{25 + i % 30},{int(i % 5 == 0)}\n"
                        for i in range(60, 90))
ENDPOINT = endpoint_name(STACK, "fraud_endpoint")
MODEL = asset_name(STACK, "fraud_model")
# what the endpoint is sent: shifted well away from the training data, so drift shows
ROWS = [[200.0 + i * 7.0, 70 + i % 5] for i in range(24)]


def spec(aml: Any, azurite: Any) -> str:
    settings = json.dumps(provider_settings(aml, azurite, log_flush_seconds=0.2))
    return f"""\
version: 1
stack: {STACK}
providers:
  azure: {settings}
resources:
  transactions:
    type: dataset
    source: data/transactions.csv
  train:
    type: training_job
    dataset: ${{transactions.uri}}
    algorithm: mlp_classifier
    target: is_fraud
    hyperparameters: {{epochs: 1, lr: 0.01}}
  fraud_model:
    type: model
    artifact: ${{train.artifact}}
  fraud_endpoint:
    type: endpoint
    variants:
      champion:
        model: ${{fraud_model.uri}}
        weight: 100
    rollout: {{strategy: canary, steps: [50, 100], wait: 2s}}
    rollback: {{max_error_rate: 0.05, min_requests: 0}}
  scores:
    type: batch_job
    model: ${{fraud_model.uri}}
    dataset: ${{transactions.uri}}
    chunk_rows: 7
  drift_monitor:
    type: monitor
    endpoint: ${{fraud_endpoint.id}}
    reference: ${{transactions.uri}}
    min_rows: 1
    schedule: 1s
"""


@pytest.fixture(scope="module")
def env(aml, azurite, tmp_path_factory, stack_writer, run_mlform) -> Iterator[Env]:
    stack = stack_writer(tmp_path_factory.mktemp("azure-batch"), spec(aml, azurite))
    (stack / "data").mkdir()
    (stack / "data" / "transactions.csv").write_text(CSV)
    with pytest.MonkeyPatch.context() as mp:
        for name, value in provider_env(aml, azurite).items():
            mp.setenv(name, value)
        yield Env(aml, azurite, stack, run_mlform)
        mp.delenv("AZUREML_CURRENT_CLOUD", raising=False)


def state(env: Env) -> dict[str, Any]:
    return json.loads(env.ok("show", "--json").stdout)


def outputs(env: Env, name: str) -> dict[str, Any]:
    return dict(json.loads(env.ok("show", name, "--json").stdout)["outputs"])


def blob_text(env: Env, uri: str) -> str:
    """A datastore uri's blob, read straight from Azurite."""
    key = uri.split("/paths/", 1)[1]
    client = env.azurite.client().get_container_client(env.aml.container)
    return client.download_blob(key).readall().decode()


def send(env: Env, rows: list[list[float]]) -> None:
    key = env.ml.online_endpoints.get_keys(ENDPOINT).primary_key
    url = env.ml.online_endpoints.get(ENDPOINT).scoring_uri
    for row in rows:
        got = requests.post(url, json={"instances": [row]},
                            headers={"Authorization": f"Bearer {key}"},
                            verify=str(env.aml.ca_bundle), timeout=60)
        assert got.status_code == 200, got.text


def test_apply_scores_every_row_in_a_batch_job(env):
    env.ok("apply", "--auto-approve")
    got = outputs(env, "scores")
    uri = got["output_uri"]
    lines = [json.loads(line) for line in
             blob_text(env, uri.rstrip("/") + "/predictions.jsonl").splitlines()]
    assert [line["row"] for line in lines] == list(range(60))
    assert all(line["prediction"] in (0, 1) for line in lines), lines[:3]
    assert got.get("rows") == 60, got
    second = env.mlform("plan", "--detailed-exitcode")
    assert second.returncode == 0, second.stdout + second.stderr


def test_a_watch_tick_evaluates_the_request_log_as_local_does(env, tmp_path):
    send(env, ROWS)
    got = env.ok("watch", "--once", "--no-color", timeout=300)
    last = outputs(env, "drift_monitor")["last_evaluation"]
    assert last is not None, got.stdout + got.stderr
    stored = json.loads(blob_text(env, last["evaluation"]))
    want = local_evaluation(env, tmp_path, stored)
    assert stored["drift"] == want["drift"], (stored["drift"], want["drift"])
    assert (stored["features"], stored["rows"]) == (want["features"], want["rows"])
    assert stored["rows"]["current"] == len(ROWS), stored["rows"]
    assert last["verdict"] == want["verdict"] == "drift", last
    assert "amount" in last["drifted_features"], last


def test_a_canary_that_passes_every_step_deletes_the_old_deployment(env):
    (env.stack / "data" / "transactions.csv").write_text(NEW_CSV)
    old = deployment_name("champion", f"azureml:{MODEL}:1")
    new = deployment_name("champion", f"azureml:{MODEL}:2")
    seen: list[dict[str, int]] = []
    stop = threading.Event()

    def watch_traffic() -> None:  # each step holds its split for the rollout's 2s wait
        while not stop.is_set():
            with contextlib.suppress(Exception):
                split = dict(env.ml.online_endpoints.get(ENDPOINT).traffic)
                if not seen or seen[-1] != split:
                    seen.append(split)
            time.sleep(0.2)

    watcher = threading.Thread(target=watch_traffic, daemon=True)
    watcher.start()
    try:
        got = env.ok("apply", "--auto-approve")
    finally:
        stop.set()
        watcher.join()
    text = got.stdout + got.stderr
    assert {old: 50, new: 50} in seen and seen[-1] == {new: 100}, seen
    # the old deployment goes only once the new one serves everything
    assert f"deleting deployment {old}" in text.split("canary step 100%", 1)[1], text
    assert env.ml.online_endpoints.get(ENDPOINT).traffic == {new: 100}
    assert {d.name for d in env.ml.online_deployments.list(ENDPOINT)} == {new}
    assert outputs(env, "fraud_endpoint")["traffic"] == {"champion": 100.0}
    assert outputs(env, "scores")["rows"] == 90
    env.ok("destroy", "--auto-approve")

def local_evaluation(env: Env, tmp_path: Path, stored: dict[str, Any]) -> dict[str, Any]:
    """What the local provider's monitor makes of the same rows: its request log read by
    its own reader, the reference sampled as it samples it, the same settings."""
    import io

    import pandas as pd
    from mlform.engine.spec.models import Monitor
    from mlform.ml.monitoring.evaluate import evaluate, sample_reference
    from mlform.ml.serving.reqlog import request_line
    from mlform.ml.serving.traffic import REQUEST_LOGS, read_traffic

    monitor = Monitor.model_validate({"type": "monitor", "endpoint": stored["endpoint"],
                                      "reference": stored["reference"], "min_rows": 1,
                                      "schedule": "1s"})
    log = b"\n".join(request_line((1000.0 + i, f"r-{i}", "champion", "m", ["amount", "age"],
                                   [row], None, "[0]")) for i, row in enumerate(ROWS))
    (tmp_path / REQUEST_LOGS[-1]).write_bytes(log + b"\n")
    reference = sample_reference(pd.read_csv(io.StringIO(CSV)))
    return evaluate(monitor, read_traffic(tmp_path), reference, stored["t"],
                    name="drift_monitor")
