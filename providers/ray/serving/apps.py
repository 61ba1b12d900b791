"""The Serve applications an endpoint is made of, as declarative configs.

    mlform-<stack>-<endpoint>                    the router: the endpoint's ingress, at
                                                 route prefix /<stack>/<endpoint>
    mlform-<stack>-<endpoint>--<variant>-<key>   one per variant model: its deployment,
                                                 not exposed over HTTP

Each variant is an application of its own, not a deployment inside the router's,
because Serve rebuilds every deployment of an application (new replicas for all)
whenever the application's arguments change: adding a variant for a rollout would
restart the variants that serve and the router that counts their requests. Apart, a
rollout adds an application, steps the router's weights (its `user_config`, applied
to the running router in place) and removes the old application, and nothing that
serves is restarted. `<key>` is a digest of what needs new replicas (model, GPUs,
CPUs, memory); a replica count is changed on the running application.

Every application's `args` carry `mlform_stack` and `mlform_endpoint`: ownership, for
`list_owned`, beside the name prefix.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

ROUTER_IMPORT = "mlform.providers.ray.serving.app:router_app"
VARIANT_IMPORT = "mlform.providers.ray.serving.app:variant_app"
ROUTER_DEPLOYMENT = "router"
VARIANT_DEPLOYMENT = "variant"
ROUTER_MAX_ONGOING = 1000
"""Requests one router replica takes at once: it only awaits the variants."""


def router_app(stack: str, endpoint: str) -> str:
    return f"mlform-{stack}-{endpoint}"


def route_prefix(stack: str, endpoint: str) -> str:
    return f"/{stack}/{endpoint}"


@dataclass(frozen=True)
class VariantApp:
    """One variant's application, as the spec asks for it."""

    variant: str
    app: str
    model: str
    path: str
    """The model artifact's directory on the shared storage."""
    weight: int
    shadow: bool
    replicas: int
    gpus: int
    cpus: int | None
    memory_gb: float | None

    def entry(self) -> dict[str, Any]:
        """The variant in the router's routing table."""
        return {"app": self.app, "model": self.model, "weight": self.weight,
                "shadow": self.shadow}

    def config(self, stack: str, endpoint: str) -> dict[str, Any]:
        actor: dict[str, Any] = {"num_cpus": self.cpus or 0, "num_gpus": self.gpus}
        if self.memory_gb:
            actor["memory"] = int(self.memory_gb * 2**30)
        return {
            "name": self.app, "route_prefix": None, "import_path": VARIANT_IMPORT,
            "args": {"mlform_stack": stack, "mlform_endpoint": endpoint,
                     "variant": self.variant, "model": self.model, "path": self.path,
                     "gpus": self.gpus, "threads": self.cpus or 1},
            "deployments": [{"name": VARIANT_DEPLOYMENT, "num_replicas": self.replicas,
                             "ray_actor_options": actor}]}


def variant_app(router: str, variant: str, model: str, path: str, weight: int, shadow: bool,
                compute: Any) -> VariantApp:
    """`compute`: the endpoint's portable compute (instances, gpus, cpus, memory_gb)."""
    needs = {"model": model, "path": path, "gpus": int(compute.gpus),
             "cpus": compute.cpus, "memory_gb": compute.memory_gb}
    key = hashlib.sha256(json.dumps(needs, sort_keys=True).encode()).hexdigest()[:8]
    return VariantApp(variant, f"{router}--{variant}-{key}", model, path, int(weight),
                      bool(shadow), int(compute.instances), int(compute.gpus),
                      compute.cpus, compute.memory_gb)


def routing(stable: dict[str, dict[str, Any]], canary: dict[str, dict[str, Any]] | None = None,
            canary_percent: float = 0.0) -> dict[str, Any]:
    """A routing table (see `split`)."""
    return {"stable": stable, "canary": canary or None,
            "canary_percent": float(canary_percent) if canary else 0.0}


