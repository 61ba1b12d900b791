"""The scoring script's request log, written to Azure Blob in many small blobs, reads back
into the very `Traffic` the local provider's monitors evaluate: the same rows, predictions,
labels (joined by request id) and times, so an azure monitor's numbers are local's. On a
real Azurite; only the window's blobs are needed."""

from __future__ import annotations

import json

import pytest
from mlform.ml.serving.reqlog import request_line
from mlform.ml.serving.traffic import FEEDBACK_LOG, REQUEST_LOGS, read_traffic
from mlform.providers.azure.blob import Blob
from mlform.providers.azure.clients import Clients
from mlform.providers.azure.config import load
from mlform.providers.azure.requestlog import read_requests

pytestmark = pytest.mark.e2e
FEATURES = ["amount", "age"]


def lines() -> list[bytes]:
    """Every other request asked for probabilities: its line holds them as "scores"."""
    return [request_line((1000.0 + i, f"r-{i}", "champion-abc", "azureml:m:1", FEATURES,
                          [[float(i), 20 + i % 7], [i * 1.5, 30]], None,
                          json.dumps([i % 2, (i + 1) % 2]),
                          json.dumps([[0.9, 0.1], [0.2, 0.8]]) if i % 2 else None))
            for i in range(30)]


def labels() -> list[bytes]:
    return [json.dumps({"id": f"r-{i}", "labels": [1, 0]}).encode() for i in range(0, 30, 3)]


def test_the_blob_request_log_reads_as_the_local_one(azurite, blob_container, tmp_path,
                                                     monkeypatch):
    monkeypatch.setenv("AZURE_STORAGE_KEY", azurite.account_key)
    cfg = load({"subscription_id": "00000000-0000-0000-0000-000000000000",
                "resource_group": "rg", "workspace": "ws",
                "storage_account": azurite.account_name, "container": blob_container,
                "credential": "token", "storage_key_env": "AZURE_STORAGE_KEY",
                "cloud": {"blob_endpoint": azurite.url}})
    blob = Blob(Clients(cfg))
    logged = lines()
    for start in range(0, len(logged), 4):  # as the scoring script flushes: many blobs
        blob.put(f"requests/ep/champion-abc/{1000 + start:.6f}-1-{start}.jsonl",
                 b"\n".join(logged[start:start + 4]) + b"\n")
    blob.put("truth/ep/labels.jsonl", b"\n".join(labels()) + b"\n")
    local = tmp_path / "local"
    local.mkdir()
    (local / REQUEST_LOGS[-1]).write_bytes(b"\n".join(logged) + b"\n")
    (local / FEEDBACK_LOG).write_bytes(b"\n".join(labels()) + b"\n")

    want = read_traffic(local)
    got = read_requests(blob, "requests/ep/", 1000, "truth/ep/")
    assert (got.predictions, got.labels, got.times, got.scores) == \
        (want.predictions, want.labels, want.times, want.scores)
    assert sum(score is not None for score in got.scores or []) == 30  # monitors compare them
    assert got.features.equals(want.features)
    assert sum(label is not None for label in got.labels) == 20
