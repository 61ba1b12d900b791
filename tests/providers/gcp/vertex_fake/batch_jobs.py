"""BatchPredictionJob: the fake starts the model's serving container (as a deployment does,
see serving.py), reads the `gcsSource` inputs (jsonl: one instance per line; csv: a header
row, then one instance per row as a list of values, numbers parsed), posts them to the predict
route in chunks of `manualBatchTuningParameters.batchSize` (default 64), and writes
`predictions_00001.jsonl` (`{"instance": ..., "prediction": ...}` per line) and, for chunks the
container refused, `errors_00001.jsonl` (`{"instance": ..., "error": {"status", "message"}}`)
under `<outputUriPrefix>/prediction-<model display name>-<timestamp>/`, which becomes
`outputInfo.gcsOutputDirectory`. Some failed instances: PARTIALLY_SUCCEEDED; all: FAILED.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

from .errors import ApiError
from .gcs import read, write
from .jobs import PARTIALLY_SUCCEEDED, Jobs
from .models import Models
from .serving import Replica, start_replica
from .state import Store, now


class BatchPredictionJobs(Jobs):
    collection, kind, permission = ("batchPredictionJobs", "BatchPredictionJob",
                                    "aiplatform.batchPredictionJobs")
    operations_under_job = False

    def __init__(self, store: Store, models: Models, start_timeout: float):
        super().__init__(store)
        self.models = models
        self.start_timeout = start_timeout

    def validate(self, body: dict[str, Any]) -> None:
        if not body.get("model"):
            raise ApiError("INVALID_ARGUMENT", "BatchPredictionJob.model must be set.")
        self.models.resolve(body["model"])
        source = body.get("inputConfig") or {}
        if source.get("instancesFormat") not in ("jsonl", "csv"):
            raise ApiError("INVALID_ARGUMENT", "input_config.instances_format must be jsonl or csv "
                           "(the fake reads those two).")
        if not (source.get("gcsSource") or {}).get("uris"):
            raise ApiError("INVALID_ARGUMENT", "input_config.gcs_source.uris must be set.")
        output = body.get("outputConfig") or {}
        if output.get("predictionsFormat", "jsonl") != "jsonl":
            raise ApiError("INVALID_ARGUMENT", "output_config.predictions_format must be jsonl.")
        if not (output.get("gcsDestination") or {}).get("outputUriPrefix"):
            raise ApiError("INVALID_ARGUMENT", "output_config.gcs_destination.output_uri_prefix must be set.")
        machine = ((body.get("dedicatedResources") or {}).get("machineSpec") or {}).get("machineType")
        if not machine:
            raise ApiError("INVALID_ARGUMENT", "A model with a custom container needs "
                           "dedicated_resources.machine_spec.machine_type.")

    def work(self, job_id: str, job: dict[str, Any]) -> None:
        with self.store.lock:
            model = self.models.resolve(job["model"])
            self.set(job_id, modelVersionId=model["versionId"])
        instances = self._instances(job["inputConfig"])
        directory = self.store.work_dir / self.collection / job_id
        holder: list[Replica] = []

        def start() -> Any:
            holder.append(start_replica(self.store, model, job_id, job_id, directory, self.start_timeout))
            return holder[0].process

        self.start_process(job_id, start)
        replica = holder[0]
        try:
            done, failed = self._predict(job_id, job, replica, instances)
        finally:
            replica.stop()
        self.check_cancelled(job_id)
        stamp = datetime.now(UTC).strftime("%Y_%m_%dT%H_%M_%S_%f")[:-3] + "Z"
        out = (f"{job['outputConfig']['gcsDestination']['outputUriPrefix'].rstrip('/')}/"
               f"prediction-{model['displayName']}-{stamp}")
        write(self.store.storage_url, f"{out}/predictions_00001.jsonl",
              "".join(json.dumps(line) + "\n" for line in done))
        if failed:
            write(self.store.storage_url, f"{out}/errors_00001.jsonl",
                  "".join(json.dumps(line) + "\n" for line in failed))
        stats = {"successfulCount": str(len(done)), "failedCount": str(len(failed)),
                 "incompleteCount": "0"}
        self.set(job_id, outputInfo={"gcsOutputDirectory": out}, completionStats=stats)
        if failed and not done:
            raise ApiError("INVALID_ARGUMENT", f"All {len(failed)} instances failed; see {out}/errors_00001.jsonl: "
                           f"{failed[0]['error']['message']}")
        if failed:
            self.set(job_id, state=PARTIALLY_SUCCEEDED, endTime=now())

    def _instances(self, source: dict[str, Any]) -> list[Any]:
        instances: list[Any] = []
        for _, text in read(self.store.storage_url, source["gcsSource"]["uris"]):
            if source["instancesFormat"] == "jsonl":
                instances += [json.loads(line) for line in text.splitlines() if line.strip()]
            else:
                rows = list(csv.reader(io.StringIO(text)))
                instances += [[_number(v) for v in row] for row in rows[1:] if row]
        return instances

    def _predict(self, job_id: str, job: dict[str, Any], replica: Replica,
                 instances: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        size = int((job.get("manualBatchTuningParameters") or {}).get("batchSize") or 64)
        done: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        for start in range(0, len(instances), size):
            self.check_cancelled(job_id)
            chunk = instances[start:start + size]
            payload: dict[str, Any] = {"instances": chunk}
            if "modelParameters" in job:
                payload["parameters"] = job["modelParameters"]
            code, reply = replica.post(json.dumps(payload).encode())
            predictions = _predictions(reply) if code == 200 else None
            if predictions is not None and len(predictions) == len(chunk):
                done += [{"instance": i, "prediction": p} for i, p in zip(chunk, predictions, strict=True)]
            else:
                message = (reply.decode(errors="replace")[:500] if code != 200 else
                           "the model server's answer does not hold one prediction per instance")
                failed += [{"instance": i, "error": {"status": "INVALID_ARGUMENT" if code < 500 else "INTERNAL",
                                                     "message": message}} for i in chunk]
        return done, failed


def _predictions(reply: bytes) -> list[Any] | None:
    try:
        answer = json.loads(reply)
    except ValueError:
        return None
    predictions = answer.get("predictions") if isinstance(answer, dict) else None
    return predictions if isinstance(predictions, list) else None


def _number(value: str) -> Any:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value
