"""Monitors: traffic captured by the endpoint (DataCaptureConfig, to S3) compared with
the reference dataset by mlform's own drift statistics on each `mlform watch` pass;
each verdict is also published as CloudWatch metrics (namespace `mlform`).

Captured requests are SageMaker's capture lines whose input is mlform's
`{"instances": [...]}`: objects by feature name, or lists in the order of the
monitor's `features`. With `use_model_monitor: true` a SageMaker Model Monitor
schedule is created as well, for accounts that still offer it.
"""

from __future__ import annotations

import base64
import io
import json
import time
from typing import Any

from mlform.engine.provider import (
    ApplyResponse,
    CreateRequest,
    DeleteRequest,
    DeleteResponse,
    ObserveRequest,
    ObserveResponse,
    Progress,
    TickRequest,
    TickResponse,
    UpdateRequest,
)

from .errors import AwsError
from .handler import Handler, describe_or_none
from .layout import split_uri

METRIC_NAMESPACE = "mlform"


class MonitorHandler(Handler):
    rtype = "monitor"

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
                   "last_evaluation": None}
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
            **req.prior_outputs, "capture_uri": self._capture_uri(req.resource.name, spec)})

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
        import numpy as np
        import pandas as pd
        from mlform.providers.local.monitoring import stats

        spec = self.spec(req.inputs)
        current = self._captured(req.outputs["capture_uri"], spec)
        if len(current) < spec.min_rows:
            return TickResponse(events=[f"{len(current)} captured rows, fewer than "
                                        f"min_rows {spec.min_rows}: no verdict yet"])
        bucket, key = split_uri(str(spec.reference))
        body = self.clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        reference = pd.read_parquet(io.BytesIO(body)) if key.endswith(".parquet") \
            else pd.read_csv(io.BytesIO(body))
        features = spec.features or [c for c in current.columns if c in reference.columns]
        drifts = {}
        for feature in features:
            ref = stats.clean(reference[feature].to_numpy())
            cur = stats.clean(current[feature].to_numpy())
            kind = stats.feature_kind(ref)
            method = spec.numeric_method if kind == "numeric" else spec.categorical_method
            if kind == "text":
                continue
            result = getattr(stats, method)(ref, cur, getattr(spec.thresholds, method))
            drifts[feature] = {"method": method, "value": float(result.value),
                               "drifted": bool(result.drifted)}
        share = float(np.mean([d["drifted"] for d in drifts.values()])) if drifts else 0.0
        drifted = share >= spec.drift_share
        evaluation = {"time": req.now, "rows": len(current), "drift_share": share,
                      "drifted": drifted, "features": drifts}
        self._publish(req.resource.name, evaluation)
        breach = {"kind": "drift", "drift_share": share, "threshold": spec.drift_share,
                  "features": sorted(k for k, d in drifts.items() if d["drifted"])} \
            if drifted else None
        return TickResponse(outputs={**req.outputs, "last_evaluation": evaluation},
                            events=[f"drift share {share:.2f} over {len(current)} rows"
                                    + (" (drift)" if drifted else "")], breach=breach)

    def _captured(self, capture_uri: str, spec: Any):
        """The newest `window_rows` captured instances as a frame."""
        import pandas as pd

        bucket, prefix = split_uri(capture_uri)
        pages = self.clients.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                          Prefix=prefix)
        objects = sorted((o for p in pages for o in p.get("Contents", [])),
                         key=lambda o: o["LastModified"], reverse=True)
        rows: list[Any] = []
        for obj in objects:
            text = self.clients.s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            for line in reversed(text.decode().splitlines()):
                rows.extend(_instances(line))
            if len(rows) >= spec.window_rows:
                break
        rows = rows[: spec.window_rows]
        if rows and not isinstance(rows[0], dict):
            if not spec.features:
                raise AwsError("captured instances are lists: set the monitor's `features` "
                               "to name their columns in order")
            return pd.DataFrame(rows, columns=spec.features)
        return pd.DataFrame(rows)

    def _publish(self, resource: str, evaluation: dict[str, Any]) -> None:
        dims = [{"Name": "Stack", "Value": self.ctx.stack}, {"Name": "Monitor", "Value": resource}]
        stamp = time.time()
        self.clients.cloudwatch.put_metric_data(Namespace=METRIC_NAMESPACE, MetricData=[
            {"MetricName": "DriftShare", "Dimensions": dims, "Timestamp": stamp,
             "Value": evaluation["drift_share"]},
            {"MetricName": "Drifted", "Dimensions": dims, "Timestamp": stamp,
             "Value": 1.0 if evaluation["drifted"] else 0.0}])


def _instances(line: str) -> list[Any]:
    """The instances of one SageMaker capture line (JSON or base64-encoded JSON)."""
    if not line.strip():
        return []
    endpoint_input = json.loads(line).get("captureData", {}).get("endpointInput", {})
    data = endpoint_input.get("data", "")
    if endpoint_input.get("encoding") == "BASE64":
        data = base64.b64decode(data).decode()
    return json.loads(data).get("instances", [])
