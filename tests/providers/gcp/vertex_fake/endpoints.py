"""Endpoint: CreateEndpoint (LRO, caller `endpointId`), Get, List (label filter), Update
(`trafficSplit`, labels, display name, description via updateMask), Delete (LRO; refused while
models are deployed), DeployModel (LRO; starts the serving container and finishes when its
health route answers) and UndeployModel (LRO; stops it).

Traffic rules are the service's: a split must add up to 100 and name deployed models only;
in DeployModel "0" names the model being deployed and an absent split leaves the endpoint's
split as it was (so a first model deployed without one gets no traffic); a model that still
has traffic can only be undeployed with a split that takes it away, unless it is the last.
"""

from __future__ import annotations

import copy
import re
import threading
from typing import Any

from .errors import ApiError, not_found
from .filters import page, parse_filter
from .frontend import ID, LOC, Router
from .models import Models
from .serving import Replica, start_replica
from .state import EMPTY, V1, Store, now

_ENDPOINT_ID = re.compile(r"^(?:[a-z][a-z0-9-]{0,61}[a-z0-9]|[a-z]|[1-9][0-9]{0,8})$")
UPDATABLE = {"trafficSplit": "trafficSplit", "traffic_split": "trafficSplit", "labels": "labels",
             "displayName": "displayName", "display_name": "displayName",
             "description": "description"}


