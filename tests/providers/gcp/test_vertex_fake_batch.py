"""The real JobServiceClient (REST transport) against the Vertex fake's BatchPredictionJob: the
model's serving container scores instances read from the GCS emulator and the predictions are
written back there."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud.aiplatform_v1 import JobServiceClient, JobState, ModelServiceClient, types
from vertex_fake import VertexFake

pytestmark = pytest.mark.e2e

SERVER = textwrap.dedent('''
    import json, os
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a): pass
        def reply(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        def do_GET(self):
            self.reply(200, {})
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            rows = body["instances"]
            if any(r == "bad" for r in rows):
                return self.reply(400, {"error": "bad instance"})
            self.reply(200, {"predictions": [sum(r) if isinstance(r, list) else r * 10 for r in rows]})

    HTTPServer(("127.0.0.1", int(os.environ["AIP_HTTP_PORT"])), H).serve_forever()
''')


def _wait(client: JobServiceClient, name: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get_batch_prediction_job(name=name)
        if job.state in (JobState.JOB_STATE_SUCCEEDED, JobState.JOB_STATE_FAILED,
                         JobState.JOB_STATE_CANCELLED, JobState.JOB_STATE_PARTIALLY_SUCCEEDED):
            return job
        time.sleep(0.05)
    raise AssertionError(f"{name} did not finish: {job.state!r}")


@pytest.fixture
def model(vertex: VertexFake, tmp_path: Path) -> str:
    script = tmp_path / "serve.py"
    script.write_text(SERVER)
    parent = f"projects/{vertex.project}/locations/{vertex.region}"
    done = vertex.client(ModelServiceClient).upload_model(parent=parent, model=types.Model(
        display_name="scorer", container_spec={"image_uri": "serving:1", "command": ["python", str(script)]},
    )).result(timeout=30)
    return done.model


def _batch(model: str, uris: list[str], fmt: str, out: str, labels: dict[str, str] | None = None) -> types.BatchPredictionJob:
    return types.BatchPredictionJob(
        display_name="score", model=model, labels=labels or {},
        input_config={"instances_format": fmt, "gcs_source": {"uris": uris}},
        output_config={"predictions_format": "jsonl", "gcs_destination": {"output_uri_prefix": out}},
        dedicated_resources={"machine_spec": {"machine_type": "n1-standard-2"}, "starting_replica_count": 1},
        manual_batch_tuning_parameters={"batch_size": 2})


def _lines(gcs: Any, uri: str) -> list[Any]:
    bucket, _, path = uri[len("gs://"):].partition("/")
    text = gcs.client().bucket(bucket).blob(path).download_as_text()
    return [json.loads(line) for line in text.splitlines()]


def test_jsonl_and_csv_inputs_are_scored_into_gcs(vertex: VertexFake, gcs: Any, gcs_bucket: str,
                                                   model: str) -> None:
    bucket = gcs.client().bucket(gcs_bucket)
    bucket.blob("in/a.jsonl").upload_from_string("1\n2\n3\n")
    bucket.blob("in/b.csv").upload_from_string("x,y\n1,2\n3,4.5\n")
    client = vertex.client(JobServiceClient)
    parent = f"projects/{vertex.project}/locations/{vertex.region}"

    created = client.create_batch_prediction_job(parent=parent, batch_prediction_job=_batch(
        model, [f"gs://{gcs_bucket}/in/*.jsonl"], "jsonl", f"gs://{gcs_bucket}/out", {"mlform-stack": "s"}))
    assert created.name.rsplit("/", 1)[1].isdigit()
    job = _wait(client, created.name)
    assert job.state == JobState.JOB_STATE_SUCCEEDED, job.error.message
    out = job.output_info.gcs_output_directory
    assert out.startswith(f"gs://{gcs_bucket}/out/prediction-scorer-")
    assert _lines(gcs, f"{out}/predictions_00001.jsonl") == [
        {"instance": 1, "prediction": 10}, {"instance": 2, "prediction": 20}, {"instance": 3, "prediction": 30}]
    assert job.completion_stats.successful_count == 3

    csv_job = _wait(client, client.create_batch_prediction_job(parent=parent, batch_prediction_job=_batch(
        model, [f"gs://{gcs_bucket}/in/b.csv"], "csv", f"gs://{gcs_bucket}/csv")).name)
    predictions = _lines(gcs, f"{csv_job.output_info.gcs_output_directory}/predictions_00001.jsonl")
    assert predictions == [{"instance": [1, 2], "prediction": 3}, {"instance": [3, 4.5], "prediction": 7.5}]

    listed = client.list_batch_prediction_jobs(request={"parent": parent, "filter": "labels.mlform-stack=s"})
    assert [j.name for j in listed] == [created.name]
    client.delete_batch_prediction_job(name=created.name).result(timeout=30)
    with pytest.raises(exceptions.NotFound):
        client.get_batch_prediction_job(name=created.name)


def test_refused_instances_are_written_as_errors(vertex: VertexFake, gcs: Any, gcs_bucket: str,
                                                 model: str) -> None:
    gcs.client().bucket(gcs_bucket).blob("in.jsonl").upload_from_string('1\n2\n"bad"\n')
    client = vertex.client(JobServiceClient)
    parent = f"projects/{vertex.project}/locations/{vertex.region}"
    job = _wait(client, client.create_batch_prediction_job(parent=parent, batch_prediction_job=_batch(
        model, [f"gs://{gcs_bucket}/in.jsonl"], "jsonl", f"gs://{gcs_bucket}/out")).name)
    assert job.state == JobState.JOB_STATE_PARTIALLY_SUCCEEDED
    assert (job.completion_stats.successful_count, job.completion_stats.failed_count) == (2, 1)
    errors = _lines(gcs, f"{job.output_info.gcs_output_directory}/errors_00001.jsonl")
    assert errors[0]["instance"] == "bad" and "bad instance" in errors[0]["error"]["message"]

    missing = _wait(client, client.create_batch_prediction_job(parent=parent, batch_prediction_job=_batch(
        model, [f"gs://{gcs_bucket}/nothing.jsonl"], "jsonl", f"gs://{gcs_bucket}/out")).name)
    assert missing.state == JobState.JOB_STATE_FAILED and "does not exist" in missing.error.message


def test_held_batch_jobs_queue_and_cancel(vertex: VertexFake, gcs_bucket: str, model: str) -> None:
    client = vertex.client(JobServiceClient)
    parent = f"projects/{vertex.project}/locations/{vertex.region}"
    vertex.hold_jobs(True)
    try:
        job = client.create_batch_prediction_job(parent=parent, batch_prediction_job=_batch(
            model, [f"gs://{gcs_bucket}/x.jsonl"], "jsonl", f"gs://{gcs_bucket}/out"))
        assert client.get_batch_prediction_job(name=job.name).state == JobState.JOB_STATE_QUEUED
        client.cancel_batch_prediction_job(name=job.name)
    finally:
        vertex.hold_jobs(False)
    assert _wait(client, job.name).state == JobState.JOB_STATE_CANCELLED
    with pytest.raises(exceptions.BadRequest, match="in state"):
        client.cancel_batch_prediction_job(name=job.name)
