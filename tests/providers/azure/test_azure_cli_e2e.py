"""The contract's example stack on the `azure` provider, through the installed `mlform`
command, against the Azure ML fake (ARM + workspace REST, https) and a real Azurite:

apply (killed with SIGKILL while its training job is queued, then applied again: the job
is adopted, not started twice), a second plan empty, an out-of-band traffic change and a
deleted deployment reported by `drift` and restored by apply, new data planning a retrain
and a canary, a canary step judged on Azure Monitor's metrics rolling back on injected
errors and opening an incident, and destroy leaving nothing tagged in the workspace.

The steps share one stack (training is the slow part) and run in file order.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.ai.ml  # noqa: F401  imported before any MLClient names the fake's cloud
import pytest
import requests
from conftest import provider_env, provider_settings
from mlform.providers.azure.naming import (
    STACK_TAG,
    asset_name,
    deployment_name,
    endpoint_name,
)

pytestmark = pytest.mark.e2e

STACK = "fraud-az"
CSV = "amount,age,is_fraud\n" + "".join(
    f"{i * 3.5 % 97},{20 + i % 40},{int(i % 7 == 0)}\n" for i in range(60))
NEW_CSV = CSV + "".join(f"{i * 1.5 % 89},{25 + i % 30},{int(i % 5 == 0)}\n"
                        for i in range(60, 90))
ENDPOINT = endpoint_name(STACK, "fraud_endpoint")
MODEL = asset_name(STACK, "fraud_model")


def spec(aml: Any, azurite: Any) -> str:
    settings = json.dumps(provider_settings(aml, azurite, log_flush_seconds=0.5))
    return f"""\
version: 1
stack: {STACK}
providers:
  azure: {settings}
variables:
  min_auc: {{type: number, default: 0.0}}
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
    gates:
      - metric: auc
        min: ${{var.min_auc}}
  fraud_endpoint:
    type: endpoint
    variants:
      champion:
        model: ${{fraud_model.uri}}
        weight: 100
    rollout: {{strategy: canary, steps: [10, 50, 100], wait: 0s}}
    rollback: {{max_error_rate: 0.05, min_requests: 3, evidence_timeout: 90s}}
outputs:
  url: {{value: "${{fraud_endpoint.url}}"}}
