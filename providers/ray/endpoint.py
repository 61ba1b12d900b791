"""The `endpoint` resource on Ray Serve: a router application and one application per
variant model (`serving.apps`), deployed declaratively through Serve's REST API.

create deploys them and waits until the router answers /health; update changes
settings in place, or moves traffic to new variants step by step (`serving.rollout`),
removing the old variants' applications only once the new ones serve every request;
observe reads the applications back (a deleted router is `deleted_outside`, a changed
replica count or weight is drift); delete removes them. The id is the router's
application name. Request and feedback logs are kept in the endpoint's folder on the
shared storage, `<storage>/<stack>/endpoints/<id>/`, in the local provider's format;
tick measures an experiment's verdict from them (`mlform.ml.experiments.measure`), and
update and observe keep the recorded verdict of the experiment the endpoint still runs.
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mlform.engine.provider import (
    ApplyResponse,
    CheckRequest,
    CheckResponse,
    CreateRequest,
    DeleteRequest,
    DeleteResponse,
    DiffRequest,
    DiffResponse,
    Failure,
    ObserveRequest,
    ObserveResponse,
    Problem,
    Progress,
    TickRequest,
    TickResponse,
    UpdateRequest,
    default_diff,
)
from mlform.engine.spec.models import Rollout, Variant
from mlform.engine.values import contains_unknown
from mlform.ml.experiments.measure import kept_verdict
from mlform.ml.serving.judging import traffic_steps
from pydantic import ValidationError

from .errors import RayError
from .handler import RayHandler
from .paths import SCHEME
from .serving import apps
from .serving.apps import RouterSettings, VariantApp
from .serving.serve_api import ServeApi
from .serving.split import traffic

TOKEN_FILE = "control.token"
VARIANT_DEFAULTS = {name: f.default for name, f in Variant.model_fields.items()
                    if name != "model"}


class EndpointHandler(RayHandler):
    rtype = "endpoint"

    # --- plan -----------------------------------------------------------------------

    def check(self, req: CheckRequest) -> CheckResponse:
        from mlform.engine.input_checks import plain_model_problems

        problems = plain_model_problems(req.inputs.get("variants"),
                                        lambda model: model.startswith(SCHEME))
        rollout = req.inputs.get("rollout")
        if isinstance(rollout, dict) and not contains_unknown(rollout):
            try:
                parsed = Rollout.model_validate(rollout)
            except ValidationError:
                parsed = None  # the stack's schema says what is wrong with it
            try:
                if parsed is not None:
                    traffic_steps(parsed)
            except ValueError as e:
                problems.append(Problem(("rollout",), str(e)))
        return CheckResponse(problems=problems)

    def diff(self, req: DiffRequest) -> DiffResponse:
        base = default_diff(req)
        planned: dict[str, Any] = {"name": apps.router_app(self.ctx.stack, req.resource.name)}
        prior = req.prior_outputs or {}
        if "url" in prior:
            planned["url"] = prior["url"]
        if not base.changes and "traffic" in prior:
            planned["traffic"] = prior["traffic"]
        return DiffResponse(changes=base.changes, planned_outputs=planned)

    # --- read -----------------------------------------------------------------------

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        name = apps.router_app(self.ctx.stack, req.resource.name)
        serve = self._serve()
        try:
            details = serve.details()
        finally:
            serve.close()
        applications = details.get("applications") or {}
        router = applications.get(name)
        if router is None or router.get("status") == "DELETING":
            return ObserveResponse(exists=False, detail=f"Serve application '{name}' not found")
        table = apps.live_table(router) or {"stable": {}}
        faults = []
        if router["status"] != "RUNNING":
            faults.append(f"Serve application '{name}' is {router['status']}: "
                          f"{(router.get('message') or '').strip()[:300]}")
        for app in sorted(apps.table_apps(table)):
            found = applications.get(app)
            if found is None:
                faults.append(f"its variant application '{app}' is gone: the variant's "
                              "requests fail")
            elif found["status"] != "RUNNING":
                faults.append(f"its variant application '{app}' is {found['status']}")
        notes = list(faults)
        if table.get("canary"):
            notes.append(f"a rollout was interrupted with {table['canary_percent']:g}% of "
                         "requests on new variants; the next apply finishes or repeats it")
        healthy = not faults
        return ObserveResponse(
            exists=True, id=name, healthy=healthy, detail="; ".join(notes),
            inputs=self._live_inputs(req.inputs or {}, table, applications),
            outputs=self._outputs(req.resource.name, details, table)
            | kept_verdict(req.outputs, (req.inputs or {}).get("experiment")))

    def _live_inputs(self, recorded: dict[str, Any], table: dict[str, Any],
                     applications: dict[str, Any]) -> dict[str, Any]:
        """The recorded inputs with what the router really routes to in place of the
        variants, and the variants' live replica count in place of compute.instances;
        defaults the spec left out stay out, so only real differences show as drift."""
        recorded_variants = recorded.get("variants") or {}
        variants = {}
        for vname, entry in (table.get("stable") or {}).items():
            written = recorded_variants.get(vname) or {}
            live = {"weight": entry["weight"], "shadow": bool(entry.get("shadow"))}
            variants[vname] = {"model": entry["model"]} | {
                k: v for k, v in live.items() if k in written or v != VARIANT_DEFAULTS[k]}
        out = {**recorded, "variants": variants}
        counts = {apps.replicas(applications.get(e["app"]))
                  for e in (table.get("stable") or {}).values()} - {None}
        compute = dict(recorded.get("compute") or {})
        if len(counts) == 1:
            (count,) = counts
            if count != compute.get("instances", 1):
                out["compute"] = {**compute, "instances": count}
        return out

    # --- write ----------------------------------------------------------------------

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        return self._apply(req.resource.name, req.inputs, progress)

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        applied = self._apply(req.resource.name, req.inputs, progress)
        kept = kept_verdict(req.prior_outputs, req.inputs.get("experiment"))
        if kept and applied.outputs:
            # a promoted winner stays promoted: later plans read the verdict
            applied = replace(applied, outputs={**applied.outputs, **kept})
        return applied

    def tick(self, req: TickRequest) -> TickResponse | None:
        """An experiment's verdict over the router's logged requests and feedback, with
        what the router measured per variant since it started."""
        from mlform.ml.experiments.measure import measure

        spec = self.spec(req.inputs)
        if spec.experiment is None:
            return None
        name = apps.router_app(self.ctx.stack, req.resource.name)
        verdict = measure(spec.experiment.model_dump(), spec.variants, self._directory(name),
                          now=req.now, serving=self._serving_stats(name, req.outputs or {}))
        return TickResponse(outputs={"experiment": verdict}, events=[verdict["summary"]])

    def _serving_stats(self, name: str, outputs: dict[str, Any]) -> dict[str, dict]:
        """Requests, errors and p99 latency per variant since the router started (what
        its rollouts judge); empty when it does not answer."""
        import httpx
        from mlform.ml.experiments.measure import serving_stats

        token_path = self._directory(name) / TOKEN_FILE
        url = outputs.get("url")
        if not url or not token_path.is_file():
            return {}
        try:
            answer = httpx.get(f"{url}/-/stats", params={"since": 0.0}, timeout=5.0,
                               headers={"authorization": f"Bearer "
                                                         f"{token_path.read_text().strip()}"})
            answer.raise_for_status()
            return serving_stats(answer.json()["tracks"])
        except (httpx.HTTPError, ValueError, KeyError):
            return {}

    def _apply(self, resource: str, inputs: dict[str, Any], progress: Progress) -> ApplyResponse:
        spec = self.spec(inputs)
        stack = self.ctx.stack
        name = apps.router_app(stack, resource)
        try:
            traffic_steps(spec.rollout)
            wanted = self._variants(resource, name, spec)
        except ValueError as e:
            return ApplyResponse(error=f"endpoint '{resource}': {e}")
        directory = self._directory(name)
        token = _token(directory)
        experiment = {"name": spec.experiment.name, "key": spec.experiment.key} \
            if spec.experiment else None
        settings = RouterSettings(float(spec.logging.sample_rate), int(spec.logging.max_rows),
                                  int(spec.logging.max_bytes), int(spec.limits.max_body_bytes),
                                  experiment)
        desired = apps.routing({v.variant: v.entry() for v in wanted.values()})
        serve = self._serve()
        timeout = self.cluster.cfg.timeout("endpoint")
        try:
            applications = serve.applications()
            router = applications.get(name)
            live = apps.live_table(router) if router and router["status"] != "DELETING" \
                else None
            variant_configs: dict[str, dict[str, Any] | None] = {
                v.app: v.config(stack, resource) for v in wanted.values()}

            def route(table: dict[str, Any]) -> str:
                serve.change({name: apps.router_config(stack, resource, str(directory), table,
                                                       settings)})
                serve.wait({name: True}, timeout, progress)
                return apps.table_version(table)

            if live is None or not live.get("stable") or live["stable"] == desired["stable"] \
                    or not _serving(applications, live):
                # nothing (or nothing that answers) is served, or the same variants are:
                # no traffic to move carefully
                progress(f"deploying Serve applications {name} and "
                         f"{', '.join(sorted(variant_configs))}")
                stale = _stale(applications, stack, resource, set(variant_configs))
                serve.change({**variant_configs, name: apps.router_config(
                    stack, resource, str(directory), desired, settings)})
                serve.wait({**dict.fromkeys(variant_configs, True), name: True}, timeout,
                           progress)
                router_client = self._router(serve, name, resource, token, route)
                try:
                    router_client.wait_for(apps.table_version(desired))
                finally:
                    router_client.close()
                if stale:
                    serve.change(dict.fromkeys(stale))
                return ApplyResponse(id=name, outputs=self._outputs(resource, serve.details(),
                                                                    desired))
            return self._roll(resource, name, spec, live, desired, variant_configs, route,
                              token, serve, timeout, progress)
        except RayError as e:
            return ApplyResponse(id=name, error=f"endpoint '{resource}': {e}")
        finally:
            serve.close()

    def _roll(self, resource: str, name: str, spec: Any, live: dict[str, Any],
              desired: dict[str, Any], variant_configs: dict[str, Any], route: Any,
              token: str, serve: ServeApi, timeout: float, progress: Progress) -> ApplyResponse:
        from .serving.rollout import roll_out

        old = live["stable"]
        resume = live.get("canary_percent") if live.get("canary") == desired["stable"] else None
        added = {app: c for app, c in variant_configs.items()
                 if app not in apps.table_apps({"stable": old})}
        change = _describe_change(old, desired["stable"])
        progress(f"moving traffic by {spec.rollout.strategy}: {change}")
        if added:
            # beside the old ones, with no share of the requests yet
            serve.change(added)
            serve.wait(dict.fromkeys(added, True), timeout, progress)
        router = self._router(serve, name, resource, token, route)
        try:
            outcome = roll_out(router, old, desired["stable"], spec.rollout, spec.rollback,
                               progress, resume_at=resume)
        finally:
            router.close()
        served = outcome.served
        keep = apps.table_apps(served)
        applications = serve.applications()
        stale = _stale(applications, self.ctx.stack, resource, keep)
        if stale:
            # only now: every request goes to the applications kept
            serve.change(dict.fromkeys(stale))
        return ApplyResponse(id=name, outputs=self._outputs(resource, serve.details(), served),
                             error=outcome.error, detail=outcome.detail,
                             failure=Failure.ROLLED_BACK if outcome.rolled_back else None)

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        name = apps.router_app(self.ctx.stack, req.resource.name)
        serve = self._serve()
        try:
            applications = serve.applications()
            gone = [name, *_stale(applications, self.ctx.stack, req.resource.name, set())]
            present = [a for a in gone if a in applications]
            if present:
                progress(f"removing Serve applications {', '.join(present)}")
                serve.change(dict.fromkeys(present))
                serve.wait(dict.fromkeys(present, False), self.cluster.cfg.timeout("endpoint"),
                           progress)
        except RayError as e:
            return DeleteResponse(error=f"endpoint '{req.resource.name}': {e}")
        finally:
            serve.close()
        # its logs go with it, as a cloud endpoint's do
        shutil.rmtree(self._directory(name), ignore_errors=True)
        return DeleteResponse()

    # --- helpers --------------------------------------------------------------------

    def _serve(self) -> ServeApi:
        cfg = self.cluster.cfg
        return ServeApi(cfg.address, cfg.serve_host, cfg.serve_port)

    def _directory(self, app: str) -> Path:
        return self.paths.root / "endpoints" / app

    def _variants(self, resource: str, router: str, spec: Any) -> dict[str, VariantApp]:
        """Each variant's application; ValueError naming a model that cannot be found."""
        wanted = {}
        for vname, variant in spec.variants.items():
            model = str(variant.model)
            try:
                directory = self.paths.resolve(model) / "artifact"
            except ValueError as e:
                raise ValueError(f"variant '{vname}': {e}; the ray provider serves "
                                 "'ray://models/<model>/<version>' uris (a model's `uri`)") \
                    from None
            if not directory.is_dir():
                raise ValueError(f"variant '{vname}': model '{model}' has no artifact at "
                                 f"{directory}")
            wanted[vname] = apps.variant_app(router, vname, model, str(directory),
                                             variant.weight, variant.shadow, spec.compute)
        if not any(v.weight > 0 and not v.shadow for v in wanted.values()):
            raise ValueError("an endpoint needs at least one variant that is not a shadow "
                             "and has a weight above 0")
        return wanted

    def _url(self, details: dict[str, Any], resource: str) -> str:
        """Serve's proxy on the head node (the dashboard's host), at the router's prefix."""
        port = (details.get("http_options") or {}).get("port") or self.cluster.cfg.serve_port
        host = urlsplit(self.cluster.cfg.address).hostname or "127.0.0.1"
        return f"http://{host}:{port}{apps.route_prefix(self.ctx.stack, resource)}"

    def _router(self, serve: ServeApi, name: str, resource: str, token: str, route: Any) -> Any:
        from .serving.rollout import RouterClient

        return RouterClient(self._url(serve.details(), resource), token, route)

    def _outputs(self, resource: str, details: dict[str, Any],
                 table: dict[str, Any]) -> dict[str, Any]:
        name = apps.router_app(self.ctx.stack, resource)
        return {"name": name, "url": self._url(details, resource), "traffic": traffic(table),
                "applications": sorted(apps.table_apps(table)),
                "request_log": str(self._directory(name))}


