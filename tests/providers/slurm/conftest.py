"""Fixtures of the slurm provider's tests: the session's single-host Slurm cluster."""

from __future__ import annotations

import pytest
from slurm_cluster import Cluster, session_cluster


@pytest.fixture(scope="session")
def slurm_cluster(request: pytest.FixtureRequest) -> Cluster:
    return session_cluster(request)
