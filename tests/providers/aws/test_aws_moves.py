"""The aws provider's move verbs on moto, from bundles made by hand: a training run
carried over without a SageMaker job, read back and refused when the copy differs, and a
model registered with its recorded gate results or, on request, its gates judged again."""

from __future__ import annotations

import io
import json
import tarfile

import pandas as pd
import pytest
from aws_stack import Recorder
from conftest import BUCKET
from mlform.engine.moves.verbs import ExportRequest, ImportRequest
from mlform.engine.provider import DeleteRequest, ObserveRequest, ResourceRef
from mlform.ml import bundle as bundles
from mlform.ml.gates import GateResult
from mlform.providers.aws import moves as aws_moves

RUN = "889d3e9b7fb4376e"
GATES = [{"gate": "auc >= 0.85", "kind": "metric", "passed": True, "measured": 0.91,
          "min": 0.85, "max": None, "detail": "", "groups": {}, "sensitive": []}]


@pytest.fixture
def run_bundle(tmp_path):
    holdout = io.BytesIO()
    pd.DataFrame({"amount": [1.0, 2.0], "is_fraud": [0, 1]}).to_parquet(holdout, index=False)
    return bundles.stage(tmp_path / "run", "training_job", "train", "local", {
        "artifact/model.json": b'{"kind": "mlp"}', "artifact/weights.pt": b"\x00\x01" * 50,
        "metrics.json": b'{"auc": 0.91}', "holdout.parquet": holdout.getvalue()},
        {"run_id": RUN, "metrics": {"auc": 0.91}, "code_digest": "c0de", "device": "cpu"})


def import_run(provider, bundle):
    return provider.import_(ImportRequest(ResourceRef("train", "training_job"), {
        "dataset": "s3://x/d.csv", "algorithm": "mlp_classifier", "target": "is_fraud"},
        bundle.directory, "key-train"), Recorder())


def test_a_run_is_carried_over_without_a_training_job(make_provider, client, run_bundle):
    provider = make_provider()
    resp = import_run(provider, run_bundle)
    assert resp.error is None, resp.error
    key = f"mlform/fraud/training/train/{RUN}/output/model.tar.gz"
    assert resp.outputs["artifact"] == f"s3://{BUCKET}/{key}"
    assert (resp.id, resp.outputs["metrics"]) == (RUN, {"auc": 0.91})
    assert client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []
    body = client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        names = sorted(tar.getnames())
        rows = tar.extractfile("holdout.csv").read().decode()
    # as SageMaker leaves a run: the artifact at the top, the rows as CSV for the evaluator
    assert names == ["holdout.csv", "holdout.parquet", "metrics.json", "model.json",
                     "weights.pt"]
    assert rows == "amount,is_fraud\n1.0,0\n2.0,1\n"

    again = import_run(provider, run_bundle)  # an interrupted apply repeats the import
    assert again.outputs == resp.outputs
    ref = ResourceRef("train", "training_job", RUN)
    assert provider.observe(ObserveRequest(ref, {}, resp.outputs)).exists
    exported = provider.export(ExportRequest(ref, {}, resp.outputs,
                                             staging=run_bundle.directory.parent / "back"))
    assert exported.error is None
    assert sorted(p for p, _ in exported.files) == sorted(f.path for f in run_bundle.files)
    back = bundles.load(exported.bundle)
    assert back.file("artifact/weights.pt") == run_bundle.file("artifact/weights.pt")
    assert provider.delete(DeleteRequest(ref, {}, resp.outputs), Recorder()).error is None
    assert not provider.observe(ObserveRequest(ref, {}, resp.outputs)).exists


