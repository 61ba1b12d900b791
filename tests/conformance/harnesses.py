"""One harness per provider for the conformance kit: how to configure the provider, a
minimal stack of the resource types it realises, and how to change one of them behind
mlform's back.

A new provider (Vertex AI, Azure ML, Ray, Slurm) joins the kit by adding one function
here and its name to `HARNESSES`; test_conformance.py runs every case against it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from mlform.engine.state.model import ResourceState

CSV = "amount,age,is_fraud\n" + "".join(
    f"{i * 3.5 % 97},{20 + i % 40},{int(i % 7 == 0)}\n" for i in range(60))
"""Tiny data: every provider stores it in well under a second."""

DATASET = {"type": "dataset", "source": "data/rows.csv"}


@dataclass(frozen=True)
class Harness:
    provider: str
    """The provider type, which is also its name in the stack."""
    config: dict[str, Any]
    """The provider's block under `providers:`."""
    resources: dict[str, dict[str, Any]]
    """A minimal stack: resource name -> its body (`type:` and inputs, references allowed)."""
    tamper: Callable[[Path, ResourceState], str]
    """Changes the live resource recorded as `ResourceState` out of band, in the stack
    directory given; returns the drift kind refresh must then report for it."""
    lone: str = "data"
    """A resource of `resources` with no references: the one the create, delete and
    kill cases drive directly through the provider."""
    files: dict[str, str] = field(default_factory=lambda: {"data/rows.csv": CSV})
    """Files the stack reads, relative to its directory."""
    serving: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Resources added to `resources` by the invoke case only (a model and an endpoint
    serving it), for a provider whose `invoke` must answer: the other cases stay fast."""


# --- null: records under .mlform/null/ -----------------------------------------------

def _null_tamper(stack_dir: Path, res: ResourceState) -> str:
    (stack_dir / ".mlform" / "null" / f"{res.id}.json").unlink()
    return "deleted_outside"


def null_harness(request: pytest.FixtureRequest) -> Harness:
    return Harness("null", {}, {
        "data": DATASET,
        "train": {"type": "training_job", "dataset": "${data.uri}",
                  "algorithm": "mlp_classifier", "target": "is_fraud"},
        "model": {"type": "model", "artifact": "${train.artifact}"},
        "serve": {"type": "endpoint",
                  "variants": {"champion": {"model": "${model.uri}", "weight": 100}}},
    }, _null_tamper)


# --- local: files under .mlform/local/ (datasets only: training takes seconds) ------

def _local_tamper(stack_dir: Path, res: ResourceState) -> str:
    shutil.rmtree(stack_dir / ".mlform" / "local" / "datasets" / res.name)
    return "deleted_outside"


def local_harness(request: pytest.FixtureRequest) -> Harness:
    return Harness("local", {}, {"data": DATASET}, _local_tamper)


def local_trained_harness(request: pytest.FixtureRequest) -> Harness:
    """The local provider with a really trained model (a few seconds of torch)."""
    return Harness("local", {}, {
        "data": DATASET,
        "train": {"type": "training_job", "dataset": "${data.uri}",
                  "algorithm": "mlp_classifier", "target": "is_fraud",
                  "hyperparameters": {"epochs": 1}},
        "model": {"type": "model", "artifact": "${train.artifact}"},
    }, _local_tamper)


# --- aws: S3 and SageMaker on moto ----------------------------------------------------

def aws_harness(request: pytest.FixtureRequest) -> Harness:
    from aws_conftest import BUCKET, REGION, ROLE
    from moto_extensions import SCRIPT

    url = request.getfixturevalue("aws")

    def tamper(stack_dir: Path, res: ResourceState) -> str:
        import boto3

        bucket, key = res.outputs["uri"].removeprefix("s3://").split("/", 1)
        boto3.client("s3", region_name=REGION, endpoint_url=url).delete_object(
            Bucket=bucket, Key=key)
        return "deleted_outside"

    # SageMaker's training is scripted in the emulator: the job completes with these metrics.
    SCRIPT.training["conformance-train-"] = {"metrics": {"auc": 0.93, "accuracy": 0.9}}
    config = {"region": REGION, "role_arn": ROLE, "bucket": BUCKET, "endpoint_url": url,
              "poll_interval": 0.01, "max_attempts": 2}
    return Harness("aws", config, {
        "data": DATASET,
        "train": {"type": "training_job", "dataset": "${data.uri}",
                  "algorithm": "mlp_classifier", "target": "is_fraud"},
    }, tamper)


# --- slurm: a real single-host cluster (tests/providers/slurm/slurm_cluster.py) ------

def slurm_harness(request: pytest.FixtureRequest) -> Harness:
    """Trains for real in a Slurm job (a few seconds), on the session's cluster."""
    import sys

    here = str(Path(__file__).resolve().parents[1] / "providers" / "slurm")
    if here not in sys.path:
        sys.path.insert(0, here)
    from slurm_cluster import session_cluster

    session_cluster(request)  # SLURM_CONF names it in the environment the provider inherits

    def tamper(stack_dir: Path, res: ResourceState) -> str:
        shutil.rmtree(stack_dir / "shared" / "conformance" / "datasets" / res.name)
        return "deleted_outside"

    return Harness("slurm", {"storage": "shared", "poll_seconds": 0.2}, {
        "data": DATASET,
        "train": {"type": "training_job", "dataset": "${data.uri}",
                  "algorithm": "logistic_regression", "target": "is_fraud",
                  "hyperparameters": {"epochs": 1}},
    }, tamper)


# --- ray: a real single-node Ray cluster (tests/providers/ray/ray_testcluster.py) ------

