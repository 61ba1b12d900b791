"""The real EndpointServiceClient and PredictionServiceClient (REST transport) against the
Vertex fake: endpoints, deployments that start a serving container, traffic splits, online
prediction and the request statistics Cloud Monitoring reports."""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from google.api_core import exceptions
from google.cloud.aiplatform_v1 import (
    EndpointServiceClient,
    ModelServiceClient,
    PredictionServiceClient,
    types,
)
from google.protobuf import json_format
from vertex_fake import VertexFake

pytestmark = pytest.mark.e2e

SERVER = textwrap.dedent('''
    """A serving container stand-in: predictions are the instances times FACTOR."""
    import json, os, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer

    if os.environ.get("CRASH"):
        sys.exit("cannot load model from " + os.environ["AIP_STORAGE_URI"])
    FACTOR = float(os.environ.get("FACTOR", "1"))

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a): pass
        def reply(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        def do_GET(self):
            self.reply(200 if self.path == os.environ["AIP_HEALTH_ROUTE"] else 404, {})
        def do_POST(self):
            if self.path != os.environ["AIP_PREDICT_ROUTE"]:
                return self.reply(404, {})
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if (body.get("parameters") or {}).get("env"):
                return self.reply(200, {"predictions": [{k: v for k, v in os.environ.items()
                                                         if k.startswith("AIP_") or k == "STORAGE_EMULATOR_HOST"}]})
            if any(not isinstance(x, (int, float)) for x in body["instances"]):
                return self.reply(400, {"error": "instances must be numbers"})
            self.reply(200, {"predictions": [x * FACTOR for x in body["instances"]]})

    HTTPServer(("127.0.0.1", int(os.environ["AIP_HTTP_PORT"])), H).serve_forever()
''')


@pytest.fixture
def clients(vertex: VertexFake) -> tuple[ModelServiceClient, EndpointServiceClient, PredictionServiceClient]:
    return (vertex.client(ModelServiceClient), vertex.client(EndpointServiceClient),
            vertex.client(PredictionServiceClient))


def _upload(models: ModelServiceClient, vertex: VertexFake, script: Path, model_id: str,
            env: dict[str, str], parent_model: str = "") -> str:
    model = types.Model(display_name=model_id, artifact_uri=f"gs://bucket/{model_id}",
                        container_spec={"image_uri": "serving:1", "command": ["python", str(script)],
                                        "env": [{"name": k, "value": v} for k, v in env.items()],
                                        "predict_route": "/predict", "health_route": "/health"})
    parent = f"projects/{vertex.project}/locations/{vertex.region}"
    request: dict[str, Any] = {"parent": parent, "model": model}
    request.update({"parent_model": parent_model} if parent_model else {"model_id": model_id})
    done = models.upload_model(request=request).result(timeout=30)
    return f"{done.model}@{done.model_version_id}"


def _deployed(model: str, name: str = "v") -> types.DeployedModel:
    return types.DeployedModel(model=model, display_name=name, dedicated_resources={
        "machine_spec": {"machine_type": "n1-standard-2"}, "min_replica_count": 1})


