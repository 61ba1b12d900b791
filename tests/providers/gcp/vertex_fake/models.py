"""Model Registry: UploadModel (LRO; caller `modelId`, `parentModel` for new versions),
GetModel (`models/ID` = the default version, `models/ID@N`, `models/ID@alias`), ListModels
(default versions, label filter), ListModelVersions, MergeVersionAliases, UpdateModel (labels,
display name, descriptions), DeleteModel (LRO) and DeleteModelVersion (LRO).

Alias rules are the service's: the first version gets `default`; aliases are unique within a
model, so giving one to a version takes it from the version that had it; `default` cannot be
removed, only moved; a deployed model or version cannot be deleted, nor the default version
while others exist.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from .errors import ApiError, not_found
from .filters import page, parse_filter
from .frontend import LOC, Router
from .state import EMPTY, V1, Store, now

_ALIAS = re.compile(r"^[a-z][a-zA-Z0-9-]{0,126}[a-z0-9-]$")
_MODEL_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
UPDATABLE = {"labels": "labels", "display_name": "displayName", "displayName": "displayName",
             "description": "description", "version_description": "versionDescription",
             "versionDescription": "versionDescription"}


class Models:
    """Models and their versions, each version a Model JSON as GetModel returns it."""

    def __init__(self, store: Store):
        self.store = store
        self.models: dict[str, dict[str, dict[str, Any]]] = {}  # id -> version id -> Model
        self.next_version: dict[str, int] = {}

    def register(self, r: Router) -> None:
        base = LOC + "/models"
        one = rf"{base}/(?P<id>[^/:@]+)(?:@(?P<version>[^/:]+))?"
        r.add("POST", rf"/v1/{base}:upload", "UploadModel", "aiplatform.models.upload", self.upload)
        r.add("GET", rf"/v1/{base}", "ListModels", "aiplatform.models.list", self.list)
        r.add("GET", rf"/v1/{one}", "GetModel", "aiplatform.models.get", self.get)
        r.add("GET", rf"/v1/{one}:listVersions", "ListModelVersions", "aiplatform.models.list",
              self.list_versions)
        r.add("POST", rf"/v1/{one}:mergeVersionAliases", "MergeVersionAliases",
              "aiplatform.models.update", self.merge_aliases)
        r.add("PATCH", rf"/v1/{one}", "UpdateModel", "aiplatform.models.update", self.update)
        r.add("DELETE", rf"/v1/{one}", "DeleteModel", "aiplatform.models.delete", self.delete)
        r.add("DELETE", rf"/v1/{one}:deleteVersion", "DeleteModelVersion",
              "aiplatform.models.delete", self.delete_version)

    # -- lookups (also used by endpoints and batch jobs) -----------------------------------------

    def resolve(self, name: str) -> dict[str, Any]:
        """The Model version `name` names (`.../models/ID`, `...@N`, `...@alias`); NotFound
        otherwise. Returns the stored dict (callers hold the lock to change it)."""
        m = re.search(r"/models/([^/@]+)(?:@([^/]+))?$", name)
        if m is None:
            raise ApiError("INVALID_ARGUMENT", f"Invalid model name: {name!r}.")
        return self._version(m[1], m[2] or "default", name)

    def _version(self, model_id: str, ref: str, name: str) -> dict[str, Any]:
        with self.store.lock:
            versions = self.models.get(model_id)
            if versions is not None:
                if ref in versions:
                    return versions[ref]
                for version in versions.values():
                    if ref in version["versionAliases"]:
                        return version
        raise not_found(name)

    def _of(self, g: dict[str, str]) -> dict[str, Any]:
        name = f"projects/{g['project']}/locations/{g['location']}/models/{g['id']}"
        return self._version(g["id"], g.get("version") or "default",
                             name + (f"@{g['version']}" if g.get("version") else ""))

    # -- handlers ---------------------------------------------------------------------------

    def upload(self, g: dict[str, str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        model = copy.deepcopy(body.get("model") or {})
        if not model.get("displayName"):
            raise ApiError("INVALID_ARGUMENT", "Model.display_name must be set.")
        if not (model.get("containerSpec") or {}).get("imageUri"):
            raise ApiError("INVALID_ARGUMENT", "Model.container_spec.image_uri must be set.")
        aliases = list(model.get("versionAliases") or [])
        for alias in aliases:
            _check_alias(alias)
        with self.store.lock:
            parent_model = body.get("parentModel")
            if parent_model:
                model_id = parent_model.rstrip("/").rsplit("/", 1)[-1]
                if model_id not in self.models:
                    raise not_found(parent_model)
            else:
                model_id = body.get("modelId") or self.store.new_id()
                if not _MODEL_ID.match(model_id):
                    raise ApiError("INVALID_ARGUMENT", f"Invalid model_id {model_id!r}: it must "
                                   "match [a-z0-9][a-z0-9-]{0,62}.")
                if model_id in self.models:
                    raise ApiError("ALREADY_EXISTS", f"Model {self.store.parent}/models/{model_id} "
                                   "already exists; to add a version, set parent_model.")
                self.models[model_id] = {}
                self.next_version[model_id] = 1
                if "default" not in aliases:
                    aliases.insert(0, "default")
            versions = self.models[model_id]
            version_id = str(self.next_version[model_id])
            self.next_version[model_id] += 1
            for other in versions.values():
                other["versionAliases"] = [a for a in other["versionAliases"] if a not in aliases]
            stamp = now()
            model.update(name=f"{self.store.parent}/models/{model_id}", versionId=version_id,
                         versionAliases=aliases, createTime=stamp, updateTime=stamp,
                         versionCreateTime=stamp, versionUpdateTime=stamp, deployedModels=[],
                         supportedDeploymentResourcesTypes=[1], etag=f"v{version_id}-{stamp}")
            model.setdefault("labels", {})
            versions[version_id] = model
            op = self.store.start_operation(model["name"], "UploadModelOperationMetadata")
            self.store.finish_operation(op, {"@type": V1 + "UploadModelResponse",
                                             "model": model["name"], "modelVersionId": version_id})
        return 200, op

    def get(self, g: dict[str, str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        with self.store.lock:
            return 200, copy.deepcopy(self._of(g))

    def list(self, g: dict[str, str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        keep = parse_filter(q.get("filter", ""))
        with self.store.lock:
            defaults = [self._version(i, "default", i) for i in self.models]
            items = [copy.deepcopy(m) for m in defaults if keep(m)]
        return 200, page(items, q, "models")

    def list_versions(self, g: dict[str, str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        keep = parse_filter(q.get("filter", ""))
        with self.store.lock:
            self._of(g)
            items = [copy.deepcopy(m) for m in self.models[g["id"]].values() if keep(m)]
        return 200, page(items, q, "models")

    def merge_aliases(self, g: dict[str, str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        if not g.get("version"):
            raise ApiError("INVALID_ARGUMENT", "The model name must include a version (models/ID@N).")
        changes = list(body.get("versionAliases") or [])
        with self.store.lock:
            version = self._of(g)
            add = [a for a in changes if not a.startswith("-")]
            remove = [a[1:] for a in changes if a.startswith("-")]
            for alias in add + remove:
                _check_alias(alias)
            if "default" in remove:
                raise ApiError("INVALID_ARGUMENT", "The default alias cannot be removed; move it "
                               "to another version instead.")
            for other in self.models[g["id"]].values():
                if other is not version:
                    other["versionAliases"] = [a for a in other["versionAliases"] if a not in add]
            kept = [a for a in version["versionAliases"] if a not in remove]
            version["versionAliases"] = kept + [a for a in add if a not in kept]
            version["versionUpdateTime"] = now()
            return 200, copy.deepcopy(version)

    def update(self, g: dict[str, str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        mask = [p for p in (q.get("updateMask") or "").split(",") if p]
        if not mask:
            raise ApiError("INVALID_ARGUMENT", "update_mask must be set.")
        with self.store.lock:
            version = self._of(g)
            for path in mask:
                if path not in UPDATABLE:
                    raise ApiError("INVALID_ARGUMENT", f"Field {path!r} cannot be updated (the fake "
                                   f"updates {sorted(set(UPDATABLE))}).")
                key = UPDATABLE[path]
                version[key] = copy.deepcopy(body.get(key, {} if key == "labels" else ""))
            version["updateTime"] = version["versionUpdateTime"] = now()
            return 200, copy.deepcopy(version)

    def delete(self, g: dict[str, str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        with self.store.lock:
            version = self._of(g)
            versions = self.models[g["id"]]
            deployed = [d for v in versions.values() for d in v["deployedModels"]]
            if deployed:
                raise ApiError("FAILED_PRECONDITION",
                               f"Model {version['name']} cannot be deleted because it is deployed "
                               f"to endpoints: {sorted({d['endpoint'] for d in deployed})}; "
                               "undeploy it first.")
            del self.models[g["id"]]
            op = self.store.start_operation(version["name"], "DeleteOperationMetadata")
            self.store.finish_operation(op, {"@type": EMPTY})
        return 200, op

    def delete_version(self, g: dict[str, str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        if not g.get("version"):
            raise ApiError("INVALID_ARGUMENT", "The model name must include a version (models/ID@N).")
        with self.store.lock:
            version = self._of(g)
            versions = self.models[g["id"]]
            if version["deployedModels"]:
                raise ApiError("FAILED_PRECONDITION",
                               f"Model version {version['name']}@{version['versionId']} cannot be "
                               "deleted because it is deployed; undeploy it first.")
            if "default" in version["versionAliases"] and len(versions) > 1:
                raise ApiError("FAILED_PRECONDITION",
                               f"Model version {version['name']}@{version['versionId']} has the "
                               "default alias; move it to another version first.")
            del versions[version["versionId"]]
            if not versions:
                del self.models[g["id"]]
            op = self.store.start_operation(version["name"], "DeleteOperationMetadata")
            self.store.finish_operation(op, {"@type": EMPTY})
        return 200, op


def _check_alias(alias: str) -> None:
    if not _ALIAS.match(alias) or alias.isdigit():
        raise ApiError("INVALID_ARGUMENT", f"Invalid version alias {alias!r}: it must match "
                       "[a-z][a-zA-Z0-9-]{0,126}[a-z-0-9].")
