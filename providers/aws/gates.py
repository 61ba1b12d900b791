"""Model gates on SageMaker, judged by `mlform.ml.gates` as on every provider.

Metric gates alone read the training job's final metrics (`mlform.ml.metrics` on the
same held-out rows, printed by the training container). Any fairness or robustness
gate runs mlform's evaluator as a Processing job, which judges every gate of the
model on the held-out rows left next to the artifact, seeded with the training
job's seed, and writes `evaluation.json` to
`s3://<bucket>/<prefix>/<stack>/evaluations/<model>/<digest>/`:

    {"format": 2, "gates": [<GateResult.to_dict()>, ...],   # in the gates' order
     "importance": <mlform.ml.explain.permutation_importance> | {"note": why}}

A model registered from a `source:` file (imported.py) has no training job and so no
training metrics: every gate runs the evaluator, on the `holdout.csv` of its artifact,
which holds every row of the source's dataset, with seed 0 (as on the local provider).

`better_than: champion` gates run the evaluator too: the champion is the newest
approved version of the model's package group whose `mlform:aliases` name
`champion` (aliases are kept on each version, see model.py); its artifact (the
version's `ModelDataUrl`) is a second input of the job, which scores it on the
candidate's held-out rows. No such version, or one of this very artifact: no champion
yet, and the gate passes as on every provider.
"""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any

from mlform.engine.provider import Progress
from mlform.ml import champion as champions
from mlform.ml.gates import GateResult, metric_gates

from . import packaging
from .compute import image_uri, instance_type
from .errors import AwsError
from .handler import Handler, describe_or_none
from .layout import split_uri
from .naming import fingerprint, tag_dict, tags

EVALUATION_FILE = "evaluation.json"
EVALUATION_FORMAT = 2
CODE_DIR, MODEL_DIR, OUTPUT_DIR = ("/opt/ml/processing/code", "/opt/ml/processing/model",
                                   "/opt/ml/processing/output")