def ray_harness(request: pytest.FixtureRequest) -> Harness:
    """Trains for real in a Ray job, on the session's cluster. The storage is the
    session's, so a case that applies the same inputs as an earlier one adopts its job
    (same submission id) rather than training again."""
    import sys

    here = str(Path(__file__).resolve().parents[1] / "providers" / "ray")
    if here not in sys.path:
        sys.path.insert(0, here)
    import ray_testcluster

    if not ray_testcluster.available():
        pytest.skip("ray is not installed: pip install 'mlform[ray]'")
    cluster = ray_testcluster.shared()
    storage = cluster.storage / "conformance-kit"
    storage.mkdir(exist_ok=True)

    def tamper(stack_dir: Path, res: ResourceState) -> str:
        shutil.rmtree(storage / "conformance" / "datasets" / res.name)
        return "deleted_outside"

    return Harness("ray", {"address": cluster.address, "storage": str(storage),
                           "poll_interval": 0.2}, {
        "data": DATASET,
        "train": {"type": "training_job", "dataset": "${data.uri}",
                  "algorithm": "logistic_regression", "target": "is_fraud",
                  "hyperparameters": {"epochs": 1}},
    }, tamper)


# --- gcp: Vertex AI's fake and a real GCS emulator (tests/providers/gcp/) -------------

def gcp_harness(request: pytest.FixtureRequest) -> Harness:
    """Trains for real in a custom job the Vertex AI fake runs; the fakes and the bucket
    are the process's, so a case that applies the same inputs as an earlier one adopts its
    job (found by its labels) rather than training again."""
    import sys

    here = str(Path(__file__).resolve().parents[1] / "providers" / "gcp")
    if here not in sys.path:
        sys.path.insert(0, here)
    from gcp_stack import shared_fakes

    gcs, vertex, bucket = shared_fakes()

    def tamper(stack_dir: Path, res: ResourceState) -> str:
        key = res.outputs["uri"].removeprefix(f"gs://{bucket}/")
        gcs.client().bucket(bucket).blob(key).delete()
        return "deleted_outside"

    return Harness("gcp", {"project": vertex.project, "region": vertex.region,
                           "bucket": bucket, "api_endpoint": vertex.url,
                           "storage_endpoint": gcs.url, "poll_interval": 0.2}, {
        "data": DATASET,
        "train": {"type": "training_job", "dataset": "${data.uri}",
                  "algorithm": "logistic_regression", "target": "is_fraud",
                  "hyperparameters": {"epochs": 1}},
    }, tamper, serving={
        "model": {"type": "model", "artifact": "${train.artifact}"},
        "serve": {"type": "endpoint",
                  "variants": {"champion": {"model": "${model.uri}", "weight": 100}}},
    })


# --- azure: Azure ML's fake (ARM + workspace REST over https) and a real Azurite ----

_AZURE: dict[str, Any] = {}


def azure_harness(request: pytest.FixtureRequest) -> Harness:
    """Datasets on the Azure ML fake and Azurite (tests/providers/azure), started once per
    session; the provider signs in with the fake's token and Azurite's well-known key."""
    import sys

    here = str(Path(__file__).resolve().parents[1] / "providers" / "azure")
    if here not in sys.path:
        sys.path.insert(0, here)
    from azurite import azurite_binary, start_azurite

    if azurite_binary() is None:
        pytest.skip("azurite-blob is not installed "
                    "(npm install --prefix build/azurite azurite@3.35.0)")
    if not _AZURE:
        from aml_fake import start_aml_fake

        root = request.getfixturevalue("tmp_path_factory").mktemp("conformance-azure")
        _AZURE["azurite"] = start_azurite(root / "azurite")
        _AZURE["aml"] = start_aml_fake(_AZURE["azurite"], root / "aml",
                                       container="azureml-conformance")
        request.config.add_cleanup(lambda: (_AZURE["aml"].stop(), _AZURE["azurite"].stop()))
    azurite, aml = _AZURE["azurite"], _AZURE["aml"]
    if "azure_conftest" not in sys.modules:  # `conftest` here is the kit's own
        import importlib.util

        spec = importlib.util.spec_from_file_location("azure_conftest",
                                                      Path(here) / "conftest.py")
        assert spec is not None and spec.loader is not None
        sys.modules["azure_conftest"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["azure_conftest"])
    provider_env = sys.modules["azure_conftest"].provider_env
    provider_settings = sys.modules["azure_conftest"].provider_settings

    monkeypatch = request.getfixturevalue("monkeypatch")
    for name, value in provider_env(aml, azurite).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AZUREML_CURRENT_CLOUD", raising=False)  # MLClient sets it again

    def tamper(stack_dir: Path, res: ResourceState) -> str:
        from azure.storage.blob import BlobServiceClient

        key = res.outputs["uri"].split("/paths/", 1)[1]
        BlobServiceClient.from_connection_string(azurite.connection_string) \
            .get_container_client(aml.container).delete_blob(key)
        return "deleted_outside"

    config = provider_settings(aml, azurite)
    return Harness("azure", config, {"data": DATASET}, tamper)


HARNESSES: dict[str, Callable[[pytest.FixtureRequest], Harness]] = {
    "null": null_harness,
    "local": local_harness,
    "local_trained": local_trained_harness,
    "aws": aws_harness,
    "slurm": slurm_harness,
    "ray": ray_harness,
    "gcp": gcp_harness,
    "azure": azure_harness,
}

SLOW = frozenset({"local_trained", "slurm", "ray", "gcp"})
"""Harnesses whose cases take more than a few seconds each (marked `slow`)."""
