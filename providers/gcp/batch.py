"""Batch jobs: a Vertex AI `BatchPredictionJob` scoring a dataset with a registered model
version, found again by its labels (batch jobs take no caller-chosen id either).

The dataset's rows are written once as JSON lines of objects by column name (the serving
script picks the model's features from them, so the target column may stay), and the job
writes `predictions_*.jsonl` under `batch/<name>/<digest>/output/`.
"""

from __future__ import annotations

import io
import json
from typing import Any

from mlform.engine.provider import (
    ApplyResponse,
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

from .compute import machine_spec
from .errors import GcpError, is_not_found
from .handler import Handler
from .layout import split_uri
from .naming import FINGERPRINT_LABEL, fingerprint, label_filter, label_value
from .waiting import SETTLED, state_name, wait_for_job

REPLACE_ON = frozenset({"model", "dataset", "feature_view", "chunk_rows", "provider_options"})


class BatchJobHandler(Handler):
    rtype = "batch_job"

    def diff(self, req: DiffRequest) -> DiffResponse:
        return default_diff(req, REPLACE_ON, {k: "new inputs: the data is scored again"
                                              for k in REPLACE_ON})

    def digest(self, spec: Any) -> str:
        return fingerprint({"model": spec.model, "dataset": spec.dataset,
                            "chunk": spec.chunk_rows, "options": spec.provider_options})

    def _find(self, resource: str, digest: str) -> Any:
        listed = self.clients.call("jobs", "list_batch_prediction_jobs", {
            "parent": self.cfg.parent, "filter": label_filter(**{
                "mlform-stack": label_value(self.ctx.stack),
                "mlform-resource": label_value(resource), FINGERPRINT_LABEL: digest})},
            resource=resource)
        live = [j for j in listed if state_name(j.state) not in ("FAILED", "CANCELLED")]
        return live[0] if live else None

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        spec = self.spec(req.inputs)
        if not spec.dataset or not str(spec.dataset).startswith("gs://"):
            raise GcpError(f"batch job '{req.resource.name}': on gcp the data to score is a "
                           "dataset resource's `uri` in GCS")
        digest = self.digest(spec)
        prefix = self.layout.batch_prefix(req.resource.name, digest)
        job = self._find(req.resource.name, digest)
        if job is None:
            source = self._instances(req.resource.name, spec, prefix, progress)
            options = self.options(spec)
            progress(f"starting a batch prediction job with {str(spec.model).rsplit('/', 1)[-1]}")
            job = self.clients.call("jobs", "create_batch_prediction_job", {
                "parent": self.cfg.parent, "batch_prediction_job": {
                    "display_name": self.vertex_id(req.resource.name, digest),
                    "model": str(spec.model),
                    "input_config": {"instances_format": "jsonl",
                                     "gcs_source": {"uris": [source]}},
                    "output_config": {"predictions_format": "jsonl", "gcs_destination": {
                        "output_uri_prefix": self.layout.uri(prefix + "output/")}},
                    "dedicated_resources": {
                        "machine_spec": machine_spec(self.cfg, "batch", None, options),
                        "starting_replica_count": 1,
                        "max_replica_count": int(options.get("max_replicas", 1))},
                    "manual_batch_tuning_parameters": {
                        "batch_size": int(min(spec.chunk_rows, 1000))},
                    "labels": self.labels(req.resource.name, spec,
                                          **{FINGERPRINT_LABEL: digest})}},
                resource=req.resource.name)
        else:
            progress(f"batch prediction job {job.name} exists: adopting it")
        name = job.name
        job = wait_for_job(lambda: self.clients.call("jobs", "get_batch_prediction_job",
                                                     {"name": name}, resource=req.resource.name),
                           what=f"batch prediction job {name.rsplit('/', 1)[-1]}",
                           timeout=self.cfg.timeout(self.rtype), interval=self.cfg.poll_interval,
                           progress=progress, resource_type=self.rtype)
        if state_name(job.state) != "SUCCEEDED":
            return ApplyResponse(id=name, error=(
                f"batch prediction job {name} {state_name(job.state).lower()}: "
                f"{job.error.message if job.error and job.error.message else 'no reason given'}"))
        return ApplyResponse(id=name, outputs=self._outputs(job))

    def _instances(self, resource: str, spec: Any, prefix: str, progress: Progress) -> str:
        """The dataset as JSON lines of objects, written once per digest; its uri."""
        import pandas as pd

        key = prefix + "instances.jsonl"
        gcs = self.gcs(resource)
        if not gcs.exists(self.cfg.bucket, key):
            bucket, data_key = split_uri(str(spec.dataset))
            data = gcs.get(bucket, data_key)
            if data is None:
                raise GcpError(f"batch job '{resource}': dataset {spec.dataset} is gone")
            frame = pd.read_parquet(io.BytesIO(data)) if data_key.endswith(".parquet") \
                else pd.read_csv(io.BytesIO(data))
            progress(f"writing {len(frame)} instances to {self.layout.uri(key)}")
            lines = "\n".join(json.dumps(row, default=str)
                              for row in frame.to_dict(orient="records"))
            gcs.put(self.cfg.bucket, key, (lines + "\n").encode(),
                    self.labels(resource, spec), "application/x-ndjson")
        return self.layout.uri(key)

    @staticmethod
    def _outputs(job: Any) -> dict[str, Any]:
        output = job.output_info.gcs_output_directory or \
            job.output_config.gcs_destination.output_uri_prefix
        return {"output_uri": output, "job": job.name}

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        return ApplyResponse(id=req.prior_outputs.get("job"), outputs=req.prior_outputs)

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        name = (req.outputs or {}).get("job") or req.resource.id
        job = self.clients.get_or_none("jobs", "get_batch_prediction_job", name,
                                       req.resource.name) if name else None
        if job is None:
            return ObserveResponse(exists=False)
        state = state_name(job.state)
        return ObserveResponse(exists=True, id=name, outputs=req.outputs or self._outputs(job),
                               healthy=state not in ("FAILED", "CANCELLED", "EXPIRED"),
                               detail=state)

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        """The job (cancelled first while it runs) goes with its input and predictions."""
        name = (req.outputs or {}).get("job") or req.resource.id
        job = self.clients.get_or_none("jobs", "get_batch_prediction_job", name,
                                       req.resource.name) if name else None
        if job is not None:
            if state_name(job.state) not in SETTLED:
                self.clients.call("jobs", "cancel_batch_prediction_job", {"name": name},
                                  resource=req.resource.name)
                wait_for_job(lambda: self.clients.call(
                    "jobs", "get_batch_prediction_job", {"name": name},
                    resource=req.resource.name), what=f"batch prediction job {name}",
                    timeout=self.cfg.timeout(self.rtype), interval=self.cfg.poll_interval,
                    progress=progress, resource_type=self.rtype)
            try:
                self.clients.operation("jobs", "delete_batch_prediction_job", {"name": name},
                                       self.cfg.timeout(self.rtype), resource=req.resource.name)
            except Exception as exc:
                if not is_not_found(exc):
                    raise
        self.gcs(req.resource.name).delete_prefix(
            self.cfg.bucket, self.layout.key("batch", req.resource.name) + "/")
        return DeleteResponse()