def table_version(table: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(table, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RouterSettings:
    """What the router does besides splitting: the request log, the body bound and the
    experiment whose key assigns requests to variants."""

    sample_rate: float
    max_rows: int
    max_bytes: int
    max_body_bytes: int
    experiment: dict[str, str] | None = None
    """{"name", "key"} of the endpoint's experiment: the name assignment hashes, and the
    request body's field holding the key; None without one."""


def router_config(stack: str, endpoint: str, directory: str, table: dict[str, Any],
                  settings: RouterSettings) -> dict[str, Any]:
    name = router_app(stack, endpoint)
    user_config = {"routing": table, "version": table_version(table),
                   "sample_rate": settings.sample_rate, "max_rows": settings.max_rows,
                   "max_bytes": settings.max_bytes, "max_body_bytes": settings.max_body_bytes,
                   "experiment": settings.experiment}
    return {
        "name": name, "route_prefix": route_prefix(stack, endpoint),
        "import_path": ROUTER_IMPORT,
        "args": {"mlform_stack": stack, "mlform_endpoint": endpoint, "endpoint": name,
                 "directory": directory},
        "deployments": [{"name": ROUTER_DEPLOYMENT, "num_replicas": 1,
                         "max_ongoing_requests": ROUTER_MAX_ONGOING,
                         "ray_actor_options": {"num_cpus": 0},
                         "user_config": user_config}]}


def live_table(app: dict[str, Any] | None) -> dict[str, Any] | None:
    """The routing table a deployed router application was given, or None."""
    config = (app or {}).get("deployed_app_config") or {}
    for deployment in config.get("deployments") or []:
        if deployment.get("name") == ROUTER_DEPLOYMENT:
            return (deployment.get("user_config") or {}).get("routing")
    return None


def live_user_config(app: dict[str, Any] | None) -> dict[str, Any]:
    config = (app or {}).get("deployed_app_config") or {}
    for deployment in config.get("deployments") or []:
        if deployment.get("name") == ROUTER_DEPLOYMENT:
            return dict(deployment.get("user_config") or {})
    return {}


def table_apps(table: dict[str, Any] | None) -> set[str]:
    """The variant applications a routing table sends requests (or copies) to."""
    if not table:
        return set()
    sets = [table.get("stable") or {}, table.get("canary") or {}]
    return {v["app"] for variants in sets for v in variants.values()}


def owner(app: dict[str, Any]) -> tuple[str | None, str | None]:
    """(stack, endpoint) an application's args name, or (None, None)."""
    args = ((app or {}).get("deployed_app_config") or {}).get("args") or {}
    return args.get("mlform_stack"), args.get("mlform_endpoint")


def replicas(app: dict[str, Any] | None) -> int | None:
    """The replica count Serve is asked to keep for a variant application."""
    deployment = ((app or {}).get("deployments") or {}).get(VARIANT_DEPLOYMENT) or {}
    if deployment.get("target_num_replicas") is not None:
        return int(deployment["target_num_replicas"])
    config = deployment.get("deployment_config") or {}
    return int(config["num_replicas"]) if config.get("num_replicas") is not None else None


def owned(stack: str, applications: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """("endpoint", id) of this stack's router applications, and of its variant
    applications no router of the stack routes to (left by an interrupted rollout)."""
    prefix = f"mlform-{stack}-"
    mine = {name: app for name, app in applications.items()
            if name.startswith(prefix) and owner(app)[0] == stack}
    routed: set[str] = set()
    found = []
    for name, app in sorted(mine.items()):
        if (app.get("deployed_app_config") or {}).get("import_path") == ROUTER_IMPORT:
            found.append(("endpoint", name))
            routed |= table_apps(live_table(app))
    found += [("endpoint", f"{name} (a variant no endpoint routes to)")
              for name, app in sorted(mine.items())
              if (app.get("deployed_app_config") or {}).get("import_path") == VARIANT_IMPORT
              and name not in routed]
    return found
