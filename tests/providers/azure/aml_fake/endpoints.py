"""Managed online endpoints and their deployments, with the service's long-running operation
shape: PUT and DELETE answer 201/202 with an `Azure-AsyncOperation` URL to poll (and
`retry-after-ms`, which the SDK's poller honours, so tests do not wait its default 5s), while the
resource shows `provisioningState` Creating/Updating/Deleting until it settles on Succeeded or
Failed.

The rules checked are the service's: traffic names existing deployments and sums to 100 (or is
empty); at most one mirror deployment, at most 50%, and never one that takes live traffic; a
deployment with live or mirror traffic cannot be deleted; deleting an endpoint deletes its
deployments. Creating (or changing the model, code, environment or variables of) a deployment
starts a scoring host (serving.py); a host whose `init()` crashes fails the deployment with its
error, and on an update the previous host keeps serving.
"""

from __future__ import annotations

import copy
import re
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .assets import Assets
from .blob import Storage
from .errors import AzureError, bad_request, not_found
from .frontend import WS, Request, Response, Router
from .serving import Host, HostFailed, start_host
from .state import PROVIDER, Store, system_data

AUTH_MODES = {"key": "Key", "amltoken": "AMLToken", "aadtoken": "AADToken"}
NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9]$")
# Changing any of these replaces the deployment's containers (a new scoring host).
HOST_FIELDS = ("model", "codeConfiguration", "environmentId", "environmentVariables")


@dataclass
class Deployment:
    resource: dict[str, Any]
    host: Host | None = None
    generation: int = 0


@dataclass
class Endpoint:
    resource: dict[str, Any]
    keys: tuple[str, str]
    deployments: dict[str, Deployment] = field(default_factory=dict)


