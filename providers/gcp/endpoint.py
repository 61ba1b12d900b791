"""Endpoints: a Vertex AI `Endpoint` with a caller-chosen id; each variant is a deployed
model (named by the variant) and the weights are the endpoint's `traffic_split`.

Vertex AI has no built-in canary, so a change of a variant's model is rolled out here:
the new model is deployed beside the old one with no traffic, then the split moves
through the rollout's steps (`mlform.ml.serving.judging`, the local provider's steps).
After `wait` at each step, the new deployed models' answers since the step began are
read from Cloud Monitoring (stats.py) and judged against `rollback`; a breach, or a step
short of evidence with `on_inconclusive: rollback`, sends all traffic back to the old
models, undeploys the new ones and answers `Failure.ROLLED_BACK` (the engine opens an
incident). The old models are undeployed only once the new ones serve their full share.

An endpoint with an `experiment` is measured on each tick (`mlform watch`, `mlform
experiment`): the serving containers' request log, each line counted for the variant whose
deployed model answered it, with the ground truth the monitors read, judged by
`mlform.ml.experiments`; update and observe keep the recorded verdict.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from mlform.engine.durations import seconds
from mlform.engine.provider import (
    ApplyResponse,
    CheckRequest,
    CheckResponse,
    CreateRequest,
    DeleteRequest,
    DeleteResponse,
    Failure,
    InvokeRequest,
    InvokeResponse,
    ObserveRequest,
    ObserveResponse,
    Problem,
    Progress,
    TickRequest,
    TickResponse,
    UpdateRequest,
)
from mlform.ml.experiments.measure import kept_verdict
from mlform.ml.serving.judging import conclusive, describe, judge, traffic_steps

from . import stats
from .compute import machine_spec
from .errors import GcpError, is_not_found, status_of
from .handler import Handler
from .traffic import blend, percents

POLL_SECONDS = 1.0
"""How often a step short of evidence reads the statistics again."""


def model_key(name: str) -> str:
    """A model version name without the project part, so `projects/<id>/...` and
    `projects/<number>/...` compare equal."""
    return name.split("/locations/", 1)[-1]


class EndpointHandler(Handler):
    rtype = "endpoint"

    def endpoint_id(self, resource: str) -> str:
        return self.vertex_id(resource)

    def check(self, req: CheckRequest) -> CheckResponse:
        from mlform.engine.input_checks import plain_model_problems

        problems = super().check(req).problems + plain_model_problems(
            req.inputs.get("variants"), lambda model: "/models/" in model)
        for key, variant in (req.inputs.get("variants") or {}).items():
            if isinstance(variant, dict) and variant.get("shadow"):
                problems.append(Problem(
                    ("variants", key, "shadow"), "Vertex AI endpoints have no shadow traffic",
                    key=True, help="deploy the candidate as a weighted variant and roll it out "
                                   "with `rollout: {strategy: canary}`, or serve shadows with "
                                   "the local provider"))
        if req.inputs.get("feature_view") is not None:
            problems.append(Problem(("feature_view",), "feature_view lookups are served by "
                                    "the local provider only",
                                    help="send full feature rows to Vertex AI, or serve this "
                                         "endpoint with the local provider"))
        return CheckResponse(problems=problems)

    # --- reading ----------------------------------------------------------------------

    def _get(self, resource: str) -> Any:
        return self.clients.get_or_none("endpoints", "get_endpoint",
                                        self.name("endpoints", self.endpoint_id(resource)),
                                        resource)

    @staticmethod
    def _split(endpoint: Any) -> dict[str, int]:
        return {k: int(v) for k, v in dict(endpoint.traffic_split).items() if int(v) > 0}

    def _matched(self, endpoint: Any, spec: Any) -> dict[str, Any]:
        """Variant -> the deployed model serving its model now (by display name and model)."""
        found: dict[str, Any] = {}
        split = dict(endpoint.traffic_split)
        for key, variant in spec.variants.items():
            candidates = [d for d in endpoint.deployed_models if d.display_name == key
                          and model_key(_deployed_model(d)) == model_key(str(variant.model))]
            if candidates:  # the one taking traffic, if a half-done rollout left two
                found[key] = max(candidates, key=lambda d: int(split.get(d.id, 0)))
        return found

    def _outputs(self, endpoint: Any) -> dict[str, Any]:
        split = dict(endpoint.traffic_split)
        by_id = {d.id: d.display_name for d in endpoint.deployed_models}
        traffic: dict[str, float] = {}
        for did, share in split.items():
            if int(share) > 0:
                key = str(by_id.get(did) or did)
                traffic[key] = traffic.get(key, 0.0) + float(share)
        base = (self.cfg.api_endpoint or "") if self.cfg.emulated else \
            f"https://{self.cfg.api_endpoint or f'{self.cfg.region}-aiplatform.googleapis.com'}"
        return {"url": f"{base.rstrip('/')}/v1/{endpoint.name}:predict",
                "name": endpoint.name.rsplit("/", 1)[-1], "traffic": traffic,
                "endpoint": endpoint.name,
                "deployed": {d.display_name: d.id for d in endpoint.deployed_models}}

    # --- verbs ------------------------------------------------------------------------

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        spec = self.spec(req.inputs)
        endpoint = self._get(req.resource.name)
        if endpoint is None:
            eid = self.endpoint_id(req.resource.name)
            progress(f"creating endpoint {eid}")
            self.clients.operation("endpoints", "create_endpoint", {
                "parent": self.cfg.parent, "endpoint_id": eid,
                "endpoint": {"display_name": eid, "labels": self.labels(req.resource.name, spec),
                             "description": spec.description or
                             f"mlform endpoint {req.resource.name} of {self.ctx.stack}"}},
                self.cfg.timeout(self.rtype), resource=req.resource.name)
            endpoint = self._get(req.resource.name)
            if endpoint is None:
                raise GcpError(f"endpoint {eid} was created but cannot be read back")
        else:
            progress(f"endpoint {endpoint.name} exists: adopting it")
        return self._converge(req.resource.name, spec, endpoint, progress)

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        spec = self.spec(req.inputs)
        endpoint = self._get(req.resource.name)
        if endpoint is None:
            raise GcpError(f"endpoint '{req.resource.name}' is gone; run `mlform apply` "
                           "again after a refresh to create it anew")
        done = self._converge(req.resource.name, spec, endpoint, progress)
        if done.error:
            return done
        # the verdict `mlform watch` recorded stays while the experiment runs
        return replace(done, outputs={**done.outputs,
                                      **kept_verdict(req.prior_outputs, spec.experiment)})

    def _converge(self, resource: str, spec: Any, endpoint: Any,
                  progress: Progress) -> ApplyResponse:
        """Deploy what is missing, roll traffic onto it, undeploy what is no longer asked."""
        matched = self._matched(endpoint, spec)
        stable = self._split(endpoint)
        new_ids: dict[str, str] = {}
        for key in spec.variants:
            if key not in matched:
                new_ids[key] = self._deploy(resource, spec, endpoint.name, key, progress)
        endpoint = self._get(resource)
        ids = {**{k: d.id for k, d in matched.items()}, **new_ids}
        target = percents({ids[k]: float(v.weight) for k, v in spec.variants.items()})
        replaced = {d for d in stable if d not in ids.values()}
        if new_ids and replaced and stable:
            outcome = self._roll(resource, spec, endpoint, stable, target,
                                 list(new_ids.values()), progress)
            if outcome is not None:
                return outcome
        elif self._split(endpoint) != target:
            progress(f"setting the traffic split: {self._named(endpoint, target)}")
            self._set_split(resource, endpoint, target)
        endpoint = self._get(resource)
        for deployed in endpoint.deployed_models:
            if deployed.id not in ids.values():
                self._undeploy(resource, endpoint.name, deployed, progress)
        endpoint = self._get(resource)
        return ApplyResponse(id=endpoint.name, outputs=self._outputs(endpoint))

    def _deploy(self, resource: str, spec: Any, endpoint_name: str, key: str,
                progress: Progress) -> str:
        variant = spec.variants[key]
        model = str(variant.model)
        if self.clients.get_or_none("models", "get_model", model, resource) is None:
            raise GcpError(f"endpoint '{resource}': variant '{key}' serves model '{model}', "
                           "which is not in the Model Registry; an endpoint on gcp serves a "
                           "gcp model resource's `uri`")
        options = self.options(spec)
        compute = spec.compute.model_dump()
        instances = int(spec.compute.instances)
        progress(f"deploying {model.rsplit('/', 1)[-1]} as variant '{key}' (no traffic yet)")
        done = self.clients.operation("endpoints", "deploy_model", {
            "endpoint": endpoint_name,
            "deployed_model": {
                "model": model, "display_name": key,
                "dedicated_resources": {
                    "machine_spec": machine_spec(self.cfg, "serving", compute, options),
                    "min_replica_count": instances,
                    "max_replica_count": max(instances, int(options.get("max_replicas", 0)))},
                **({"service_account": self.cfg.service_account}
                   if self.cfg.service_account else {})},
            # a first deployment takes all traffic: an empty endpoint has no split to keep
            "traffic_split": self._keep_split(endpoint_name, resource)},
            self.cfg.timeout(self.rtype), resource=resource)
        return str(done.deployed_model.id)

    def _keep_split(self, endpoint_name: str, resource: str) -> dict[str, int]:
        endpoint = self.clients.call("endpoints", "get_endpoint", {"name": endpoint_name},
                                     resource=resource)
        split = self._split(endpoint)
        return {**split, "0": 0} if split else {"0": 100}

    def _set_split(self, resource: str, endpoint: Any, split: dict[str, int]) -> None:
        self.clients.call("endpoints", "update_endpoint", {
            "endpoint": {"name": endpoint.name, "traffic_split": split},
            "update_mask": {"paths": ["traffic_split"]}}, resource=resource)

    def _undeploy(self, resource: str, endpoint_name: str, deployed: Any,
                  progress: Progress) -> None:
        progress(f"undeploying {deployed.display_name} ({deployed.id})")
        try:
            self.clients.operation("endpoints", "undeploy_model", {
                "endpoint": endpoint_name, "deployed_model_id": deployed.id},
                self.cfg.timeout(self.rtype), resource=resource)
        except Exception as exc:
            if not is_not_found(exc):
                raise

    @staticmethod
    def _named(endpoint: Any, split: dict[str, int]) -> str:
        names = {d.id: d.display_name for d in endpoint.deployed_models}
        return ", ".join(f"{names.get(k, k)} ({k}) {v}%" for k, v in sorted(split.items()))

    # --- rollout ----------------------------------------------------------------------

    def _roll(self, resource: str, spec: Any, endpoint: Any, stable: dict[str, int],
              target: dict[str, int], new_ids: list[str], progress: Progress
              ) -> ApplyResponse | None:
        """Step the split from `stable` to `target`, judging the new deployed models at
        each step; an ApplyResponse when the rollout stopped, None when it completed."""
        rollout, rollback = spec.rollout, spec.rollback
        steps = traffic_steps(rollout)
        wait = seconds(rollout.wait)
        eid = endpoint.name.rsplit("/", 1)[-1]
        lines: list[str] = []
        for i, percent in enumerate(steps):
            label = (f"{rollout.strategy} step {percent}%" if rollout.strategy != "all_at_once"
                     else "the all_at_once step (100%)")
            since = time.time()
            self._set_split(resource, endpoint, blend(stable, target, percent))
            progress(f"{label}: {percent}% of requests on the new model", i / len(steps))
            time.sleep(wait)
            window = stats.window(self.clients, eid, new_ids, since, resource)
            breach = judge(window, rollback)
            deadline = time.monotonic() + seconds(rollback.evidence_timeout)
            if breach is None and not conclusive(window, rollback):
                progress(f"{label}: waiting up to {rollback.evidence_timeout} for "
                         f"{rollback.min_requests} requests on the new model")
            while breach is None and not conclusive(window, rollback) and \
                    time.monotonic() < deadline:
                time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
                window = stats.window(self.clients, eid, new_ids, since, resource)
                breach = judge(window, rollback)
            lines.append(f"{label}: {describe(window, rollback)}")
            progress(lines[-1], (i + 1) / len(steps))
            if breach is None and not conclusive(window, rollback):
                seen = (f"{label} is inconclusive: the new model answered "
                        f"{window['requests']} requests in {rollback.evidence_timeout} "
                        f"(besides the step's wait), and rollback.min_requests asks for "
                        f"{rollback.min_requests}")
                fix = ("send traffic to the endpoint while it rolls out, lower "
                       "rollback.min_requests (0 promotes without evidence) or raise "
                       "rollback.evidence_timeout")
                if rollback.on_inconclusive == "hold":
                    return ApplyResponse(error=f"{seen}; the traffic stays split with {percent}% "
                                               "on the new model (rollback.on_inconclusive: "
                                               f"hold) and the next apply rolls out again: {fix}",
                                         detail="\n".join(lines))
                return self._back(resource, endpoint, stable, new_ids,
                                  f"rolled back: {seen}; traffic is back on the previous "
                                  f"model: {fix}", lines, progress)
            if breach:
                return self._back(resource, endpoint, stable, new_ids,
                                  f"rolled back at {label}: {breach}; all traffic is back on "
                                  "the previous model", lines, progress)
        return None

    def _back(self, resource: str, endpoint: Any, stable: dict[str, int], new_ids: list[str],
              why: str, lines: list[str], progress: Progress) -> ApplyResponse:
        """All traffic to the old models; the new ones undeployed; the rollout ends."""
        self._set_split(resource, endpoint, stable)
        progress(why, 1.0)
        live = self._get(resource)
        for deployed in (live.deployed_models if live else []):
            if deployed.id in new_ids:
                self._undeploy(resource, endpoint.name, deployed, progress)
        return ApplyResponse(error=f"endpoint '{resource}' {why}", detail="\n".join(lines),
                             failure=Failure.ROLLED_BACK)

    # --- invoke -----------------------------------------------------------------------

    def invoke(self, req: InvokeRequest) -> InvokeResponse:
        """The endpoint's `:rawPredict` (Vertex AI's passthrough to the serving container's
        `/predict`) through the SDK's prediction client over REST, so the answer is the
        container's JSON as is: `predict` would turn every number into a float, and a
        label 1 served on local or aws must stay 1 here for the gateway's parity check."""
        import json

        outputs = req.outputs or {}
        name = str(outputs.get("endpoint") or
                   self.name("endpoints", self.endpoint_id(req.resource.name)))
        body = json.dumps({"instances": req.instances}).encode()
        try:
            # no retries: a gateway forwarding a client's request retries on its other
            # endpoints instead of waiting here
            raw = self.clients.get("prediction").raw_predict(
                request={"endpoint": name, "http_body": {"content_type": "application/json",
                                                         "data": body}},
                retry=None, timeout=req.timeout)
            answer = json.loads(raw.data or b"{}")
        except Exception as e:  # noqa: BLE001 - any failure is this call's answer
            return InvokeResponse(error=f"endpoint {name}: {e}", status=status_of(e) or 502)
        return InvokeResponse(predictions=list(answer.get("predictions") or []))

    # --- experiment -------------------------------------------------------------------

    def tick(self, req: TickRequest) -> TickResponse | None:
        """The experiment's verdict (`mlform.ml.experiments`, as on local) over every
        request the serving containers logged, each counted for the variant whose deployed
        model answered it (Vertex AI draws it at random by the traffic split), with the
        ground truth the endpoint's monitors read."""
        from mlform.ml.experiments.logged import verdict

        from .layout import split_uri
        from .requestlog import read_logs

        spec = self.spec(req.inputs)
        if spec.experiment is None:
            return None
        name = req.resource.name
        endpoint = self._get(name)
        if endpoint is None:
            return TickResponse(error=f"endpoint '{name}': not found; the experiment cannot "
                                      "be measured (`mlform apply` deploys it again)")
        eid = endpoint.name.rsplit("/", 1)[-1]
        live = [k for k, v in spec.variants.items() if not v.shadow]
        variant_of = {str(d.id): d.display_name for d in endpoint.deployed_models
                      if d.display_name in live}
        truths = [(self.cfg.bucket, self.layout.ground_truth_prefix(eid))]
        try:
            truths += [split_uri(uri.rstrip("/") + "/") for uri in _monitor_truths(req, eid)]
        except ValueError as e:
            return TickResponse(error=f"endpoint '{name}': a monitor's ground truth: {e}")
        requests, feedback = read_logs(self.gcs(name), self.cfg.bucket,
                                       self.layout.requests_prefix(eid), truths)
        found = verdict(spec.experiment.model_dump(), live, requests, feedback, variant_of,
                        now=req.now, serving=self._serving(name, eid, variant_of, requests))
        return TickResponse(outputs={"experiment": found}, events=[found["summary"]])

    def _serving(self, resource: str, eid: str, variant_of: dict[str, str],
                 requests: list[dict]) -> dict[str, dict]:
        """Per variant, its deployed model's answers, errors and p99 latency in Cloud
        Monitoring since the first logged request; empty where it cannot be read (the
        verdict does not depend on it)."""
        since = min((float(r.get("t") or 0.0) for r in requests), default=None)
        if since is None:
            return {}
        out: dict[str, dict] = {}
        try:
            for did, variant in variant_of.items():
                window = stats.window(self.clients, eid, [did], since, resource)
                out[variant] = {"requests": window["requests"], "errors": window["errors"],
                                "error_rate": window["errors"] / window["requests"]
                                if window["requests"] else None,
                                "p99_ms": window["p99_ms"]}
        except Exception:  # noqa: BLE001 - statistics shown beside the verdict, not needed
            return {}
        return out

    # --- observe and delete -----------------------------------------------------------

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        endpoint = self._get(req.resource.name)
        if endpoint is None:
            return ObserveResponse(exists=False, detail="endpoint not found")
        if req.idempotency_key and not endpoint.deployed_models:
            # made by an interrupted apply, nothing deployed yet: the next create adopts
            # it and deploys
            return ObserveResponse(exists=False, detail=f"endpoint {endpoint.name} has no "
                                                        "deployed model yet: apply deploys")
        return ObserveResponse(exists=True, id=endpoint.name,
                               inputs={"variants": self._live_variants(req.inputs, endpoint)},
                               outputs=self._outputs(endpoint) | kept_verdict(
                                   req.outputs, (req.inputs or {}).get("experiment")))

    def _live_variants(self, inputs: dict[str, Any] | None, endpoint: Any) -> dict[str, Any]:
        """Variants whose live share or model differs from the spec's (defaults included),
        so a weight written as 3:1 and served as 75:25 is not mistaken for drift."""
        if not inputs:
            return {}
        spec = self.spec(inputs)
        declared = percents({k: float(v.weight) for k, v in spec.variants.items()})
        matched = self._matched(endpoint, spec)
        split = dict(endpoint.traffic_split)
        changed: dict[str, Any] = {}
        for key in spec.variants:
            deployed = matched.get(key)
            if deployed is None:
                live = [d for d in endpoint.deployed_models if d.display_name == key]
                changed[key] = {"model": _deployed_model(live[0]) if live else "(not deployed)"}
                continue
            share = int(split.get(deployed.id, 0))
            if share != declared.get(key, 0):
                changed[key] = {"weight": share}
        for deployed in endpoint.deployed_models:
            if deployed.display_name not in spec.variants and int(split.get(deployed.id, 0)):
                changed[deployed.display_name] = {"model": _deployed_model(deployed),
                                                  "weight": int(split[deployed.id])}
        return changed

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        endpoint = self._get(req.resource.name)
        if endpoint is not None:
            if dict(endpoint.traffic_split):
                self._set_split(req.resource.name, endpoint, {})
            for deployed in endpoint.deployed_models:
                self._undeploy(req.resource.name, endpoint.name, deployed, progress)
            progress(f"deleting endpoint {endpoint.name}")
            try:
                self.clients.operation("endpoints", "delete_endpoint", {"name": endpoint.name},
                                       self.cfg.timeout(self.rtype), resource=req.resource.name)
            except Exception as exc:
                if not is_not_found(exc):
                    raise
        self.gcs(req.resource.name).delete_prefix(
            self.cfg.bucket, self.layout.requests_prefix(self.endpoint_id(req.resource.name)))
        return DeleteResponse()


def _deployed_model(deployed: Any) -> str:
    """The model version a deployed model serves (`.../models/ID@N`)."""
    model = str(deployed.model)
    version = str(getattr(deployed, "model_version_id", "") or "")
    return model if "@" in model or not version else f"{model}@{version}"


def _monitor_truths(req: TickRequest, eid: str) -> list[str]:
    """The `ground_truth_uri` of each monitor in the stack that watches this endpoint and
    reads its labels from a place of its own (the default place is read anyway)."""
    found = []
    for inputs in req.stack_inputs.values():
        options = (inputs.get("provider_options") or {}).get("gcp") or {}
        uri, watched = options.get("ground_truth_uri"), inputs.get("endpoint")
        if isinstance(uri, str) and isinstance(watched, str) \
                and watched.rsplit("/", 1)[-1] == eid:
            found.append(uri)
    return found
