"""Model gates on Azure ML, judged by `mlform.ml.gates` as on every provider.

Metric gates alone read the training run's held-out metrics (`metrics.json` beside the
artifact, measured by `mlform.ml.metrics` on the same held-out rows). Any fairness or
robustness gate runs mlform's evaluator as a command job (container_evaluate.py) with the
artifact folder as input; it judges every gate of the model on the held-out rows left next
to the artifact, seeded with the training run's seed, and writes `evaluation.json` to
`<prefix>/<stack>/evaluations/<model>/<digest>/`:

    {"format": 2, "gates": [<GateResult.to_dict()>, ...]}   # in the gates' order

`better_than: champion` gates compare with the newest version of the registry model
tagged `mlform-aliases` with `champion` (aliases are kept on each version, see
model.py): its artifact (the version's `path`) is a second input of the evaluation job,
`champion`, scored on the candidate's held-out rows (`mlform.ml.champion`). No such
version, or one of this very artifact: no champion yet, and the gate passes on its
bounds alone, judged on the training run's metrics without a job when every gate is a
metric gate.
"""

from __future__ import annotations

import json
from typing import Any

from mlform.engine.provider import Progress
from mlform.ml import champion as champions
from mlform.ml.gates import GateResult, metric_gates

from .compute import environment, vm_size
from .errors import AzureError, is_not_found
from .handler import Handler
from .jobs import Jobs
from .naming import ALIASES_TAG, FINGERPRINT_TAG, fingerprint, job_name
from .waiting import FAILED, status_of

EVALUATION_FORMAT = 2
COMMAND = "python evaluate.py --model ${{inputs.model}} --out ${{outputs.evaluation}}"
CHAMPION_ARGUMENT = " --champion ${{inputs.champion}}"