def _serving(applications: dict[str, Any], table: dict[str, Any]) -> bool:
    """Whether the router and every variant application it routes to are running."""
    return all((applications.get(app) or {}).get("status") == "RUNNING"
               for app in apps.table_apps(table))


def _stale(applications: dict[str, Any], stack: str, resource: str, keep: set[str]) -> list[str]:
    """This endpoint's variant applications not in `keep`."""
    return sorted(name for name, app in applications.items()
                  if apps.owner(app) == (stack, resource) and name not in keep
                  and name != apps.router_app(stack, resource)
                  and app.get("status") != "DELETING")


def _token(directory: Path) -> str:
    """The router's statistics token, made once per endpoint folder (mode 0600)."""
    path = directory / TOKEN_FILE
    directory.mkdir(parents=True, exist_ok=True)
    if not path.is_file():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(16))
    return path.read_text().strip()


def _describe_change(old: dict[str, Any], new: dict[str, Any]) -> str:
    words = []
    for vname in sorted(set(old) | set(new)):
        if vname not in new:
            words.append(f"'{vname}' removed")
        elif vname not in old:
            words.append(f"'{vname}' added ({new[vname]['model']})")
        elif old[vname]["model"] != new[vname]["model"]:
            words.append(f"'{vname}' {old[vname]['model']} -> {new[vname]['model']}")
        elif old[vname] != new[vname]:
            words.append(f"'{vname}' weight {old[vname]['weight']} -> {new[vname]['weight']}")
    return ", ".join(words)
