"""Monitors: traffic captured by the endpoint (DataCaptureConfig, to S3, read by
`capture`) evaluated against the reference dataset by `mlform.ml.monitoring` on each
`mlform watch` pass, exactly as the local provider evaluates its logged traffic: the
same evaluation, `last_evaluation` and breach. Each evaluation is stored under
`<prefix>/<stack>/monitors/<name>/evaluations/<time>.json` with its page at
`.../report.html`, and published as CloudWatch metrics (namespace `mlform`).

Performance is scored against ground truth the user uploads to S3 (`ground_truth`):
by default under `<prefix>/<stack>/ground-truth/<endpoint>/`, or the monitor's
`provider_options.aws.ground_truth_uri`; labels join the captured requests by request id.

With `use_model_monitor: true` a SageMaker Model Monitor schedule is created as well,
for accounts that still offer it.
"""

from __future__ import annotations

import io
import json
import time
from datetime import UTC, datetime
from typing import Any

from mlform.engine.provider import (
    ApplyResponse,
    CheckRequest,
    CheckResponse,
    CreateRequest,
    DeleteRequest,
    DeleteResponse,
    ObserveRequest,
    ObserveResponse,
    Problem,
    Progress,
    TickRequest,
    TickResponse,
    UpdateRequest,
)

from .errors import AwsError
from .handler import Handler, describe_or_none
from .layout import split_uri

METRIC_NAMESPACE = "mlform"


def no_ground_truth(uri: str) -> str:
    """The note of a performance check that found no labels for the window."""
    return (f"no ground truth for the captured requests under {uri}: upload JSON lines "
            '{"id": "<inferenceId or eventId>", "labels": [...]} there')


