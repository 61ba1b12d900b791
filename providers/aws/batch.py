"""Batch jobs: `CreateTransformJob` over a dataset in S3, named by model and data."""

from __future__ import annotations

from typing import Any

from mlform.engine.provider import (
    ApplyResponse,
    CreateRequest,
    DeleteRequest,
    DeleteResponse,
    ObserveRequest,
    ObserveResponse,
    Progress,
    UpdateRequest,
    default_diff,
)

from .compute import instance_type
from .dataset import delete_prefix
from .errors import AwsError
from .handler import Handler, describe_or_none
from .layout import split_uri
from .naming import fingerprint

SETTLED = {"Completed", "Failed", "Stopped"}
REPLACE_ON = frozenset({"model", "dataset", "feature_view", "chunk_rows", "provider_options"})


class BatchJobHandler(Handler):
    rtype = "batch_job"

    def diff(self, req):
        return default_diff(req, REPLACE_ON, {k: "new inputs: the data is scored again"
                                              for k in REPLACE_ON})

    def job_name(self, resource: str, spec: Any) -> str:
        return self.name(resource, fingerprint(
            {"model": spec.model, "dataset": spec.dataset, "chunk": spec.chunk_rows,
             "options": spec.provider_options}))

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        spec = self.spec(req.inputs)
        if not spec.dataset or not str(spec.dataset).startswith("s3://"):
            raise AwsError(f"batch job '{req.resource.name}': on aws the data to score is a "
                           "dataset resource's `uri` in S3")
        name = self.job_name(req.resource.name, spec)
        digest = name.rsplit("-", 1)[-1]
        output = self.layout.batch_output(req.resource.name, digest)
        sm = self.clients.sagemaker
        if describe_or_none(sm.describe_transform_job, TransformJobName=name) is None:
            from .endpoint import EndpointHandler

            model_name = EndpointHandler(self.ctx, self.cfg, self.clients)._model_name(
                str(spec.model))
            progress(f"starting transform job {name}")
            sm.create_transform_job(
                TransformJobName=name, ModelName=model_name, BatchStrategy="MultiRecord",
                MaxPayloadInMB=6,
                TransformInput={"DataSource": {"S3DataSource": {
                    "S3DataType": "S3Prefix", "S3Uri": str(spec.dataset)}},
                    "ContentType": "text/csv", "SplitType": "Line"},
                TransformOutput={"S3OutputPath": output, "AssembleWith": "Line",
                                 "Accept": "text/csv"},
                TransformResources={"InstanceType": instance_type(
                    self.cfg, "transform", None, self.options(spec)), "InstanceCount": 1},
                DataProcessing={"InputFilter": "$", "JoinSource": "None"},
                Tags=self.tags(req.resource.name, spec))
        desc = self.wait(lambda: sm.describe_transform_job(TransformJobName=name),
                         "TransformJobStatus", SETTLED, f"transform job {name}", progress)
        if desc["TransformJobStatus"] != "Completed":
            return ApplyResponse(error=f"transform job {name} "
                                       f"{desc['TransformJobStatus'].lower()}: "
                                       f"{desc.get('FailureReason', 'no reason given')}")
        return ApplyResponse(id=name, outputs={"output_uri": output, "job": name})

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        return ApplyResponse(id=req.prior_outputs.get("job"), outputs=req.prior_outputs)

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        name = (req.outputs or {}).get("job")
        desc = describe_or_none(self.clients.sagemaker.describe_transform_job,
                                TransformJobName=name) if name else None
        if desc is None:
            return ObserveResponse(exists=False)
        status = desc["TransformJobStatus"]
        return ObserveResponse(exists=True, id=name, outputs=req.outputs,
                               healthy=status in ("Completed", "InProgress"), detail=status)

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        """Transform jobs are kept by SageMaker; their predictions are deleted."""
        output = (req.outputs or {}).get("output_uri")
        if output:
            bucket, key = split_uri(output)
            delete_prefix(self.clients.s3, bucket, key)
        name = (req.outputs or {}).get("job")
        desc = describe_or_none(self.clients.sagemaker.describe_transform_job,
                                TransformJobName=name) if name else None
        if desc is not None:
            self.clients.sagemaker.delete_tags(
                ResourceArn=desc["TransformJobArn"],
                TagKeys=[t["Key"] for t in self.tags(req.resource.name,
                                                     self.spec(req.inputs))])
        return DeleteResponse()
