"""The connection to one Ray cluster: the Jobs client, made on first use and shared.

Verbs run on parallel threads; the client is made once, under a lock. Making it reads
the cluster's version over HTTP, so an unreachable head fails here, in words.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from .config import RayConfig
from .errors import MISSING_EXTRA, RayError, unreachable


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
                try:
                    self._jobs = JobSubmissionClient(self.cfg.address)
                except (ConnectionError, OSError, RuntimeError, ValueError) as exc:
                    raise unreachable(self.cfg.address, exc) from None
            return self._jobs
