"""The connection to one Ray cluster: the Jobs client, made on first use and shared.

Verbs run on parallel threads; the client is made once, under a lock. Making it reads
the cluster's version over HTTP, so an unreachable head fails here, in words.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from .config import RayConfig
from .errors import MISSING_EXTRA, RayError, unreachable

CONNECT_RETRIES = (0.5, 1.0, 2.0, 4.0)


class Cluster:
    """The settings, the shared storage root and the Jobs client of one provider."""

    def __init__(self, cfg: RayConfig, stack_dir: Path):
        self.cfg = cfg
        self.storage = cfg.storage_root(stack_dir)
        self._jobs: Any = None
        self._lock = threading.Lock()

    @property
    def jobs(self) -> Any:
        """`ray.job_submission.JobSubmissionClient` for the cluster's dashboard."""
        with self._lock:
            if self._jobs is None:
                try:
                    from ray.job_submission import JobSubmissionClient
                except ImportError:
                    raise RayError(MISSING_EXTRA) from None
                self._jobs = self._connect(JobSubmissionClient)
            return self._jobs

    def _connect(self, client_class: Any) -> Any:
        """The client; a busy dashboard that drops the first connections is asked again
        (about 7 seconds in all) before the cluster is reported unreachable."""
        for pause in (*CONNECT_RETRIES, None):
            try:
                return client_class(self.cfg.address)
            except (ConnectionError, OSError, RuntimeError, ValueError) as exc:
                if pause is None:
                    raise unreachable(self.cfg.address, exc) from None
                time.sleep(pause)
        raise AssertionError("unreachable")

    def gpus(self) -> float | None:
        """GPUs on the cluster's live nodes now, from the dashboard's node summary; None
        when it cannot tell (no node reported yet, an older dashboard)."""
        import httpx

        try:
            answer = httpx.get(f"{self.cfg.address}/nodes", params={"view": "summary"},
                               timeout=10)
            nodes = answer.json()["data"]["summary"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return None
        alive = [n.get("raylet", {}) for n in nodes if n.get("raylet", {}).get("state") == "ALIVE"]
        if not alive:
            return None
        return float(sum(r.get("resourcesTotal", {}).get("GPU", 0.0) for r in alive))

    def require_storage(self) -> Path:
        """The storage root, which must exist: a missing one is usually a volume that is
        not mounted here, and writing under it would fill this machine's disk instead."""
        if not self.storage.is_dir():
            raise RayError(f"the shared storage {self.storage} does not exist on this machine: "
                           "mount the filesystem the cluster's nodes share there (or create "
                           "the folder), or set 'storage' to where it is mounted")
        return self.storage