class GateRunner:
    def __init__(self, handler: Handler):
        self.h = handler

    def judge(self, resource: str, spec: Any, progress: Progress,
              sensitive: frozenset[tuple[int, str]] = frozenset()) -> list[GateResult]:
        """Each gate's result; `sensitive` holds (gate index, bound) of hidden bounds."""
        if not spec.gates:
            return []
        artifact = str(spec.artifact).rstrip("/") + "/"
        try:
            key = self.h.layout.key_of(artifact)
        except ValueError:
            raise AzureError(f"model '{resource}': artifact '{spec.artifact}' is not in the "
                             "workspace datastore; a model on azure takes an azure training "
                             "job's `artifact`") from None
        blob = self.h.blob(resource)
        champion: tuple[str, dict[str, str]] | None = None
        if champions.wanted(spec.gates):
            champion = self.champion(resource, spec, artifact)
        if all(g.metric for g in spec.gates) and champion is None:
            found = blob.get(key + "metrics.json")
            if found is None:
                raise AzureError(f"model '{resource}': {artifact}metrics.json is missing; the "
                                 "artifact is not an azure training job's output")
            # no champion yet: a `better_than` gate judges its bounds alone
            return metric_gates(spec.gates, json.loads(found), f"training run {artifact}",
                                sensitive, champion=None)
        run = json.loads(blob.get(key + "run.json") or b"{}")
        return self._evaluate(resource, spec, artifact, int(run.get("seed") or 0), sensitive,
                              progress, champion)

    def champion(self, resource: str, spec: Any, artifact: str
                 ) -> tuple[str, dict[str, str]] | None:
        """(artifact, {"name": "version 3"}) of the newest version tagged with the
        `champion` alias, or None when there is none yet or it is this very artifact."""
        h = self.h
        name = h.asset_name(spec.name or resource)
        try:
            versions = list(h.clients.call("models", lambda: list(h.ml.models.list(name=name)),
                                           resource=resource))
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise
        tagged = [v for v in versions if str(v.version).isdigit() and champions.ALIAS in
                  str((v.tags or {}).get(ALIASES_TAG, "")).split(",")]
        if not tagged:
            return None
        newest = max(tagged, key=lambda v: int(v.version))
        path = str(newest.path or "")
        if not path or self._same(path, artifact):
            return None
        return path, champions.named(newest.version)

    def _same(self, path: str, artifact: str) -> bool:
        """Whether a version's path is `artifact`: the registry may answer a datastore
        path in its long form (`azureml://subscriptions/.../datastores/<ds>/paths/...`)."""
        if champions.same_artifact(path, artifact):
            return True
        head, _, rest = path.partition("/datastores/")
        if not head.startswith("azureml://") or not rest:
            return False
        return champions.same_artifact(f"azureml://datastores/{rest}", artifact)

    def _evaluate(self, resource: str, spec: Any, artifact: str, seed: int,
                  sensitive: frozenset[tuple[int, str]], progress: Progress,
                  champion: tuple[str, dict[str, str]] | None = None) -> list[GateResult]:
        """Every gate's result from the evaluation job's evaluation.json."""
        h = self.h
        settings, champion_artifact = champions.evaluation_settings(spec.gates, seed, sensitive,
                                                                    champion)
        digest = fingerprint(champions.judged(artifact, EVALUATION_FORMAT, settings,
                                              champion_artifact))
        out_key = h.layout.evaluation_key(resource, digest)
        blob = h.blob(resource)
        found = blob.get(out_key)
        if found is None:
            self._run(resource, spec, artifact, digest, settings, out_key, progress,
                      champion_artifact)
            found = blob.get(out_key)
        if found is None:
            raise AzureError(f"the gate evaluation of model '{resource}' succeeded but wrote "
                             f"no {h.layout.uri(out_key)}")
        result = json.loads(found)
        if result.get("format") != EVALUATION_FORMAT or \
                len(result.get("gates", [])) != len(spec.gates):
            raise AzureError(f"{h.layout.uri(out_key)} holds no result for each of the "
                             f"{len(spec.gates)} gate(s)")
        return [GateResult.from_dict(g) for g in result["gates"]]

    def _run(self, resource: str, spec: Any, artifact: str, digest: str,
             settings: dict[str, Any], out_key: str, progress: Progress,
             champion_artifact: str | None = None) -> None:
        """Run (or adopt, by its name) the evaluation command job and wait for it."""
        from azure.ai.ml import Input, Output, command

        h = self.h
        jobs = Jobs(h.clients, resource)
        for attempt in range(1, 20):
            name = job_name(h.ctx.stack, f"{resource}-eval", digest, attempt)
            job = jobs.read(name)
            if job is None or (status_of(job) not in FAILED and not jobs.archived(job)):
                break
        if job is None:
            options = h.options(spec)
            code = h.upload_code(resource, "evaluate", settings, spec=spec)
            against = settings.get(champions.SETTING) if champion_artifact else None
            progress(f"evaluating {len(spec.gates)} gate(s) with job {name}" +
                     (f" against the champion ({against['name']})" if against else ""))
            out_dir = out_key.rsplit("/", 1)[0] + "/"
            inputs = {"model": Input(type="uri_folder", path=artifact)}
            if champion_artifact:
                inputs[champions.SETTING] = Input(type="uri_folder", path=champion_artifact)
            jobs.start(command(
                name=name, display_name=f"{resource} gates",
                tags=h.tags(resource, spec, **{FINGERPRINT_TAG: digest}), code=code,
                command=COMMAND + (CHAMPION_ARGUMENT if champion_artifact else ""),
                environment=environment(h.cfg, "training", options),
                inputs=inputs,
                outputs={"evaluation": Output(type="uri_folder", path=h.layout.uri(out_dir),
                                              mode="rw_mount")},
                compute=options.get("compute") or h.cfg.compute_cluster,
                instance_type=vm_size(h.cfg, "training", None, options), instance_count=1))
        job = jobs.wait(name, f"gate evaluation {name}", h.cfg.timeout("model"), progress,
                        "model")
        if status_of(job) != "Completed":
            raise AzureError(f"gate evaluation job {name} {status_of(job).lower()}: "
                             f"{jobs.failure(name, job)}")
