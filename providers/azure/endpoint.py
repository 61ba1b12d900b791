"""Endpoints: a managed online endpoint (key auth); each variant is a deployment named by
the variant and its model, and the weights are the endpoint's `traffic`; a shadow
variant is the endpoint's `mirror_traffic`.

A change of a variant's model is rolled out here: the new deployment is created beside
the old one with no traffic, then the traffic moves through the rollout's steps
(`mlform.ml.serving.judging`, the local provider's steps). After `wait` at each step, the
new deployments' answers since the step began are read from Azure Monitor (stats.py) and
judged against `rollback`; a breach, or a step short of evidence with
`on_inconclusive: rollback`, sends all traffic back to the old deployments, deletes the
new ones and answers `Failure.ROLLED_BACK` (the engine opens an incident). The old
deployments are deleted only once the new ones serve their full share.

An endpoint with an `experiment` is measured on each tick (`mlform watch`, `mlform
experiment`): the scoring scripts' request log, each line counted for the variant whose
deployment answered it, with the ground truth the monitors read, judged by
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
from .compute import environment, vm_size
from .errors import AzureError, is_not_found
from .handler import Handler
from .naming import VARIANT_TAG, deployment_name, endpoint_name
from .traffic import blend, percents

POLL_SECONDS = 1.0
"""How often a step short of evidence reads the statistics again."""
MIRROR_PERCENT = 50
"""Azure mirrors at most half of the requests to a shadow deployment."""


class EndpointHandler(Handler):
    rtype = "endpoint"

    def endpoint_name(self, resource: str) -> str:
        return endpoint_name(self.ctx.stack, resource)

    def check(self, req: CheckRequest) -> CheckResponse:
        from mlform.engine.input_checks import plain_model_problems

        problems = super().check(req).problems + plain_model_problems(
            req.inputs.get("variants"), lambda model: str(model).startswith("azureml:"))
        shadows = [k for k, v in (req.inputs.get("variants") or {}).items()
                   if isinstance(v, dict) and v.get("shadow")]
        for key in shadows[1:]:
            problems.append(Problem(
                ("variants", key, "shadow"), "a managed online endpoint mirrors traffic to "
                "one deployment only", key=True,
                help=f"keep one shadow variant ('{shadows[0]}'); serve more shadows with the "
                     "local provider"))
        if req.inputs.get("feature_view") is not None:
            problems.append(Problem(("feature_view",), "feature_view lookups are served by "
                                    "the local provider only",
                                    help="send full feature rows to the endpoint, or serve "
                                         "this endpoint with the local provider"))
        return CheckResponse(problems=problems)

    # --- reading ----------------------------------------------------------------------

    def _get(self, resource: str) -> Any:
        name = self.endpoint_name(resource)
        return self.clients.get_or_none("endpoints",
                                        lambda: self.ml.online_endpoints.get(name), resource)

    def _deployments(self, resource: str) -> dict[str, Any]:
        name = self.endpoint_name(resource)
        try:
            found = self.clients.call("deployments", lambda: list(
                self.ml.online_deployments.list(name)), resource=resource)
        except Exception as exc:
            if is_not_found(exc):
                return {}
            raise
        return {d.name: d for d in found}

    @staticmethod
    def _traffic(endpoint: Any) -> dict[str, int]:
        return {k: int(v) for k, v in dict(endpoint.traffic or {}).items() if int(v) > 0}

    @staticmethod
    def _mirror(endpoint: Any) -> dict[str, int]:
        return {k: int(v) for k, v in dict(endpoint.mirror_traffic or {}).items()
                if int(v) > 0}

    @staticmethod
    def _wanted(spec: Any) -> dict[str, str]:
        """Variant -> the deployment that serves its model."""
        return {key: deployment_name(key, str(v.model)) for key, v in spec.variants.items()}

    def _outputs(self, endpoint: Any, deployments: dict[str, Any]) -> dict[str, Any]:
        variant_of = {n: (d.tags or {}).get(VARIANT_TAG, n) for n, d in deployments.items()}
        traffic: dict[str, float] = {}
        for name, share in self._traffic(endpoint).items():
            key = variant_of.get(name, name)
            traffic[key] = traffic.get(key, 0.0) + float(share)
        return {"url": endpoint.scoring_uri, "name": endpoint.name, "traffic": traffic,
                "endpoint": endpoint.name,
                "deployments": {variant_of[n]: n for n in sorted(deployments)},
                "mirror": {variant_of.get(n, n): v for n, v in self._mirror(endpoint).items()}}

    # --- verbs ------------------------------------------------------------------------

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        from azure.ai.ml.entities import ManagedOnlineEndpoint

        spec = self.spec(req.inputs)
        endpoint = self._get(req.resource.name)
        if endpoint is None:
            name = self.endpoint_name(req.resource.name)
            progress(f"creating endpoint {name}")
            made = ManagedOnlineEndpoint(
                name=name, auth_mode="key", tags=self.tags(req.resource.name, spec),
                description=spec.description or
                f"mlform endpoint {req.resource.name} of {self.ctx.stack}")
            self.clients.wait("endpoints",
                              lambda: self.ml.online_endpoints.begin_create_or_update(made),
                              self.cfg.timeout(self.rtype), what=f"endpoint {name}",
                              resource=req.resource.name, progress=progress)
        else:
            progress(f"endpoint {endpoint.name} exists: adopting it")
        return self._converge(req.resource.name, spec, progress)

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        spec = self.spec(req.inputs)
        if self._get(req.resource.name) is None:
            raise AzureError(f"endpoint '{req.resource.name}' is gone; run `mlform apply` "
                             "again after a refresh to create it anew")
        done = self._converge(req.resource.name, spec, progress)
        if done.error:
            return done
        # the verdict `mlform watch` recorded stays while the experiment runs
        return replace(done, outputs={**done.outputs,
                                      **kept_verdict(req.prior_outputs, spec.experiment)})

    def _converge(self, resource: str, spec: Any, progress: Progress) -> ApplyResponse:
        """Deploy what is missing, roll traffic onto it, delete what is no longer asked."""
        wanted = self._wanted(spec)
        live = self._deployments(resource)
        endpoint = self._get(resource)
        stable = self._traffic(endpoint)
        new = [n for n in wanted.values() if n not in live]
        for key, name in wanted.items():
            if name not in live:
                self._deploy(resource, spec, key, name, progress)
        served = {k: v for k, v in spec.variants.items() if not v.shadow}
        target = percents({wanted[k]: float(v.weight) for k, v in served.items()})
        mirror = {wanted[k]: MIRROR_PERCENT for k, v in spec.variants.items() if v.shadow}
        replaced = [d for d in stable if d not in target]
        rolled_new = [n for n in new if n in target]
        if rolled_new and replaced and stable:
            outcome = self._roll(resource, spec, stable, target, rolled_new, progress)
            if outcome is not None:
                return outcome
        if self._traffic(self._get(resource)) != target or \
                self._mirror(self._get(resource)) != mirror:
            progress(f"setting the traffic: {_shown(target)}"
                     + (f", mirroring {_shown(mirror)}" if mirror else ""))
            self._set_traffic(resource, target, mirror)
        for name in sorted(self._deployments(resource)):
            if name not in wanted.values():
                self._delete_deployment(resource, name, progress)
        endpoint = self._get(resource)
        return ApplyResponse(id=endpoint.name,
                             outputs=self._outputs(endpoint, self._deployments(resource)))

    def _deploy(self, resource: str, spec: Any, key: str, name: str,
                progress: Progress) -> None:
        from azure.ai.ml.entities import CodeConfiguration, ManagedOnlineDeployment

        variant = spec.variants[key]
        model = str(variant.model)
        try:
            _, model_name, version = model.split(":", 2)
        except ValueError:
            raise AzureError(f"endpoint '{resource}': variant '{key}' serves '{model}', which "
                             "is not a model version (azureml:<name>:<version>); an endpoint "
                             "on azure serves an azure model resource's `uri`") from None
        if self.clients.get_or_none("models", lambda: self.ml.models.get(
                model_name, version=version), resource) is None:
            raise AzureError(f"endpoint '{resource}': variant '{key}' serves model '{model}', "
                             "which is not in the workspace's registry")
        options = self.options(spec)
        endpoint = self.endpoint_name(resource)
        code = self.upload_code(resource, "score", {"resource": resource}, spec=spec)
        env = {"MLFORM_MODEL": model, "MLFORM_DEPLOYMENT": name,
               "MLFORM_REQUEST_LOG": self.layout.requests_prefix(endpoint),
               "MLFORM_BLOB_CONTAINER_URL": self.layout.container_url,
               "MLFORM_STORAGE_ACCOUNT": self.cfg.storage_account,
               "MLFORM_LOG_FLUSH_SECONDS": str(self.cfg.log_flush_seconds)}
        key_value = self.clients.storage_key()
        if key_value:  # emulators only: see `storage_key_env` in the docs
            env["MLFORM_STORAGE_KEY"] = key_value
        size = vm_size(self.cfg, "serving", spec.compute.model_dump(), options)
        progress(f"deploying {model} as variant '{key}' ({name}, {size}; no traffic yet)")
        deployment = ManagedOnlineDeployment(
            name=name, endpoint_name=endpoint, model=f"azureml:{model_name}:{version}",
            code_configuration=CodeConfiguration(code=code, scoring_script="score.py"),
            environment=environment(self.cfg, "serving", options), instance_type=size,
            instance_count=int(spec.compute.instances), environment_variables=env,
            tags=self.tags(resource, spec, **{VARIANT_TAG: key}))
        self.clients.wait("deployments",
                          lambda: self.ml.online_deployments.begin_create_or_update(deployment),
                          self.cfg.timeout(self.rtype), what=f"deployment {name}",
                          resource=resource, progress=progress)
        live = self.clients.call("deployments", lambda: self.ml.online_deployments.get(
            name, endpoint), resource=resource)
        state = getattr(live, "provisioning_state", "") or ""
        state = str(getattr(state, "value", state))  # an enum in some SDK releases
        if state and state.lower() != "succeeded":
            raise AzureError(f"deployment {name} of endpoint {endpoint} ended {state}; "
                             "its logs: az ml online-deployment get-logs "
                             f"--endpoint-name {endpoint} --name {name}")

    def _set_traffic(self, resource: str, traffic: dict[str, int],
                     mirror: dict[str, int] | None = None) -> None:
        endpoint = self._get(resource)
        endpoint.traffic = dict(traffic)
        if mirror is not None:
            endpoint.mirror_traffic = dict(mirror)
        self.clients.wait("endpoints",
                          lambda: self.ml.online_endpoints.begin_create_or_update(endpoint),
                          self.cfg.timeout(self.rtype), what=f"traffic of {endpoint.name}",
                          resource=resource)

    def _delete_deployment(self, resource: str, name: str, progress: Progress) -> None:
        progress(f"deleting deployment {name}")
        endpoint = self.endpoint_name(resource)
        try:
            self.clients.wait("deployments",
                              lambda: self.ml.online_deployments.begin_delete(name, endpoint),
                              self.cfg.timeout(self.rtype), what=f"deleting {name}",
                              resource=resource)
        except Exception as exc:
            if not is_not_found(exc):
                raise

    # --- rollout ----------------------------------------------------------------------

    def _roll(self, resource: str, spec: Any, stable: dict[str, int], target: dict[str, int],
              new: list[str], progress: Progress) -> ApplyResponse | None:
        """Step the traffic from `stable` to `target`, judging the new deployments at each
        step; an ApplyResponse when the rollout stopped, None when it completed."""
        rollout, rollback = spec.rollout, spec.rollback
        steps = traffic_steps(rollout)
        wait = seconds(rollout.wait)
        endpoint = self.endpoint_name(resource)
        lines: list[str] = []
        for i, percent in enumerate(steps):
            label = (f"{rollout.strategy} step {percent}%" if rollout.strategy != "all_at_once"
                     else "the all_at_once step (100%)")
            since = time.time()
            self._set_traffic(resource, blend(stable, target, percent))
            progress(f"{label}: {percent}% of requests on the new model", i / len(steps))
            time.sleep(wait)
            window = stats.window(self.clients, endpoint, new, since, resource)
            breach = judge(window, rollback)
            deadline = time.monotonic() + seconds(rollback.evidence_timeout)
            if breach is None and not conclusive(window, rollback):
                progress(f"{label}: waiting up to {rollback.evidence_timeout} for "
                         f"{rollback.min_requests} requests on the new model")
            while breach is None and not conclusive(window, rollback) and \
                    time.monotonic() < deadline:
                time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
                window = stats.window(self.clients, endpoint, new, since, resource)
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
                return self._back(resource, stable, new,
                                  f"rolled back: {seen}; traffic is back on the previous "
                                  f"model: {fix}", lines, progress)
            if breach:
                return self._back(resource, stable, new,
                                  f"rolled back at {label}: {breach}; all traffic is back on "
                                  "the previous model", lines, progress)
        return None

    def _back(self, resource: str, stable: dict[str, int], new: list[str], why: str,
              lines: list[str], progress: Progress) -> ApplyResponse:
        """All traffic to the old deployments; the new ones deleted; the rollout ends."""
        self._set_traffic(resource, stable)
        progress(why, 1.0)
        for name in new:
            self._delete_deployment(resource, name, progress)
        return ApplyResponse(error=f"endpoint '{resource}' {why}", detail="\n".join(lines),
                             failure=Failure.ROLLED_BACK)

    # --- experiment -------------------------------------------------------------------

    def tick(self, req: TickRequest) -> TickResponse | None:
        """The experiment's verdict (`mlform.ml.experiments`, as on local) over every
        request the scoring scripts logged, each counted for the variant whose deployment
        answered it (the endpoint's traffic draws it at random, or the client pinned it
        with the `azureml-model-deployment` header), with the ground truth the endpoint's
        monitors read."""
        from mlform.ml.experiments.logged import verdict

        from .requestlog import read_logs

        spec = self.spec(req.inputs)
        if spec.experiment is None:
            return None
        resource = req.resource.name
        if self._get(resource) is None:
            return TickResponse(error=f"endpoint '{resource}': not found; the experiment "
                                      "cannot be measured (`mlform apply` deploys it again)")
        name = self.endpoint_name(resource)
        live = [k for k, v in spec.variants.items() if not v.shadow]
        variant_of = {n: str((d.tags or {}).get(VARIANT_TAG, n))
                      for n, d in self._deployments(resource).items()}
        variant_of = {n: v for n, v in variant_of.items() if v in live}
        truths = [self.layout.ground_truth_prefix(name)]
        try:
            truths += [self.layout.key_of(uri.rstrip("/") + "/")
                       for uri in _monitor_truths(req, name)]
        except ValueError as e:
            return TickResponse(error=f"endpoint '{resource}': a monitor's ground truth: {e}")
        requests, feedback = read_logs(self.blob(resource), self.layout.requests_prefix(name),
                                       truths)
        found = verdict(spec.experiment.model_dump(), live, requests, feedback, variant_of,
                        now=req.now, serving=self._serving(resource, name, variant_of,
                                                           requests))
        return TickResponse(outputs={"experiment": found}, events=[found["summary"]])

    def _serving(self, resource: str, name: str, variant_of: dict[str, str],
                 requests: list[dict]) -> dict[str, dict]:
        """Per variant, its deployments' answers, errors and p99 latency in Azure Monitor
        since the first logged request; empty where they cannot be read (the verdict does
        not depend on them)."""
        since = min((float(r.get("t") or 0.0) for r in requests), default=None)
        if since is None:
            return {}
        deployments: dict[str, list[str]] = {}
        for deployment, variant in variant_of.items():
            deployments.setdefault(variant, []).append(deployment)
        out: dict[str, dict] = {}
        try:
            for variant, names in deployments.items():
                window = stats.window(self.clients, name, names, since, resource)
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
        deployments = self._deployments(req.resource.name)
        if req.idempotency_key and not deployments:
            # made by an interrupted apply, nothing deployed yet: the next create adopts
            # it and deploys
            return ObserveResponse(exists=False, detail=f"endpoint {endpoint.name} has no "
                                                        "deployment yet: apply deploys")
        return ObserveResponse(exists=True, id=endpoint.name,
                               inputs={"variants": self._live_variants(req.inputs, endpoint,
                                                                       deployments)},
                               outputs=self._outputs(endpoint, deployments) | kept_verdict(
                                   req.outputs, (req.inputs or {}).get("experiment")))

    def _live_variants(self, inputs: dict[str, Any] | None, endpoint: Any,
                       deployments: dict[str, Any]) -> dict[str, Any]:
        """Variants whose live deployment, share or mirroring differs from the spec's
        (defaults included), so a weight written as 3:1 and served as 75:25 is not
        mistaken for drift."""
        if not inputs:
            return {}
        spec = self.spec(inputs)
        wanted = self._wanted(spec)
        served = {k: v for k, v in spec.variants.items() if not v.shadow}
        declared = percents({k: float(v.weight) for k, v in served.items()})
        traffic, mirror = self._traffic(endpoint), self._mirror(endpoint)
        changed: dict[str, Any] = {}
        for key, variant in spec.variants.items():
            name = wanted[key]
            if name not in deployments:
                changed[key] = {"model": "(deployment deleted)"}
                continue
            if variant.shadow:
                if name not in mirror:
                    changed[key] = {"shadow": False}
                continue
            share = int(traffic.get(name, 0))
            if share != declared.get(key, 0):
                changed[key] = {"weight": share}
        for name, deployment in deployments.items():
            key = (deployment.tags or {}).get(VARIANT_TAG, name)
            if name not in wanted.values() and int(traffic.get(name, 0)):
                changed[key] = {"model": str(deployment.model), "weight": int(traffic[name])}
        return changed

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        endpoint = self._get(req.resource.name)
        name = self.endpoint_name(req.resource.name)
        if endpoint is not None:
            progress(f"deleting endpoint {name} and its deployments")
            try:
                self.clients.wait("endpoints",
                                  lambda: self.ml.online_endpoints.begin_delete(name=name),
                                  self.cfg.timeout(self.rtype), what=f"deleting {name}",
                                  resource=req.resource.name)
            except Exception as exc:
                if not is_not_found(exc):
                    raise
        self.blob(req.resource.name).delete_prefix(self.layout.requests_prefix(name))
        return DeleteResponse()


def _shown(split: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}%" for k, v in sorted(split.items()))


def _monitor_truths(req: TickRequest, name: str) -> list[str]:
    """The `ground_truth_uri` of each monitor in the stack that watches this endpoint and
    reads its labels from a place of its own (the default place is read anyway)."""
    found = []
    for inputs in req.stack_inputs.values():
        options = (inputs.get("provider_options") or {}).get("azure") or {}
        uri, watched = options.get("ground_truth_uri"), inputs.get("endpoint")
        if isinstance(uri, str) and isinstance(watched, str) and watched == name:
            found.append(uri)
    return found
