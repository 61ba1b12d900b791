"""The same logged rows give the same monitor evaluation on local and on ray: one window
of traffic in the request and feedback logs (the rows both providers' servers write),
in a local endpoint's folder and in a ray endpoint's folder on the shared storage,
evaluated by each provider's monitor, performance included. No cluster: the ray monitor
reads the shared storage only."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from mlform.engine.provider import ProviderContext, ResourceRef, TickRequest
from mlform.providers.local.monitoring.handler import MonitorHandler as LocalMonitor
from mlform.providers.local.paths import LocalPaths, dataset_uri
from mlform.providers.ray.monitor import MonitorHandler as RayMonitor

FEATURES = ["amount", "age", "country"]
NOW = 2_000_000.0
ROUTER = "mlform-fraud-fraud_endpoint"


def frame(rows: int, seed: int, amount_mean: float = 100.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"amount": rng.normal(amount_mean, 20.0, rows).round(3),
                         "age": rng.integers(18, 80, rows),
                         "country": rng.choice(["fr", "de", "es", "it"], rows),
                         "is_fraud": rng.integers(0, 2, rows)})


def write_logs(directory: Path, wrong_after: int | None) -> None:
    """60 requests of 10 rows, the second half shifted; labels sent back for each, wrong
    for every other request after `wrong_after`."""
    data = pd.concat([frame(300, seed=2), frame(300, seed=3, amount_mean=170.0)],
                     ignore_index=True)
    directory.mkdir(parents=True)
    with (directory / "requests.jsonl").open("w") as out, \
            (directory / "feedback.jsonl").open("w") as feedback:
        for i in range(60):
            chunk = data.iloc[i * 10:(i + 1) * 10]
            labels = chunk["is_fraud"].tolist()
            out.write(json.dumps({"t": 1_000.0 + i, "id": f"r{i}", "variant": "champion",
                                  "model": "m", "features": FEATURES,
                                  "instances": chunk[FEATURES].values.tolist(),
                                  "predictions": labels}) + "\n")
            sent = [1 - y for y in labels] if wrong_after is not None and i >= wrong_after \
                and i % 2 else labels
            feedback.write(json.dumps({"t": 1_000.0 + i, "id": f"r{i}", "labels": sent}) + "\n")


def spec(endpoint: str, reference: str) -> dict:
    return {"endpoint": endpoint, "reference": reference, "features": FEATURES,
            "window_rows": 200, "min_rows": 50, "drift_share": 0.3, "schedule": "1h",
            "performance": {"metric": "accuracy", "min": 0.9}}


def tick(handler, inputs: dict):
    return handler.tick(TickRequest(ResourceRef("drift", "monitor", "drift"), inputs,
                                    {"last_evaluation": None}, {}, {}, now=NOW))


def local_tick(root: Path, wrong_after: int | None):
    paths = LocalPaths(root / ".mlform" / "local")
    reference = paths.dataset("transactions", "abc123def456")
    reference.mkdir(parents=True)
    frame(2000, seed=1).to_csv(reference / "data.csv", index=False)
    write_logs(paths.endpoint("fraud"), wrong_after)
    handler = LocalMonitor(ProviderContext(stack="fraud", stack_dir=root, provider_name="local",
                                           config={}, data_dir=paths.root))
    return tick(handler, spec("fraud", dataset_uri("transactions", "abc123def456")))


def ray_tick(root: Path, wrong_after: int | None):
    storage = root / "shared"
    stack = storage / "fraud"
    reference = stack / "datasets" / "transactions" / "abc123def456"
    reference.mkdir(parents=True)
    frame(2000, seed=1).to_csv(reference / "data.csv", index=False)
    write_logs(stack / "endpoints" / ROUTER, wrong_after)
    ctx = ProviderContext(stack="fraud", stack_dir=root, provider_name="gpu", config={},
                          data_dir=root / ".mlform" / "gpu")
    handler = RayMonitor(ctx, SimpleNamespace(storage=storage, cfg=None))
    return tick(handler, spec(ROUTER, "ray://datasets/transactions/abc123def456"))


def stored(answer) -> dict:
    return json.loads(Path(answer.outputs["last_evaluation"]["evaluation"]).read_text())


@pytest.mark.parametrize(("wrong_after", "breaches", "accuracy"), [
    pytest.param(None, ["drift"], 1.0, id="answers right: drift alone"),
    pytest.param(40, ["drift", "performance"], 0.5, id="half the window wrong: performance too"),
])
def test_local_and_ray_evaluate_the_same_rows_alike(tmp_path, wrong_after, breaches, accuracy):
    local = local_tick(tmp_path / "local", wrong_after)
    ray = ray_tick(tmp_path / "ray", wrong_after)

    assert local.error is None and ray.error is None, (local.error, ray.error)
    # everything but what names the subject: the endpoint's id and the reference's uri
    subject = {"endpoint", "reference"}
    assert {k: v for k, v in stored(ray).items() if k not in subject} == \
        {k: v for k, v in stored(local).items() if k not in subject}
    assert stored(ray)["breaches"] == breaches
    assert stored(ray)["performance"]["value"] == accuracy
    assert ray.breach == local.breach
    assert ray.outputs["last_evaluation"].keys() == local.outputs["last_evaluation"].keys()
    assert ray.outputs["report"].endswith("/fraud/monitors/drift/report.html")
