"""The gcp provider's move verbs on the fakes, from bundles made by hand: a dataset stored
at its content version, a training run carried over without a Vertex AI custom job (laid
out as a custom job leaves it, read back and refused when the copy differs), and a model
registered with its recorded gate results or, on request, its gates judged again."""

from __future__ import annotations

import io
import json
import uuid

import pandas as pd
import pytest
from gcp_stack import labelled
from mlform.engine.moves.verbs import ExportRequest, ImportRequest
from mlform.engine.provider import (
    DeleteRequest,
    ObserveRequest,
    Progress,
    ProviderContext,
    ResourceRef,
)
from mlform.ml import bundle as bundles
from mlform.ml.gates import GateResult
from mlform.providers.gcp import gcs as gcs_module
from mlform.providers.gcp.provider import GcpProvider

pytestmark = pytest.mark.e2e  # the GCS emulator and the Vertex AI fake

QUIET = Progress(lambda *_: None)
RUN = "889d3e9b7fb4376e"
GATES = [{"gate": "auc >= 0.85", "kind": "metric", "passed": True, "measured": 0.91,
          "min": 0.85, "max": None, "detail": "", "groups": {}, "sensitive": []}]


@pytest.fixture
def provider(gcs, vertex, gcs_bucket, tmp_path):
    # A stack name of each test's own: the Vertex fake is shared by every gcp test of the
    # session, whose stacks are often called `fraud` too.
    made = GcpProvider(ProviderContext(
        f"fraud-{uuid.uuid4().hex[:8]}", tmp_path, "vertex",
        {"project": vertex.project, "region": vertex.region, "bucket": gcs_bucket,
         "api_endpoint": vertex.url, "storage_endpoint": gcs.url, "poll_interval": 0.2},
        tmp_path / ".mlform" / "vertex"))
    yield made
    made.close()


@pytest.fixture
def run_bundle(tmp_path):
    holdout = io.BytesIO()
    pd.DataFrame({"amount": [1.0, 2.0], "is_fraud": [0, 1]}).to_parquet(holdout, index=False)
    return bundles.stage(tmp_path / "run", "training_job", "train", "sagemaker", {
        "artifact/model.json": b'{"kind": "mlp"}', "artifact/weights.pt": b"\x00\x01" * 50,
        "metrics.json": b'{"auc": 0.91}', "holdout.parquet": holdout.getvalue()},
        {"run_id": RUN, "metrics": {"auc": 0.91}, "code_digest": "c0de", "device": "cpu",
         "seed": 7})


def import_run(provider, bundle):
    return provider.import_(ImportRequest(ResourceRef("train", "training_job"), {
        "dataset": "gs://x/d.csv", "algorithm": "mlp_classifier", "target": "is_fraud"},
        bundle.directory, "key-train"), QUIET)


def blob(gcs, bucket, key):
    return gcs.client().bucket(bucket).blob(key).download_as_bytes()


def test_a_dataset_is_stored_at_its_content_version(provider, gcs, gcs_bucket, tmp_path):
    data = b"amount,is_fraud\n1.0,0\n2.0,1\n"
    staged = bundles.stage(tmp_path / "ds", "dataset", "transactions", "sagemaker",
                           {"data.csv": data}, {"version": "5b4ec6a22f87", "rows": 2,
                                                "columns": ["amount", "is_fraud"],
                                                "format": "csv"})
    resp = provider.import_(ImportRequest(ResourceRef("transactions", "dataset"),
                                          {"source": "data/t.csv"}, staged.directory, "k"),
                            QUIET)
    assert resp.error is None, resp.error
    key = f"mlform/{provider.ctx.stack}/datasets/transactions/5b4ec6a22f87/data.csv"
    assert resp.outputs == {"uri": f"gs://{gcs_bucket}/{key}", "version": "5b4ec6a22f87",
                            "path": f"gs://{gcs_bucket}/{key}", "rows": 2,
                            "columns": ["amount", "is_fraud"]}
    assert blob(gcs, gcs_bucket, key) == data
    back = provider.export(ExportRequest(ResourceRef("transactions", "dataset"), {},
                                         resp.outputs, staging=tmp_path / "back"))
    assert bundles.load(back.bundle).files == staged.files


