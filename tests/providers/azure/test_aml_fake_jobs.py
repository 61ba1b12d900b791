"""The real MLClient's command jobs against the Azure ML fake: a job that runs here with its
code asset and inputs fetched from Azurite and its outputs uploaded back, failures reported in
run history with the stderr tail, the service's answer to a second PUT of a name, held jobs,
cancel, and the tag filter."""

from __future__ import annotations

import sys
import time
import uuid
from typing import Any

import pytest
from aml_fake import AmlFake
from azure.ai.ml import Input, Output, command
from azure.ai.ml.entities import Data
from azure.ai.ml.entities._assets import Code
from azure.core.exceptions import HttpResponseError
from azurite import Azurite

pytestmark = pytest.mark.e2e

ENV = "AzureML-acpt-pytorch-2.2-cuda12.1@latest"
TRAIN = b"""
import os, sys
rows = open(sys.argv[1]).read()
extra = open(os.path.join(sys.argv[2], "more.txt")).read()
os.makedirs(os.path.join(sys.argv[4], "sub"), exist_ok=True)
open(os.path.join(sys.argv[4], "sub", "model.txt"), "w").write(rows + extra + sys.argv[3])
print("trained on", rows.strip(), "run", os.environ["AZUREML_RUN_ID"], "python", sys.executable)
"""


def _wait(ml_client: Any, name: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = ml_client.jobs.get(name)
        if job.status in ("Completed", "Failed", "Canceled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {name} still {job.status} after {timeout}s")


def _job(name: str, cmd: str, **kwargs: Any) -> Any:
    return command(name=name, command=cmd, environment=ENV, compute="cpu-cluster", **kwargs)


def test_command_job_runs_with_code_inputs_and_outputs(ml_client: Any, aml: AmlFake,
                                                       azurite: Azurite) -> None:
    tag = uuid.uuid4().hex[:8]
    container = azurite.client().get_container_client(aml.container)
    container.upload_blob(f"code/{tag}/train.py", TRAIN)
    container.upload_blob(f"data/{tag}/rows.csv", b"a,b\n")
    container.upload_blob(f"data/{tag}/extra/more.txt", b"more\n")
    code = ml_client._code.create_or_update(Code(
        name=f"code-{tag}", version="1", path=f"azureml://datastores/workspaceblobstore/paths/code/{tag}/"))
    extra = ml_client.data.create_or_update(Data(
        name=f"extra-{tag}", version="1", type="uri_folder",
        path=f"azureml://datastores/workspaceblobstore/paths/data/{tag}/extra/"))
    name = f"train-{tag}"
    job = ml_client.jobs.create_or_update(_job(
        name, "python train.py ${{inputs.rows}} ${{inputs.extra}} ${{inputs.seed}} ${{outputs.model}}",
        code=code.id, tags={"mlform.stack": "s"},
        inputs={"rows": Input(type="uri_file",
                              path=f"azureml://datastores/workspaceblobstore/paths/data/{tag}/rows.csv"),
                "extra": Input(type="uri_folder", path=f"azureml:{extra.name}:{extra.version}"),
                "seed": 7},
        outputs={"model": Output(type="uri_folder")}))
    assert job.name == name and job.status in ("Queued", "Preparing", "Running", "Completed")
    done = _wait(ml_client, name)
    log = aml.job_log(name)
    assert done.status == "Completed", log
    assert f"trained on a,b run {name}" in log
    assert f"python {sys.executable}" in log  # `python` is the tests' interpreter
    # the output went to the service's default place for it
    blob = container.get_blob_client(f"azureml/{name}/model/sub/model.txt")
    assert blob.download_blob().readall() == b"a,b\nmore\n7"
    assert ml_client.jobs._runs_operations.get_run(name).error is None


def test_failed_job_reports_stderr_tail(ml_client: Any) -> None:
    name = f"fail-{uuid.uuid4().hex[:8]}"
    ml_client.jobs.create_or_update(_job(name, "echo starting; echo 'bad label column' >&2; exit 3"))
    assert _wait(ml_client, name).status == "Failed"
    run = ml_client.jobs._runs_operations.get_run(name)
    assert "bad label column" in run.error.error.message
    assert "status code 3" in run.error.error.message


def test_second_put_of_a_name_returns_it_or_refuses_changes(ml_client: Any, aml: AmlFake) -> None:
    name = f"same-{uuid.uuid4().hex[:8]}"
    ml_client.jobs.create_or_update(_job(name, "echo once", tags={"a": "1"}))
    _wait(ml_client, name)
    again = ml_client.jobs.create_or_update(_job(name, "echo once", tags={"a": "1"}))
    assert again.name == name and again.status == "Completed"
    assert aml.job_log(name).count("once") == 1  # adopted, not run twice
    fetched = ml_client.jobs.get(name)
    fetched.tags["b"] = "2"
    ml_client.jobs.create_or_update(fetched)
    assert ml_client.jobs.get(name).tags == {"a": "1", "b": "2"}
    with pytest.raises(HttpResponseError, match="command cannot be changed"):
        ml_client.jobs.create_or_update(_job(name, "echo twice"))


def test_held_job_stays_queued_and_cancel_stops_it(ml_client: Any, aml: AmlFake) -> None:
    name = f"held-{uuid.uuid4().hex[:8]}"
    aml.hold_jobs(True)
    try:
        ml_client.jobs.create_or_update(_job(name, "echo ran"))
        time.sleep(0.3)
        assert ml_client.jobs.get(name).status == "Queued"
        ml_client.jobs.begin_cancel(name).result()
    finally:
        aml.hold_jobs(False)
    assert _wait(ml_client, name).status == "Canceled"
    assert "ran" not in aml.job_log(name)

    running = f"long-{uuid.uuid4().hex[:8]}"
    ml_client.jobs.create_or_update(_job(running, "echo begun; sleep 60"))
    deadline = time.monotonic() + 30
    while "begun" not in aml.job_log(running) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ml_client.jobs.get(running).status == "Running"
    ml_client.jobs.begin_cancel(running).result()
    assert _wait(ml_client, running, timeout=10).status == "Canceled"


def test_list_filters_by_tag(ml_client: Any) -> None:
    tag = f"mlform.test.{uuid.uuid4().hex[:8]}"
    name = f"tagged-{uuid.uuid4().hex[:8]}"
    ml_client.jobs.create_or_update(_job(name, "true", tags={tag: "x"}))
    ml_client.jobs.create_or_update(_job(f"untagged-{uuid.uuid4().hex[:8]}", "true"))
    assert [j.name for j in ml_client.jobs.list(tag=tag)] == [name]
