"""A gcp monitor evaluates the serving container's request log in GCS exactly as the local
provider evaluates its own request log: the same logged rows and labels give the same
evaluation (drift statistics, performance, verdict), number for number."""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path

import pytest
from mlform.engine.provider import (
    CreateRequest,
    Progress,
    ProviderContext,
    ResourceRef,
    TickRequest,
)
from mlform.engine.spec.models import Monitor
from mlform.ml.monitoring.evaluate import evaluate, sample_reference
from mlform.ml.serving.traffic import read_traffic
from mlform.providers.gcp.provider import GcpProvider

pytestmark = pytest.mark.e2e

QUIET = Progress(lambda *_: None)


def log_lines(n: int, shift: float, scored: bool = False) -> list[str]:
    """Request log lines as container_serve.py writes them (the local format), with the
    class probabilities of requests that asked for them when `scored`."""
    rng = random.Random(7)
    lines = []
    for i in range(n):
        rows = [[rng.gauss(50 + shift, 10), rng.randint(20, 60)] for _ in range(2)]
        line = {"t": 1_700_000_000 + i, "id": f"r{i}", "variant": "1", "model": "m",
                "features": ["amount", "age"], "instances": rows,
                "predictions": [int(r[0] > 60) for r in rows]}
        if scored:
            fraud = [1.0 / (1.0 + math.exp(-(r[0] - 60) / 5)) for r in rows]
            line["scores"] = [[1.0 - p, p] for p in fraud]
        lines.append(json.dumps(line))
    return lines


@pytest.mark.parametrize("scored", [
    pytest.param(False, id="labels: output drift on the predictions"),
    pytest.param(True, id="probabilities: output drift on the scores"),
])
def test_the_same_rows_give_the_same_evaluation_as_local(gcs, vertex, gcs_bucket, tmp_path,
                                                        scored):
    from google.cloud.aiplatform_v1 import EndpointServiceClient

    endpoint = "mon-scores" if scored else "mon-serve"
    vertex.client(EndpointServiceClient).create_endpoint(
        parent=f"projects/{vertex.project}/locations/{vertex.region}",
        endpoint={"display_name": "serve"}, endpoint_id=endpoint).result(timeout=30)
    bucket = gcs.client().bucket(gcs_bucket)
    reference = "amount,age,is_fraud\n" + "".join(
        f"{40 + i % 30},{20 + i % 40},{int(i % 5 == 0)}\n" for i in range(300))
    bucket.blob("ref/data.csv").upload_from_string(reference)
    old, new = log_lines(60, 0.0, scored), log_lines(80, 25.0, scored)
    # two flushes of one replica, as the serving container writes them
    bucket.blob(f"mlform/mon/requests/{endpoint}/1/1700000000.000000-1-1.jsonl") \
        .upload_from_string("\n".join(old) + "\n")
    bucket.blob(f"mlform/mon/requests/{endpoint}/1/1700000100.000000-1-2.jsonl") \
        .upload_from_string("\n".join(new) + "\n")
    labels = [json.dumps({"id": f"r{i}", "labels": [1, 0]}) for i in range(0, 80, 3)]
    bucket.blob(f"mlform/mon/ground-truth/{endpoint}/labels.jsonl") \
        .upload_from_string("\n".join(labels) + "\n")

    inputs = {"endpoint": endpoint, "reference": f"gs://{gcs_bucket}/ref/data.csv",
              "window_rows": 100, "min_rows": 20,
              "performance": {"metric": "accuracy", "min": 0.5}}
    provider = GcpProvider(ProviderContext(
        "mon", tmp_path, "vertex",
        {"project": vertex.project, "region": vertex.region, "bucket": gcs_bucket,
         "api_endpoint": vertex.url, "storage_endpoint": gcs.url},
        tmp_path / ".mlform" / "vertex"))
    try:
        made = provider.create(CreateRequest(ResourceRef("watch", "monitor"), inputs, "k"),
                               QUIET)
        assert made.error is None, made.error
        now = time.time()
        ticked = provider.tick(TickRequest(ResourceRef("watch", "monitor", "watch"), inputs,
                                           made.outputs, {}, {}, now))
    finally:
        provider.close()
    assert ticked.error is None, ticked.error
    stored = ticked.outputs["last_evaluation"]["evaluation"].removeprefix(f"gs://{gcs_bucket}/")
    on_gcp = json.loads(bucket.blob(stored).download_as_bytes())

    local_dir = Path(tmp_path / "local")
    local_dir.mkdir()
    (local_dir / "requests.jsonl").write_text("\n".join(old + new) + "\n")
    (local_dir / "feedback.jsonl").write_text("\n".join(labels) + "\n")
    import io

    import pandas as pd

    spec = Monitor.model_validate({**inputs, "type": "monitor"})
    on_local = evaluate(spec, read_traffic(local_dir),
                        sample_reference(pd.read_csv(io.StringIO(reference))), now,
                        name="watch")
    on_local = json.loads(json.dumps(on_local, sort_keys=True))
    assert on_gcp["performance"]["rows"] > 0  # labels joined by request id
    for key in ("verdict", "breaches", "rows", "features", "drift", "output_drift",
                "performance"):
        assert on_gcp[key] == on_local[key], key
    assert on_gcp["output_drift"]["on"] == ("scores" if scored else "predictions")
