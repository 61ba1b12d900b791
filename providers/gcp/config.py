"""The provider's settings, as written under `providers: {<name>: {type: gcp, ...}}`."""

from __future__ import annotations

import re
from typing import Any

from mlform.engine.diagnostics import did_you_mean
from mlform.engine.durations import seconds
from mlform.engine.provider import Problem
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEFAULT_TIMEOUTS = {
    "dataset": "30m",
    "training_job": "24h",
    "model": "2h",
    "endpoint": "1h",
    "batch_job": "24h",
    "monitor": "30m",
    "retraining_policy": "1m",
}

MACHINE_KINDS = ("training", "training_gpu", "serving", "serving_gpu", "batch",
                 "evaluation")
IMAGE_KINDS = ("training", "training_gpu", "serving", "serving_gpu")


class GcpConfig(BaseModel):
    """Settings of one `gcp` provider."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = "gcp"
    project: str = Field(pattern=r"^[a-z][a-z0-9-]*[a-z0-9]$")
    """Google Cloud project id, e.g. `my-ml-project`."""
    region: str = Field(pattern=r"^[a-z]+-[a-z]+\d+$")
    """Vertex AI region, e.g. `us-central1`."""
    bucket: str = Field(min_length=3, max_length=63)
    """GCS bucket for datasets, code, artifacts, request logs and evaluations."""
    prefix: str = "mlform"
    """Object prefix inside the bucket; the stack name is appended."""
    service_account: str | None = None
    """Service account the jobs and deployed models run as (email); the project's default
    compute service account when left out."""
    api_endpoint: str | None = None
    """Vertex AI endpoint override: an emulator (`http://...`, anonymous credentials) or a
    Private Service Connect address. Default `<region>-aiplatform.googleapis.com`."""
    storage_endpoint: str | None = None
    """GCS endpoint override (`http://...` for an emulator, anonymous credentials)."""
    monitoring_endpoint: str | None = None
    """Cloud Monitoring endpoint override; default: `api_endpoint` when that is an
    emulator, else monitoring.googleapis.com."""
    machine_types: dict[str, str] = Field(default_factory=dict)
    """Overrides of the machine-type table, by kind: training, training_gpu, serving,
    serving_gpu, batch, evaluation."""
    accelerator_type: str = "NVIDIA_TESLA_T4"
    """The accelerator attached when `compute.gpus` asks for GPUs."""
    images: dict[str, str] = Field(default_factory=dict)
    """Container image overrides, by kind: training, training_gpu, serving, serving_gpu."""
    timeouts: dict[str, str | float] = Field(default_factory=dict)
    """Longest wait per resource type: `{training_job: 2h, endpoint: 30m}`."""
    poll_interval: float = Field(default=15.0, ge=0)
    """Seconds between two status reads of a running job or deployment."""
    max_attempts: int = Field(default=6, ge=1, le=50)
    """Attempts per API call: 429 and 5xx answers are retried with backoff."""
    log_flush_seconds: float = Field(default=10.0, gt=0)
    """How often the serving container writes its buffered request log to GCS."""

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

    @field_validator("machine_types")
    @classmethod
    def _machine_kinds(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = set(value) - set(MACHINE_KINDS)
        if unknown:
            raise ValueError(f"unknown kind(s) {sorted(unknown)}; expected some of "
                             f"{list(MACHINE_KINDS)}")
        return value

    @field_validator("images")
    @classmethod
    def _image_kinds(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = set(value) - set(IMAGE_KINDS)
        if unknown:
            raise ValueError(f"unknown kind(s) {sorted(unknown)}; expected some of "
                             f"{list(IMAGE_KINDS)}")
        return value

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        if value.startswith("gs://") or not re.fullmatch(r"[a-z0-9][a-z0-9._-]+[a-z0-9]", value):
            raise ValueError(f"'{value}' is not a bucket name: write the name alone, "
                             "lowercase, without gs://")
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return value.strip("/")

    @property
    def emulated(self) -> bool:
        """True when Vertex AI is an emulator reached over plain http (anonymous)."""
        return bool(self.api_endpoint and self.api_endpoint.startswith("http://"))

    def timeout(self, resource_type: str) -> float:
        return seconds(self.timeouts.get(resource_type, DEFAULT_TIMEOUTS[resource_type]))

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"


def load(config: dict[str, Any]) -> GcpConfig:
    return GcpConfig.model_validate(config or {})


REQUIRED_HELP = {
    "project": "add the Google Cloud project id, e.g. 'project: my-ml-project'",
    "region": "add the Vertex AI region, e.g. 'region: us-central1'",
    "bucket": "add the GCS bucket for datasets and artifacts, e.g. 'bucket: my-ml-bucket'",
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
                       help=did_you_mean(name, GcpConfig.model_fields)
                       or f"settings: {', '.join(GcpConfig.model_fields)}")
    return Problem(path, err["msg"])