def test_a_run_is_carried_over_without_a_custom_job(provider, gcs, vertex, gcs_bucket,
                                                   run_bundle):
    resp = import_run(provider, run_bundle)
    assert resp.error is None, resp.error
    folder = f"mlform/{provider.ctx.stack}/training/train/{RUN}/model/"
    assert resp.outputs["artifact"] == f"gs://{gcs_bucket}/{folder}"
    assert (resp.id, resp.outputs["metrics"]) == (RUN, {"auc": 0.91})
    assert not [n for n in labelled(gcs, vertex, gcs_bucket, provider.ctx.stack) if "customJobs" in n]
    names = sorted(b.name.removeprefix(folder)
                   for b in gcs.client().list_blobs(gcs_bucket, prefix=folder))
    # as a custom job leaves a run: the artifact at the top, the rows as CSV for the
    # evaluation job, run.json with the seed the evaluation job is seeded with
    assert names == ["holdout.csv", "holdout.parquet", "metrics.json", "model.json",
                     "run.json", "weights.pt"]
    assert blob(gcs, gcs_bucket, folder + "holdout.csv") == b"amount,is_fraud\n1.0,0\n2.0,1\n"
    assert json.loads(blob(gcs, gcs_bucket, folder + "run.json"))["seed"] == 7

    again = import_run(provider, run_bundle)  # an interrupted apply repeats the import
    assert again.outputs == resp.outputs
    ref = ResourceRef("train", "training_job", RUN)
    assert provider.observe(ObserveRequest(ref, {}, resp.outputs)).exists
    exported = provider.export(ExportRequest(ref, {}, resp.outputs,
                                             staging=run_bundle.directory.parent / "back"))
    assert exported.error is None, exported.error
    back = bundles.load(exported.bundle)
    assert back.files == run_bundle.files
    assert back.outputs["seed"] == 7
    assert provider.delete(DeleteRequest(ref, {}, resp.outputs), QUIET).error is None
    assert not provider.observe(ObserveRequest(ref, {}, resp.outputs)).exists
    assert list(gcs.client().list_blobs(gcs_bucket, prefix=folder)) == []


def test_a_copy_that_differs_is_refused(provider, run_bundle, monkeypatch):
    real = gcs_module.Gcs.put

    def damaged(self, bucket, key, data, labels=None, content_type="application/octet-stream"):
        if key.endswith("weights.pt"):
            data = data[:-1] + b"!"
        real(self, bucket, key, data, labels, content_type)

    monkeypatch.setattr(gcs_module.Gcs, "put", damaged)
    resp = import_run(provider, run_bundle)
    assert resp.error is not None
    assert resp.error.startswith("artifact/weights.pt of 'train' differs in gs://")
    assert "the manifest says" in resp.error


@pytest.fixture
def model_bundle(tmp_path):
    return bundles.stage(tmp_path / "model", "model", "fraud_model", "sagemaker",
                         {"gates.json": json.dumps(GATES).encode()},
                         {"gates": GATES, "version": 1})


def import_model(provider, artifact, model_bundle, min_auc: float, **more):
    return provider.import_(ImportRequest(ResourceRef("fraud_model", "model"), {
        "artifact": artifact, "gates": [{"metric": "auc", "min": min_auc}], **more},
        model_bundle.directory, "key-model"), QUIET)


def test_a_model_is_registered_with_its_recorded_gate_results(provider, run_bundle,
                                                             model_bundle):
    run = import_run(provider, run_bundle)
    resp = import_model(provider, run.outputs["artifact"], model_bundle, 0.85)
    assert resp.error is None, resp.error
    recorded = [GateResult.from_dict(g).to_dict() for g in GATES]  # as recorded, unchanged
    assert resp.outputs["gates"] == recorded
    assert resp.outputs["version"] == 1 and "/models/" in resp.outputs["registry_model"]


def test_rerun_gates_judges_them_again_on_gcp(provider, run_bundle, model_bundle):
    artifact = import_run(provider, run_bundle).outputs["artifact"]
    # the recorded result passed at 0.85; judged again against 0.95 it fails here
    resp = import_model(provider, artifact, model_bundle, 0.95, on_move={"rerun_gates": True})
    assert resp.error is not None and "gate 'auc >= 0.95' failed: measured 0.9100" in resp.error
    passed = import_model(provider, artifact, model_bundle, 0.9,
                          on_move={"rerun_gates": True})
    assert passed.error is None, passed.error
    assert [(g["gate"], g["measured"]) for g in passed.outputs["gates"]] == [("auc >= 0.9",
                                                                              0.91)]
