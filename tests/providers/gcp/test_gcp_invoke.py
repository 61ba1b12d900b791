"""The gcp provider's `invoke` (what a gateway forwards through) against the Vertex AI
fake: a deployed model's answers come back as its serving container wrote them (labels
stay integers), and a failure is an answer with the endpoint's HTTP status, never a raise."""

from __future__ import annotations

import textwrap

import pytest
from google.cloud.aiplatform_v1 import EndpointServiceClient, ModelServiceClient, types
from mlform.engine.provider import InvokeRequest, ProviderContext, ResourceRef
from mlform.providers.gcp.provider import GcpProvider

pytestmark = pytest.mark.e2e  # the Vertex AI fake runs a serving container

SERVER = textwrap.dedent('''
    """A serving container stand-in: label 1 when the first feature is above 1."""
    import json, os
    from http.server import BaseHTTPRequestHandler, HTTPServer

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
            self.reply(200, {})
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if any(not isinstance(row, list) for row in body["instances"]):
                return self.reply(400, {"error": "instances must be rows of numbers"})
            self.reply(200, {"predictions": [int(row[0] > 1) for row in body["instances"]]})

    HTTPServer(("127.0.0.1", int(os.environ["AIP_HTTP_PORT"])), H).serve_forever()
''')


@pytest.fixture(scope="module")
def deployed(vertex, tmp_path_factory):
    """An endpoint serving SERVER, made with the SDK as the endpoint handler makes one."""
    script = tmp_path_factory.mktemp("invoke") / "serve.py"
    script.write_text(SERVER)
    parent = f"projects/{vertex.project}/locations/{vertex.region}"
    models, endpoints = vertex.client(ModelServiceClient), vertex.client(EndpointServiceClient)
    model = models.upload_model(request={"parent": parent, "model_id": "invoke-m", "model": types.Model(
        display_name="invoke-m", artifact_uri="gs://bucket/invoke-m",
        container_spec={"image_uri": "serving:1", "command": ["python", str(script)],
                        "predict_route": "/predict", "health_route": "/health"})}).result(timeout=30)
    name = endpoints.create_endpoint(parent=parent, endpoint_id="invoke-ep", endpoint=types.Endpoint(
        display_name="invoke-ep")).result(timeout=30).name
    deployed_model = endpoints.deploy_model(endpoint=name, traffic_split={"0": 100}, deployed_model=types.DeployedModel(
        model=f"{model.model}@{model.model_version_id}", display_name="champion",
        dedicated_resources={"machine_spec": {"machine_type": "n1-standard-2"},
                             "min_replica_count": 1})).result(timeout=60).deployed_model
    yield name, deployed_model.id
    endpoints.undeploy_model(endpoint=name, deployed_model_id=deployed_model.id).result(timeout=60)


@pytest.fixture
def provider(gcs, vertex, tmp_path):
    made = GcpProvider(ProviderContext(
        "fraud", tmp_path, "vertex",
        {"project": vertex.project, "region": vertex.region, "bucket": "unused",
         "api_endpoint": vertex.url, "storage_endpoint": gcs.url, "poll_interval": 0.2},
        tmp_path / ".mlform" / "vertex"))
    yield made
    made.close()


def invoke(provider, endpoint_name, instances):
    return provider.invoke(InvokeRequest(ResourceRef("fraud_endpoint", "endpoint", endpoint_name),
                                         {"endpoint": endpoint_name, "name": endpoint_name.rsplit("/", 1)[-1]},
                                         instances))


def test_invoke_answers_the_containers_predictions_as_written(provider, deployed):
    answer = invoke(provider, deployed[0], [[0.5, 30.0], [2.0, 31.0], [3.5, 32.0]])
    assert (answer.error, answer.status, answer.predictions) == (None, 200, [0, 1, 1])
    assert all(type(p) is int for p in answer.predictions)  # not Value's floats


@pytest.mark.parametrize(("instances", "endpoint_id", "status", "says"), [
    pytest.param([{"amount": "x"}], None, 400, "instances must be rows", id="the container refuses the rows"),
    pytest.param([[1.0, 2.0]], "no-such-ep", 404, "no-such-ep", id="an endpoint that does not exist"),
])
def test_invoke_answers_a_failure_with_its_status(provider, deployed, instances, endpoint_id, status, says):
    name = deployed[0] if endpoint_id is None else deployed[0].rsplit("/", 1)[0] + f"/{endpoint_id}"
    answer = invoke(provider, name, instances)
    assert (answer.status, answer.predictions) == (status, [])
    assert answer.error and says in answer.error


def test_invoke_answers_a_server_error_with_its_status(provider, deployed, vertex):
    endpoint_id = deployed[0].rsplit("/", 1)[-1]
    vertex.inject_errors(endpoint_id, deployed[1], 1.0)
    try:
        answer = invoke(provider, deployed[0], [[2.0, 1.0]])
    finally:
        vertex.inject_errors(endpoint_id, deployed[1], 0.0)
    assert (answer.status, answer.predictions) == (500, [])
    assert answer.error and deployed[0] in answer.error
