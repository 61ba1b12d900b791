"""Ray Serve's REST API on the cluster's dashboard: read every application, and change
some of them declaratively.

Serve takes one config for ALL the applications of a cluster (`PUT
/api/serve/applications/`): one not in it is deleted. So a change reads what is
deployed now (each application's `deployed_app_config`), replaces or removes only the
applications named, and puts the whole back; an application whose config is the same
is left running as it is. The read and the put are made under a lock, so endpoints
applied on parallel threads do not undo each other; two mlform processes changing
Serve on one cluster at the same instant can (see docs/providers/ray.md).

Applications deployed with Serve's Python API (`serve.run`) have no
`deployed_app_config`; Serve refuses a declarative config beside them, and so does
this, in words.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from ..errors import RayError, unreachable

PATH = "/api/serve/applications/"
FAILED = {"DEPLOY_FAILED", "UNHEALTHY"}

_CHANGE_LOCK = threading.Lock()
"""One Serve change at a time from this process (verbs run on parallel threads)."""


class ServeApi:
    def __init__(self, address: str, host: str, port: int, timeout: float = 30.0):
        self.address = address
        self.http_options = {"host": host, "port": port}
        self._client = httpx.Client(base_url=address, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def details(self) -> dict[str, Any]:
        """Serve's instance details: `applications` by name (each with `status`,
        `message`, `route_prefix`, `deployed_app_config`, `deployments`) and the
        `http_options` the proxy runs with."""
        try:
            answer = self._client.get(PATH)
        except httpx.HTTPError as exc:
            raise unreachable(self.address, exc) from None
        if answer.status_code != 200:
            raise RayError(f"Ray Serve's API at {self.address}{PATH} answered "
                           f"{answer.status_code}: {answer.text[:300]}")
        return answer.json()

    def applications(self) -> dict[str, dict[str, Any]]:
        return self.details().get("applications") or {}

    def change(self, changes: dict[str, dict[str, Any] | None]) -> None:
        """Deploy each application of `changes` with its config, remove each one mapped
        to None; leave every other application as it is."""
        with _CHANGE_LOCK:
            configs = {}
            for name, app in self.applications().items():
                config = app.get("deployed_app_config")
                if config is None:
                    if app.get("status") == "DELETING":
                        continue
                    raise RayError(
                        f"Serve application '{name}' on {self.address} was deployed with "
                        "Serve's Python API (serve.run), and Serve takes no declarative "
                        "config beside it: deploy it through the REST API or a config file "
                        "(`serve deploy`), or use a cluster of its own for mlform")
                configs[name] = config
            for name, config in changes.items():
                if config is None:
                    configs.pop(name, None)
                else:
                    configs[name] = config
            body = {"http_options": self.http_options, "applications": list(configs.values())}
            try:
                answer = self._client.put(PATH, json=body)
            except httpx.HTTPError as exc:
                raise unreachable(self.address, exc) from None
        if answer.status_code != 200:
            raise RayError(f"Ray Serve refused the applications' config "
                           f"({answer.status_code}): {answer.text[:500]}")

    def wait(self, names: dict[str, bool], timeout: float, progress: Callable[[str], None],
             poll: float = 0.5) -> dict[str, dict[str, Any]]:
        """Wait until each application of `names` is RUNNING (True) or gone (False);
        RayError with Serve's message when one fails to deploy or time runs out."""
        deadline = time.monotonic() + timeout
        said = ""
        while True:
            apps = self.applications()
            pending = []
            for name, wanted in names.items():
                app = apps.get(name)
                if not wanted:
                    if app is not None:
                        pending.append(f"{name} {app['status'].lower()}")
                    continue
                status = app["status"] if app else "NOT_STARTED"
                if status in FAILED:
                    raise RayError(f"Serve application '{name}' is {status}: "
                                   f"{_message(app)}")
                if status != "RUNNING":
                    pending.append(f"{name} {status.lower()}")
            if not pending:
                return apps
            if time.monotonic() > deadline:
                raise RayError(f"Serve applications not ready within {timeout:g}s: "
                               + ", ".join(pending))
            line = "waiting for Ray Serve: " + ", ".join(pending)
            if line != said:
                progress(line)
                said = line
            time.sleep(poll)


def _message(app: dict[str, Any] | None) -> str:
    text = ((app or {}).get("message") or "no message").strip()
    for deployment in ((app or {}).get("deployments") or {}).values():
        if deployment.get("message"):
            text += f"; deployment {deployment['name']}: {deployment['message'].strip()}"
    return text[-1500:]


def owned_applications(stack: str, cfg: Any) -> list[tuple[str, str]]:
    """("endpoint", id) of the Serve applications this stack owns (see `apps.owned`)."""
    from .apps import owned

    api = ServeApi(cfg.address, cfg.serve_host, cfg.serve_port)
    try:
        return owned(stack, api.applications())
    finally:
        api.close()
