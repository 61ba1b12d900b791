"""The Ray jobs on the cluster that carry this stack's metadata, for orphan reports.

Each is reported as (mlform type, the id state holds for it): a training job by its
submission id, a batch job by its resource name (its predictions are the resource;
the job is only on the cluster while it scores).
"""

from __future__ import annotations

from typing import Any

from .jobs import RESOURCE_KEY, STACK_KEY, TYPE_KEY


def list_owned(stack: str, cluster: Any) -> list[tuple[str, str]]:
    owned = []
    for job in cluster.jobs.list_jobs():
        meta = job.metadata or {}
        if meta.get(STACK_KEY) != stack or not job.submission_id:
            continue
        rtype = meta.get(TYPE_KEY, "training_job")
        owned.append((rtype, meta.get(RESOURCE_KEY, "") if rtype == "batch_job"
                      else job.submission_id))
    return sorted(set(owned))
