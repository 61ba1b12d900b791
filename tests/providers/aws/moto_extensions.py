"""What moto lacks for the aws provider's tests, added to moto in this process.

moto's SageMaker puts every job and endpoint straight into its final status and has
no UpdateEndpoint, StopTrainingJob, DeleteModelPackage or DeleteModelPackageGroup.
The additions follow SageMaker's documented behaviour:

- intermediate statuses: after a create or update, the next `settle_after` describes
  show InProgress (training) / Creating / Updating (endpoints) before the final status;
- training outcomes scripted per job name prefix: Failed with a FailureReason, or
  Completed with given final metrics (SageMaker parses them from the job's log);
- UpdateEndpoint: the endpoint goes Updating, then runs on the new config; or, when a
  rollback is scripted, returns to the old config (InService) with a FailureReason,
  or ends Failed; the DeploymentConfig sent is kept for inspection;
- StopTrainingJob: the job ends Stopped;
- DeleteModelPackage and DeleteModelPackageGroup;
- InvokeEndpoint (sagemaker-runtime) runs the model, as SageMaker's container does:
  the endpoint's config names its variants' models (picked by weight), whose
  ModelDataUrl tarball is read from moto's S3, unpacked once, and served by
  `mlform.providers.aws.container_serve`'s four functions; a failure answers as the
  container's would (a 4xx for a bad body, a ModelError otherwise); a request with a
  TargetVariant goes to that variant, others by the variants' current weights; with
  the config's DataCaptureConfig, each answered request is captured to S3 as SageMaker
  captures it (path and JSON line).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse
from moto.sagemaker.utils import arn_formatter


@dataclass
class Script:
    """What the emulated SageMaker does next; tests set it, `reset` clears it."""

    settle_after: int = 2
    training: dict[str, dict[str, Any]] = field(default_factory=dict)
    """job name prefix -> {"fail": reason} or {"metrics": {name: value}}"""
    endpoint_updates: dict[str, dict[str, str]] = field(default_factory=dict)
    """endpoint name -> {"outcome": "rollback" | "failed", "reason": ...}"""
    deployment_configs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """endpoint name -> DeploymentConfig of each UpdateEndpoint call"""
    pending: dict[tuple[str, str], int] = field(default_factory=dict)

    def reset(self) -> None:
        self.__init__()


SCRIPT = Script()


def _pending(kind: str, name: str) -> bool:
    """True while the resource should still show an intermediate status."""
    left = SCRIPT.pending.get((kind, name), 0)
    if left > 0:
        SCRIPT.pending[(kind, name)] = left - 1
        return True
    return False


def _training_outcome(name: str) -> dict[str, Any]:
    for prefix, outcome in SCRIPT.training.items():
        if name.startswith(prefix):
            return outcome
    return {}


# --- training jobs --------------------------------------------------------------

_create_training_job = SageMakerModelBackend.create_training_job
_describe_training_job = SageMakerModelBackend.describe_training_job
_create_endpoint = SageMakerModelBackend.create_endpoint
_describe_endpoint = SageMakerModelBackend.describe_endpoint


def create_training_job(self: SageMakerModelBackend, training_job_name: str, **kwargs: Any):
    job = _create_training_job(self, training_job_name=training_job_name, **kwargs)
    outcome = _training_outcome(training_job_name)
    if "fail" in outcome:
        job.training_job_status = job.secondary_status = "Failed"
        job.failure_reason = outcome["fail"]
    if "metrics" in outcome:
        job.final_metric_data_list = [
            {"MetricName": k, "Value": float(v), "Timestamp": job.creation_time}
            for k, v in outcome["metrics"].items()]
    SCRIPT.pending[("training", training_job_name)] = SCRIPT.settle_after
    return job


def describe_training_job(self: SageMakerModelBackend, training_job_name: str):
    desc = _describe_training_job(self, training_job_name)
    job = self.training_jobs[training_job_name]
    if getattr(job, "failure_reason", None):
        desc["FailureReason"] = job.failure_reason
    if job.training_job_status in ("Completed", "Failed") and \
            _pending("training", training_job_name):
        desc.update(TrainingJobStatus="InProgress", SecondaryStatus="Training")
    return desc


def stop_training_job(self: SageMakerModelBackend, training_job_name: str) -> None:
    job = self.training_jobs[training_job_name]
    job.training_job_status = job.secondary_status = "Stopped"


# --- endpoints ------------------------------------------------------------------

def create_endpoint(self: SageMakerModelBackend, endpoint_name: str, **kwargs: Any):
    endpoint = _create_endpoint(self, endpoint_name=endpoint_name, **kwargs)
    SCRIPT.pending[("endpoint", endpoint_name)] = SCRIPT.settle_after
    endpoint.mlform_transient = "Creating"
    return endpoint


def describe_endpoint(self: SageMakerModelBackend, endpoint_name: str):
    desc = _describe_endpoint(self, endpoint_name)
    endpoint = self.endpoints[endpoint_name]
    if getattr(endpoint, "failure_reason", None):
        desc["FailureReason"] = endpoint.failure_reason
    if _pending("endpoint", endpoint_name):
        desc["EndpointStatus"] = getattr(endpoint, "mlform_transient", "Updating")
    return desc


def update_endpoint(self: SageMakerModelBackend, endpoint_name: str,
                    endpoint_config_name: str, deployment_config: dict[str, Any] | None
                    ) -> str:
    endpoint = self.endpoints.get(endpoint_name)
    if endpoint is None:
        arn = arn_formatter("endpoint", endpoint_name, self.account_id, self.region_name)
        raise ValidationError(message=f"Could not find endpoint '{arn}'.")
    config = self.describe_endpoint_config(endpoint_config_name)
    SCRIPT.deployment_configs.setdefault(endpoint_name, []).append(deployment_config or {})
    scripted = SCRIPT.endpoint_updates.pop(endpoint_name, None)
    endpoint.failure_reason = None
    if scripted and scripted["outcome"] == "rollback":
        endpoint.failure_reason = scripted["reason"]
    elif scripted:
        endpoint.endpoint_status = "Failed"
        endpoint.failure_reason = scripted["reason"]
    else:
        endpoint.endpoint_config_name = endpoint_config_name
        endpoint.production_variants = endpoint._process_production_variants(
            config["ProductionVariants"])
    endpoint.mlform_transient = "Updating"
    SCRIPT.pending[("endpoint", endpoint_name)] = SCRIPT.settle_after
    return endpoint.arn


# --- model packages -------------------------------------------------------------

def delete_model_package(self: SageMakerModelBackend, model_package_name: str) -> None:
    arn = self.model_package_name_mapping.get(model_package_name, model_package_name)
    if self.model_packages.pop(arn, None) is None:
        raise ValidationError(message=f"Model package {model_package_name} not found")


def delete_model_package_group(self: SageMakerModelBackend, group: str) -> None:
    if any(p.model_package_group_name == group for p in self.model_packages.values()):
        raise ValidationError(message=f"Model package group {group} still has packages")
    if self.model_package_groups.pop(group, None) is None:
        raise ValidationError(message=f"ModelPackageGroup {group} does not exist.")


# --- wire protocol --------------------------------------------------------------

def _update_endpoint_action(self: SageMakerResponse) -> ActionResult:
    arn = self.sagemaker_backend.update_endpoint(
        self._get_param("EndpointName"), self._get_param("EndpointConfigName"),
        self._get_param("DeploymentConfig"))
    return ActionResult({"EndpointArn": arn})


def _stop_training_job_action(self: SageMakerResponse) -> EmptyResult:
    self.sagemaker_backend.stop_training_job(self._get_param("TrainingJobName"))
    return EmptyResult()


def _delete_model_package_action(self: SageMakerResponse) -> EmptyResult:
    self.sagemaker_backend.delete_model_package(self._get_param("ModelPackageName"))
    return EmptyResult()


def _delete_model_package_group_action(self: SageMakerResponse) -> EmptyResult:
    self.sagemaker_backend.delete_model_package_group(
        self._get_param("ModelPackageGroupName"))
    return EmptyResult()


# --- InvokeEndpoint -------------------------------------------------------------

_UNPACKED: dict[str, Any] = {}
"""ModelDataUrl -> the predictor its tarball holds (each unpacked once per process)."""


def _predictor(account: str, url: str) -> Any:
    import io
    import tarfile
    import tempfile
    from pathlib import Path

    from mlform.ml.artifact import META_FILE
    from mlform.providers.aws import container_serve
    from moto.s3.models import s3_backends

    if url not in _UNPACKED:
        bucket, _, key = url.removeprefix("s3://").partition("/")
        data = s3_backends[account]["aws"].get_object(bucket, key).value
        root = Path(tempfile.mkdtemp(prefix="moto-model-"))
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(root, filter="data")
        model_dir = next((m.parent for m in sorted(root.rglob(META_FILE))), root)
        _UNPACKED[url] = container_serve.model_fn(str(model_dir))
    return _UNPACKED[url]


def _invoke_endpoint_action(self: Any) -> Any:
    import random

    from mlform.providers.aws import container_serve
    from moto.sagemaker.models import sagemaker_backends

    name = self.path.split("/")[2]
    sm = sagemaker_backends[self.current_account][self.region]
    endpoint = sm.endpoints.get(name)
    if endpoint is None:
        return _error(400, "ValidationError",
                      f"Endpoint {name} of account {self.current_account} not found.")
    config = sm.endpoint_configs[endpoint.endpoint_config_name]
    variants = config.production_variants
    target = self.headers.get("X-Amzn-SageMaker-Target-Variant")
    if target is not None:
        pinned = [v for v in variants if v["VariantName"] == target]
        if not pinned:
            return _error(400, "ValidationError", f"Variant {target} not found in "
                                                  f"endpoint {name}.")
        variant = pinned[0]
    else:
        variant = random.choices(variants, weights=_live_weights(endpoint, variants))[0]
    model = sm._models[variant["ModelName"]]
    try:
        predictor = _predictor(self.current_account, model.primary_container["ModelDataUrl"])
        instances = container_serve.input_fn(self.body, self.headers.get("Content-Type"))
    except ValueError as e:
        return _error(400, "ValidationError", str(e))
    try:
        predictions = container_serve.predict_fn(instances, predictor)
    except Exception as e:  # noqa: BLE001 - the container answers any failure as a ModelError
        return _error(424, "ModelError", f"Received client error (400) from primary with "
                                         f"message \"{e}\"")
    body, content_type = container_serve.output_fn(predictions, self.headers.get("Accept"))
    _capture(self.current_account, name, variant["VariantName"], config.data_capture_config,
             self.body, self.headers, body, content_type)
    return 200, {"Content-Type": content_type,
                 "x-Amzn-Invoked-Production-Variant": variant["VariantName"]}, body


def _live_weights(endpoint: Any, variants: list[dict[str, Any]]) -> list[float]:
    """Each config variant's weight as the endpoint runs it now (an
    UpdateEndpointWeightsAndCapacities changes it), else as the config set it."""
    current = {v["VariantName"]: v.get("CurrentWeight")
               for v in getattr(endpoint, "production_variants", None) or []}
    return [float(current.get(v["VariantName"]) if current.get(v["VariantName"]) is not None
                  else v.get("InitialVariantWeight", 1.0)) for v in variants]


def _capture(account: str, endpoint: str, variant: str, config: dict[str, Any] | None,
             request: bytes, headers: Any, answer: Any, answer_type: str) -> None:
    """Data capture as SageMaker writes it: a JSON line per captured request under
    `<DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/`, its bodies inline when
    their content type is one of the config's JSON types (else base64), the request's
    `InferenceId` and the time in `eventMetadata`. SageMaker batches many requests per
    file; here each request is its own file, named by its time so that files list in
    the order they were written."""
    import base64
    import json
    import random
    import uuid
    from datetime import UTC, datetime

    from moto.s3.models import s3_backends

    if not config or not config.get("EnableCapture"):
        return
    if random.random() * 100 >= float(config.get("InitialSamplingPercentage", 100)):
        return
    json_types = (config.get("CaptureContentTypeHeader") or {}).get("JsonContentTypes") or []
    modes = {o.get("CaptureMode") for o in config.get("CaptureOptions") or []}

    def part(data: Any, content_type: str | None, mode: str) -> dict[str, str]:
        raw = data if isinstance(data, bytes) else str(data).encode()
        inline = content_type in json_types
        return {"observedContentType": content_type or "", "mode": mode,
                "data": raw.decode() if inline else base64.b64encode(raw).decode(),
                "encoding": "JSON" if inline else "BASE64"}

    captured: dict[str, Any] = {}
    if modes & {"Input", "InputAndOutput"}:
        captured["endpointInput"] = part(request, headers.get("Content-Type"), "INPUT")
    if modes & {"Output", "InputAndOutput"}:
        captured["endpointOutput"] = part(answer, answer_type, "OUTPUT")
    now, event = datetime.now(UTC), str(uuid.uuid4())
    metadata = {"eventId": event, "inferenceTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    inference_id = headers.get("X-Amzn-SageMaker-Inference-Id")
    if inference_id:
        metadata["inferenceId"] = inference_id
    record = {"captureData": captured, "eventMetadata": metadata, "eventVersion": "0"}
    bucket, _, prefix = config["DestinationS3Uri"].removeprefix("s3://").partition("/")
    key = "/".join(p for p in (prefix.strip("/"), endpoint, variant,
                               now.strftime("%Y/%m/%d/%H"),
                               f"{now.strftime('%M-%S-%f')}-{event}.jsonl") if p)
    s3_backends[account]["aws"].put_object(bucket, key, json.dumps(record).encode())


def _error(status: int, kind: str, message: str) -> Any:
    import json

    # moto takes a response's status from its headers
    return status, {"status": status, "x-amzn-ErrorType": kind}, \
        json.dumps({"__type": kind, "message": message})


def install() -> None:
    """Patch moto's SageMaker in this process (idempotent)."""
    backend, responses = SageMakerModelBackend, SageMakerResponse
    backend.create_training_job = create_training_job
    backend.describe_training_job = describe_training_job
    backend.stop_training_job = stop_training_job
    backend.create_endpoint = create_endpoint
    backend.describe_endpoint = describe_endpoint
    backend.update_endpoint = update_endpoint
    backend.delete_model_package = delete_model_package
    backend.delete_model_package_group = delete_model_package_group
    responses.update_endpoint = _update_endpoint_action
    responses.stop_training_job = _stop_training_job_action
    responses.delete_model_package = _delete_model_package_action
    responses.delete_model_package_group = _delete_model_package_group_action
    from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

    SageMakerRuntimeResponse.invoke_endpoint = _invoke_endpoint_action
