"""The installed `mlform` command with the gcp provider on the Vertex AI fake and the GCS
emulator: the contract's example stack applied, a second plan empty, an out-of-band
traffic split and a deleted model found as drift and repaired; new data retrained and
rolled out by a stepped canary that an injected error rate rolls back (an incident);
an apply killed during training adopted, not duplicated; destroy leaves nothing labelled.

The fakes run in this process, so a test steers them (`hold_jobs`, `inject_errors`) and
changes things behind mlform's back with the real SDK while the command runs in another.
"""

from __future__ import annotations

import json
import re
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gcp_stack import ENDPOINT, labelled, mlform, rows, write_stack

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

APPLY = ["apply", "--auto-approve", "--no-color"]


def ok(args: list[str], stack: Path):
    done = mlform(args, stack)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def outputs_of(stack: Path, name: str) -> dict:
    return json.loads(ok(["show", name, "--json"], stack).stdout)["outputs"]


@pytest.fixture(scope="module")
def bucket(gcs) -> str:
    name = f"mlform-cli-{uuid.uuid4().hex[:10]}"
    gcs.create_bucket(name)
    return name


@pytest.fixture(scope="module")
def applied(gcs, vertex, bucket, tmp_path_factory) -> Iterator[Path]:
    """The example stack on the fakes, applied once for the module's tests (in order)."""
    stack = write_stack(tmp_path_factory.mktemp("fraud"), gcs, vertex, bucket, extra=ENDPOINT)
    done = mlform(APPLY, stack)
    assert done.returncode == 0, done.stdout + done.stderr
    yield stack


def endpoints_client(vertex):
    from google.cloud.aiplatform_v1 import EndpointServiceClient

    return vertex.client(EndpointServiceClient)


def test_apply_serves_the_model_and_a_second_plan_is_empty(applied, vertex):
    from google.cloud.aiplatform_v1 import PredictionServiceClient

    endpoint = outputs_of(applied, "fraud_endpoint")
    assert endpoint["traffic"] == {"champion": 100.0}
    answer = vertex.client(PredictionServiceClient).predict(
        endpoint=endpoint["url"].split("/v1/", 1)[1].removesuffix(":predict"),
        instances=[[95.0, 30], [5.0, 41]])
    assert list(answer.predictions) == [1.0, 0.0]
    plan = mlform(["plan", "--detailed-exitcode", "--no-color"], applied)
    assert plan.returncode == 0, plan.stdout + plan.stderr


def _logged(gcs: Any, bucket: str, ids: set[str], timeout: float = 30.0) -> dict[str, dict]:
    """The request log's lines for `ids`, once the serving container has flushed them."""
    deadline = time.monotonic() + timeout
    found: dict[str, dict] = {}
    while True:
        for blob in gcs.client().list_blobs(bucket, prefix="mlform/fraud/requests/"):
            for line in blob.download_as_bytes().splitlines():
                record = json.loads(line)
                if record["id"] in ids:
                    found[record["id"]] = record
        if set(found) == ids or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_the_endpoint_answers_scores_and_explanations_and_logs_the_scores(
        applied, vertex, gcs, bucket, tmp_path):
    from google.cloud.aiplatform_v1 import PredictionServiceClient
    from google.protobuf import json_format, struct_pb2
    from mlform.ml.artifact import load_predictor
    from mlform.ml.explain import occlusion

    name = outputs_of(applied, "fraud_endpoint")["url"].split("/v1/", 1)[1] \
        .removesuffix(":predict")
    client = vertex.client(PredictionServiceClient)
    instances = [[95.0, 30], [5.0, 41], [80.0, 22], [20.0, 58]]

    def raw(body: dict) -> dict:
        got = client.raw_predict(request={"endpoint": name, "http_body": {
            "content_type": "application/json", "data": json.dumps(body).encode()}})
        return dict(json.loads(got.data))

    labels = raw({"instances": instances})
    scored = raw({"instances": instances, "return": "probabilities", "parameters": {"id": "p-top"}})
    assert "probabilities" not in labels and scored["classes"] == [0, 1]
    for row, label in zip(scored["probabilities"], scored["predictions"], strict=True):
        assert sum(row) == pytest.approx(1.0, abs=1e-6)
        assert label == scored["classes"][max(range(len(row)), key=row.__getitem__)]
    assert scored["predictions"] == labels["predictions"]
    assert labels["predictions"][:2] == [1, 0]
    # Vertex AI's predict puts options in "parameters" and answers "predictions" alone
    parameters = json_format.ParseDict({"return": "probabilities", "id": "p-params"},
                                       struct_pb2.Value())
    answer = client.predict(endpoint=name, instances=instances, parameters=parameters)
    assert list(answer.predictions) == [float(p) for p in labels["predictions"]]

    explained = raw({"instances": instances, "explain": True})
    artifact = outputs_of(applied, "train")["artifact"]
    source, _, prefix = artifact.removeprefix("gs://").partition("/")
    local = tmp_path / "artifact"
    for blob in gcs.client().list_blobs(source, prefix=prefix):
        path = local / blob.name[len(prefix):]
        path.parent.mkdir(parents=True, exist_ok=True)
        blob.download_to_filename(str(path))
    want = occlusion(load_predictor(local), instances)
    assert (explained["method"], explained["baseline"]) == ("occlusion", "training means")
    assert [e["prediction"] for e in explained["explanations"]] == labels["predictions"]
    for got, expected in zip(explained["explanations"], want, strict=True):
        assert got["score"] == pytest.approx(expected["score"], rel=1e-6)
        assert got["attributions"] == pytest.approx(expected["attributions"], rel=1e-6,
                                                    abs=1e-9)

    logged = _logged(gcs, bucket, {"p-top", "p-params"})
    assert set(logged) == {"p-top", "p-params"}, logged
    assert logged["p-top"]["scores"] == scored["probabilities"]
    assert logged["p-params"]["scores"] == scored["probabilities"]


