"""Training jobs: `CreateTrainingJob` in SageMaker's PyTorch container, named by its inputs.

The job name is the stack, the resource and a fingerprint of everything the result
depends on (`mlform.ml.fingerprint`, as on every provider, plus the SageMaker
settings), so a create repeated after an interrupted apply describes the job first
and adopts it (waiting while it runs) instead of starting a second one. SageMaker keeps
a job's name forever: a job that `delete` released (a forced replacement, a retrain by
a policy) is passed over, and the re-run takes the next name (`...-r2`, `-r3`, ...).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlform.engine.provider import (
    ApplyResponse,
    AttributeChange,
    CheckRequest,
    CheckResponse,
    CreateRequest,
    DeleteRequest,
    DeleteResponse,
    DiffRequest,
    DiffResponse,
    ObserveRequest,
    ObserveResponse,
    Progress,
    UpdateRequest,
    default_diff,
)
from mlform.engine.values import contains_unknown
from mlform.ml.fingerprint import (
    CODE_PATH,
    RERUN_REASONS,
    code_change_reason,
    code_digest,
    fingerprint,
)

from . import packaging
from .compute import image_uri, instance_type
from .config import seconds
from .dataset import delete_prefix
from .errors import AwsError
from .handler import Handler, describe_or_none
from .layout import split_uri
from .moves import MOVED, TrainingMoves
from .naming import STACK_TAG, tag_dict, tags
from .naming import fingerprint as name_digest

REASONS = {**RERUN_REASONS,
           "provider_options": "SageMaker settings of a finished job cannot change: "
                               "a new job runs"}
REPLACE_ON = frozenset(REASONS)
METRIC_PATTERN = r"mlform-metric {name}=([-+0-9.eE]+)"
HELD_OUT_METRICS = ("accuracy", "auc", "f1", "log_loss", "rmse", "mae", "r2")
SETTLED = {"Completed", "Failed", "Stopped"}
MAX_RUNTIME = 28 * 24 * 3600
MAX_RUNS = 100
"""Re-runs of the same inputs looked through for a free job name."""


class TrainingJobHandler(TrainingMoves, Handler):
    rtype = "training_job"

    def _code_digest(self, spec: Any) -> str:
        return code_digest(self._entrypoint_path(spec) if spec.entrypoint else None)

    def _entrypoint_path(self, spec: Any) -> Path:
        path = (self.ctx.stack_dir / spec.entrypoint).resolve()
        if not path.is_file():
            raise AwsError(f"training script '{spec.entrypoint}' not found (looked at {path})")
        return path

    def job_name(self, resource: str, inputs: dict[str, Any], run: int = 1) -> str:
        spec = self.spec(inputs)
        fields = spec.model_dump(mode="json")
        basis = {**fingerprint(fields, self._code_digest(spec)),
                 "provider_options": fields["provider_options"]}
        return self.name(resource, name_digest(basis), f"r{run}" if run > 1 else "")

    def _claim(self, resource: str, inputs: dict[str, Any]) -> tuple[str, dict | None]:
        """The job this create runs or adopts, and its description (None: not started):
        the first of the inputs' names that is free or still this stack's. Released
        jobs (what `delete` left) are skipped, or a retrain would adopt the old run,
        whose artifacts are gone."""
        sm = self.clients.sagemaker
        for run in range(1, MAX_RUNS + 1):
            name = self.job_name(resource, inputs, run)
            desc = describe_or_none(sm.describe_training_job, TrainingJobName=name)
            if desc is None or tag_dict(sm.list_tags(ResourceArn=desc["TrainingJobArn"])
                                        .get("Tags", [])).get(STACK_TAG) == self.ctx.stack:
                return name, desc
        raise AwsError(f"training job '{resource}' ran {MAX_RUNS} times with these inputs; "
                       "set provider_options.aws.run to a new number to train again")

    def check(self, req: CheckRequest) -> CheckResponse:
        # The container trains with the local provider's built-in trainers: same checks.
        from mlform.ml.hyperparameters import training_problems

        return CheckResponse(problems=super().check(req).problems
                             + training_problems(req.inputs, req.upstream))

    def diff(self, req: DiffRequest) -> DiffResponse:
        base = default_diff(req, REPLACE_ON, REASONS)
        if req.prior_inputs is None or contains_unknown(req.desired_inputs):
            return base
        before = (req.prior_outputs or {}).get("code_digest")
        now = self._code_digest(self.spec(req.desired_inputs))
        reason = code_change_reason(req.desired_inputs, before, now,
                                    [c.path for c in base.changes])
        if reason:
            change = AttributeChange(CODE_PATH, before, now, True, reason)
            return DiffResponse(changes=[*base.changes, change],
                                note=f"{reason}: code digest {before} -> {now}")
        return base

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        spec = self.spec(req.inputs)
        name, desc = self._claim(req.resource.name, req.inputs)
        sm = self.clients.sagemaker
        if desc is None:
            self._start(req, spec, name, progress)
        else:
            progress(f"training job {name} exists ({desc['TrainingJobStatus']}): adopting it")
        desc = self.wait(lambda: sm.describe_training_job(TrainingJobName=name),
                         "TrainingJobStatus", SETTLED, f"training job {name}", progress)
        if desc["TrainingJobStatus"] != "Completed":
            return ApplyResponse(error=(
                f"training job {name} {desc['TrainingJobStatus'].lower()}: "
                f"{desc.get('FailureReason', 'no reason given')}; SageMaker never reuses a "
                "job name, so change an input (or set provider_options.aws.run: 2) to "
                "train again"))
        return ApplyResponse(id=name, outputs=self._outputs(desc, spec))

    def _start(self, req: CreateRequest, spec: Any, name: str, progress: Progress) -> None:
        dataset = spec.dataset or spec.feature_view
        if contains_unknown(dataset) or not str(dataset).startswith("s3://"):
            raise AwsError(f"training job '{req.resource.name}': data '{dataset}' is not in "
                           "S3; on aws the dataset must come from an aws dataset resource")
        options = self.options(spec)
        compute = spec.compute.model_dump()
        itype = instance_type(self.cfg, "training", compute, options)
        source_uri = self._upload_code(req.resource.name, spec, options)
        metric_names = HELD_OUT_METRICS if spec.algorithm else \
            (*HELD_OUT_METRICS, *options.get("metrics", []))
        hyper = {k: json.dumps(v) for k, v in spec.hyperparameters.items()}
        max_runtime = seconds(spec.timeout) if spec.timeout else \
            self.cfg.timeout(self.rtype)
        progress(f"starting training job {name} on {itype}")
        self.clients.sagemaker.create_training_job(
            TrainingJobName=name,
            AlgorithmSpecification={
                "TrainingImage": image_uri(self.cfg, "training", bool(spec.compute.gpus),
                                           options),
                "TrainingInputMode": "File",
                "MetricDefinitions": [{"Name": m, "Regex": METRIC_PATTERN.format(name=m)}
                                      for m in metric_names]},
            HyperParameters={**hyper, "sagemaker_program": json.dumps("train.py"),
                             "sagemaker_submit_directory": json.dumps(source_uri),
                             "sagemaker_region": json.dumps(self.cfg.region)},
            RoleArn=self.cfg.role_arn,
            InputDataConfig=[{"ChannelName": "train", "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": str(dataset),
                "S3DataDistributionType": "FullyReplicated"}}}],
            OutputDataConfig={"S3OutputPath": self.layout.training_output(req.resource.name)},
            ResourceConfig={"InstanceType": itype, "InstanceCount": int(spec.compute.instances),
                            "VolumeSizeInGB": int(options.get("volume_gb", 30))},
            StoppingCondition={"MaxRuntimeInSeconds": int(min(max_runtime, MAX_RUNTIME))},
            Tags=self.tags(req.resource.name, spec))

    def _upload_code(self, resource: str, spec: Any, options: dict[str, Any]) -> str:
        settings = {"resource": resource, "algorithm": spec.algorithm, "target": spec.target,
                    "features": spec.features, "exclude": spec.exclude,
                    "hyperparameters": spec.hyperparameters, "seed": spec.seed,
                    "test_size": spec.test_size, "gpus": spec.compute.gpus,
                    "entrypoint": Path(spec.entrypoint).name if spec.entrypoint else None}
        extra = {}
        if spec.entrypoint:
            extra[settings["entrypoint"]] = self._entrypoint_path(spec).read_bytes()
        data = packaging.tarball(packaging.bundle("train", settings, extra))
        key = self.layout.code_key(resource, packaging.digest(data))
        packaging.upload_once(self.clients.s3, self.cfg.bucket, key, data,
                              tag_dict(tags(self.ctx.stack, resource, self.rtype)))
        return self.layout.uri(key)

    def _outputs(self, desc: dict[str, Any], spec: Any) -> dict[str, Any]:
        itype = desc.get("ResourceConfig", {}).get("InstanceType", "")
        metrics = {m["MetricName"]: m["Value"] for m in desc.get("FinalMetricDataList", [])}
        return {"artifact": desc["ModelArtifacts"]["S3ModelArtifacts"],
                "run_id": desc["TrainingJobName"], "metrics": metrics,
                "device": "cuda" if itype.startswith(("ml.g", "ml.p")) else "cpu",
                # SageMaker runs on the instance type asked for, or not at all
                "device_note": "",
                "instance_type": itype, "code_digest": self._code_digest(spec),
                "arn": desc["TrainingJobArn"]}

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        """What can change in place (tags, compute of a finished job, timeout) is recorded;
        ownership tags are refreshed on the job."""
        name = req.prior_outputs["run_id"]
        spec = self.spec(req.inputs)
        arn = req.prior_outputs.get("arn")
        if arn:
            self.clients.sagemaker.add_tags(ResourceArn=arn, Tags=self.tags(req.resource.name, spec))
        return ApplyResponse(id=name, outputs=req.prior_outputs)

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        if (req.outputs or {}).get(MOVED):  # carried over: no SageMaker job, its artifact
            bucket, key = split_uri(req.outputs["artifact"])  # type: ignore[index]
            found = describe_or_none(self.clients.s3.head_object, Bucket=bucket, Key=key)
            return ObserveResponse(exists=found is not None, id=req.outputs["run_id"],  # type: ignore[index]
                                   outputs=req.outputs,
                                   detail="" if found else f"{req.outputs['artifact']} is gone")  # type: ignore[index]
        name = (req.outputs or {}).get("run_id")
        if not name and req.inputs and not contains_unknown(req.inputs):
            name = self.job_name(req.resource.name, req.inputs)
        if not name:
            return ObserveResponse(exists=False)
        desc = describe_or_none(self.clients.sagemaker.describe_training_job,
                                TrainingJobName=name)
        if desc is None:
            return ObserveResponse(exists=False, detail=f"training job {name} not found")
        live_tags = tag_dict(self.clients.sagemaker.list_tags(
            ResourceArn=desc["TrainingJobArn"]).get("Tags", []))
        if live_tags.get(STACK_TAG) != self.ctx.stack:
            return ObserveResponse(exists=False, detail=f"training job {name} was released")
        status = desc["TrainingJobStatus"]
        if status != "Completed" and not (req.outputs or {}).get("artifact"):
            # Started by an apply that was interrupted, with no result yet: nothing to
            # adopt now. The next apply's create finds the job by its name and waits.
            detail = "apply waits for it" if status in ("InProgress", "Stopping") else \
                desc.get("FailureReason", "no reason given")
            return ObserveResponse(exists=False,
                                   detail=f"training job {name} is {status}: {detail}")
        live_hyper = {k: json.loads(v) for k, v in desc.get("HyperParameters", {}).items()
                      if not k.startswith("sagemaker_")}
        declared = self.spec(req.inputs).hyperparameters if req.inputs else {}
        live = {"hyperparameters": live_hyper} if live_hyper != declared else {}
        outputs = self._outputs(desc, self.spec(req.inputs)) if status == "Completed" \
            and req.inputs else req.outputs
        return ObserveResponse(exists=True, id=name, inputs=live, outputs=outputs,
                               healthy=status in ("Completed", "InProgress"),
                               detail=f"{status}: {desc.get('FailureReason', '')}".rstrip(": "))

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        """SageMaker keeps job records forever: a running job is stopped, its artifacts
        and code are deleted, and the record loses mlform's ownership tags."""
        name = (req.outputs or {}).get("run_id")
        sm = self.clients.sagemaker
        desc = describe_or_none(sm.describe_training_job, TrainingJobName=name) \
            if name and not (req.outputs or {}).get(MOVED) else None
        if desc is not None:
            if desc["TrainingJobStatus"] in ("InProgress", "Stopping"):
                progress(f"stopping training job {name}")
                sm.stop_training_job(TrainingJobName=name)
                self.wait(lambda: sm.describe_training_job(TrainingJobName=name),
                          "TrainingJobStatus", SETTLED, f"training job {name}", progress)
            artifact = desc.get("ModelArtifacts", {}).get("S3ModelArtifacts")
            if artifact:
                bucket, key = split_uri(artifact)
                delete_prefix(self.clients.s3, bucket, key.rsplit("/output/", 1)[0] + "/")
            sm.delete_tags(ResourceArn=desc["TrainingJobArn"],
                           TagKeys=[t["Key"] for t in self.tags(req.resource.name,
                                                                self.spec(req.inputs))])
        if (req.outputs or {}).get(MOVED):  # a carried-over run: its copied artifact
            delete_prefix(self.clients.s3, self.cfg.bucket, self.layout.key(
                "training", req.resource.name, str(req.outputs["run_id"])) + "/")
        delete_prefix(self.clients.s3, self.cfg.bucket,
                      self.layout.key("code", req.resource.name) + "/")
        return DeleteResponse()
