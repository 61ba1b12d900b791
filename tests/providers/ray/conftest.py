"""The ray provider's tests: one real Ray cluster on 127.0.0.1 for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import ray_testcluster


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[ray_testcluster.RayCluster]:
    """A single-node Ray cluster (2 CPUs, small object store): `.address` is its dashboard
    URL, `.storage` a directory standing for the shared filesystem. Started once per
    session, whichever test (or the conformance kit) asks first; stopped at the end."""
    if not ray_testcluster.available():
        pytest.skip("ray is not installed: pip install 'mlform[ray]'")
    yield ray_testcluster.shared()
    ray_testcluster.stop_shared()