def test_deploy_split_predict_and_undeploy(vertex: VertexFake, clients: Any, tmp_path: Path) -> None:
    models, endpoints, prediction = clients
    script = tmp_path / "serve.py"
    script.write_text(SERVER)
    v1 = _upload(models, vertex, script, "scorer", {"FACTOR": "2"})
    v2 = _upload(models, vertex, script, "scorer", {"FACTOR": "3"}, parent_model=v1.split("@")[0])
    parent = f"projects/{vertex.project}/locations/{vertex.region}"

    created = endpoints.create_endpoint(parent=parent, endpoint_id="churn-ep", endpoint=types.Endpoint(
        display_name="churn", labels={"mlform-stack": "s"})).result(timeout=30)
    name = created.name
    assert name == f"projects/{vertex.project_number}/locations/{vertex.region}/endpoints/churn-ep"
    with pytest.raises(exceptions.Conflict):
        endpoints.create_endpoint(parent=parent, endpoint_id="churn-ep",
                                  endpoint=types.Endpoint(display_name="x")).result(timeout=30)
    assert [e.name for e in endpoints.list_endpoints(
        request={"parent": parent, "filter": "labels.mlform-stack=s"})] == [name]

    first = endpoints.deploy_model(endpoint=name, deployed_model=_deployed(v1, "blue"),
                                   traffic_split={"0": 100}).result(timeout=60).deployed_model
    assert first.model_version_id == "1" and first.id.isdigit()
    answer = prediction.predict(endpoint=name, instances=[1, 2])
    assert (list(answer.predictions), answer.deployed_model_id) == ([2.0, 4.0], first.id)
    env = dict(prediction.predict(endpoint=name, instances=[0], parameters={"env": True}).predictions[0])
    assert env["AIP_PREDICT_ROUTE"] == "/predict" and env["AIP_HEALTH_ROUTE"] == "/health"
    assert env["AIP_STORAGE_URI"] == env["AIP_MODEL_DIR"] == "gs://bucket/scorer"
    assert (env["AIP_ENDPOINT_ID"], env["AIP_DEPLOYED_MODEL_ID"]) == ("churn-ep", first.id)
    assert env["STORAGE_EMULATOR_HOST"] == vertex.store.storage_url and env["AIP_HTTP_PORT"].isdigit()
    with pytest.raises(exceptions.BadRequest, match="instances must be numbers"):
        prediction.predict(endpoint=name, instances=["x"])

    second = endpoints.deploy_model(endpoint=name, deployed_model=_deployed(v2, "green"),
                                    traffic_split={first.id: 50, "0": 50}).result(timeout=60).deployed_model
    endpoint = endpoints.get_endpoint(name=name)
    assert dict(endpoint.traffic_split) == {first.id: 50, second.id: 50}
    assert {d.id for d in endpoint.deployed_models} == {first.id, second.id}
    served = Counter(prediction.predict(endpoint=name, instances=[1]).deployed_model_id for _ in range(40))
    assert served[first.id] > 5 and served[second.id] > 5

    with pytest.raises(exceptions.BadRequest, match="add up to 100"):
        endpoints.update_endpoint(endpoint={"name": name, "traffic_split": {first.id: 10}},
                                  update_mask={"paths": ["traffic_split"]})
    endpoints.update_endpoint(endpoint={"name": name, "traffic_split": {second.id: 100}},
                              update_mask={"paths": ["traffic_split"]})
    assert {prediction.predict(endpoint=name, instances=[1]).deployed_model_id for _ in range(10)} == {second.id}
    stats = vertex.prediction_stats("churn-ep", first.id)
    assert stats["requests"] == sum(stats["responses"].values()) == len(stats["latencies_ms"])
    assert stats["responses"][400] == 1

    with pytest.raises(exceptions.BadRequest, match="deployed"):
        models.delete_model(name=v1.split("@")[0])
    with pytest.raises(exceptions.BadRequest, match="undeploy them first"):
        endpoints.delete_endpoint(name=name)
    with pytest.raises(exceptions.BadRequest, match="still has 100% of the traffic"):
        endpoints.undeploy_model(endpoint=name, deployed_model_id=second.id)
    endpoints.undeploy_model(endpoint=name, deployed_model_id=first.id).result(timeout=30)
    assert vertex.endpoints.replicas.get(first.id) is None
    endpoints.undeploy_model(endpoint=name, deployed_model_id=second.id).result(timeout=30)
    assert dict(endpoints.get_endpoint(name=name).traffic_split) == {}
    with pytest.raises(exceptions.BadRequest, match="no deployed model"):
        prediction.predict(endpoint=name, instances=[1])
    endpoints.delete_endpoint(name=name).result(timeout=30)
    models.delete_model(name=v1.split("@")[0]).result(timeout=30)
    with pytest.raises(exceptions.NotFound):
        endpoints.get_endpoint(name=name)


def test_a_container_that_does_not_start_fails_the_deployment(vertex: VertexFake, clients: Any,
                                                              tmp_path: Path) -> None:
    models, endpoints, _ = clients
    script = tmp_path / "serve.py"
    script.write_text(SERVER)
    model = _upload(models, vertex, script, "crasher", {"CRASH": "1"})
    parent = f"projects/{vertex.project}/locations/{vertex.region}"
    name = endpoints.create_endpoint(parent=parent, endpoint_id="crash-ep", endpoint=types.Endpoint(
        display_name="crash")).result(timeout=30).name
    operation = endpoints.deploy_model(endpoint=name, deployed_model=_deployed(model))
    with pytest.raises(exceptions.FailedPrecondition, match="cannot load model from gs://bucket/crasher"):
        operation.result(timeout=60)
    assert list(endpoints.get_endpoint(name=name).deployed_models) == []


