"""The aws gateway: Route 53 weighted records (moto), one per route; a new endpoint is
checked for parity through `invoke` (moto runs the models) before the weights step."""

from __future__ import annotations

import pytest
from mlform.engine.provider import (
    CheckRequest,
    CreateRequest,
    DeleteRequest,
    Failure,
    ObserveRequest,
    Progress,
    ResourceRef,
    UpdateRequest,
)
from test_aws_invoke import ROWS, model_dir, serve  # noqa: F401 - model_dir is a fixture

REF = ResourceRef("front", "gateway")


def route(name: str, endpoint: str, config: dict) -> dict:
    return {"endpoint": f"https://{name}.example.net/invocations", "weight": 100, "backend": {
        "resource": name, "provider": "sagemaker", "provider_type": "aws", "config": config,
        "outputs": {"name": endpoint, "url": f"https://{name}.example.net/invocations"},
        "rollout": {"strategy": "canary", "steps": [50, 100], "wait": "0s"},
        "rollback": {"min_requests": 2, "evidence_timeout": "0s"}}}


@pytest.fixture
def zone(client):
    client("route53").create_hosted_zone(Name="example.com", CallerReference="t")
    return "example.com"


def records(client) -> dict[str, int]:
    r53 = client("route53")
    zone_id = r53.list_hosted_zones()["HostedZones"][0]["Id"]
    return {r["SetIdentifier"]: r["Weight"]
            for r in r53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
            if r["Type"] == "CNAME"}


def test_weighted_records_step_to_a_new_endpoint_after_parity(
        zone, client, make_provider, provider_config, model_dir, tmp_path):  # noqa: F811
    (tmp_path / "holdout.csv").write_text("amount,age\n" + "".join(
        f"{a},{b}\n" for a, b in ROWS))
    serve(client, model_dir, "blue-ep")
    serve(client, model_dir, "green-ep")
    provider = make_provider()
    base = {"parity": {"holdout": str(tmp_path / "holdout.csv"), "sample": 4},
            "provider_options": {"aws": {"hosted_zone": zone,
                                         "record_name": "fraud.example.com"}}}
    blue = {**base, "routes": [route("blue", "blue-ep", provider_config)]}
    made = provider.create(CreateRequest(REF, blue, "k"), Progress())
    assert made.error is None and made.outputs == {"url": "https://fraud.example.com",
                                                   "weights": {"blue": 100.0}}
    assert records(client) == {"blue": 100}

    lines: list[str] = []
    green = {**base, "routes": [route("green", "green-ep", provider_config)]}
    moved = provider.update(UpdateRequest(REF, blue, made.outputs, green),
                            Progress(lambda m, f=None: lines.append(m)))
    assert moved.error is None, moved.error
    assert "parity: 4 rows (4 held-out rows, 0 logged requests): label agreement 1.000" \
        in lines
    assert "cutover step 50%: 2 requests, 0 errors" in " ".join(lines)
    assert records(client) == {"green": 100}

    broken = {**base, "routes": [route("teal", "no-such-endpoint", provider_config)]}
    refused = provider.update(UpdateRequest(REF, green, moved.outputs, broken), Progress())
    assert refused.failure is Failure.PARITY_FAILED
    assert "parity failed, no traffic moved" in refused.error
    assert records(client) == {"green": 100}

    assert provider.observe(ObserveRequest(REF, green, moved.outputs)).exists
    assert provider.delete(DeleteRequest(REF, green, moved.outputs), Progress()).error is None
    assert records(client) == {}


def test_a_gateway_without_its_zone_and_record_is_refused_at_plan(make_provider,
                                                                  provider_config):
    inputs = {"routes": [route("blue", "blue-ep", provider_config)],
              "provider_options": {"aws": {"hosted_zone": "example.com"}}}
    problems = make_provider().check(CheckRequest(REF, inputs)).problems
    assert [(p.path, p.message, p.help) for p in problems] == [
        (("provider_options", "aws"), "a Route 53 gateway needs 'record_name'",
         "write provider_options: {aws: {hosted_zone: example.com, "
         "record_name: fraud.example.com}}")]
