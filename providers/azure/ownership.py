"""The resources in the workspace tagged as this stack's, for orphan reports.

Each is reported as (mlform type, the id state holds for it), so the engine can tell
orphans from managed resources: jobs by name (archived ones are released and not
listed), endpoints by name, a model by its newest version (`azureml:<name>:<version>`),
a dataset by its newest data asset version's datastore uri. What a resource owns beside
its main object (deployments, gate evaluation jobs, older versions, request logs) goes
with it on delete and is not listed separately.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from .clients import Clients
from .naming import STACK_TAG, TYPE_TAG


def _mine(found: Any, stack: str) -> bool:
    return (getattr(found, "tags", None) or {}).get(STACK_TAG) == stack


def list_owned(stack: str, clients: Clients) -> list[tuple[str, str]]:
    ml = clients.ml
    owned: list[tuple[str, str]] = []
    for job in clients.call("jobs", lambda: list(ml.jobs.list())):
        rtype = (job.tags or {}).get(TYPE_TAG)
        if _mine(job, stack) and rtype in ("training_job", "batch_job"):
            owned.append((rtype, job.name))
    for endpoint in clients.call("endpoints", lambda: list(ml.online_endpoints.list())):
        if _mine(endpoint, stack):
            owned.append(("endpoint", endpoint.name))
    for kind, listing in (("model", ml.models), ("dataset", ml.data)):
        for asset in clients.call(kind, partial(_all, listing)):
            versions = [v for v in clients.call(kind, partial(_all, listing, asset.name))
                        if _mine(v, stack)]
            newest = max(versions, key=lambda v: _order(v.version), default=None)
            if newest is None:
                continue
            owned.append(("model", f"azureml:{newest.name}:{newest.version}") if kind == "model"
                         else ("dataset", short_uri(str(newest.path))))
    return owned


def _all(listing: Any, name: str | None = None) -> list[Any]:
    return list(listing.list(name=name) if name else listing.list())


def short_uri(path: str) -> str:
    """A datastore uri in the short form state records (`azureml://datastores/...`): the
    service answers the long one (`azureml://subscriptions/.../datastores/...`)."""
    at = path.find("/datastores/")
    return "azureml:/" + path[at:] if path.startswith("azureml://") and at >= 0 else path


def _order(version: Any) -> tuple[int, str]:
    text = str(version)
    return (int(text), "") if text.isdigit() else (0, text)