class OnlineEndpoints:
    def __init__(self, store: Store, assets: Assets, storage: Storage, provision_delay: float,
                 deploy_timeout: float):
        self.store = store
        self.assets = assets
        self.storage = storage
        self.provision_delay = provision_delay
        self.deploy_timeout = deploy_timeout
        self.endpoints: dict[str, Endpoint] = {}
        self._threads: list[threading.Thread] = []
        assets.in_use = self._model_in_use

    def register(self, router: Router) -> None:
        act = f"{PROVIDER}/workspaces/onlineEndpoints"
        ep = WS + r"/onlineEndpoints/(?P<endpoint>[^/]+)"
        dep = ep + r"/deployments/(?P<deployment>[^/]+)"
        router.add("GET", WS + r"/onlineEndpoints", "ListOnlineEndpoints", f"{act}/read", self._list)
        router.add("GET", ep, "GetOnlineEndpoint", f"{act}/read", self._get)
        router.add("PUT", ep, "CreateOrUpdateOnlineEndpoint", f"{act}/write", self._put)
        router.add("PATCH", ep, "UpdateOnlineEndpoint", f"{act}/write", self._patch)
        router.add("DELETE", ep, "DeleteOnlineEndpoint", f"{act}/delete", self._delete)
        router.add("POST", ep + r"/listKeys", "ListOnlineEndpointKeys", f"{act}/listKeys/action",
                   self._list_keys)
        router.add("POST", ep + r"/token", "GetOnlineEndpointToken", f"{act}/token/action",
                   self._token)
        router.add("GET", ep + r"/deployments", "ListOnlineDeployments",
                   f"{act}/deployments/read", self._list_deployments)
        router.add("GET", dep, "GetOnlineDeployment", f"{act}/deployments/read",
                   self._get_deployment)
        router.add("PUT", dep, "CreateOrUpdateOnlineDeployment", f"{act}/deployments/write",
                   self._put_deployment)
        router.add("DELETE", dep, "DeleteOnlineDeployment", f"{act}/deployments/delete",
                   self._delete_deployment)
        router.add("POST", dep + r"/getLogs", "GetOnlineDeploymentLogs",
                   f"{act}/deployments/getLogs/action", self._get_logs)

    # -- helpers ------------------------------------------------------------------------------

    def endpoint(self, name: str) -> Endpoint:
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            raise not_found("Online endpoint", name)
        return endpoint

    def _deployment(self, endpoint_name: str, name: str) -> Deployment:
        deployment = self.endpoint(endpoint_name).deployments.get(name)
        if deployment is None:
            raise not_found("Online deployment", f"{endpoint_name}/{name}")
        return deployment

    def _async(self, status: int, body: Any, settle: Any) -> Response:
        """Start an operation that `settle()` completes in the background (it returns the
        error that fails the operation, or None) and answer with its URL to poll."""
        url, record = self.store.start_operation()

        def run() -> None:
            error = None
            try:
                error = settle()
            except AzureError as e:
                error = e
            except Exception as e:  # a bug in the fake: fail the operation, say so
                error = AzureError(500, "InternalServerError", f"fake internal error: {e!r}")
            self.store.finish_operation(record, error)

        thread = threading.Thread(target=run, daemon=True, name="aml-online-op")
        self._threads.append(thread)
        thread.start()
        location = url.replace("mfeOperationsStatus", "mfeOperationResults")
        return Response(status, body, {"Azure-AsyncOperation": url, "Location": location,
                                       "retry-after-ms": "200"})

    def _pause(self) -> None:
        """The time an operation stays in progress: `provision_delay`, and as long as
        `hold_provisioning` holds."""
        time.sleep(self.provision_delay)
        self.store.provisioning_released.wait(timeout=600)

    def _validate_traffic(self, endpoint: Endpoint | None, traffic: dict[str, Any],
                          mirror: dict[str, Any]) -> None:
        names = set(endpoint.deployments) if endpoint else set()
        for label, split in (("traffic", traffic), ("mirror traffic", mirror)):
            for name, value in split.items():
                if name not in names:
                    raise bad_request(f"The {label} refers to deployment {name}, which does not "
                                      "exist on this endpoint.")
                if not isinstance(value, int) or value < 0 or value > 100:
                    raise bad_request(f"The {label} of {name} must be an integer from 0 to 100.")
        if traffic and sum(traffic.values()) not in (0, 100):
            raise bad_request(f"Traffic values need to sum to 100; they sum to {sum(traffic.values())}.")
        live_mirror = [n for n, v in mirror.items() if v > 0]
        if len(live_mirror) > 1:
            raise bad_request("Only one deployment can receive mirror traffic.")
        for name in live_mirror:
            if mirror[name] > 50:
                raise bad_request("Mirror traffic cannot exceed 50%.")
            if traffic.get(name, 0) > 0:
                raise bad_request(f"Deployment {name} cannot receive both live and mirror traffic.")

    def _settle_endpoint(self, name: str, state: str) -> None:
        self._pause()
        with self.store.lock:
            endpoint = self.endpoints.get(name)
            if endpoint is not None and endpoint.resource["properties"]["provisioningState"] == state:
                endpoint.resource["properties"]["provisioningState"] = "Succeeded"

    def _model_in_use(self, kind: str, name: str, version: str) -> str | None:
        if kind != "models":
            return None
        wanted = f"{self.store.workspace_id}/models/{name}/versions/{version}".lower()
        with self.store.lock:
            for endpoint_name, endpoint in self.endpoints.items():
                for dep_name, dep in endpoint.deployments.items():
                    if str(dep.resource["properties"].get("model", "")).lower() == wanted:
                        return f"online deployment {endpoint_name}/{dep_name}"
        return None

    # -- endpoints ----------------------------------------------------------------------------

    def _list(self, request: Request) -> Response:
        with self.store.lock:
            return Response(200, {"value": [copy.deepcopy(e.resource) for e in self.endpoints.values()]})

    def _get(self, request: Request) -> Response:
        with self.store.lock:
            return Response(200, copy.deepcopy(self.endpoint(request.groups["endpoint"]).resource))

    def _put(self, request: Request) -> Response:
        body = request.json()
        name = request.groups["endpoint"]
        props = body.get("properties")
        if not isinstance(props, dict):
            raise bad_request("The request body must carry 'properties'.")
        if not NAME.match(name):
            raise bad_request(f"Endpoint name {name!r} is invalid: 3-32 characters, letters, "
                              "digits and '-', starting with a letter.")
        auth = AUTH_MODES.get(str(props.get("authMode", "Key")).lower())
        if auth is None:
            raise bad_request(f"authMode {props.get('authMode')!r} is not one of Key, AMLToken, AADToken.")
        traffic = {k: v for k, v in (props.get("traffic") or {}).items()}
        mirror = {k: v for k, v in (props.get("mirrorTraffic") or {}).items()}
        with self.store.lock:
            endpoint = self.endpoints.get(name)
            if endpoint is not None and endpoint.resource["properties"]["provisioningState"] == "Deleting":
                raise AzureError(409, "Conflict", f"Endpoint {name} is being deleted.")
            self._validate_traffic(endpoint, traffic, mirror)
            state = "Updating" if endpoint else "Creating"
            previous = endpoint.resource if endpoint else None
            resource = {
                "id": f"{self.store.workspace_id}/onlineEndpoints/{name}", "name": name,
                "type": f"{PROVIDER}/workspaces/onlineEndpoints",
                "location": body.get("location") or self.store.location,
                "tags": body.get("tags") or {}, "kind": body.get("kind") or "Managed",
                "identity": body.get("identity") or {"type": "SystemAssigned",
                                                     "principalId": "00000000-0000-0000-0000-0000000000ee",
                                                     "tenantId": "00000000-0000-0000-0000-0000000000cc"},
                "systemData": system_data(previous["systemData"] if previous else None),
                "properties": {
                    "authMode": auth, "description": props.get("description"),
                    "properties": props.get("properties") or {},
                    "traffic": traffic, "mirrorTraffic": mirror,
                    "publicNetworkAccess": props.get("publicNetworkAccess") or "Enabled",
                    "scoringUri": f"{self.store.url}/endpoints/{name}/score",
                    "swaggerUri": f"{self.store.url}/endpoints/{name}/swagger.json",
                    "provisioningState": state}}
            if endpoint is None:
                endpoint = Endpoint(resource, (secrets.token_urlsafe(24), secrets.token_urlsafe(24)))
                self.endpoints[name] = endpoint
            else:
                endpoint.resource = resource
            reply = copy.deepcopy(resource)
        return self._async(201 if state == "Creating" else 200, reply,
                           lambda: self._settle_endpoint(name, state))

    def _patch(self, request: Request) -> Response:
        """A partial update: tags, traffic, mirrorTraffic, description (what PATCH carries)."""
        body = request.json()
        name = request.groups["endpoint"]
        with self.store.lock:
            endpoint = self.endpoint(name)
            props = body.get("properties") or {}
            current = endpoint.resource["properties"]
            traffic = props.get("traffic", current["traffic"]) or {}
            mirror = props.get("mirrorTraffic", current["mirrorTraffic"]) or {}
            self._validate_traffic(endpoint, traffic, mirror)
            current.update({"traffic": traffic, "mirrorTraffic": mirror,
                            "provisioningState": "Updating"})
            if "description" in props:
                current["description"] = props["description"]
            if body.get("tags") is not None:
                endpoint.resource["tags"] = body["tags"]
            endpoint.resource["systemData"] = system_data(endpoint.resource["systemData"])
            reply = copy.deepcopy(endpoint.resource)
        return self._async(202, reply, lambda: self._settle_endpoint(name, "Updating"))

    def _delete(self, request: Request) -> Response:
        name = request.groups["endpoint"]
        with self.store.lock:
            endpoint = self.endpoints.get(name)
            if endpoint is None:
                return Response(204)
            endpoint.resource["properties"]["provisioningState"] = "Deleting"

        def settle() -> None:
            self._pause()
            with self.store.lock:
                gone = self.endpoints.pop(name, None)
            if gone is not None:
                for deployment in gone.deployments.values():
                    if deployment.host is not None:
                        deployment.host.stop()

        return self._async(202, None, settle)

    def _list_keys(self, request: Request) -> Response:
        with self.store.lock:
            endpoint = self.endpoint(request.groups["endpoint"])
            if endpoint.resource["properties"]["authMode"] != "Key":
                raise bad_request("Keys are only available for endpoints with authMode Key.")
            return Response(200, {"primaryKey": endpoint.keys[0], "secondaryKey": endpoint.keys[1]})

    def _token(self, request: Request) -> Response:
        with self.store.lock:
            endpoint = self.endpoint(request.groups["endpoint"])
            if endpoint.resource["properties"]["authMode"] != "AMLToken":
                raise bad_request("Tokens are only available for endpoints with authMode AMLToken.")
        expiry = int(time.time()) + 3600
        return Response(200, {"accessToken": f"aml-{secrets.token_urlsafe(16)}", "tokenType": "Bearer",
                              "expiryTimeUtc": expiry, "refreshAfterTimeUtc": expiry - 1800})

    # -- deployments --------------------------------------------------------------------------

    def _list_deployments(self, request: Request) -> Response:
        with self.store.lock:
            endpoint = self.endpoint(request.groups["endpoint"])
            return Response(200, {"value": [copy.deepcopy(d.resource)
                                            for d in endpoint.deployments.values()]})

    def _get_deployment(self, request: Request) -> Response:
        with self.store.lock:
            return Response(200, copy.deepcopy(
                self._deployment(request.groups["endpoint"], request.groups["deployment"]).resource))

    def _put_deployment(self, request: Request) -> Response:
        body = request.json()
        endpoint_name, name = request.groups["endpoint"], request.groups["deployment"]
        props = body.get("properties")
        if not isinstance(props, dict):
            raise bad_request("The request body must carry 'properties'.")
        if not NAME.match(name):
            raise bad_request(f"Deployment name {name!r} is invalid: 3-32 characters, letters, "
                              "digits and '-', starting with a letter.")
        if str(props.get("endpointComputeType", "Managed")) != "Managed":
            raise bad_request("The fake serves managed online deployments only.")
        code = props.get("codeConfiguration") or {}
        if not code.get("codeId") or not code.get("scoringScript"):
            raise bad_request("The fake runs deployments with a code configuration (code asset and "
                              "scoring script); no-code (MLflow) deployments are not modelled.")
        if not props.get("model"):
            raise bad_request("The deployment must name a model.")
        self.assets.resolve(props["model"], "models")
        self.assets.resolve(code["codeId"], "codes")
        if props.get("environmentId"):
            self.assets.resolve(props["environmentId"], "environments")
        sku = body.get("sku") or {"name": "Default", "capacity": 1}
        if int(sku.get("capacity") or 0) < 1:
            raise bad_request("instance_count must be at least 1.")
        with self.store.lock:
            endpoint = self.endpoint(endpoint_name)
            if endpoint.resource["properties"]["provisioningState"] == "Deleting":
                raise AzureError(409, "Conflict", f"Endpoint {endpoint_name} is being deleted.")
            existing = endpoint.deployments.get(name)
            if existing is not None and existing.resource["properties"]["provisioningState"] in (
                    "Creating", "Updating", "Deleting"):
                raise AzureError(409, "Conflict", f"Deployment {endpoint_name}/{name} has an operation "
                                 "in progress; wait for it to finish.")
            state = "Updating" if existing else "Creating"
            previous = existing.resource if existing else None
            stored = {**props,
                      "endpointComputeType": "Managed",
                      "scaleSettings": props.get("scaleSettings") or {"scaleType": "Default"},
                      "requestSettings": {"requestTimeout": "PT5S", "maxConcurrentRequestsPerInstance": 1,
                                          **(props.get("requestSettings") or {})},
                      "livenessProbe": props.get("livenessProbe") or _probe(),
                      "readinessProbe": props.get("readinessProbe") or _probe(),
                      "appInsightsEnabled": bool(props.get("appInsightsEnabled")),
                      "egressPublicNetworkAccess": props.get("egressPublicNetworkAccess") or "Enabled",
                      "properties": props.get("properties") or {},
                      "environmentVariables": props.get("environmentVariables") or {},
                      "provisioningState": state}
            resource = {
                "id": f"{endpoint.resource['id']}/deployments/{name}", "name": name,
                "type": f"{PROVIDER}/workspaces/onlineEndpoints/deployments",
                "location": body.get("location") or self.store.location, "kind": "Managed",
                "tags": body.get("tags") or {}, "sku": {"name": sku.get("name") or "Default",
                                                       "tier": sku.get("tier") or "Standard",
                                                       "capacity": int(sku["capacity"])},
                "systemData": system_data(previous["systemData"] if previous else None),
                "properties": stored}
            restart = existing is None or any(
                _comparable(existing.resource["properties"].get(k)) != _comparable(stored.get(k))
                for k in HOST_FIELDS)
            if existing is None:
                existing = Deployment(resource)
                endpoint.deployments[name] = existing
            else:
                existing.resource = resource
            existing.generation += 1
            generation = existing.generation
            reply = copy.deepcopy(resource)
        return self._async(201 if state == "Creating" else 200, reply,
                           lambda: self._provision(endpoint_name, name, generation, restart))

    def _provision(self, endpoint_name: str, name: str, generation: int,
                   restart: bool) -> AzureError | None:
        self._pause()
        with self.store.lock:
            deployment = self.endpoints[endpoint_name].deployments[name]
            props = copy.deepcopy(deployment.resource["properties"])
        host = None
        error = None
        if restart:
            try:
                host = self._start_host(endpoint_name, name, generation, props)
            except HostFailed as e:
                error = AzureError(400, "ResourceNotReady",
                                   f"User container has crashed or terminated: {e}")
            except AzureError as e:
                error = AzureError(400, "BadArgument", f"Deployment {name} failed: {e.message}")
        with self.store.lock:
            endpoint = self.endpoints.get(endpoint_name)
            current = endpoint.deployments.get(name) if endpoint else None
            if current is None or current.generation != generation:
                if host is not None:  # deleted or replaced meanwhile
                    host.stop()
                return error
            old = current.host if host is not None else None
            if host is not None:
                current.host = host
            current.resource["properties"]["provisioningState"] = "Failed" if error else "Succeeded"
        if old is not None:
            old.stop()
        return error

    def _start_host(self, endpoint_name: str, name: str, generation: int,
                    props: dict[str, Any]) -> Host:
        directory = self.store.work_dir / "endpoints" / endpoint_name / name / str(generation)
        if directory.exists():
            shutil.rmtree(directory)
        code = self.assets.resolve(props["codeConfiguration"]["codeId"], "codes")
        code_dir = self.storage.download(code["properties"]["codeUri"], directory / "code")
        model = self.assets.resolve(props["model"], "models")
        model_name = model["id"].split("/")[-3]
        model_dir = directory / "azureml-models" / model_name / model["name"]
        uri = model["properties"]["modelUri"]
        # As on the service, a folder model sits under its own folder name in AZUREML_MODEL_DIR.
        leaf = uri.rstrip("/").rsplit("/", 1)[-1]
        target = model_dir / leaf if uri.endswith("/") else model_dir
        self.storage.download(uri, target)
        env = {k: str(v) for k, v in (props.get("environmentVariables") or {}).items()}
        return start_host(directory / "host", code_dir, props["codeConfiguration"]["scoringScript"],
                          model_dir, env, self.deploy_timeout)

    def _delete_deployment(self, request: Request) -> Response:
        endpoint_name, name = request.groups["endpoint"], request.groups["deployment"]
        with self.store.lock:
            endpoint = self.endpoints.get(endpoint_name)
            if endpoint is None or name not in endpoint.deployments:
                return Response(204)
            props = endpoint.resource["properties"]
            if props["traffic"].get(name, 0) > 0 or props["mirrorTraffic"].get(name, 0) > 0:
                raise bad_request(f"Deployment {name} has live or mirror traffic on endpoint "
                                  f"{endpoint_name}; set its traffic to 0 before deleting it.")
            endpoint.deployments[name].resource["properties"]["provisioningState"] = "Deleting"

        def settle() -> None:
            self._pause()
            with self.store.lock:
                ep = self.endpoints.get(endpoint_name)
                gone = ep.deployments.pop(name, None) if ep else None
            if gone is not None and gone.host is not None:
                gone.host.stop()

        return self._async(202, None, settle)

    def _get_logs(self, request: Request) -> Response:
        body = request.json()
        with self.store.lock:
            deployment = self._deployment(request.groups["endpoint"], request.groups["deployment"])
            host = deployment.host
        tail = body.get("tail")
        directory = (self.store.work_dir / "endpoints" / request.groups["endpoint"]
                     / request.groups["deployment"])
        if host is not None:
            return Response(200, {"content": host.logs(int(tail) if tail else None)})
        # no host serving (e.g. init crashed): the latest attempt's log
        attempts = sorted(directory.glob("*/host"), key=lambda p: int(p.parent.name))
        text = ""
        if attempts:
            text = "".join((attempts[-1] / f).read_text(errors="replace")
                           for f in ("stdout.log", "stderr.log") if (attempts[-1] / f).exists())
            if tail:
                text = "\n".join(text.splitlines()[-int(tail):])
        return Response(200, {"content": text})

    def stop(self) -> None:
        with self.store.lock:
            hosts = [d.host for e in self.endpoints.values() for d in e.deployments.values() if d.host]
        for host in hosts:
            host.stop()


def _probe() -> dict[str, Any]:
    return {"failureThreshold": 30, "successThreshold": 1, "timeout": "PT2S", "period": "PT10S",
            "initialDelay": "PT10S"}


def _comparable(value: Any) -> Any:
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items() if v not in (None, {}, "")}
    return value