"""


class Env:
    """The stack, the command's environment, and the test's own view of the workspace."""

    def __init__(self, aml: Any, azurite: Any, stack: Path, run_mlform: Any):
        self.aml, self.azurite, self.stack, self.run = aml, azurite, stack, run_mlform
        self.env = provider_env(aml, azurite)
        self.ml = aml.ml_client()

    def mlform(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return self.run(list(args), self.stack, env=self.env, timeout=timeout)

    def ok(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        got = self.mlform(*args, timeout=timeout)
        assert got.returncode == 0, f"mlform {' '.join(args)}\n{got.stdout}\n{got.stderr}"
        return got

    def arm(self, path: str) -> dict[str, Any]:
        got = requests.get(f"{self.aml.url}{path}", params={"api-version": "2024-04-01"},
                           headers={"Authorization": f"Bearer {self.env['AZURE_ACCESS_TOKEN']}"},
                           verify=str(self.aml.ca_bundle), timeout=30)
        got.raise_for_status()
        return dict(got.json())

    def jobs(self, resource: str) -> list[str]:
        listed = self.arm(f"{self.ws}/jobs").get("value", [])
        return [j["name"] for j in listed
                if (j["properties"].get("tags") or {}).get("mlform-resource") == resource
                and (j["properties"].get("tags") or {}).get(STACK_TAG) == STACK]

    @property
    def ws(self) -> str:
        return (f"/subscriptions/{self.aml.subscription}/resourceGroups/"
                f"{self.aml.resource_group}/providers/Microsoft.MachineLearningServices/"
                f"workspaces/{self.aml.workspace_name}")

    def champion(self, version: int) -> str:
        return deployment_name("champion", f"azureml:{MODEL}:{version}")


@pytest.fixture(scope="module")
def aml(azurite, tmp_path_factory):
    """A fake of its own for this module (its own container), whose deployments may take
    minutes to load a model: on a loaded CI machine a scoring host imports torch slowly."""
    from aml_fake import start_aml_fake

    fake = start_aml_fake(azurite, tmp_path_factory.mktemp("aml-e2e"),
                          container="azureml-e2e", deploy_timeout=300)
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def env(aml, azurite, tmp_path_factory, stack_writer, run_mlform) -> Iterator[Env]:
    stack = stack_writer(tmp_path_factory.mktemp("azure-e2e"), spec(aml, azurite))
    (stack / "data").mkdir()
    (stack / "data" / "transactions.csv").write_text(CSV)
    with pytest.MonkeyPatch.context() as mp:
        for name, value in provider_env(aml, azurite).items():
            mp.setenv(name, value)
        yield Env(aml, azurite, stack, run_mlform)
        # MLClient(cloud=...) wrote the fake's cloud name to os.environ
        mp.delenv("AZUREML_CURRENT_CLOUD", raising=False)


def test_an_apply_killed_while_training_is_adopted_not_run_twice(env, spawn_mlform):
    env.aml.hold_jobs(True)
    try:
        proc = spawn_mlform(["apply", "--auto-approve"], env.stack, env=env.env)
        deadline = time.monotonic() + 300
        while not env.jobs("train") and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.5)
        assert env.jobs("train"), "the training job never appeared"
        proc.kill()  # SIGKILL: no cleanup, the journal holds the intent
        proc.wait()
    finally:
        env.aml.hold_jobs(False)
    got = env.ok("apply", "--auto-approve")
    assert re.search(r"train: .*adopt", got.stdout), got.stdout
    assert len(env.jobs("train")) == 1


def test_a_second_plan_is_empty(env):
    got = env.mlform("plan", "--detailed-exitcode")
    assert got.returncode == 0, got.stdout + got.stderr


def _logged(env: Env, ids: set[str], timeout: float = 30.0) -> dict[str, dict]:
    """The request log's lines for `ids`, once the scoring script has flushed them."""
    container = env.azurite.client().get_container_client(env.aml.container)
    deadline = time.monotonic() + timeout
    found: dict[str, dict] = {}
    while True:
        for listed in container.list_blobs(name_starts_with=f"mlform/{STACK}/requests/"):
            data = container.download_blob(listed.name).readall()
            for line in data.splitlines():
                record = json.loads(line)
                if record["id"] in ids:
                    found[record["id"]] = record
        if set(found) == ids or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_score_answers_probabilities_and_explanations_and_logs_the_scores(env):
    key = env.ml.online_endpoints.get_keys(ENDPOINT).primary_key
    url = env.ml.online_endpoints.get(ENDPOINT).scoring_uri
    instances = [[10.0, 30], [50.0, 41], [90.0, 25]]

    def score(body: dict) -> dict:
        got = requests.post(url, json={"instances": instances, **body},
                            headers={"Authorization": f"Bearer {key}"},
                            verify=str(env.aml.ca_bundle), timeout=30)
        assert got.status_code == 200, got.text
        return dict(got.json())

    labels = score({})
    scored = score({"return": "probabilities", "parameters": {"id": "p-top"}})
    nested = score({"parameters": {"id": "p-nested", "return": "probabilities"}})
    assert "probabilities" not in labels
    for answer in (scored, nested):
        assert answer["classes"] == [0, 1]
        assert answer["probabilities"] == scored["probabilities"]
        for row, label in zip(answer["probabilities"], answer["predictions"], strict=True):
            assert sum(row) == pytest.approx(1.0, abs=1e-6)
            assert label == answer["classes"][max(range(len(row)), key=row.__getitem__)]
        assert answer["predictions"] == labels["predictions"]
    explained = score({"explain": True})
    assert (explained["method"], explained["variant"]) == ("occlusion", env.champion(1))
    for found, label, row in zip(explained["explanations"], labels["predictions"],
                                 scored["probabilities"], strict=True):
        assert found["prediction"] == label  # explains the answer the endpoint gives
        assert found["score"] == pytest.approx(max(row), rel=1e-6)
        assert set(found["attributions"]) == {"amount", "age"}
    logged = _logged(env, {"p-top", "p-nested"})
    assert set(logged) == {"p-top", "p-nested"}, logged
    assert logged["p-top"]["scores"] == logged["p-nested"]["scores"] == scored["probabilities"]