def test_a_copy_that_differs_is_refused(make_provider, run_bundle, monkeypatch):
    real = aws_moves._tarball

    def damaged(bundle):
        data = real(bundle)
        members = aws_moves._members(data)
        members["weights.pt"] = members["weights.pt"][:-1] + b"!"
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for name, body in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(body)
                tar.addfile(info, io.BytesIO(body))
        return buf.getvalue()

    monkeypatch.setattr(aws_moves, "_tarball", damaged)
    resp = import_run(make_provider(), run_bundle)
    assert resp.error.startswith(
        "artifact/weights.pt of 'train' differs in s3://mlform-test-bucket/mlform/fraud/"
        f"training/train/{RUN}/output/model.tar.gz: sha256 ")
    assert "the manifest says" in resp.error


@pytest.fixture
def model_bundle(tmp_path):
    return bundles.stage(tmp_path / "model", "model", "fraud_model", "local",
                         {"gates.json": json.dumps(GATES).encode()},
                         {"gates": GATES, "version": 1})


def import_model(provider, model_bundle, min_auc: float, **more):
    artifact = f"s3://{BUCKET}/mlform/fraud/training/train/{RUN}/output/model.tar.gz"
    return provider.import_(ImportRequest(ResourceRef("fraud_model", "model"), {
        "artifact": artifact, "gates": [{"metric": "auc", "min": min_auc}], **more},
        model_bundle.directory, "key-model"), Recorder())


def test_a_model_is_registered_with_its_recorded_gate_results(make_provider, client,
                                                             run_bundle, model_bundle):
    provider = make_provider()
    assert import_run(provider, run_bundle).error is None
    resp = import_model(provider, model_bundle, 0.85)
    assert resp.error is None, resp.error
    recorded = [GateResult.from_dict(g).to_dict() for g in GATES]  # as recorded, unchanged
    assert resp.outputs["gates"] == recorded
    package = client("sagemaker").describe_model_package(ModelPackageName=resp.outputs["uri"])
    assert json.loads(package["CustomerMetadataProperties"]["mlform:gates"]) == recorded


def test_rerun_gates_judges_them_again_on_aws(make_provider, client, run_bundle,
                                              model_bundle):
    provider = make_provider()
    assert import_run(provider, run_bundle).error is None
    # the recorded result passed at 0.85; judged again against 0.95 it fails here
    resp = import_model(provider, model_bundle, 0.95, on_move={"rerun_gates": True})
    assert resp.error is not None and "gate 'auc >= 0.95' failed: measured 0.9100" in resp.error
    sm = client("sagemaker")
    assert sm.list_model_package_groups()["ModelPackageGroupSummaryList"] == []
    passed = import_model(provider, model_bundle, 0.9, on_move={"rerun_gates": True})
    assert passed.error is None, passed.error
    assert [(g["gate"], g["measured"]) for g in passed.outputs["gates"]] == [("auc >= 0.9",
                                                                              0.91)]


def test_rerun_better_than_champion_gates_go_to_the_evaluation_job(
        make_provider, run_bundle, model_bundle, monkeypatch):
    """Not the carried-over metrics, which know no champion (that fails the gate as
    "not judged"): the evaluation job, which scores the champion on the same rows."""
    from mlform.providers.aws.gates import GateRunner

    judged = []

    def evaluate(self, resource, spec, seed, sensitive, progress):
        judged.append([g.better_than for g in spec.gates])
        return [GateResult("auc >= champion", "metric", True, 0.91,
                           detail="no champion to compare with yet")]

    monkeypatch.setattr(GateRunner, "_evaluate", evaluate)
    provider = make_provider()
    assert import_run(provider, run_bundle).error is None
    artifact = f"s3://{BUCKET}/mlform/fraud/training/train/{RUN}/output/model.tar.gz"
    resp = provider.import_(ImportRequest(ResourceRef("fraud_model", "model"), {
        "artifact": artifact, "gates": [{"metric": "auc", "better_than": "champion"}],
        "on_move": {"rerun_gates": True}}, model_bundle.directory, "key-model"), Recorder())
    assert resp.error is None, resp.error
    assert judged == [["champion"]]