class MonitorHandler(Handler):
    rtype = "monitor"

    def check(self, req: CheckRequest) -> CheckResponse:
        problems = super().check(req).problems
        options = req.inputs.get("provider_options")
        chosen = (options.get("aws") or {}).get("ground_truth_uri") \
            if isinstance(options, dict) else None
        # an unknown (a reference not yet resolved) is checked when it is known
        if isinstance(chosen, str) and not chosen.startswith("s3://"):
            problems.append(Problem(
                ("provider_options", "aws", "ground_truth_uri"),
                f"ground_truth_uri '{chosen}' is not an s3:// uri",
                help="write the S3 prefix the labels are uploaded under: "
                     "s3://<bucket>/<prefix>/"))
        return CheckResponse(problems=problems)

    def _capture_uri(self, resource: str, spec: Any) -> str:
        if not spec.endpoint:
            raise AwsError(f"monitor '{resource}': on aws a monitor watches an endpoint")
        live = describe_or_none(self.clients.sagemaker.describe_endpoint,
                                EndpointName=str(spec.endpoint))
        if live is None:
            raise AwsError(f"monitor '{resource}': endpoint '{spec.endpoint}' not found")
        capture = live.get("DataCaptureConfig") or {}
        if not capture.get("EnableCapture"):
            raise AwsError(f"monitor '{resource}': endpoint '{spec.endpoint}' captures no "
                           "traffic; give it `logging: {sample_rate: 1.0}`")
        return f"{capture['DestinationS3Uri'].rstrip('/')}/{spec.endpoint}/"

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        spec = self.spec(req.inputs)
        outputs = {"capture_uri": self._capture_uri(req.resource.name, spec),
                   **self._stored(req.resource.name, spec), "last_evaluation": None}
        if self.cfg.use_model_monitor:
            outputs["schedule"] = self._schedule(req.resource.name, spec)
        return ApplyResponse(id=req.resource.name, outputs=outputs)

    def _schedule(self, resource: str, spec: Any) -> str:
        name = self.name(resource)
        sm = self.clients.sagemaker
        if describe_or_none(sm.describe_monitoring_schedule,
                            MonitoringScheduleName=name) is None:
            from .compute import image_uri, instance_type

            sm.create_monitoring_schedule(
                MonitoringScheduleName=name, Tags=self.tags(resource, spec),
                MonitoringScheduleConfig={
                    "ScheduleConfig": {"ScheduleExpression": "cron(0 * ? * * *)"},
                    "MonitoringJobDefinition": {
                        "MonitoringInputs": [{"EndpointInput": {
                            "EndpointName": str(spec.endpoint),
                            "LocalPath": "/opt/ml/processing/input"}}],
                        "MonitoringOutputConfig": {"MonitoringOutputs": [{"S3Output": {
                            "S3Uri": self.layout.uri(self.layout.key("monitors", resource)),
                            "LocalPath": "/opt/ml/processing/output"}}]},
                        "MonitoringResources": {"ClusterConfig": {
                            "InstanceCount": 1, "VolumeSizeInGB": 30,
                            "InstanceType": instance_type(self.cfg, "processing", None, {})}},
                        "MonitoringAppSpecification": {"ImageUri": image_uri(
                            self.cfg, "processing", False, self.options(spec))},
                        "RoleArn": self.cfg.role_arn}})
        return name

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        spec = self.spec(req.inputs)
        return ApplyResponse(id=req.resource.name, outputs={
            **req.prior_outputs, "capture_uri": self._capture_uri(req.resource.name, spec),
            **self._stored(req.resource.name, spec)})

    def _stored(self, resource: str, spec: Any) -> dict[str, str]:
        """Where evaluations and the report are kept (the `evaluations` and `report`
        outputs every provider's monitor has), and where its labels are read from."""
        return {"evaluations": self.layout.uri(self._key(resource, "evaluations")) + "/",
                "report": self.layout.uri(self._key(resource, "report.html")),
                "ground_truth_uri": self.ground_truth_uri(spec)}

    def _key(self, resource: str, *parts: str) -> str:
        return self.layout.key("monitors", resource, *parts)

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        if req.outputs is None:
            return ObserveResponse(exists=False)
        try:
            self._capture_uri(req.resource.name, self.spec(req.inputs or {}))
        except AwsError as exc:
            return ObserveResponse(exists=True, id=req.resource.name, outputs=req.outputs,
                                   healthy=False, detail=str(exc))
        return ObserveResponse(exists=True, id=req.resource.name, outputs=req.outputs)

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        schedule = (req.outputs or {}).get("schedule")
        if schedule:
            self.clients.sagemaker.delete_monitoring_schedule(MonitoringScheduleName=schedule)
        return DeleteResponse()

    def tick(self, req: TickRequest) -> TickResponse:
        """One evaluation by `mlform.ml.monitoring`, the same as on local: the captured
        traffic against the reference dataset, stored (json and html report) under the
        monitor's S3 prefix and published as CloudWatch metrics."""
        from mlform.ml.monitoring import outcome
        from mlform.ml.monitoring.evaluate import evaluate
        from mlform.ml.monitoring.report import html

        from .capture import read_capture
        from .ground_truth import read_ground_truth

        name = req.resource.name
        spec = self.spec(req.inputs)
        truth_uri = self.ground_truth_uri(spec)
        try:
            # labels are read only for a monitor that scores them
            labels = read_ground_truth(self.clients.s3, truth_uri) if spec.performance else {}
            traffic = read_capture(self.clients.s3, req.outputs["capture_uri"],
                                   spec.window_rows, spec.features, labels)
            evaluation = evaluate(spec, traffic, self._reference(str(spec.reference)),
                                  req.now, name=name, feedback=no_ground_truth(truth_uri))
        except (AwsError, ValueError) as err:
            return TickResponse(error=f"monitor '{name}' could not evaluate: {err}")
        stamp = datetime.fromtimestamp(req.now, UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        stored = self._put(self._key(name, "evaluations", f"{stamp}.json"),
                           json.dumps(evaluation, indent=2, sort_keys=True), "application/json")
        report = self._put(self._key(name, "report.html"), html(evaluation), "text/html")
        if evaluation["verdict"] != "insufficient_data":
            self._publish(name, evaluation)
        return TickResponse(
            outputs={**req.outputs, **self._stored(name, spec),
                     "last_evaluation": outcome.last_evaluation(evaluation, stored, report)},
            breach=outcome.breach(evaluation),
            events=[outcome.event(name, evaluation, report)])

    def ground_truth_uri(self, spec: Any) -> str:
        """Where the monitor's ground-truth labels are uploaded: the monitor's
        `provider_options.aws.ground_truth_uri`, else a prefix of the provider's bucket
        named after the endpoint."""
        chosen = self.options(spec).get("ground_truth_uri")
        if chosen:
            return str(chosen)
        return self.layout.uri(self.layout.key("ground-truth", str(spec.endpoint))) + "/"

    def _reference(self, uri: str):
        """The reference dataset's rows, sampled as every provider samples them."""
        import pandas as pd
        from mlform.ml.monitoring.evaluate import sample_reference

        bucket, key = split_uri(uri)
        body = self.clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        frame = pd.read_parquet(io.BytesIO(body)) if key.endswith(".parquet") \
            else pd.read_csv(io.BytesIO(body))
        return sample_reference(frame)

    def _put(self, key: str, text: str, content_type: str) -> str:
        self.clients.s3.put_object(Bucket=self.layout.bucket, Key=key, Body=text.encode(),
                                   ContentType=content_type)
        return self.layout.uri(key)

    def _publish(self, resource: str, evaluation: dict[str, Any]) -> None:
        dims = [{"Name": "Stack", "Value": self.ctx.stack}, {"Name": "Monitor", "Value": resource}]
        stamp = time.time()
        self.clients.cloudwatch.put_metric_data(Namespace=METRIC_NAMESPACE, MetricData=[
            {"MetricName": "DriftShare", "Dimensions": dims, "Timestamp": stamp,
             "Value": evaluation["drift"]["share"]},
            {"MetricName": "Drifted", "Dimensions": dims, "Timestamp": stamp,
             "Value": 1.0 if "drift" in evaluation["breaches"] else 0.0}])
