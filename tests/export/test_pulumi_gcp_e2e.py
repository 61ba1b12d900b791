"""`mlform export pulumi` on the contract's example stack applied on Vertex AI (the Vertex
fake and the GCS emulator of tests/providers/gcp): the program, run under Pulumi's mocks,
adopts the live endpoint with the labels, display name and traffic split Vertex AI
reports, and its header names what pulumi-gcp cannot hold (the model, its deployment,
the custom job, the dataset's object)."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

_GCP_TESTS = Path(__file__).resolve().parents[1] / "providers" / "gcp"


@pytest.fixture(scope="module")
def fakes():
    if str(_GCP_TESTS) not in sys.path:  # gcp_stack imports the fakes by name
        sys.path.insert(0, str(_GCP_TESTS))
    import gcp_stack

    return gcp_stack.shared_fakes()


def test_the_program_adopts_the_live_vertex_endpoint(pulumi_mocks, fakes, tmp_path):
    import gcp_stack
    from google.cloud.aiplatform_v1 import EndpointServiceClient

    gcs, vertex, bucket = fakes
    name = f"export-{uuid.uuid4().hex[:6]}"
    stack = gcp_stack.write_stack(tmp_path / "stack", gcs, vertex, bucket, stack=name,
                                  extra=gcp_stack.ENDPOINT)
    done = gcp_stack.mlform(["apply", "--auto-approve", "--no-color"], stack)
    assert done.returncode == 0, done.stdout + done.stderr
    out = tmp_path / "infra"
    done = gcp_stack.mlform(["export", "pulumi", str(stack), "--out", str(out)], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    declared = pulumi_mocks(out, tmp_path)

    state = json.loads(gcp_stack.mlform(["show", "fraud_endpoint", "--json"], stack).stdout)
    live = vertex.client(EndpointServiceClient).get_endpoint(
        name=state["private"]["endpoint"])
    [provider] = [r for r in declared if r["type"] == "pulumi:providers:gcp"]
    assert (provider["inputs"]["project"], provider["inputs"]["region"]) == \
        (vertex.project, vertex.region)
    [endpoint] = [r for r in declared if r["type"] == "gcp:vertex/aiEndpoint:AiEndpoint"]
    assert len(declared) == 2
    endpoint_id = live.name.rsplit("/", 1)[-1]
    assert endpoint["import_id"] == \
        f"projects/{vertex.project}/locations/{vertex.region}/endpoints/{endpoint_id}"
    inputs = endpoint["inputs"]
    assert (inputs["name"], inputs["displayName"], inputs["location"], inputs["project"]) == \
        (endpoint_id, live.display_name, vertex.region, vertex.project)
    assert inputs["labels"] == dict(live.labels)
    assert inputs["labels"]["mlform-resource"] == "fraud_endpoint"
    # all traffic on the one deployed model, under the id Vertex AI gave it
    [deployed] = live.deployed_models
    assert json.loads(inputs["trafficSplit"]) == {deployed.id: 100} == \
        {k: int(v) for k, v in dict(live.traffic_split).items()}
    assert state["outputs"]["traffic"] == {"champion": 100.0}

    program = (out / "__main__.py").read_text()
    for line in ("training_job 'train'", "model 'fraud_model'", "dataset 'transactions'",
                 "the models deployed on it ('champion'"):
        assert line in program
    assert "ignore_changes=['traffic_split']" in program
    assert (out / "requirements.txt").read_text().splitlines() == [
        "pulumi>=3.272.0,<4", "pulumi-gcp>=10.2.0,<11"]
