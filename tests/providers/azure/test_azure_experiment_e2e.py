"""An A/B experiment on an Azure ML managed online endpoint, through the installed `mlform`
command on the Azure ML fake and Azurite: two variants (two deployments) split 50/50;
half the requests go by the endpoint's traffic (drawn at random), half are pinned by the
client to the variant `mlform.ml.experiments.assignment.assign` gives its user, with the
`azureml-model-deployment` header (sticky assignment on azure). The scoring script's
request log in blob names the deployment; labels uploaded where the monitors read ground
truth carry a planted difference; `mlform watch --once` records the verdict (`winner`),
audits it and promotes the winner; `mlform experiment` prints it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.ai.ml  # noqa: F401  imported before any MLClient names the fake's cloud
import pytest
import requests
from conftest import provider_env, provider_settings
from mlform.ml.experiments.assignment import assign
from mlform.providers.azure.naming import endpoint_name
from test_azure_cli_e2e import Env

pytestmark = pytest.mark.e2e

STACK = "exp-az"
ENDPOINT = endpoint_name(STACK, "scorer")
CSV = "amount,age,is_fraud\n" + "".join(
    f"{i * 3.5 % 97},{20 + i % 40},{int(i * 3.5 % 97 > 60)}\n" for i in range(60))
REQUESTS = 80
"""Each variant gets the 20 the test needs (mde 0.4 from 0.5) but for a chance of about
1e-5: half the requests drawn 50/50 by the endpoint, half pinned by a fair hash."""
WEIGHTS = {"current": 50, "challenger": 50}


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
  scorer:
    type: endpoint
    variants:
      current: {{model: "${{fraud_model.uri}}", weight: 50}}
      challenger: {{model: "${{fraud_model.uri}}", weight: 50}}
    experiment:
      name: az-ab-1
      key: user_id
      control: current
      mde: 0.4
      baseline: 0.5
      promote_winner: true
"""


@pytest.fixture(scope="module")
def aml(azurite, tmp_path_factory):
    """A fake of its own (its own container), whose scoring hosts may take minutes to load
    a model on a loaded CI machine."""
    from aml_fake import start_aml_fake

    fake = start_aml_fake(azurite, tmp_path_factory.mktemp("aml-exp"),
                          container="azureml-exp", deploy_timeout=300)
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def env(aml, azurite, tmp_path_factory, stack_writer, run_mlform) -> Iterator[Env]:
    stack = stack_writer(tmp_path_factory.mktemp("azure-exp"), spec(aml, azurite))
    (stack / "data").mkdir()
    (stack / "data" / "transactions.csv").write_text(CSV)
    with pytest.MonkeyPatch.context() as mp:
        for name, value in provider_env(aml, azurite).items():
            mp.setenv(name, value)
        yield Env(aml, azurite, stack, run_mlform)
        mp.delenv("AZUREML_CURRENT_CLOUD", raising=False)


def recorded(stack: Path) -> dict[str, Any]:
    """The endpoint's outputs and private data as the state records them."""
    scorer = json.loads((stack / ".mlform" / "state.json").read_text())["resources"]["scorer"]
    return {**scorer.get("private", {}), **scorer.get("outputs", {})}


def test_an_azure_ml_experiment_finds_the_planted_winner(env):
    applied = env.ok("apply", "--auto-approve", "--no-color")
    assert "'experiment.key' has no effect on provider 'azure'" in applied.stdout, \
        applied.stdout
    deployments = recorded(env.stack)["deployments"]
    variant_of = {d: v for v, d in deployments.items()}
    assert set(deployments) == {"current", "challenger"}, deployments

    key = env.ml.online_endpoints.get_keys(ENDPOINT).primary_key
    url = env.ml.online_endpoints.get(ENDPOINT).scoring_uri
    seen: dict[str, int] = {}
    labels = []
    for i in range(REQUESTS):
        headers = {"Authorization": f"Bearer {key}"}
        pinned = assign("az-ab-1", f"u{i}", WEIGHTS) if i % 2 else None
        if pinned:
            headers["azureml-model-deployment"] = deployments[pinned]
        got = requests.post(url, json={"instances": [[70.0 + i % 20, 30]],
                                       "parameters": {"id": f"q{i}"}},
                            headers=headers, verify=str(env.aml.ca_bundle), timeout=60)
        assert got.status_code == 200, got.text
        variant = variant_of[got.headers["azureml-model-deployment"]]
        assert pinned in (None, variant), (pinned, variant)
        k = seen[variant] = seen.get(variant, -1) + 1
        # the challenger is right 19 times in 20, the control every other time
        right = k % 20 != 19 if variant == "challenger" else k % 2 == 0
        predicted = int(got.json()["predictions"][0])
        labels.append({"id": f"q{i}", "labels": [predicted if right else 1 - predicted]})
    assert min(seen.values()) >= 19, seen  # (0-based counts) each variant had its 20

    container = env.azurite.client().get_container_client(env.aml.container)
    deadline = time.monotonic() + 30
    while _lines(container) < REQUESTS and time.monotonic() < deadline:
        time.sleep(0.2)  # the scoring scripts flush their logs every 0.2 s
    assert _lines(container) == REQUESTS
    logged = [b.name for b in container.list_blobs() if f"/requests/{ENDPOINT}/" in b.name]
    root = logged[0].split(f"/requests/{ENDPOINT}/", 1)[0]
    container.upload_blob(f"{root}/ground-truth/{ENDPOINT}/labels.jsonl",
                          "".join(json.dumps(line) + "\n" for line in labels))

    try:
        watched = env.ok("watch", "--once", "--no-color")
        assert re.search(r"scorer: experiment az-ab-1 \(accuracy\): winner challenger "
                         r"\(challenger: n=20/20", watched.stdout), watched.stdout
        assert "promoting variant 'challenger'" in watched.stdout, watched.stdout
        audit = [json.loads(line) for line in
                 (env.stack / ".mlform" / "audit.jsonl").read_text().splitlines()]
        decided = [e for e in audit if e["command"] == "experiment: scorer"]
        assert [e["result"] for e in decided] == ["winner"], decided
        assert any(e["command"] == "experiment: scorer promote" for e in audit)
        # the promotion refreshed and updated the endpoint: both kept the recorded verdict
        now = recorded(env.stack)
        assert now["traffic"] == {"challenger": 100.0}, now["traffic"]
        assert now["experiment"]["winner"] == "challenger", now.get("experiment")
        # beside the outcomes, what the platform's metrics saw of each variant
        served = {v: row["serving"].get("requests") for v, row in
                  now["experiment"]["variants"].items()}
        assert all(served.values()), served

        shown = env.ok("experiment", "--no-color")
        assert "endpoint scorer: experiment az-ab-1: winner: challenger" in shown.stdout, \
            shown.stdout
    finally:
        env.ml.online_endpoints.begin_delete(name=ENDPOINT).result()


def _lines(container: Any) -> int:
    return sum(len(container.download_blob(b.name).readall().splitlines())
               for b in container.list_blobs() if f"/requests/{ENDPOINT}/" in b.name)
