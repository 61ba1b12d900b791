"""An A/B experiment on a Vertex AI endpoint, through the installed `mlform` command on the
Vertex AI fake and the GCS emulator: two variants split 50/50 (Vertex AI draws each
request's deployed model at random), requests answered by the real serving container
(its request log in GCS names the deployed model), labels uploaded where the monitors
read ground truth with a planted difference between the variants; `mlform watch --once`
records the verdict (`winner`), audits it and promotes the winner through the rollout;
`mlform experiment` prints it, and a refresh keeps it.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import pytest
from gcp_stack import write_stack

pytestmark = pytest.mark.e2e

ENDPOINT = """\
  scorer:
    type: endpoint
    variants:
      current: {model: "${fraud_model.uri}", weight: 50}
      challenger: {model: "${fraud_model.uri}", weight: 50}
    experiment:
      name: gcp-ab-1
      key: user_id
      control: current
      mde: 0.4
      baseline: 0.5
      promote_winner: true
"""
REQUESTS = 80
"""50/50 at random: each variant gets the 20 the test needs (mde 0.4 from 0.5) but for a
chance of about 1e-5."""


def ok(run_mlform, args: list[str], stack: Path):
    done = run_mlform(args, stack, timeout=300)
    assert done.returncode == 0, f"mlform {' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done


def test_a_vertex_ai_experiment_finds_the_planted_winner(gcs, vertex, tmp_path, run_mlform):
    from google.cloud.aiplatform_v1 import PredictionServiceClient

    bucket = f"mlform-exp-{uuid.uuid4().hex[:10]}"
    gcs.create_bucket(bucket)
    stack = write_stack(tmp_path / "stack", gcs, vertex, bucket,
                        stack=f"exp-{uuid.uuid4().hex[:6]}", extra=ENDPOINT)
    applied = ok(run_mlform, ["apply", "--auto-approve", "--no-color"], stack)
    assert "'experiment.key' has no effect on provider 'vertex'" in applied.stdout, \
        applied.stdout

    recorded = _recorded(stack)
    name = recorded["endpoint"]
    variant_of = {str(i): v for v, i in recorded["deployed"].items()}
    assert set(variant_of.values()) == {"current", "challenger"}
    client = vertex.client(PredictionServiceClient)
    seen: dict[str, int] = {}
    labels = []
    for i in range(REQUESTS):
        got = client.predict(endpoint=name, instances=[[70.0 + i % 20, 30]],
                             parameters={"id": f"q{i}"})
        variant = variant_of[got.deployed_model_id]
        k = seen[variant] = seen.get(variant, -1) + 1
        # the challenger is right 19 times in 20, the control every other time
        right = k % 20 != 19 if variant == "challenger" else k % 2 == 0
        predicted = int(got.predictions[0])
        labels.append({"id": f"q{i}", "labels": [predicted if right else 1 - predicted]})
    assert min(seen.values()) >= 19, seen  # (0-based counts) each variant had its 20

    eid = name.rsplit("/", 1)[-1]
    storage = gcs.client().bucket(bucket)
    logged = f"mlform/{_stack(stack)}/requests/{eid}/"
    deadline = time.monotonic() + 30
    while _lines(storage, logged) < REQUESTS and time.monotonic() < deadline:
        time.sleep(0.2)  # the containers flush their logs every 0.5 s
    assert _lines(storage, logged) == REQUESTS
    storage.blob(f"mlform/{_stack(stack)}/ground-truth/{eid}/labels.jsonl").upload_from_string(
        "".join(json.dumps(line) + "\n" for line in labels))

    try:
        watched = ok(run_mlform, ["watch", "--once", "--no-color"], stack)
        assert re.search(r"scorer: experiment gcp-ab-1 \(accuracy\): winner challenger "
                         r"\(challenger: n=20/20", watched.stdout), watched.stdout
        assert "promoting variant 'challenger'" in watched.stdout, watched.stdout
        audit = [json.loads(line) for line in
                 (stack / ".mlform" / "audit.jsonl").read_text().splitlines()]
        decided = [e for e in audit if e["command"] == "experiment: scorer"]
        assert [e["result"] for e in decided] == ["winner"], decided
        assert any(e["command"] == "experiment: scorer promote" for e in audit)
        # the promotion refreshed and updated the endpoint: both kept the recorded verdict
        recorded = _recorded(stack)
        assert recorded["traffic"] == {"challenger": 100.0}, recorded["traffic"]
        assert recorded["experiment"]["winner"] == "challenger", recorded.get("experiment")
        # beside the outcomes, what the platform's metrics saw of each variant
        served = {v: row["serving"].get("requests") for v, row in
                  recorded["experiment"]["variants"].items()}
        assert all(served.values()), served
        means = {v: row["mean"] for v, row in recorded["experiment"]["variants"].items()}
        assert means["challenger"] > means["current"], means

        shown = ok(run_mlform, ["experiment", "--no-color"], stack)
        assert "endpoint scorer: experiment gcp-ab-1: winner: challenger" in shown.stdout, \
            shown.stdout
    finally:
        _undeploy(vertex, name)


def _recorded(stack: Path) -> dict:
    """The endpoint's outputs and private data as the state records them."""
    scorer = json.loads((stack / ".mlform" / "state.json").read_text())["resources"]["scorer"]
    return {**scorer.get("private", {}), **scorer.get("outputs", {})}


def _stack(stack: Path) -> str:
    text = (stack / "mlform.yaml").read_text()
    return re.search(r"^stack: (\S+)$", text, re.M).group(1)


def _lines(storage, prefix: str) -> int:
    return sum(len(blob.download_as_bytes().splitlines())
               for blob in storage.client.list_blobs(storage.name, prefix=prefix))


def _undeploy(vertex, name: str) -> None:
    """Stop the endpoint's serving containers (the fake is the session's): quicker than a
    `mlform destroy`, which the gcp lifecycle tests cover."""
    from google.cloud.aiplatform_v1 import EndpointServiceClient

    client = vertex.client(EndpointServiceClient)
    endpoint = client.get_endpoint(name=name)
    client.update_endpoint(endpoint={"name": name, "traffic_split": {}},
                           update_mask={"paths": ["traffic_split"]})
    for deployed in endpoint.deployed_models:
        client.undeploy_model(endpoint=name, deployed_model_id=deployed.id).result(timeout=60)
