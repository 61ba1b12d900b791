"""The provider's settings, as written under `providers: {<name>: {type: aws, ...}}`."""

from __future__ import annotations

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



class AwsConfig(BaseModel):
    """Settings of one `aws` provider."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = "aws"
    region: str
    """AWS region, e.g. `eu-west-1`."""
    role_arn: str = Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")
    """Execution role SageMaker assumes to read S3 and write logs."""
    bucket: str = Field(min_length=3, max_length=63)
    """Bucket for datasets, training code, artifacts, captured traffic and evaluations."""
    prefix: str = "mlform"
    """Key prefix inside the bucket; the stack name is appended."""
    endpoint_url: str | None = None
    """Override every service endpoint (an emulator, a VPC endpoint)."""
    instance_types: dict[str, str] = Field(default_factory=dict)
    """Overrides of the instance-type table, by kind: training, training_gpu, inference,
    inference_gpu, processing, transform."""
    images: dict[str, str] = Field(default_factory=dict)
    """Container image overrides, by kind: training, inference, processing."""
    pytorch_version: str = "2.3.0"
    python_version: str = "py311"
    timeouts: dict[str, str | float] = Field(default_factory=dict)
    """Longest wait per resource type: `{training_job: 2h, endpoint: 30m}`."""
    poll_interval: float = 15.0
    """Seconds between two status reads of a running job or endpoint."""
    max_attempts: int = 10
    """Attempts per API call (adaptive retry mode: throttling and 5xx are retried)."""
    use_model_monitor: bool = False
    """Also create a SageMaker Model Monitor schedule for each monitor."""

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

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return value.strip("/")

    def timeout(self, resource_type: str) -> float:
        return seconds(self.timeouts.get(resource_type, DEFAULT_TIMEOUTS[resource_type]))


def load(config: dict[str, Any]) -> AwsConfig:
    return AwsConfig.model_validate(config or {})


REQUIRED_HELP = {
    "region": "add the AWS region to create resources in, e.g. 'region: eu-west-1'",
    "role_arn": "add the execution role SageMaker assumes, e.g. "
                "'role_arn: arn:aws:iam::123456789012:role/mlform-sagemaker'",
    "bucket": "add the S3 bucket for datasets and artifacts, e.g. 'bucket: my-ml-bucket'",
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
                       help=did_you_mean(name, AwsConfig.model_fields)
                       or f"settings: {', '.join(AwsConfig.model_fields)}")
    return Problem(path, err["msg"])
