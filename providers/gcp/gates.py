"""Model gates on Vertex AI, judged by `mlform.ml.gates` as on every provider.

Metric gates alone read the training run's held-out metrics (`metrics.json` beside the
artifact, measured by `mlform.ml.metrics` on the same held-out rows). Any fairness or
robustness gate runs mlform's evaluator as a custom job, which judges every gate of the
model on the held-out rows left next to the artifact, seeded with the training run's
seed, and writes `evaluation.json` to
`gs://<bucket>/<prefix>/<stack>/evaluations/<model>/<digest>/`:

    {"format": 2, "gates": [<GateResult.to_dict()>, ...]}   # in the gates' order

`better_than: champion` gates compare with the Model Registry version whose version
aliases include `champion` (`models/<id>@champion`): its artifact (the version's
`artifact_uri`) is the evaluation job's third argument, fetched beside the candidate's
and scored on the candidate's held-out rows (`mlform.ml.champion`). No such version, or
one of this very artifact: no champion yet, and the gate passes on its bounds alone,
judged on the training run's metrics without a job when every gate is a metric gate.
"""

from __future__ import annotations

import json
from typing import Any

from mlform.engine.provider import Progress
from mlform.ml import champion as champions
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
        champion: tuple[str, dict[str, str]] | None = None
        if champions.wanted(spec.gates):
            champion = self.champion(resource, spec, artifact)
        if all(g.metric for g in spec.gates) and champion is None:
            found = self._read(artifact + "metrics.json")
            if found is None:
                raise GcpError(f"model '{resource}': {artifact}metrics.json is missing; the "
                               "artifact is not a gcp training job's output")
            # no champion yet: a `better_than` gate judges its bounds alone
            return metric_gates(spec.gates, json.loads(found), f"training run {artifact}",
                                sensitive, champion=None)
        run = json.loads(self._read(artifact + "run.json") or b"{}")
        return self._evaluate(resource, spec, artifact, int(run.get("seed") or 0), sensitive,
                              progress, champion)

    def champion(self, resource: str, spec: Any, artifact: str
                 ) -> tuple[str, dict[str, str]] | None:
        """(artifact, {"name": "version 3"}) of the version the `champion` alias names,
        or None when there is none yet or it is this very artifact."""
        h = self.h
        model = h.name("models", h.vertex_id(spec.name or resource))
        version = h.clients.get_or_none("models", "get_model",
                                        f"{model}@{champions.ALIAS}", resource)
        if version is None or not version.artifact_uri or \
                champions.same_artifact(version.artifact_uri, artifact):
            return None
        return str(version.artifact_uri), champions.named(version.version_id)

    def _evaluate(self, resource: str, spec: Any, artifact: str, seed: int,
                  sensitive: frozenset[tuple[int, str]], progress: Progress,
                  champion: tuple[str, dict[str, str]] | None = None) -> list[GateResult]:
        """Every gate's result from the evaluation custom job's evaluation.json."""
        h = self.h
        settings, champion_artifact = champions.evaluation_settings(spec.gates, seed, sensitive,
                                                                    champion)
        digest = fingerprint(champions.judged(artifact, EVALUATION_FORMAT, settings,
                                              champion_artifact))
        output = h.layout.uri(h.layout.evaluation_key(resource, digest))
        found = self._read(output)
        if found is None:
            self._run(resource, spec, artifact, digest, settings, output, progress,
                      champion_artifact)
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
             settings: dict[str, Any], output: str, progress: Progress,
             champion_artifact: str | None = None) -> None:
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
            command, args = packaging.command(h.layout.uri(key), "evaluate", artifact, output,
                                              *([champion_artifact] if champion_artifact
                                                else []))
            against = settings.get(champions.SETTING) if champion_artifact else None
            progress(f"evaluating {len(spec.gates)} gate(s) with a custom job" +
                     (f" against the champion ({against['name']})" if against else ""))
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
