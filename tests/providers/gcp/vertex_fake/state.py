"""The fake's in-memory state: resources as REST JSON (camelCase, as the API returns them),
server-generated ids, long-running operations, and the location checks every call makes.

One re-entrant lock guards it all; handlers and the background runners (jobs, deployments)
take it for every read-modify-write.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import ApiError, not_found, permission_denied

ANY = "type.googleapis.com/"
V1 = ANY + "google.cloud.aiplatform.v1."
EMPTY = ANY + "google.protobuf.Empty"


def now() -> str:
    """An RFC 3339 timestamp, the JSON form of `google.protobuf.Timestamp`."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Store:
    """Everything the fake knows. Names it returns use the project NUMBER, as Vertex does;
    requests may name the project by id or by number."""

    project: str
    project_number: str
    region: str
    storage_url: str
    work_dir: Path
    lock: threading.RLock = field(default_factory=threading.RLock)
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)
    jobs_released: threading.Event = field(default_factory=threading.Event)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(int(time.time() * 1000) % 10**9 * 1000))

    @property
    def parent(self) -> str:
        return f"projects/{self.project_number}/locations/{self.region}"

    def new_id(self) -> str:
        """A fresh numeric id, the kind the service generates for jobs, deployed models and
        operations."""
        with self.lock:
            return str(next(self._ids))

    def check_location(self, project: str, location: str, permission: str, resource: str) -> None:
        """Refuse calls for another project (as IAM does: permission denied, or it may not
        exist) or another region than the one this endpoint serves."""
        if project not in (self.project, self.project_number):
            raise permission_denied(permission, resource)
        if location != self.region:
            raise ApiError("INVALID_ARGUMENT",
                           f"Location {location} is not served by this endpoint ({self.region}).")

    # -- long-running operations ------------------------------------------------------------

    def start_operation(self, resource: str, metadata_type: str) -> dict[str, Any]:
        """A new, unfinished operation under `resource` (a resource name, or the location)."""
        op_id = self.new_id()
        op: dict[str, Any] = {"name": f"{resource}/operations/{op_id}",
                              "metadata": {"@type": V1 + metadata_type,
                                           "genericMetadata": {"createTime": now(), "updateTime": now()}}}
        with self.lock:
            self.operations[op["name"]] = op
        return op

    def finish_operation(self, op: dict[str, Any], response: dict[str, Any] | None = None,
                         error: ApiError | None = None) -> None:
        """Mark `op` done with a response (carrying its `@type`) or an error."""
        with self.lock:
            op["metadata"]["genericMetadata"]["updateTime"] = now()
            if error is not None:
                op["error"] = error.rpc_status()
                op["metadata"]["genericMetadata"]["partialFailures"] = []
            else:
                op["response"] = response if response is not None else {"@type": EMPTY}
            op["done"] = True

    def get_operation(self, name: str) -> dict[str, Any]:
        with self.lock:
            op = self.operations.get(name)
            if op is None:
                raise not_found(name)
            return dict(op)
