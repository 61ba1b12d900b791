"""The resources in the project labelled as this stack's, for orphan reports.

Each is reported as (mlform type, the id state holds for it), so the engine can tell
orphans from managed resources: custom jobs, endpoints and batch prediction jobs by
resource name, a model by its newest version (`.../models/ID@N`), a dataset by its
newest stored version's uri. Vertex AI list calls filter on labels; what a resource owns
beside its main object (gate evaluation jobs, older model versions, request logs) goes
with it on delete and is not listed separately.
"""

from __future__ import annotations

from typing import Any

from .clients import Clients
from .gcs import Gcs
from .layout import Layout
from .naming import STACK_LABEL, TYPE_LABEL, label_filter, label_value


def list_owned(stack: str, clients: Clients) -> list[tuple[str, str]]:
    cfg = clients.cfg
    mine = label_filter(**{STACK_LABEL: label_value(stack)})
    owned: list[tuple[str, str]] = []

    def listed(service: str, method: str) -> list[Any]:
        return list(clients.call(service, method, {"parent": cfg.parent, "filter": mine}))

    for job in listed("jobs", "list_custom_jobs"):
        if job.labels.get(TYPE_LABEL) == "training_job":
            owned.append(("training_job", job.name))
    for job in listed("jobs", "list_batch_prediction_jobs"):
        owned.append(("batch_job", job.name))
    for endpoint in listed("endpoints", "list_endpoints"):
        owned.append(("endpoint", endpoint.name))
    for model in listed("models", "list_models"):
        versions = list(clients.call("models", "list_model_versions", {"name": model.name}))
        newest = max(versions, key=lambda v: int(v.version_id or 0), default=None)
        if newest is not None:
            owned.append(("model", f"{newest.name}@{newest.version_id}"))
    owned.extend(("dataset", uri) for uri in _newest_datasets(clients, stack))
    return owned


def _newest_datasets(clients: Clients, stack: str) -> list[str]:
    layout = Layout(clients.cfg.bucket, clients.cfg.prefix, stack)
    prefix = layout.key("datasets") + "/"
    newest: dict[str, Any] = {}
    for blob in Gcs(clients).list(clients.cfg.bucket, prefix):
        name = blob.name[len(prefix):].split("/", 1)[0]
        if name not in newest or (blob.updated, blob.name) > (newest[name].updated,
                                                             newest[name].name):
            newest[name] = blob
    return [layout.uri(blob.name) for blob in newest.values()]
