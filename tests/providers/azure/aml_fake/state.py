"""The fake's in-memory state: resources as the REST JSON the service returns (ARM envelope:
id, name, type, systemData, properties), long-running operations, and helpers shared by the
resources. One re-entrant lock guards it all; handlers and the background runners (jobs,
deployments) take it for every read-modify-write."""

from __future__ import annotations

import copy
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import AzureError

PROVIDER = "Microsoft.MachineLearningServices"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def system_data(previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """ARM's `systemData`, keeping the creation half of `previous` on an update."""
    stamp = now()
    data = {"createdAt": stamp, "createdBy": "mlform-test", "createdByType": "User",
            "lastModifiedAt": stamp, "lastModifiedBy": "mlform-test", "lastModifiedByType": "User"}
    if previous:
        for key in ("createdAt", "createdBy", "createdByType"):
            if key in previous:
                data[key] = previous[key]
    return data


@dataclass
class Store:
    """Everything the fake knows, for one workspace."""

    url: str
    subscription: str
    resource_group: str
    workspace: str
    location: str
    work_dir: Path
    blob_url: str                 # Azurite's blob endpoint, http://127.0.0.1:PORT/devstoreaccount1
    account_name: str
    account_key: str
    container: str                # the workspaceblobstore's container
    lock: threading.RLock = field(default_factory=threading.RLock)
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)
    jobs_released: threading.Event = field(default_factory=threading.Event)
    provisioning_released: threading.Event = field(default_factory=threading.Event)

    @property
    def workspace_id(self) -> str:
        return (f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
                f"/providers/{PROVIDER}/workspaces/{self.workspace}")

    def check_scope(self, groups: dict[str, str]) -> None:
        """Refuse another subscription, resource group or workspace than the one served, as
        ARM does (a resource group or workspace it does not know is not found)."""
        if "sub" in groups and groups["sub"] != self.subscription:
            raise AzureError(404, "SubscriptionNotFound",
                             f"The subscription '{groups['sub']}' could not be found.")
        if "rg" in groups and groups["rg"].lower() != self.resource_group.lower():
            raise AzureError(404, "ResourceGroupNotFound",
                             f"Resource group '{groups['rg']}' could not be found.")
        if "ws" in groups and groups["ws"].lower() != self.workspace.lower():
            raise AzureError(404, "ResourceNotFound",
                             f"The Resource '{PROVIDER}/workspaces/{groups['ws']}' under resource "
                             f"group '{groups['rg']}' was not found.")

    # -- long-running operations ------------------------------------------------------------

    def start_operation(self) -> tuple[str, dict[str, Any]]:
        """A new, running operation; returns its Azure-AsyncOperation URL and the record."""
        op_id = uuid.uuid4().hex
        record: dict[str, Any] = {"id": op_id, "name": op_id, "status": "InProgress",
                                  "startTime": now()}
        with self.lock:
            self.operations[op_id] = record
        url = (f"{self.url}/subscriptions/{self.subscription}/providers/{PROVIDER}/locations/"
               f"{self.location}/mfeOperationsStatus/{op_id}?api-version=2023-04-01")
        return url, record

    def finish_operation(self, record: dict[str, Any], error: AzureError | None = None) -> None:
        with self.lock:
            record["endTime"] = now()
            if error is None:
                record["status"] = "Succeeded"
            else:
                record["status"] = "Failed"
                record["error"] = {"code": error.code, "message": error.message}

    def get_operation(self, op_id: str) -> dict[str, Any]:
        with self.lock:
            record = self.operations.get(op_id)
            if record is None:
                raise AzureError(404, "ResourceNotFound", f"Operation {op_id} not found.")
            return copy.deepcopy(record)
