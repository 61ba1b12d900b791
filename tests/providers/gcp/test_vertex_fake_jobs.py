"""The real google-cloud-aiplatform GAPIC clients (REST transport) against the Vertex fake:
long-running operations, error mapping and CustomJob (run as a local process)."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from google.api_core import exceptions
from google.cloud.aiplatform_v1 import JobServiceClient, JobState, types
from vertex_fake import VertexFake

pytestmark = pytest.mark.e2e

BUCKET = "vertex-fake-jobs"


@pytest.fixture
def job_client(vertex: VertexFake) -> JobServiceClient:
    return vertex.client(JobServiceClient)


def _wait(client: JobServiceClient, name: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get_custom_job(name=name)
        if job.state in (JobState.JOB_STATE_SUCCEEDED, JobState.JOB_STATE_FAILED,
                         JobState.JOB_STATE_CANCELLED):
            return job
        time.sleep(0.05)
    raise AssertionError(f"{name} did not finish: {job.state!r}")


def _job(script: Path, *, labels: dict[str, str] | None = None, base: str = "",
         env: dict[str, str] | None = None) -> types.CustomJob:
    spec: dict[str, Any] = {
        "machine_spec": {"machine_type": "n1-standard-4"}, "replica_count": 1,
        "container_spec": {"image_uri": "us-docker.pkg.dev/vertex-ai/training/pytorch:latest",
                           "command": ["python", str(script)], "args": ["--epochs", "1"],
                           "env": [{"name": k, "value": v} for k, v in (env or {}).items()]}}
    job_spec: dict[str, Any] = {"worker_pool_specs": [spec]}
    if base:
        job_spec["base_output_directory"] = {"output_uri_prefix": base}
    return types.CustomJob(display_name="train", job_spec=job_spec, labels=labels or {})


def test_a_job_writes_its_model_to_gcs_and_succeeds(vertex: VertexFake, job_client: JobServiceClient,
                                                    gcs: Any, tmp_path: Path) -> None:
    gcs.create_bucket(BUCKET)
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent("""
        import os, sys
        from google.cloud import storage
        model_dir = os.environ["AIP_MODEL_DIR"]
        bucket, _, prefix = model_dir[len("gs://"):].partition("/")
        blob = storage.Client().bucket(bucket).blob(prefix + "model.txt")
        blob.upload_from_string(" ".join([os.environ["CLOUD_ML_PROJECT_ID"], os.environ["GREETING"]] + sys.argv[1:]))
        print("trained", os.environ["AIP_CHECKPOINT_DIR"], os.environ["AIP_TENSORBOARD_LOG_DIR"])
    """))
    parent = f"projects/{vertex.project}/locations/{vertex.region}"
    created = job_client.create_custom_job(
        parent=parent, custom_job=_job(script, base=f"gs://{BUCKET}/run1", env={"GREETING": "hi"}))
    assert created.name.startswith(f"projects/{vertex.project_number}/locations/{vertex.region}/customJobs/")
    assert created.name.rsplit("/", 1)[1].isdigit()
    assert created.state in (JobState.JOB_STATE_PENDING, JobState.JOB_STATE_RUNNING)

    job = _wait(job_client, created.name)
    assert job.state == JobState.JOB_STATE_SUCCEEDED, job.error.message
    assert job.start_time and job.end_time
    text = gcs.client().bucket(BUCKET).blob("run1/model/model.txt").download_as_text()
    assert text == "test hi --epochs 1"
    assert f"trained gs://{BUCKET}/run1/checkpoints/ gs://{BUCKET}/run1/logs/" in vertex.job_log(job.name)


def test_a_failing_job_reports_its_stderr_tail(vertex: VertexFake, job_client: JobServiceClient,
                                               tmp_path: Path) -> None:
    script = tmp_path / "fail.py"
    script.write_text("import sys\nprint('loading data', file=sys.stderr)\n"
                      "raise SystemExit('column label is missing')\n")
    parent = f"projects/{vertex.project}/locations/{vertex.region}"
    job = _wait(job_client, job_client.create_custom_job(parent=parent, custom_job=_job(script)).name)
    assert job.state == JobState.JOB_STATE_FAILED
    assert "non-zero status of 1" in job.error.message
    assert "column label is missing" in job.error.message


def test_list_filters_on_labels_cancel_and_delete(vertex: VertexFake, job_client: JobServiceClient,
                                                  tmp_path: Path) -> None:
    script = tmp_path / "sleep.py"
    script.write_text("import time\ntime.sleep(60)\n")
    parent = f"projects/{vertex.project}/locations/{vertex.region}"
    a = job_client.create_custom_job(parent=parent, custom_job=_job(
        script, labels={"mlform-stack": "s1", "mlform-fp": "abc"}))
    b = job_client.create_custom_job(parent=parent, custom_job=_job(
        script, labels={"mlform-stack": "s1", "mlform-fp": "def"}))
    listed = job_client.list_custom_jobs(
        request={"parent": parent, "filter": 'labels.mlform-stack=s1 AND labels.mlform-fp="abc"'})
    assert [j.name for j in listed] == [a.name]
    both = job_client.list_custom_jobs(request={"parent": parent, "filter": "labels.mlform-stack:*",
                                                "page_size": 1})
    assert {j.name for j in both} >= {a.name, b.name}  # the pager follows nextPageToken
    with pytest.raises(exceptions.BadRequest, match="not valid"):
        list(job_client.list_custom_jobs(request={"parent": parent, "filter": "labels.x>3"}))

    with pytest.raises(exceptions.BadRequest, match="cancel it first"):
        job_client.delete_custom_job(name=a.name)
    for job in (a, b):
        while job_client.get_custom_job(name=job.name).state != JobState.JOB_STATE_RUNNING:
            time.sleep(0.05)
        job_client.cancel_custom_job(name=job.name)
        assert _wait(job_client, job.name).state == JobState.JOB_STATE_CANCELLED
        assert vertex.custom_jobs.processes[job.name.rsplit("/", 1)[1]].popen.poll() is not None
    job_client.delete_custom_job(name=a.name).result(timeout=30)
    with pytest.raises(exceptions.NotFound):
        job_client.get_custom_job(name=a.name)


def test_held_jobs_stay_queued_until_released(vertex: VertexFake, job_client: JobServiceClient,
                                              tmp_path: Path) -> None:
    script = tmp_path / "ok.py"
    script.write_text("print('done')\n")
    parent = f"projects/{vertex.project}/locations/{vertex.region}"
    vertex.hold_jobs(True)
    try:
        job = job_client.create_custom_job(parent=parent, custom_job=_job(script))
        time.sleep(0.3)
        assert job_client.get_custom_job(name=job.name).state == JobState.JOB_STATE_QUEUED
    finally:
        vertex.hold_jobs(False)
    assert _wait(job_client, job.name).state == JobState.JOB_STATE_SUCCEEDED


@pytest.mark.parametrize(("code", "error", "text"), [
    (403, exceptions.Forbidden,
     "Permission 'aiplatform.customJobs.create' denied on resource "
     "'//aiplatform.googleapis.com/projects/test/locations/us-central1/customJobs'"),
    (429, exceptions.TooManyRequests, "aiplatform.googleapis.com/custom_model_training_cpus"),
    (503, exceptions.ServiceUnavailable, "injected failure"),
], ids=["permission-names-permission-and-resource", "quota-names-the-quota", "unavailable"])
def test_fail_next_fails_one_call_with_the_service_error(vertex: VertexFake, job_client: JobServiceClient,
                                                         code: int, error: type[Exception], text: str) -> None:
    parent = f"projects/{vertex.project}/locations/{vertex.region}"
    vertex.fail_next("CreateCustomJob", code)
    with pytest.raises(error) as info:
        job_client.create_custom_job(parent=parent, custom_job=types.CustomJob(display_name="x"),
                                     retry=None)
    assert text in str(info.value)
    with pytest.raises(exceptions.BadRequest):  # the next call is served (and validated)
        job_client.create_custom_job(parent=parent, custom_job=types.CustomJob(display_name="x"))


def test_operations_are_served_where_the_rest_client_polls_them(vertex: VertexFake,
                                                                job_client: JobServiceClient,
                                                                tmp_path: Path) -> None:
    script = tmp_path / "ok.py"
    script.write_text("")
    parent = f"projects/{vertex.project}/locations/{vertex.region}"
    job = _wait(job_client, job_client.create_custom_job(parent=parent, custom_job=_job(script)).name)
    operation = job_client.delete_custom_job(name=job.name).operation
    for prefix in ("ui", "v1"):
        reply = requests.get(f"{vertex.url}/{prefix}/{operation.name}", timeout=5).json()
        assert reply["done"] is True
        assert reply["response"]["@type"] == "type.googleapis.com/google.protobuf.Empty"
        assert reply["metadata"]["@type"].endswith("aiplatform.v1.DeleteOperationMetadata")


def test_errors_for_unknown_names_projects_and_regions(vertex: VertexFake, job_client: JobServiceClient) -> None:
    with pytest.raises(exceptions.NotFound):
        job_client.get_custom_job(name=f"projects/{vertex.project}/locations/{vertex.region}/customJobs/42")
    with pytest.raises(exceptions.Forbidden, match="aiplatform.customJobs.get"):
        job_client.get_custom_job(name=f"projects/other/locations/{vertex.region}/customJobs/42")
    with pytest.raises(exceptions.BadRequest, match="europe-west4"):
        job_client.get_custom_job(name=f"projects/{vertex.project}/locations/europe-west4/customJobs/42")
