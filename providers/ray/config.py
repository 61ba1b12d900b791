"""The provider's settings, as written under `providers: {<name>: {type: ray, ...}}`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from mlform.engine.diagnostics import did_you_mean
from mlform.engine.durations import seconds
from mlform.engine.provider import Problem
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEFAULT_TIMEOUTS = {
    "dataset": "30m",
    "training_job": "24h",
    "model": "30m",
    "endpoint": "1h",
    "batch_job": "24h",
    "monitor": "30m",
    "retraining_policy": "1m",
}


class RayConfig(BaseModel):
    """Settings of one `ray` provider."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = "ray"
    address: str = Field(pattern=r"^https?://[^/\s]+/?$")
    """The cluster's dashboard URL, e.g. `http://ray-head:8265` (the Jobs and Serve REST
    APIs live there; on KubeRay, the head service's dashboard port)."""
    storage: str
    """A filesystem path every node of the cluster and this machine share (NFS, a
    mounted volume): absolute, or relative to the stack's directory. Datasets, training
    artifacts, the model registry and request logs live under it."""
    python: str = Field(default_factory=lambda: sys.executable)
    """The interpreter a job runs with on the cluster; it needs mlform with its `ml`
    extra. Default: the interpreter running mlform, for clusters that share its
    environment (a single machine, a shared venv)."""
    timeouts: dict[str, str | float] = Field(default_factory=dict)
    """Longest wait per resource type: `{training_job: 2h, endpoint: 30m}`."""
    poll_interval: float = Field(default=1.0, gt=0)
    """Seconds between two status reads of a running job."""
    serve_host: str = "127.0.0.1"
    """Where Ray Serve's HTTP proxy listens, when mlform is the first to start Serve on
    the cluster (Serve keeps the options it was started with). `0.0.0.0` for every
    interface, as clients from other machines need."""
    serve_port: int = Field(default=8000, ge=1, le=65535)
    """The port of Ray Serve's HTTP proxy (same proviso); endpoints are served under it
    at `/<stack>/<endpoint>`."""

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("storage")
    @classmethod
    def _storage(cls, value: str) -> str:
        if "://" in value:
            raise ValueError(
                f"'{value}' is a URI; the ray provider keeps data on a filesystem path that "
                "the cluster's nodes and this machine share (mount the bucket, e.g. with "
                "s3fs or a CSI driver, and give its mount path)")
        if not value.strip():
            raise ValueError("storage must be a path")
        return value

    @field_validator("timeouts")
    @classmethod
    def _durations(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = set(value) - set(DEFAULT_TIMEOUTS)
        if unknown:
            raise ValueError(f"unknown resource type(s) {sorted(unknown)}; "
                             f"expected some of {sorted(DEFAULT_TIMEOUTS)}")
        for duration in value.values():
            seconds(duration)
        return value

    def timeout(self, resource_type: str) -> float:
        return seconds(self.timeouts.get(resource_type, DEFAULT_TIMEOUTS[resource_type]))

    def storage_root(self, stack_dir: Path) -> Path:
        """The shared storage as an absolute path (a relative one is the stack's)."""
        root = Path(self.storage).expanduser()
        return root if root.is_absolute() else (stack_dir / root).resolve()


def load(config: dict[str, Any]) -> RayConfig:
    return RayConfig.model_validate(config or {})


REQUIRED_HELP = {
    "address": "add the cluster's dashboard URL, e.g. 'address: http://ray-head:8265'",
    "storage": "add a path the cluster's nodes share with this machine, e.g. "
               "'storage: /mnt/shared/mlform'",
}


def problems(config: dict[str, Any]) -> list[Problem]:
    """Every problem with `config`, each at the setting it concerns, with the fix."""
    try:
        load(config)
    except ValidationError as exc:
        return [_problem(err) for err in exc.errors()]
    return []


def _problem(err: Any) -> Problem:
    path = tuple(err["loc"])
    name = str(path[0]) if path else ""
    if err["type"] == "missing":
        return Problem(path, "required setting is missing", key=True,
                       help=REQUIRED_HELP.get(name, f"add '{name}:' to the provider"))
    if err["type"] == "extra_forbidden":
        return Problem(path, err["msg"], key=True,
                       help=did_you_mean(name, RayConfig.model_fields)
                       or f"settings: {', '.join(RayConfig.model_fields)}")
    if name == "address" and err["type"] == "string_pattern_mismatch":
        return Problem(path, "must be the dashboard's URL, scheme and host:port only",
                       help=REQUIRED_HELP["address"])
    message = err["msg"].removeprefix("Value error, ")
    return Problem(path, message)
