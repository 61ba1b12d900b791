"""Model gates on SageMaker: metric gates read the training job's final metrics;
fairness and robustness gates run mlform's evaluator as a Processing job.

The Processing job is named by the artifact and the gates, reads the artifact (with
its held-out rows) and writes `evaluation.json` to
`s3://<bucket>/<prefix>/<stack>/evaluations/<model>/<digest>/`:

    {"gates": [{"index": <position in the model's gates>, "value": <measured>}]}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mlform.engine.provider import Progress

from . import packaging
from .compute import image_uri, instance_type
from .errors import AwsError
from .handler import Handler, describe_or_none
from .layout import split_uri
from .naming import fingerprint, tag_dict, tags

EVALUATION_FILE = "evaluation.json"
CODE_DIR, MODEL_DIR, OUTPUT_DIR = ("/opt/ml/processing/code", "/opt/ml/processing/model",
                                   "/opt/ml/processing/output")


@dataclass(frozen=True)
class GateResult:
    gate: str
    value: float
    min: float | None
    max: float | None
    sensitive: tuple[str, ...] = ()
    """Bounds ("min", "max") written from sensitive values: judged, never shown or stored."""

    @property
    def passed(self) -> bool:
        return (self.min is None or self.value >= self.min) and \
            (self.max is None or self.value <= self.max)

    def to_json(self, reveal: bool = False) -> dict[str, Any]:
        """What outputs, state and package metadata keep; `reveal` only for fingerprints."""
        out = {"gate": self.gate, "value": self.value, "min": self._shown("min", reveal),
               "max": self._shown("max", reveal), "passed": self.passed}
        return out | ({"sensitive": list(self.sensitive)} if self.sensitive else {})

    def failure(self) -> str:
        which = "min" if self.min is not None and self.value < self.min else "max"
        bound = f"{which} {'(sensitive)' if which in self.sensitive else getattr(self, which)}"
        return f"gate '{self.gate}' failed: measured {self.value:.4g}, {bound}"

    def _shown(self, bound: str, reveal: bool) -> float | None:
        return getattr(self, bound) if reveal or bound not in self.sensitive else None


def label(gate: Any) -> str:
    if gate.metric:
        return gate.metric
    if gate.fairness:
        return f"{gate.fairness} by {gate.sensitive_column}"
    return f"{gate.robustness} ({gate.robustness_metric or 'main metric'}, noise {gate.noise})"


def bounds(gate: Any) -> tuple[float | None, float | None]:
    if gate.fairness == "four_fifths_rule" and gate.min is None and gate.max is None:
        return 0.8, None  # the rule itself: the lowest selection rate ratio is at least 4/5
    return gate.min, gate.max


def training_job_of(artifact: str) -> str:
    """The job name in `s3://.../<job>/output/model.tar.gz`, where SageMaker puts it."""
    parts = split_uri(artifact)[1].split("/")
    if len(parts) < 3 or parts[-2] != "output":
        raise AwsError(f"artifact '{artifact}' is not a SageMaker training job output; "
                       "a model on aws takes a training job's `artifact`")
    return parts[-3]


class GateRunner:
    def __init__(self, handler: Handler):
        self.h = handler

    def judge(self, resource: str, spec: Any, progress: Progress,
              sensitive: frozenset[tuple[int, str]] = frozenset()) -> list[GateResult]:
        """Each gate's result; `sensitive` holds (gate index, bound) of hidden bounds."""
        if not spec.gates:
            return []
        values: dict[int, float] = {}
        metric_gates = [(i, g) for i, g in enumerate(spec.gates) if g.metric]
        if metric_gates:
            metrics = self._training_metrics(spec.artifact)
            for i, gate in metric_gates:
                if gate.metric not in metrics:
                    raise AwsError(f"gate '{gate.metric}': training job "
                                   f"{training_job_of(spec.artifact)} reported no such "
                                   f"metric (it reported: {', '.join(sorted(metrics))})")
                values[i] = metrics[gate.metric]
        if len(metric_gates) < len(spec.gates):
            values.update(self._evaluate(resource, spec, progress))
        return [GateResult(label(g), float(values[i]), *bounds(g),
                           sensitive=tuple(sorted(b for j, b in sensitive if j == i)))
                for i, g in enumerate(spec.gates)]

    def _training_metrics(self, artifact: str) -> dict[str, float]:
        desc = self.h.clients.sagemaker.describe_training_job(
            TrainingJobName=training_job_of(artifact))
        return {m["MetricName"]: float(m["Value"]) for m in desc.get("FinalMetricDataList", [])}

    def _evaluate(self, resource: str, spec: Any, progress: Progress) -> dict[int, float]:
        """Fairness and robustness values from the Processing job's evaluation.json."""
        h, sm = self.h, self.h.clients.sagemaker
        gates = [{"index": i, **g.model_dump(mode="json")} for i, g in enumerate(spec.gates)
                 if not g.metric]
        digest = fingerprint({"artifact": spec.artifact, "gates": gates})
        name = h.name(resource, "eval", digest)
        output_key = h.layout.evaluation_key(resource, digest)
        if describe_or_none(sm.describe_processing_job, ProcessingJobName=name) is None:
            self._start(resource, spec, name, gates, output_key, progress)
        desc = h.wait(lambda: sm.describe_processing_job(ProcessingJobName=name),
                      "ProcessingJobStatus", {"Completed", "Failed", "Stopped"},
                      f"gate evaluation {name}", progress)
        if desc["ProcessingJobStatus"] != "Completed":
            raise AwsError(f"gate evaluation job {name} "
                           f"{desc['ProcessingJobStatus'].lower()}: "
                           f"{desc.get('FailureReason', 'no reason given')}")
        body = describe_or_none(h.clients.s3.get_object, Bucket=h.cfg.bucket, Key=output_key)
        if body is None:
            raise AwsError(f"gate evaluation job {name} completed but wrote no "
                           f"{h.layout.uri(output_key)}")
        found = {int(g["index"]): float(g["value"])
                 for g in json.loads(body["Body"].read())["gates"]}
        missing = [g["index"] for g in gates if g["index"] not in found]
        if missing:
            raise AwsError(f"{h.layout.uri(output_key)} lacks the value of gate(s) {missing}")
        return found

    def _start(self, resource: str, spec: Any, name: str, gates: list[dict[str, Any]],
               output_key: str, progress: Progress) -> None:
        h = self.h
        options = h.options(spec)
        data = packaging.tarball(packaging.bundle("evaluate", {"gates": gates}))
        code_key = h.layout.code_key(resource, packaging.digest(data))
        packaging.upload_once(h.clients.s3, h.cfg.bucket, code_key, data,
                              tag_dict(tags(h.ctx.stack, resource, h.rtype)))
        output_prefix = h.layout.uri(output_key.rsplit("/", 1)[0])
        progress(f"evaluating fairness/robustness gates with processing job {name}")
        h.clients.sagemaker.create_processing_job(
            ProcessingJobName=name,
            RoleArn=h.cfg.role_arn,
            AppSpecification={
                "ImageUri": image_uri(h.cfg, "processing", False, options),
                "ContainerEntrypoint": ["bash", "-c",
                                        f"cd {CODE_DIR} && tar xzf sourcedir.tar.gz && "
                                        f"tar xzf {MODEL_DIR}/model.tar.gz -C {MODEL_DIR} && "
                                        f"python evaluate.py {MODEL_DIR} "
                                        f"{OUTPUT_DIR}/{EVALUATION_FILE}"]},
            ProcessingInputs=[
                {"InputName": "code", "S3Input": {
                    "S3Uri": h.layout.uri(code_key), "LocalPath": CODE_DIR,
                    "S3DataType": "S3Prefix", "S3InputMode": "File"}},
                {"InputName": "model", "S3Input": {
                    "S3Uri": str(spec.artifact), "LocalPath": MODEL_DIR,
                    "S3DataType": "S3Prefix", "S3InputMode": "File"}}],
            ProcessingOutputConfig={"Outputs": [{"OutputName": "evaluation", "S3Output": {
                "S3Uri": output_prefix, "LocalPath": OUTPUT_DIR, "S3UploadMode": "EndOfJob"}}]},
            ProcessingResources={"ClusterConfig": {
                "InstanceCount": 1, "VolumeSizeInGB": 30,
                "InstanceType": instance_type(h.cfg, "processing", None, options)}},
            StoppingCondition={"MaxRuntimeInSeconds": int(h.cfg.timeout("model"))},
            Tags=tags(h.ctx.stack, resource, h.rtype, spec.tags))