def test_an_out_of_band_traffic_split_is_drift_and_apply_restores_it(applied,
                                                                     vertex):
    name = outputs_of(applied, "fraud_endpoint")["url"].split("/v1/", 1)[1] \
        .removesuffix(":predict")
    client = endpoints_client(vertex)
    client.update_endpoint(endpoint={"name": name, "traffic_split": {}},
                           update_mask={"paths": ["traffic_split"]})
    drift = mlform(["drift", "--no-color"], applied)
    assert drift.returncode == 2, drift.stdout + drift.stderr
    assert re.search(r"fraud_endpoint.*changed", drift.stdout), drift.stdout
    assert "weight" in drift.stdout, drift.stdout
    ok(APPLY, applied)
    assert set(dict(client.get_endpoint(name=name).traffic_split).values()) == {100}
    assert mlform(["drift", "--no-color"], applied).returncode == 0


class Traffic:
    """Requests sent to the endpoint on a thread while an apply rolls out; the first
    deployed model that appears is made to fail (`inject_errors`)."""

    def __init__(self, vertex: Any, endpoint: str, rate: float):
        from google.cloud.aiplatform_v1 import PredictionServiceClient

        self.vertex, self.endpoint, self.rate = vertex, endpoint, rate
        self.client = vertex.client(PredictionServiceClient)
        self.endpoints = endpoints_client(vertex)
        self.known = {d.id for d in self.endpoints.get_endpoint(name=endpoint).deployed_models}
        self.failing: list[str] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        eid = self.endpoint.rsplit("/", 1)[-1]
        while not self.stop.is_set():
            try:
                if not self.failing:
                    for deployed in self.endpoints.get_endpoint(
                            name=self.endpoint).deployed_models:
                        if deployed.id not in self.known:
                            self.vertex.inject_errors(eid, deployed.id, self.rate)
                            self.failing.append(deployed.id)
                self.client.predict(endpoint=self.endpoint, instances=[[70.0, 33]])
            except Exception as exc:  # the injected 500s (the fake counts them), and more
                self.errors.append(str(exc)[:200])
            self.stop.wait(0.05)

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join()


def test_new_data_retrains_and_a_failing_canary_rolls_back_with_an_incident(
        applied, vertex):
    (applied / "data" / "transactions.csv").write_text(rows(90, shift=1.0))
    plan = mlform(["plan", "--no-color"], applied)
    assert re.search(r"train.*(replace|must be replaced)", plan.stdout, re.I), plan.stdout
    assert "fraud_endpoint" in plan.stdout, plan.stdout
    name = outputs_of(applied, "fraud_endpoint")["url"].split("/v1/", 1)[1] \
        .removesuffix(":predict")
    before = {d.id for d in endpoints_client(vertex).get_endpoint(name=name).deployed_models}
    with Traffic(vertex, name, rate=1.0) as traffic:
        done = mlform(APPLY, applied)
    assert done.returncode == 1, done.stdout + done.stderr
    assert traffic.failing, (done.stdout + done.stderr, traffic.errors[-3:])
    assert "rolled back at canary step 50%: error rate" in done.stdout + done.stderr
    live = endpoints_client(vertex).get_endpoint(name=name)
    assert {d.id for d in live.deployed_models} == before  # the new model is undeployed
    assert set(dict(live.traffic_split)) == before
    incidents = ok(["incidents", "list"], applied).stdout
    assert re.search(r"open\s+rollback\s+.*fraud_endpoint", incidents), incidents


def test_destroy_leaves_nothing_labelled(applied, gcs, vertex, bucket):
    ok(["destroy", "--auto-approve", "--no-color"], applied)
    assert labelled(gcs, vertex, bucket, "fraud") == []


def test_a_kill_during_training_is_adopted_and_a_deleted_model_is_drift(
        gcs, vertex, bucket, tmp_path, spawn_mlform):
    from google.cloud.aiplatform_v1 import JobServiceClient, ModelServiceClient

    stack = write_stack(tmp_path / "adopt", gcs, vertex, bucket, stack="adopt")
    vertex.hold_jobs(True)
    try:
        proc = spawn_mlform(APPLY, stack)
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if re.match(r"^train: custom job \d+: QUEUED", line):
                break
        else:
            raise AssertionError("the apply ended before its job was queued:\n" + "".join(seen)
                                 + proc.stderr.read())
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        vertex.hold_jobs(False)
    ok(APPLY, stack)
    jobs = vertex.client(JobServiceClient).list_custom_jobs(request={
        "parent": f"projects/{vertex.project}/locations/{vertex.region}",
        "filter": "labels.mlform-stack=adopt AND labels.mlform-type=training_job"})
    assert len(list(jobs)) == 1  # adopted, not started twice

    # a model deleted behind mlform's back is drift, and apply registers it again
    models = vertex.client(ModelServiceClient)
    uri = outputs_of(stack, "fraud_model")["uri"]
    models.delete_model(name=uri.split("@")[0]).result(timeout=60)
    drift = mlform(["drift", "--no-color"], stack)
    assert drift.returncode == 2, drift.stdout + drift.stderr
    assert re.search(r"fraud_model.*deleted", drift.stdout), drift.stdout
    ok(APPLY, stack)
    assert models.get_model(name=outputs_of(stack, "fraud_model")["uri"])
    assert mlform(["drift", "--no-color"], stack).returncode == 0

    ok(["destroy", "--auto-approve", "--no-color"], stack)
    assert labelled(gcs, vertex, bucket, "adopt") == []
