"""The real MLClient's managed online endpoints against the Azure ML fake: long-running
operations and their intermediate states, deployments that start a scoring host running the
scoring script (init()/run() with AZUREML_MODEL_DIR), the service's traffic rules, scoring
routed by traffic, header and mirror, injected errors, and the Azure Monitor metrics the
provider reads back."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from aml_fake import AmlFake
from azure.ai.ml.constants import AssetTypes
from azure.ai.ml.entities import (
    CodeConfiguration,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
    Model,
)
from azure.ai.ml.entities._assets import Code
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azurite import Azurite

pytestmark = pytest.mark.e2e

ENV = "azureml:AzureML-acpt-pytorch-2.2-cuda12.1@latest"
SCORE = b"""
import json, os
FACTOR = None
def init():
    global FACTOR
    # a folder model sits under its own folder name in AZUREML_MODEL_DIR, as on Azure
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "weights", "factor.json")) as f:
        FACTOR = json.load(f)["factor"] * float(os.environ.get("BOOST", "1"))
def run(raw):
    data = json.loads(raw)["data"]
    if data == "boom":
        raise ValueError("cannot score boom")
    return {"y": [x * FACTOR for x in data]}
"""
CRASH = b"def init():\n    raise RuntimeError('weights are corrupt')\n\ndef run(raw):\n    return raw\n"


@pytest.fixture
def assets(ml_client: Any, aml: AmlFake, azurite: Azurite) -> dict[str, str]:
    """A model (a folder with factor.json), a scoring code asset and a crashing one."""
    tag = uuid.uuid4().hex[:8]
    container = azurite.client().get_container_client(aml.container)
    container.upload_blob(f"models/{tag}/weights/factor.json", b'{"factor": 2}')
    container.upload_blob(f"code/{tag}/ok/score.py", SCORE)
    container.upload_blob(f"code/{tag}/crash/score.py", CRASH)
    base = "azureml://datastores/workspaceblobstore/paths"
    model = ml_client.models.create_or_update(Model(
        name=f"m-{tag}", version="1", path=f"{base}/models/{tag}/weights/", type=AssetTypes.CUSTOM_MODEL))
    ok = ml_client._code.create_or_update(Code(name=f"ok-{tag}", version="1", path=f"{base}/code/{tag}/ok/"))
    crash = ml_client._code.create_or_update(Code(name=f"crash-{tag}", version="1",
                                                  path=f"{base}/code/{tag}/crash/"))
    return {"model": model.id, "code": ok.id, "crash": crash.id, "tag": tag}


def _deployment(name: str, endpoint: str, model: str, code: str, **kwargs: Any) -> ManagedOnlineDeployment:
    return ManagedOnlineDeployment(
        name=name, endpoint_name=endpoint, model=model, environment=ENV,
        code_configuration=CodeConfiguration(code=code, scoring_script="score.py"),
        instance_type="Standard_DS3_v2", instance_count=1, **kwargs)


def _score(aml: AmlFake, uri: str, key: str, data: Any, deployment: str | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    if deployment:
        headers["azureml-model-deployment"] = deployment
    return requests.post(uri, data=json.dumps({"data": data}), headers=headers,
                         verify=str(aml.ca_bundle), timeout=30)


def _metrics(aml: AmlFake, endpoint_id: str, names: str, flt: str, aggregation: str) -> dict[str, Any]:
    end = datetime.now(UTC) + timedelta(minutes=1)
    reply = requests.get(
        f"{aml.url}{endpoint_id}/providers/Microsoft.Insights/metrics",
        params={"api-version": "2018-01-01", "metricnames": names, "interval": "PT1M",
                "aggregation": aggregation, "$filter": flt,
                "timespan": f"{(end - timedelta(minutes=10)).strftime('%Y-%m-%dT%H:%M:%SZ')}/"
                            f"{end.strftime('%Y-%m-%dT%H:%M:%SZ')}"},
        headers={"Authorization": "Bearer x"}, verify=str(aml.ca_bundle), timeout=30)
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def _totals(result: dict[str, Any]) -> dict[tuple[str, ...], float]:
    out: dict[tuple[str, ...], float] = {}
    for series in result["value"][0]["timeseries"]:
        key = tuple(m["value"] for m in series["metadatavalues"])
        out[key] = sum(p.get("total", 0.0) for p in series["data"])
    return out


def test_endpoint_and_deployments_serve_split_and_report(ml_client: Any, aml: AmlFake,
                                                        assets: dict[str, str]) -> None:
    name = f"ep-{assets['tag']}"
    aml.hold_provisioning(True)
    try:
        poller = ml_client.online_endpoints.begin_create_or_update(
            ManagedOnlineEndpoint(name=name, auth_mode="key", tags={"mlform.stack": "s"}))
        assert ml_client.online_endpoints.get(name).provisioning_state == "Creating"
        assert not poller.done()
    finally:
        aml.hold_provisioning(False)
    endpoint = poller.result()
    assert endpoint.provisioning_state == "Succeeded"
    assert endpoint.scoring_uri == f"{aml.url}/endpoints/{name}/score"

    blue = ml_client.online_deployments.begin_create_or_update(
        _deployment("blue", name, assets["model"], assets["code"])).result()
    assert blue.provisioning_state == "Succeeded" and blue.instance_count == 1
    assert blue.scale_settings.type == "default"
    green = ml_client.online_deployments.begin_create_or_update(
        _deployment("green", name, assets["model"], assets["code"],
                    environment_variables={"BOOST": "10"})).result()
    assert green.environment_variables == {"BOOST": "10"}
    key = ml_client.online_endpoints.get_keys(name).primary_key

    # no deployment with positive weight yet: only the header routes
    assert _score(aml, endpoint.scoring_uri, key, [1]).status_code == 404
    assert _score(aml, endpoint.scoring_uri, key, [1], deployment="green").json() == {"y": [20.0]}
    assert _score(aml, endpoint.scoring_uri, "wrong-key", [1]).status_code == 401

    endpoint.traffic = {"blue": 50, "green": 50}
    endpoint = ml_client.online_endpoints.begin_create_or_update(endpoint).result()
    assert ml_client.online_endpoints.get(name).traffic == {"blue": 50, "green": 50}
    answers = Counter(_score(aml, endpoint.scoring_uri, key, [1]).json()["y"][0] for _ in range(40))
    assert set(answers) == {2.0, 20.0}, answers  # both deployments served (2^-39 to fail by chance)
    assert _score(aml, endpoint.scoring_uri, key, "boom", deployment="blue").status_code == 424

    counts = _totals(_metrics(aml, endpoint.id, "RequestsPerMinute",
                              "deployment eq '*' and statusCodeClass eq '*'", "Total"))
    blue_stats, green_stats = aml.scoring_stats(name, "blue"), aml.scoring_stats(name, "green")
    assert counts[("blue", "2xx")] == blue_stats["responses"][200]
    assert counts[("blue", "4xx")] == 1
    assert counts[("green", "2xx")] == green_stats["responses"][200] == answers[20.0] + 1
    latency = _metrics(aml, endpoint.id, "RequestLatency_P99", "deployment eq 'green'", "Maximum")
    [series] = latency["value"][0]["timeseries"]
    assert series["metadatavalues"][0]["value"] == "green"
    assert max(p.get("maximum", 0) for p in series["data"]) == pytest.approx(
        max(green_stats["latencies_ms"]), rel=0.01)

    logs = ml_client.online_deployments.get_logs("blue", name, lines=50)
    assert "cannot score boom" in logs

    # the service's rules
    endpoint.traffic = {"blue": 60, "green": 60}
    with pytest.raises(HttpResponseError, match="sum to 100"):
        ml_client.online_endpoints.begin_create_or_update(endpoint).result()
    with pytest.raises(HttpResponseError, match="traffic"):
        ml_client.online_deployments.begin_delete("green", name).result()
    model_name = assets["model"].split("/")[-3]
    with pytest.raises(HttpResponseError, match="in use"):
        ml_client.models._model_versions_operation.delete(
            name=model_name, version="1", resource_group_name=aml.resource_group,
            workspace_name=aml.workspace_name)

    # green out of traffic, then deleted (an async operation); blue serves everything
    endpoint.traffic = {"blue": 100}
    ml_client.online_endpoints.begin_create_or_update(endpoint).result()
    ml_client.online_deployments.begin_delete("green", name).result()
    assert [d.name for d in ml_client.online_deployments.list(name)] == ["blue"]
    assert _score(aml, endpoint.scoring_uri, key, [3]).json() == {"y": [6.0]}

    ml_client.online_endpoints.begin_delete(name).result()
    with pytest.raises(ResourceNotFoundError):
        ml_client.online_endpoints.get(name)
    assert _score(aml, endpoint.scoring_uri, key, [3]).status_code == 404


def test_mirror_traffic_and_injected_errors(ml_client: Any, aml: AmlFake,
                                           assets: dict[str, str]) -> None:
    name = f"mir-{assets['tag']}"
    endpoint = ml_client.online_endpoints.begin_create_or_update(
        ManagedOnlineEndpoint(name=name, auth_mode="key")).result()
    for deployment in ("live", "shadow"):
        ml_client.online_deployments.begin_create_or_update(
            _deployment(deployment, name, assets["model"], assets["code"])).result()
    endpoint.traffic = {"live": 100}
    endpoint.mirror_traffic = {"shadow": 60}
    with pytest.raises(HttpResponseError, match="50%"):
        ml_client.online_endpoints.begin_create_or_update(endpoint).result()
    endpoint.mirror_traffic = {"shadow": 50}
    ml_client.online_endpoints.begin_create_or_update(endpoint).result()
    key = ml_client.online_endpoints.get_keys(name).primary_key

    aml.inject_errors(name, "live", 1.0)
    statuses = Counter(_score(aml, endpoint.scoring_uri, key, [1]).status_code for _ in range(30))
    aml.inject_errors(name, "live", 0.0)
    assert statuses == {500: 30}
    deadline = time.monotonic() + 10
    while aml.scoring_stats(name, "shadow")["mirrored"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    shadow = aml.scoring_stats(name, "shadow")
    assert 0 < shadow["mirrored"] < 30 and shadow["responses"].get(200) == shadow["requests"]
    counts = _totals(_metrics(aml, endpoint.id, "RequestsPerMinute",
                              "deployment eq '*' and statusCodeClass eq '*'", "Total"))
    assert counts[("live", "5xx")] == 30
    assert ("live", "2xx") not in counts
    ml_client.online_endpoints.begin_delete(name).result()


def test_deployment_whose_init_crashes_fails_with_its_error(ml_client: Any, aml: AmlFake,
                                                            assets: dict[str, str]) -> None:
    name = f"crash-{assets['tag']}"
    ml_client.online_endpoints.begin_create_or_update(
        ManagedOnlineEndpoint(name=name, auth_mode="key")).result()
    aml.hold_provisioning(True)
    try:
        poller = ml_client.online_deployments.begin_create_or_update(
            _deployment("broken", name, assets["model"], assets["crash"]))
        assert ml_client.online_deployments.get("broken", name).provisioning_state == "Creating"
    finally:
        aml.hold_provisioning(False)
    with pytest.raises(HttpResponseError, match="weights are corrupt"):
        poller.result()
    assert ml_client.online_deployments.get("broken", name).provisioning_state == "Failed"
    assert "weights are corrupt" in ml_client.online_deployments.get_logs("broken", name, lines=20)
    ml_client.online_endpoints.begin_delete(name).result()


def test_patch_and_token_endpoints(ml_client: Any, aml: AmlFake, assets: dict[str, str]) -> None:
    name = f"tok-{assets['tag']}"
    endpoint = ml_client.online_endpoints.begin_create_or_update(
        ManagedOnlineEndpoint(name=name, auth_mode="aml_token")).result()
    assert endpoint.auth_mode == "aml_token"
    token = ml_client.online_endpoints.get_keys(name)
    assert token.access_token and token.token_type == "Bearer"
    with pytest.raises(HttpResponseError, match="authMode Key"):
        ml_client.online_endpoints._online_operation.list_keys(
            resource_group_name=aml.resource_group, workspace_name=aml.workspace_name,
            endpoint_name=name)
    # a PATCH (plain ARM REST) with tags and a traffic naming no deployment
    url = f"{aml.url}{endpoint.id}?api-version=2023-10-01"
    auth = {"Authorization": "Bearer x"}
    bad = requests.patch(url, json={"properties": {"traffic": {"ghost": 100}}}, headers=auth,
                         verify=str(aml.ca_bundle), timeout=30)
    assert bad.status_code == 400 and "ghost" in bad.json()["error"]["message"]
    ok = requests.patch(url, json={"tags": {"owner": "mlform"}}, headers=auth,
                        verify=str(aml.ca_bundle), timeout=30)
    assert ok.status_code == 202 and "Azure-AsyncOperation" in ok.headers
    assert ml_client.online_endpoints.get(name).tags == {"owner": "mlform"}
    ml_client.online_endpoints.begin_delete(name).result()