class Endpoints:
    """Endpoints, their deployed models and the replicas serving them."""

    def __init__(self, store: Store, models: Models, deploy_timeout: float):
        self.store = store
        self.models = models
        self.deploy_timeout = deploy_timeout
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.replicas: dict[str, Replica] = {}  # deployed model id -> its container
        self.busy: set[str] = set()  # endpoints with a deploy/undeploy in flight

    def register(self, r: Router) -> None:
        base = LOC + "/endpoints"
        one = rf"{base}/(?P<id>{ID})"
        r.add("POST", rf"/v1/{base}", "CreateEndpoint", "aiplatform.endpoints.create", self.create)
        r.add("GET", rf"/v1/{base}", "ListEndpoints", "aiplatform.endpoints.list", self.list)
        r.add("GET", rf"/v1/{one}", "GetEndpoint", "aiplatform.endpoints.get", self.get)
        r.add("PATCH", rf"/v1/{one}", "UpdateEndpoint", "aiplatform.endpoints.update", self.update)
        r.add("DELETE", rf"/v1/{one}", "DeleteEndpoint", "aiplatform.endpoints.delete", self.delete)
        r.add("POST", rf"/v1/{one}:deployModel", "DeployModel", "aiplatform.endpoints.deploy",
              self.deploy)
        r.add("POST", rf"/v1/{one}:undeployModel", "UndeployModel", "aiplatform.endpoints.undeploy",
              self.undeploy)

    def endpoint(self, g: dict[str, str]) -> dict[str, Any]:
        """The stored Endpoint the match names (NotFound otherwise); hold the lock to change it."""
        with self.store.lock:
            endpoint = self.endpoints.get(g["id"])
        if endpoint is None:
            raise not_found(f"projects/{g['project']}/locations/{g['location']}/endpoints/{g['id']}")
        return endpoint

    # -- handlers ---------------------------------------------------------------------------

    def create(self, g: dict[str, str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        if not body.get("displayName"):
            raise ApiError("INVALID_ARGUMENT", "Endpoint.display_name must be set.")
        endpoint_id = q.get("endpointId") or self.store.new_id()[-9:].lstrip("0") or "1"
        if not _ENDPOINT_ID.match(endpoint_id):
            raise ApiError("INVALID_ARGUMENT", f"Invalid endpoint_id {endpoint_id!r}: up to 63 of "
                           "[a-z0-9-] starting with a letter, or up to 9 digits without a leading 0.")
        with self.store.lock:
            if endpoint_id in self.endpoints:
                raise ApiError("ALREADY_EXISTS",
                               f"Endpoint {self.store.parent}/endpoints/{endpoint_id} already exists.")
            output_only = ("name", "deployedModels", "trafficSplit", "createTime", "updateTime", "etag")
            endpoint = {k: copy.deepcopy(v) for k, v in body.items() if k not in output_only}
            endpoint.setdefault("labels", {})
            stamp = now()
            endpoint.update(name=f"{self.store.parent}/endpoints/{endpoint_id}", deployedModels=[],
                            trafficSplit={}, createTime=stamp, updateTime=stamp, etag=stamp)
            self.endpoints[endpoint_id] = endpoint
            op = self.store.start_operation(endpoint["name"], "CreateEndpointOperationMetadata")
            self.store.finish_operation(op, {"@type": V1 + "Endpoint", **copy.deepcopy(endpoint)})
        return 200, op

    def get(self, g: dict[str, str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        with self.store.lock:
            return 200, copy.deepcopy(self.endpoint(g))

    def list(self, g: dict[str, str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        keep = parse_filter(q.get("filter", ""))
        with self.store.lock:
            items = [copy.deepcopy(e) for e in self.endpoints.values() if keep(e)]
        return 200, page(items, q, "endpoints")

    def update(self, g: dict[str, str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        mask = [p for p in (q.get("updateMask") or "").split(",") if p]
        if not mask:
            raise ApiError("INVALID_ARGUMENT", "update_mask must be set.")
        with self.store.lock:
            endpoint = self.endpoint(g)
            for path in mask:
                if path not in UPDATABLE:
                    raise ApiError("INVALID_ARGUMENT", f"Field {path!r} cannot be updated (the fake "
                                   f"updates {sorted(set(UPDATABLE.values()))}).")
            for path in mask:
                key = UPDATABLE[path]
                value = copy.deepcopy(body.get(key, {} if key in ("labels", "trafficSplit") else ""))
                if key == "trafficSplit":
                    _check_split(value, {d["id"] for d in endpoint["deployedModels"]})
                    value = {k: int(v) for k, v in value.items() if int(v)}
                endpoint[key] = value
            endpoint["updateTime"] = endpoint["etag"] = now()
            return 200, copy.deepcopy(endpoint)

    def delete(self, g: dict[str, str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        with self.store.lock:
            endpoint = self.endpoint(g)
            if endpoint["deployedModels"] or g["id"] in self.busy:
                ids = [d["id"] for d in endpoint["deployedModels"]]
                raise ApiError("FAILED_PRECONDITION",
                               f"Endpoint {endpoint['name']} has deployed models {ids}; undeploy "
                               "them first.")
            del self.endpoints[g["id"]]
            op = self.store.start_operation(endpoint["name"], "DeleteOperationMetadata")
            self.store.finish_operation(op, {"@type": EMPTY})
        return 200, op

    def deploy(self, g: dict[str, str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        wanted = copy.deepcopy(body.get("deployedModel") or {})
        if not wanted.get("model"):
            raise ApiError("INVALID_ARGUMENT", "DeployedModel.model must be set.")
        resources = wanted.get("dedicatedResources") or {}
        if not (resources.get("machineSpec") or {}).get("machineType"):
            raise ApiError("INVALID_ARGUMENT", "Model with a custom container needs "
                           "dedicated_resources.machine_spec.machine_type.")
        if int(resources.get("minReplicaCount") or 0) < 1:
            raise ApiError("INVALID_ARGUMENT", "dedicated_resources.min_replica_count must be at least 1.")
        split = body.get("trafficSplit") or {}
        with self.store.lock:
            endpoint = self.endpoint(g)
            model = self.models.resolve(wanted["model"])
            if split:
                _check_split(split, {d["id"] for d in endpoint["deployedModels"]} | {"0"})
            if g["id"] in self.busy:
                raise ApiError("FAILED_PRECONDITION", f"Endpoint {endpoint['name']} has a deploy or "
                               "undeploy operation in progress; wait for it to finish.")
            self.busy.add(g["id"])
            deployed_id = self.store.new_id()
            op = self.store.start_operation(endpoint["name"], "DeployModelOperationMetadata")
            base = model["name"]
            wanted.update(id=deployed_id, model=f"{base}@{model['versionId']}" if "@" in wanted["model"]
                          else base, modelVersionId=model["versionId"], createTime=now())
            wanted.setdefault("displayName", model["displayName"])
            resources.setdefault("maxReplicaCount", resources["minReplicaCount"])
            wanted["dedicatedResources"] = resources
        threading.Thread(target=self._deploy, args=(g["id"], op, model, wanted, split),
                         name=f"deploy-{deployed_id}", daemon=True).start()
        return 200, copy.deepcopy(op)

    def _deploy(self, endpoint_id: str, op: dict[str, Any], model: dict[str, Any],
                deployed: dict[str, Any], split: dict[str, Any]) -> None:
        directory = self.store.work_dir / "endpoints" / endpoint_id / deployed["id"]
        try:
            replica = start_replica(self.store, model, endpoint_id, deployed["id"], directory,
                                    self.deploy_timeout)
        except ApiError as e:
            with self.store.lock:
                self.busy.discard(endpoint_id)
                self.store.finish_operation(op, error=e)
            return
        with self.store.lock:
            self.busy.discard(endpoint_id)
            endpoint = self.endpoints.get(endpoint_id)
            if endpoint is None:  # deleted meanwhile (cannot happen while busy, but be safe)
                replica.stop()
                self.store.finish_operation(op, error=not_found(endpoint_id))
                return
            self.replicas[deployed["id"]] = replica
            endpoint["deployedModels"].append(deployed)
            if split:
                endpoint["trafficSplit"] = {(deployed["id"] if k == "0" else k): int(v)
                                            for k, v in split.items() if int(v)}
            endpoint["updateTime"] = endpoint["etag"] = now()
            model["deployedModels"].append({"endpoint": endpoint["name"], "deployedModelId": deployed["id"]})
            self.store.finish_operation(op, {"@type": V1 + "DeployModelResponse",
                                             "deployedModel": copy.deepcopy(deployed)})

    def undeploy(self, g: dict[str, str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        deployed_id = str(body.get("deployedModelId") or "")
        split = body.get("trafficSplit") or {}
        with self.store.lock:
            endpoint = self.endpoint(g)
            ids = [d["id"] for d in endpoint["deployedModels"]]
            if deployed_id not in ids:
                raise not_found(f"{endpoint['name']}/deployedModels/{deployed_id}")
            remaining = set(ids) - {deployed_id}
            if split:
                _check_split(split, remaining)
            elif remaining and endpoint["trafficSplit"].get(deployed_id, 0):
                raise ApiError("FAILED_PRECONDITION",
                               f"DeployedModel {deployed_id} still has "
                               f"{endpoint['trafficSplit'][deployed_id]}% of the traffic of "
                               f"{endpoint['name']}; set a traffic split without it first.")
            if g["id"] in self.busy:
                raise ApiError("FAILED_PRECONDITION", f"Endpoint {endpoint['name']} has a deploy or "
                               "undeploy operation in progress; wait for it to finish.")
            deployed = next(d for d in endpoint["deployedModels"] if d["id"] == deployed_id)
            endpoint["deployedModels"] = [d for d in endpoint["deployedModels"] if d["id"] != deployed_id]
            endpoint["trafficSplit"] = ({k: int(v) for k, v in split.items() if int(v)} if split else
                                        {k: v for k, v in endpoint["trafficSplit"].items()
                                         if k != deployed_id})
            if not remaining:
                endpoint["trafficSplit"] = {}
            endpoint["updateTime"] = endpoint["etag"] = now()
            try:
                model = self.models.resolve(
                    f"{deployed['model'].split('@')[0]}@{deployed['modelVersionId']}")
                model["deployedModels"] = [d for d in model["deployedModels"]
                                           if d["deployedModelId"] != deployed_id]
            except ApiError:
                pass
            replica = self.replicas.pop(deployed_id, None)
            op = self.store.start_operation(endpoint["name"], "UndeployModelOperationMetadata")
        if replica is not None:
            replica.stop()
        self.store.finish_operation(op, {"@type": V1 + "UndeployModelResponse"})
        return 200, self.store.get_operation(op["name"])

    def stop(self) -> None:
        for replica in list(self.replicas.values()):
            replica.stop()


def _check_split(split: dict[str, Any], deployed: set[str]) -> None:
    unknown = sorted(set(split) - deployed)
    if unknown:
        raise ApiError("INVALID_ARGUMENT", f"Traffic split names models that are not deployed: {unknown}.")
    total = sum(int(v) for v in split.values())
    if split and total != 100:
        raise ApiError("INVALID_ARGUMENT", f"Traffic split percentages must add up to 100, got {total}.")
