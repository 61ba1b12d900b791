"""A gcp batch job: a dataset scored by a registered model version in a Vertex AI
BatchPredictionJob (the fake runs the model's serving container), found again by its
labels, and deleted with its input and predictions."""

from __future__ import annotations

import json

import pytest
from gcp_stack import labelled, rows
from mlform.engine.provider import (
    CreateRequest,
    DeleteRequest,
    Progress,
    ProviderContext,
    ResourceRef,
)
from mlform.providers.gcp.provider import GcpProvider

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

QUIET = Progress(lambda *_: None)


def test_a_batch_job_scores_every_row_and_is_adopted_on_a_second_create(
        gcs, vertex, gcs_bucket, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "t.csv").write_text(rows(40))
    provider = GcpProvider(ProviderContext(
        "batch", tmp_path, "vertex",
        {"project": vertex.project, "region": vertex.region, "bucket": gcs_bucket,
         "api_endpoint": vertex.url, "storage_endpoint": gcs.url, "poll_interval": 0.2},
        tmp_path / ".mlform" / "vertex"))

    def create(name: str, rtype: str, inputs: dict):
        made = provider.create(CreateRequest(ResourceRef(name, rtype), inputs, f"k-{name}"),
                               QUIET)
        assert made.error is None, made.error
        return made

    try:
        data = create("rows", "dataset", {"source": "data/t.csv"})
        train = create("train", "training_job", {
            "dataset": data.outputs["uri"], "algorithm": "logistic_regression",
            "target": "is_fraud", "hyperparameters": {"epochs": 1}})
        model = create("model", "model", {"artifact": train.outputs["artifact"]})
        inputs = {"model": model.outputs["uri"], "dataset": data.outputs["uri"]}
        scored = create("score", "batch_job", inputs)
        again = create("score", "batch_job", inputs)
        assert again.id == scored.id  # found by its labels, not run twice

        out = scored.outputs["output_uri"].removeprefix(f"gs://{gcs_bucket}/")
        blobs = [b for b in gcs.client().list_blobs(gcs_bucket, prefix=out)
                 if b.name.rsplit("/", 1)[-1].startswith("predictions_")]
        lines = [json.loads(line) for b in blobs
                 for line in b.download_as_text().splitlines() if line]
        assert len(lines) == 40 and all(line["prediction"] in (0, 1) for line in lines)

        for name, rtype, made, given in [("score", "batch_job", scored, inputs),
                                         ("model", "model", model, {}),
                                         ("train", "training_job", train, {}),
                                         ("rows", "dataset", data, {"source": "data/t.csv"})]:
            gone = provider.delete(DeleteRequest(ResourceRef(name, rtype, made.id), given,
                                                 made.outputs), QUIET)
            assert gone.error is None, gone.error
    finally:
        provider.close()
    assert labelled(gcs, vertex, gcs_bucket, "batch") == []