def test_an_out_of_band_traffic_change_is_drift_and_apply_restores_it(env):
    endpoint = env.ml.online_endpoints.get(ENDPOINT)
    endpoint.traffic = {env.champion(1): 0}
    env.ml.online_endpoints.begin_create_or_update(endpoint).result()
    got = env.mlform("drift")
    assert got.returncode == 2, got.stdout + got.stderr
    assert "fraud_endpoint" in got.stdout and "weight" in got.stdout, got.stdout
    env.ok("apply", "--auto-approve")
    assert env.ml.online_endpoints.get(ENDPOINT).traffic == {env.champion(1): 100}
    env.ok("drift")


def test_a_deleted_deployment_is_drift_and_apply_restores_it(env):
    # as on the service, a deployment is deleted only once it takes no traffic
    endpoint = env.ml.online_endpoints.get(ENDPOINT)
    endpoint.traffic = {}
    env.ml.online_endpoints.begin_create_or_update(endpoint).result()
    env.ml.online_deployments.begin_delete(env.champion(1), ENDPOINT).result()
    got = env.mlform("drift")
    assert got.returncode == 2, got.stdout + got.stderr
    assert "fraud_endpoint" in got.stdout and "deployment deleted" in got.stdout, got.stdout
    env.ok("apply", "--auto-approve")
    assert {d.name for d in env.ml.online_deployments.list(ENDPOINT)} == {env.champion(1)}
    env.ok("drift")


def test_new_data_plans_a_retrain_and_a_canary(env):
    (env.stack / "data" / "transactions.csv").write_text(NEW_CSV)
    got = env.mlform("plan", "--detailed-exitcode")
    assert got.returncode == 2, got.stdout + got.stderr
    assert re.search(r"training_job\.train must be replaced", got.stdout), got.stdout
    assert re.search(r"endpoint\.fraud_endpoint will be updated", got.stdout), got.stdout


def test_errors_on_the_canary_roll_it_back_and_open_an_incident(env):
    key = env.ml.online_endpoints.get_keys(ENDPOINT).primary_key
    url = env.ml.online_endpoints.get(ENDPOINT).scoring_uri
    new = env.champion(2)
    env.aml.inject_errors(ENDPOINT, new, 1.0)
    stop = threading.Event()

    def traffic() -> None:
        body = {"instances": [[10.0, 30]]}
        while not stop.is_set():
            with contextlib.suppress(requests.RequestException):
                requests.post(url, json=body, headers={"Authorization": f"Bearer {key}"},
                              verify=str(env.aml.ca_bundle), timeout=10)
            time.sleep(0.05)

    sender = threading.Thread(target=traffic, daemon=True)
    sender.start()
    try:
        got = env.mlform("apply", "--auto-approve")
    finally:
        stop.set()
        sender.join()
        env.aml.inject_errors(ENDPOINT, new, 0.0)
    assert got.returncode == 1, got.stdout + got.stderr
    assert "rolled back at canary step 10%" in got.stdout + got.stderr, got.stdout + got.stderr
    assert env.ml.online_endpoints.get(ENDPOINT).traffic == {env.champion(1): 100}
    assert {d.name for d in env.ml.online_deployments.list(ENDPOINT)} == {env.champion(1)}
    incidents = env.ok("incidents", "list").stdout
    assert re.search(r"open\s+rollback\s+.*fraud_endpoint", incidents), incidents


def test_destroy_leaves_nothing_tagged(env):
    env.ok("destroy", "--auto-approve")
    assert [j for j in env.ml.jobs.list() if (j.tags or {}).get(STACK_TAG) == STACK] == []
    assert [e for e in env.ml.online_endpoints.list()
            if (e.tags or {}).get(STACK_TAG) == STACK] == []
    for listing in (env.ml.models, env.ml.data):
        for asset in listing.list():
            assert [v for v in listing.list(name=asset.name)
                    if (v.tags or {}).get(STACK_TAG) == STACK] == []
    drift = env.mlform("drift")  # the spec is not applied now: only that is reported
    assert drift.returncode == 2 and "orphan" not in drift.stdout.lower(), drift.stdout
    assert "cannot list owned resources" not in drift.stderr, drift.stderr
