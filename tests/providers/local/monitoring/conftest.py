"""Shared fixtures: a reference dataset on disk and an endpoint's traffic log, written
in the formats the dataset and serving code write them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlform.providers.local.paths import LocalPaths, dataset_uri

FEATURES = ["amount", "age", "country"]
COUNTRIES = ["fr", "de", "es", "it"]


def frame(rows: int, seed: int, amount_mean: float = 100.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "amount": rng.normal(amount_mean, 20.0, rows),
        "age": rng.normal(40.0, 10.0, rows),
        "country": rng.choice(COUNTRIES, rows, p=[0.4, 0.3, 0.2, 0.1]),
        "is_fraud": rng.integers(0, 2, rows),
    })


@pytest.fixture
def paths(tmp_path: Path) -> LocalPaths:
    return LocalPaths(tmp_path / ".mlform" / "local")


@pytest.fixture
def reference_uri(paths: LocalPaths) -> str:
    directory = paths.dataset("transactions", "abc123def456")
    directory.mkdir(parents=True)
    frame(2000, seed=1).to_csv(directory / "data.csv", index=False)
    (directory / "profile.json").write_text("{}")
    return dataset_uri("transactions", "abc123def456")


@pytest.fixture
def log_traffic(paths: LocalPaths):
    """Append requests (and feedback) to an endpoint's logs the way the server does:
    `requests` of 10 instances each, drawn like the reference but with `amount_mean`,
    predictions right for `accuracy` of them (or `always` the same class)."""

    def log(endpoint: str, requests: int, amount_mean: float = 100.0, seed: int = 2,
            accuracy: float = 1.0, feedback: bool = True, start: float = 1_000.0,
            always: int | None = None) -> None:
        directory = paths.endpoint(endpoint)
        directory.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(seed)
        data = frame(requests * 10, seed=seed, amount_mean=amount_mean)
        with (directory / "requests.jsonl").open("a") as out, \
                (directory / "feedback.jsonl").open("a") as labels_out:
            for i in range(requests):
                chunk = data.iloc[i * 10:(i + 1) * 10]
                labels = chunk["is_fraud"].tolist()
                right = rng.random(len(labels)) < accuracy
                predictions = [y if ok else 1 - y for y, ok in zip(labels, right, strict=True)]
                if always is not None:
                    predictions = [always] * len(labels)
                request_id = f"{seed}-{i}"
                out.write(json.dumps({
                    "t": start + i, "id": request_id, "variant": "champion",
                    "model": "local://models/fraud/1", "features": FEATURES,
                    "instances": chunk[FEATURES].values.tolist(),
                    "predictions": predictions}) + "\n")
                if feedback:
                    labels_out.write(json.dumps({"t": start + i + 0.5, "id": request_id,
                                                 "labels": labels}) + "\n")

    return log