def test_injected_errors_reach_the_statistics_and_cloud_monitoring(vertex: VertexFake, clients: Any,
                                                                   tmp_path: Path) -> None:
    models, endpoints, prediction = clients
    script = tmp_path / "serve.py"
    script.write_text(SERVER)
    model = _upload(models, vertex, script, "flaky", {})
    parent = f"projects/{vertex.project}/locations/{vertex.region}"
    name = endpoints.create_endpoint(parent=parent, endpoint_id="flaky-ep", endpoint=types.Endpoint(
        display_name="flaky")).result(timeout=30).name
    deployed = endpoints.deploy_model(endpoint=name, deployed_model=_deployed(model),
                                      traffic_split={"0": 100}).result(timeout=60).deployed_model
    start = datetime.now(UTC) - timedelta(seconds=1)
    vertex.inject_errors("flaky-ep", deployed.id, 0.5)
    failures = 0
    for _ in range(40):
        try:
            prediction.predict(endpoint=name, instances=[1], retry=None)
        except exceptions.InternalServerError:
            failures += 1
    vertex.inject_errors("flaky-ep", deployed.id, 0.0)
    raw = prediction.raw_predict(endpoint=name, http_body={
        "content_type": "application/json", "data": json.dumps({"instances": [4]}).encode()})
    assert json.loads(raw.data) == {"predictions": [4.0]}
    assert 5 < failures < 35
    stats = vertex.prediction_stats("flaky-ep", deployed.id)
    assert stats["responses"] == {500: failures, 200: 41 - failures}

    from google.cloud.monitoring_v3 import ListTimeSeriesResponse

    end = datetime.now(UTC) + timedelta(seconds=1)
    metric = "aiplatform.googleapis.com/prediction/online/response_count"
    reply = requests.get(f"{vertex.url}/v3/projects/{vertex.project}/timeSeries", params={
        "filter": f'metric.type = "{metric}" AND resource.labels.endpoint_id = "flaky-ep" '
                  f'AND metric.labels.deployed_model_id = "{deployed.id}"',
        "interval.startTime": start.isoformat().replace("+00:00", "Z"),
        "interval.endTime": end.isoformat().replace("+00:00", "Z")}, timeout=10)
    assert reply.status_code == 200, reply.text
    parsed = ListTimeSeriesResponse.pb()()
    json_format.Parse(reply.text, parsed)
    counts = {s.metric.labels["response_code"]: s.points[0].value.int64_value for s in parsed.time_series}
    assert counts == {"500": failures, "200": 41 - failures}
    assert {s.resource.labels["endpoint_id"] for s in parsed.time_series} == {"flaky-ep"}

    latency = requests.get(f"{vertex.url}/v3/projects/{vertex.project_number}/timeSeries", params={
        "filter": 'metric.type = "aiplatform.googleapis.com/prediction/online/prediction_latencies" '
                  'AND resource.labels.endpoint_id = "flaky-ep"',
        "interval.startTime": start.isoformat(), "interval.endTime": end.isoformat()}, timeout=10)
    parsed = ListTimeSeriesResponse.pb()()
    json_format.Parse(latency.text, parsed)
    distribution = parsed.time_series[0].points[0].value.distribution_value
    assert distribution.count == 41 and distribution.mean > 0
    assert sum(distribution.bucket_counts) == 41

    later = requests.get(f"{vertex.url}/v3/projects/{vertex.project}/timeSeries", params={
        "filter": f'metric.type = "{metric}"', "interval.startTime": end.isoformat(),
        "interval.endTime": (end + timedelta(minutes=1)).isoformat()}, timeout=10)
    assert later.json() == {}  # an interval without requests has no series
    endpoints.undeploy_model(endpoint=name, deployed_model_id=deployed.id).result(timeout=30)