CHAMPION_DIR = "/opt/ml/processing/champion"
CHAMPION = "champion"
ALIASES = "mlform:aliases"
"""The version metadata holding the aliases a version was registered with."""


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
        self.importance: dict[str, Any] | None = None
        """Permutation importance from the last evaluation job, when one ran."""

    def judge(self, resource: str, spec: Any, progress: Progress,
              sensitive: frozenset[tuple[int, str]] = frozenset()) -> list[GateResult]:
        """Each gate's result; `sensitive` holds (gate index, bound) of hidden bounds."""
        if not spec.gates:
            return []
        if spec.source is not None:  # an imported file: no training metrics, all rows
            return self._evaluate(resource, spec, 0, sensitive, progress)
        job = self._training_job(spec.artifact)
        if all(g.metric and not g.better_than for g in spec.gates):
            metrics = {m["MetricName"]: float(m["Value"])
                       for m in job.get("FinalMetricDataList", [])}
            return metric_gates(spec.gates, metrics,
                                f"training job {job['TrainingJobName']}", sensitive)
        return self._evaluate(resource, spec, self._seed(job), sensitive, progress)

    def _training_job(self, artifact: str) -> dict[str, Any]:
        return self.h.clients.sagemaker.describe_training_job(
            TrainingJobName=training_job_of(artifact))

    def _seed(self, job: dict[str, Any]) -> int:
        """The seed the training job ran with, from the settings in its source bundle
        (the robustness noise is seeded with it, as on every provider)."""
        source = json.loads(job.get("HyperParameters", {})
                            .get("sagemaker_submit_directory", "null") or "null")
        if not source:
            return 0
        bucket, key = split_uri(source)
        body = describe_or_none(self.h.clients.s3.get_object, Bucket=bucket, Key=key)
        if body is None:
            raise AwsError(f"the source bundle {source} of training job "
                           f"{job['TrainingJobName']} is gone; its seed is unknown")
        with tarfile.open(fileobj=io.BytesIO(body["Body"].read())) as tar:
            member = tar.extractfile(packaging.SETTINGS_FILE)
            settings = json.loads(member.read()) if member else {}
        return int(settings.get("seed") or 0)

    def _evaluate(self, resource: str, spec: Any, seed: int,
                  sensitive: frozenset[tuple[int, str]], progress: Progress
                  ) -> list[GateResult]:
        """Every gate's result from the Processing job's evaluation.json."""
        h, sm = self.h, self.h.clients.sagemaker
        settings, champion_artifact = champions.evaluation_settings(
            spec.gates, seed, sensitive,
            self.champion(resource, spec) if champions.wanted(spec.gates) else None)
        digest = fingerprint(champions.judged(spec.artifact, EVALUATION_FORMAT, settings,
                                              champion_artifact))
        name = h.name(resource, "eval", digest)
        output_key = h.layout.evaluation_key(resource, digest)
        if describe_or_none(sm.describe_processing_job, ProcessingJobName=name) is None:
            self._start(resource, spec, name, settings, output_key, progress,
                        champion_artifact)
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
        found = json.loads(body["Body"].read())
        if found.get("format") != EVALUATION_FORMAT or \
                len(found.get("gates", [])) != len(spec.gates):
            raise AwsError(f"{h.layout.uri(output_key)} holds no result for each of the "
                           f"{len(spec.gates)} gate(s)")
        importance = found.get("importance")
        self.importance = importance if isinstance(importance, dict) else None
        return [GateResult.from_dict(g) for g in found["gates"]]

    def champion(self, resource: str, spec: Any) -> tuple[str | None, dict[str, str] | None]:
        """(artifact, {"name": "version 3"}) of the version `champion` names, or
        (None, None) when there is none yet or it is this very artifact."""
        sm = self.h.clients.sagemaker
        group = self.h.name(spec.name or resource)
        if describe_or_none(sm.describe_model_package_group,
                            ModelPackageGroupName=group) is None:
            return None, None
        pages = sm.get_paginator("list_model_packages").paginate(
            ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending")
        for summary in (s for page in pages for s in page.get("ModelPackageSummaryList", [])):
            package = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            aliases = package.get("CustomerMetadataProperties", {}).get(ALIASES, "")
            if package.get("ModelApprovalStatus") != "Approved" or \
                    CHAMPION not in aliases.split(","):
                continue
            artifact = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
            if artifact == str(spec.artifact):
                return None, None
            return artifact, {"name": f"version {package.get('ModelPackageVersion')}"}
        return None, None

    def _start(self, resource: str, spec: Any, name: str, settings: dict[str, Any],
               output_key: str, progress: Progress,
               champion_artifact: str | None = None) -> None:
        h = self.h
        options = h.options(spec)
        data = packaging.tarball(packaging.bundle("evaluate", settings))
        code_key = h.layout.code_key(resource, packaging.digest(data))
        packaging.upload_once(h.clients.s3, h.cfg.bucket, code_key, data,
                              tag_dict(tags(h.ctx.stack, resource, h.rtype)))
        output_prefix = h.layout.uri(output_key.rsplit("/", 1)[0])
        progress(f"evaluating {len(spec.gates)} gate(s) with processing job {name}")
        inputs = [
            {"InputName": "code", "S3Input": {
                "S3Uri": h.layout.uri(code_key), "LocalPath": CODE_DIR,
                "S3DataType": "S3Prefix", "S3InputMode": "File"}},
            {"InputName": "model", "S3Input": {
                "S3Uri": str(spec.artifact), "LocalPath": MODEL_DIR,
                "S3DataType": "S3Prefix", "S3InputMode": "File"}}]
        command = (f"cd {CODE_DIR} && tar xzf sourcedir.tar.gz && "
                   f"tar xzf {MODEL_DIR}/model.tar.gz -C {MODEL_DIR} && ")
        if champion_artifact:
            inputs.append({"InputName": CHAMPION, "S3Input": {
                "S3Uri": champion_artifact, "LocalPath": CHAMPION_DIR,
                "S3DataType": "S3Prefix", "S3InputMode": "File"}})
            command += f"tar xzf {CHAMPION_DIR}/model.tar.gz -C {CHAMPION_DIR} && "
        command += f"python evaluate.py {MODEL_DIR} {OUTPUT_DIR}/{EVALUATION_FILE}" + \
            (f" {CHAMPION_DIR}" if champion_artifact else "")
        h.clients.sagemaker.create_processing_job(
            ProcessingJobName=name,
            RoleArn=h.cfg.role_arn,
            AppSpecification={
                "ImageUri": image_uri(h.cfg, "processing", False, options),
                "ContainerEntrypoint": ["bash", "-c", command]},
            ProcessingInputs=inputs,
            ProcessingOutputConfig={"Outputs": [{"OutputName": "evaluation", "S3Output": {
                "S3Uri": output_prefix, "LocalPath": OUTPUT_DIR, "S3UploadMode": "EndOfJob"}}]},
            ProcessingResources={"ClusterConfig": {
                "InstanceCount": 1, "VolumeSizeInGB": 30,
                "InstanceType": instance_type(h.cfg, "processing", None, options)}},
            StoppingCondition={"MaxRuntimeInSeconds": int(h.cfg.timeout("model"))},
            Tags=tags(h.ctx.stack, resource, h.rtype, spec.tags))
