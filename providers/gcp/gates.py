"""Model gates on Vertex AI, judged by `mlform.ml.gates` as on every provider.

Metric gates alone read the training run's held-out metrics (`metrics.json` beside the
artifact, measured by `mlform.ml.metrics` on the same held-out rows). Any fairness or
robustness gate runs mlform's evaluator as a custom job, which judges every gate of the
model on the held-out rows left next to the artifact, seeded with the training run's
seed, and writes `evaluation.json` to
`gs://<bucket>/<prefix>/<stack>/evaluations/<model>/<digest>/`:

    {"format": 2, "gates": [<GateResult.to_dict()>, ...]}   # in the gates' order
"""

from __future__ import annotations

import json
from typing import Any

from mlform.engine.provider import Progress
from mlform.ml.gates import GateResult, metric_gates

from . import packaging
from .compute import image_uri, machine_spec
from .errors import GcpError
from .handler import Handler
from .layout import split_uri
from .naming import FINGERPRINT_LABEL, fingerprint, label_filter, label_value
from .waiting import state_name, wait_for_job

EVALUATION_FORMAT = 2


class GateRunner:
    def __init__(self, handler: Handler):
        self.h = handler

    def _read(self, uri: str) -> bytes | None:
        return self.h.gcs().get(*split_uri(uri))

    def judge(self, resource: str, spec: Any, progress: Progress,
              sensitive: frozenset[tuple[int, str]] = frozenset()) -> list[GateResult]:
        """Each gate's result; `sensitive` holds (gate index, bound) of hidden bounds."""
        if not spec.gates:
            return []
        artifact = str(spec.artifact).rstrip("/") + "/"
        if not artifact.startswith("gs://"):
            raise GcpError(f"model '{resource}': artifact '{spec.artifact}' is not in GCS; a "
                           "model on gcp takes a gcp training job's `artifact`")
        if all(g.metric for g in spec.gates):
            found = self._read(artifact + "metrics.json")
            if found is None:
                raise GcpError(f"model '{resource}': {artifact}metrics.json is missing; the "
                               "artifact is not a gcp training job's output")
            return metric_gates(spec.gates, json.loads(found), f"training run {artifact}",
                                sensitive)
        run = json.loads(self._read(artifact + "run.json") or b"{}")
        return self._evaluate(resource, spec, artifact, int(run.get("seed") or 0), sensitive,
                              progress)

    def _evaluate(self, resource: str, spec: Any, artifact: str, seed: int,
                  sensitive: frozenset[tuple[int, str]], progress: Progress
                  ) -> list[GateResult]:
        """Every gate's result from the evaluation custom job's evaluation.json."""
        h = self.h
        settings = {"gates": [g.model_dump(mode="json") for g in spec.gates], "seed": seed,
                    "sensitive": sorted([i, b] for i, b in sensitive)}
        digest = fingerprint({"artifact": artifact, "format": EVALUATION_FORMAT, **settings})
        output = h.layout.uri(h.layout.evaluation_key(resource, digest))
        found = self._read(output)
        if found is None:
            self._run(resource, spec, artifact, digest, settings, output, progress)
            found = self._read(output)
        if found is None:
            raise GcpError(f"the gate evaluation of model '{resource}' succeeded but wrote "
                           f"no {output}")
        result = json.loads(found)
        if result.get("format") != EVALUATION_FORMAT or \
                len(result.get("gates", [])) != len(spec.gates):
            raise GcpError(f"{output} holds no result for each of the {len(spec.gates)} gate(s)")
        return [GateResult.from_dict(g) for g in result["gates"]]

    def _run(self, resource: str, spec: Any, artifact: str, digest: str,
             settings: dict[str, Any], output: str, progress: Progress) -> None:
        """Run (or adopt, by its labels) the evaluation custom job and wait for it."""
        h = self.h
        labels = h.labels(resource, spec, **{FINGERPRINT_LABEL: digest})
        listed = h.clients.call("jobs", "list_custom_jobs", {
            "parent": h.cfg.parent, "filter": label_filter(**{
                "mlform-stack": label_value(h.ctx.stack), FINGERPRINT_LABEL: digest})},
            resource=resource)
        live = [j for j in listed if state_name(j.state) not in ("FAILED", "CANCELLED")]
        if live:
            job = live[0]
        else:
            options = h.options(spec)
            data = packaging.tarball(packaging.bundle("evaluate", settings))
            key = h.layout.code_key(resource, packaging.digest(data))
            h.gcs(resource).put_once(h.cfg.bucket, key, data, labels)
            command, args = packaging.command(h.layout.uri(key), "evaluate", artifact, output)
            progress(f"evaluating {len(spec.gates)} gate(s) with a custom job")
            job_spec: dict[str, Any] = {"worker_pool_specs": [{
                "machine_spec": machine_spec(h.cfg, "evaluation", None, options),
                "replica_count": 1,
                "container_spec": {"image_uri": image_uri(h.cfg, "training", False, options),
                                   "command": command, "args": args}}]}
            if h.cfg.service_account:
                job_spec["service_account"] = h.cfg.service_account
            job = h.clients.call("jobs", "create_custom_job", {
                "parent": h.cfg.parent, "custom_job": {
                    "display_name": h.vertex_id(resource, "eval", digest),
                    "job_spec": job_spec, "labels": labels}}, resource=resource)
        name = job.name
        job = wait_for_job(lambda: h.clients.call("jobs", "get_custom_job", {"name": name},
                                                  resource=resource),
                           what=f"gate evaluation {name.rsplit('/', 1)[-1]}",
                           timeout=h.cfg.timeout("model"), interval=h.cfg.poll_interval,
                           progress=progress, resource_type="model")
        if state_name(job.state) != "SUCCEEDED":
            raise GcpError(f"gate evaluation job {name} {state_name(job.state).lower()}: "
                           f"{job.error.message if job.error else 'no reason given'}")
