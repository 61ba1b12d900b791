"""Versioned assets: code, data, environments and models, each a container (`{kind}/{name}`,
with `latestVersion` and `nextVersion`, which the SDK reads to resolve `@latest` and to pick an
auto-version) holding versions (`{kind}/{name}/versions/{version}`).

The fake stores what the caller PUT (the REST properties) plus the defaults the service fills
in; it never uploads anything (the SDK uploads local paths itself, to the datastore's storage
account, before the PUT). Curated environments (`AzureML-*`) answer for any version, as the
service's built-in ones do. A model version a deployment uses cannot be deleted (see
`in_use`); the README says why.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from .errors import AzureError, bad_request, not_found
from .frontend import WS, Request, Response, Router
from .state import PROVIDER, Store, now, system_data

KINDS = {"codes": "Code", "data": "Data", "environments": "Environment", "models": "Model"}
DEFAULTS: dict[str, dict[str, Any]] = {
    "codes": {"isAnonymous": False, "isArchived": False},
    "data": {"isAnonymous": False, "isArchived": False, "dataType": "uri_folder"},
    "environments": {"isAnonymous": False, "isArchived": False, "environmentType": "UserCreated",
                     "osType": "Linux", "autoRebuild": "Disabled"},
    "models": {"isAnonymous": False, "isArchived": False, "flavors": {}, "modelType": "custom_model",
               "stage": "Development", "properties": {}},
}
CURATED_PREFIX = "AzureML-"
CURATED_VERSION = "1"


def _sort_key(version: str) -> tuple[int, int | str]:
    return (0, int(version)) if version.isdigit() else (1, version)


class Assets:
    """All four kinds. `in_use(kind, name, version)` names a resource that holds a version (a
    deployment holding a model), or None."""

    def __init__(self, store: Store):
        self.store = store
        self.items: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
        self.in_use: Callable[[str, str, str], str | None] = lambda kind, name, version: None

    def register(self, router: Router) -> None:
        for kind, label in KINDS.items():
            base = WS + f"/{kind}"
            act = f"{PROVIDER}/workspaces/{kind}"
            one = base + r"/(?P<name>[^/]+)"
            version = one + r"/versions/(?P<version>[^/]+)"
            router.add("GET", base, f"List{label}Containers", f"{act}/read",
                       self._bind(self._list_containers, kind))
            router.add("GET", one, f"Get{label}Container", f"{act}/read",
                       self._bind(self._get_container, kind))
            router.add("PUT", one, f"CreateOrUpdate{label}Container", f"{act}/write",
                       self._bind(self._put_container, kind))
            router.add("DELETE", one, f"Delete{label}Container", f"{act}/delete",
                       self._bind(self._delete_container, kind))
            router.add("GET", one + r"/versions", f"List{label}Versions", f"{act}/versions/read",
                       self._bind(self._list_versions, kind))
            router.add("GET", version, f"Get{label}Version", f"{act}/versions/read",
                       self._bind(self._get_version, kind))
            router.add("PUT", version, f"CreateOrUpdate{label}Version", f"{act}/versions/write",
                       self._bind(self._put_version, kind))
            router.add("DELETE", version, f"Delete{label}Version", f"{act}/versions/delete",
                       self._bind(self._delete_version, kind))

    @staticmethod
    def _bind(fn: Callable[[str, Request], Response], kind: str) -> Callable[[Request], Response]:
        return lambda request: fn(kind, request)

    # -- helpers ----------------------------------------------------------------------------

    def _id(self, kind: str, name: str, version: str | None = None) -> str:
        base = f"{self.store.workspace_id}/{kind}/{name}"
        return base if version is None else f"{base}/versions/{version}"

    def _entry(self, kind: str, name: str, create: bool = False) -> dict[str, Any] | None:
        entry = self.items[kind].get(name)
        if entry is None and kind == "environments" and name.startswith(CURATED_PREFIX):
            entry = self._curated(name)
        if entry is None and create:
            entry = {"container": {"id": self._id(kind, name), "name": name,
                                   "type": f"{PROVIDER}/workspaces/{kind}",
                                   "systemData": system_data(),
                                   "properties": {"isArchived": False, "tags": {}, "properties": {},
                                                  "description": None,
                                                  "provisioningState": "Succeeded"}},
                     "versions": {}}
            self.items[kind][name] = entry
        return entry

    def _curated(self, name: str) -> dict[str, Any]:
        """A built-in environment, as the service keeps one (environmentType Curated)."""
        entry = {"container": {"id": self._id("environments", name), "name": name,
                               "type": f"{PROVIDER}/workspaces/environments",
                               "systemData": system_data(),
                               "properties": {"isArchived": False, "tags": {}, "properties": {},
                                              "provisioningState": "Succeeded"}},
                 "versions": {}}
        self.items["environments"][name] = entry
        self._store_version("environments", name, CURATED_VERSION, {
            "environmentType": "Curated", "image": f"mcr.microsoft.com/azureml/curated/{name.lower()}:1",
            "description": f"Curated environment {name} (the fake runs jobs with the test's python)."})
        return entry

    def _store_version(self, kind: str, name: str, version: str,
                       properties: dict[str, Any]) -> dict[str, Any]:
        entry = self._entry(kind, name, create=True)
        assert entry is not None
        previous = entry["versions"].get(version)
        props = {**DEFAULTS[kind], "tags": {}, "properties": {}, "description": None,
                 **{k: v for k, v in properties.items() if v is not None},
                 "provisioningState": "Succeeded"}
        resource = {"id": self._id(kind, name, version), "name": version,
                    "type": f"{PROVIDER}/workspaces/{kind}/versions",
                    "systemData": system_data(previous["systemData"] if previous else None),
                    "properties": props}
        entry["versions"][version] = resource
        self._refresh_container(entry)
        return resource

    def _refresh_container(self, entry: dict[str, Any]) -> None:
        versions = sorted(entry["versions"], key=_sort_key)
        props = entry["container"]["properties"]
        props["latestVersion"] = (max(entry["versions"].values(),
                                      key=lambda v: v["systemData"]["createdAt"])["name"]
                                  if versions else None)
        numeric = [int(v) for v in versions if v.isdigit()]
        props["nextVersion"] = str(max(numeric) + 1) if numeric else "1"
        entry["container"]["systemData"]["lastModifiedAt"] = now()

    # -- public helpers for the other resources ----------------------------------------------

    def get(self, kind: str, name: str, version: str) -> dict[str, Any]:
        """A version's resource (a copy); raises 404 as the service does."""
        with self.store.lock:
            entry = self._entry(kind, name)
            if entry is None:
                raise not_found(KINDS[kind], name)
            if version == "latest" or (kind == "environments" and name.startswith(CURATED_PREFIX)
                                       and version not in entry["versions"]):
                version = entry["container"]["properties"]["latestVersion"] or ""
            resource = entry["versions"].get(version)
            if resource is None:
                raise not_found(f"{KINDS[kind]} version", f"{name}:{version}")
            return copy.deepcopy(resource)

    def resolve(self, reference: str, kind: str) -> dict[str, Any]:
        """The version an ARM id or `azureml:name:version` / `name@latest` reference names."""
        ref = reference.removeprefix("azureml:")
        if "/versions/" in ref:
            parts = ref.rstrip("/").split("/")
            return self.get(kind, parts[-3], parts[-1])
        if "@" in ref:
            name, _, label = ref.partition("@")
            return self.get(kind, name, label)
        name, _, version = ref.partition(":")
        return self.get(kind, name, version or "latest")

    # -- handlers ---------------------------------------------------------------------------

    def _list_containers(self, kind: str, request: Request) -> Response:
        with self.store.lock:
            return Response(200, {"value": [copy.deepcopy(e["container"])
                                            for e in self.items[kind].values()]})

    def _get_container(self, kind: str, request: Request) -> Response:
        with self.store.lock:
            entry = self._entry(kind, request.groups["name"])
            if entry is None:
                raise not_found(KINDS[kind], request.groups["name"])
            return Response(200, copy.deepcopy(entry["container"]))

    def _put_container(self, kind: str, request: Request) -> Response:
        body = request.json()
        with self.store.lock:
            existed = request.groups["name"] in self.items[kind]
            entry = self._entry(kind, request.groups["name"], create=True)
            assert entry is not None
            props = entry["container"]["properties"]
            for key, value in (body.get("properties") or {}).items():
                if key not in ("latestVersion", "nextVersion", "provisioningState"):
                    props[key] = value
            return Response(200 if existed else 201, copy.deepcopy(entry["container"]))

    def _delete_container(self, kind: str, request: Request) -> Response:
        name = request.groups["name"]
        with self.store.lock:
            entry = self.items[kind].get(name)
            if entry is None:
                return Response(204)
            for version in entry["versions"]:
                self._refuse_in_use(kind, name, version)
            del self.items[kind][name]
            return Response(200)

    def _list_versions(self, kind: str, request: Request) -> Response:
        q = request.query
        with self.store.lock:
            entry = self._entry(kind, request.groups["name"])
            versions = list(entry["versions"].values()) if entry else []
            versions = copy.deepcopy(versions)
        view = q.get("listViewType", "ActiveOnly")
        if view == "ActiveOnly":
            versions = [v for v in versions if not v["properties"].get("isArchived")]
        elif view == "ArchivedOnly":
            versions = [v for v in versions if v["properties"].get("isArchived")]
        if q.get("tags"):
            wanted: dict[str, str | None] = {}
            for pair in q["tags"].split(","):
                key, has_value, value = pair.partition("=")
                wanted[key] = value if has_value else None
            versions = [v for v in versions
                        if all(k in v["properties"]["tags"] and (w is None or v["properties"]["tags"][k] == w)
                               for k, w in wanted.items())]
        if q.get("version"):
            versions = [v for v in versions if v["name"] == q["version"]]
        order = q.get("$orderBy", q.get("$orderby", "createdtime desc")).lower()
        versions.sort(key=lambda v: v["systemData"]["createdAt"], reverse=order.endswith("desc"))
        if q.get("$top"):
            versions = versions[: int(q["$top"])]
        return Response(200, {"value": versions})

    def _get_version(self, kind: str, request: Request) -> Response:
        return Response(200, self.get(kind, request.groups["name"], request.groups["version"]))

    def _put_version(self, kind: str, request: Request) -> Response:
        body = request.json()
        props = body.get("properties")
        if not isinstance(props, dict):
            raise bad_request("The request body must carry 'properties'.")
        name, version = request.groups["name"], request.groups["version"]
        uri_key = {"codes": "codeUri", "data": "dataUri", "models": "modelUri"}.get(kind)
        if kind == "data" and not props.get("dataUri"):
            raise bad_request("Data version must have a dataUri.")
        with self.store.lock:
            entry = self._entry(kind, name)
            existing = entry["versions"].get(version) if entry else None
            if existing is not None and uri_key and existing["properties"].get(uri_key) != props.get(uri_key):
                # The service refuses to repoint an existing asset version at other content.
                raise AzureError(409, "UserError",
                                 f"{KINDS[kind]} version {name}:{version} already exists with a "
                                 f"different {uri_key}; asset versions are immutable.")
            resource = self._store_version(kind, name, version, props)
            return Response(200 if existing else 201, copy.deepcopy(resource))

    def _refuse_in_use(self, kind: str, name: str, version: str) -> None:
        holder = self.in_use(kind, name, version)
        if holder is not None:
            raise AzureError(409, "UserError",
                             f"{KINDS[kind]} {name}:{version} cannot be deleted: it is in use by "
                             f"{holder}.")

    def _delete_version(self, kind: str, request: Request) -> Response:
        name, version = request.groups["name"], request.groups["version"]
        with self.store.lock:
            entry = self.items[kind].get(name)
            if entry is None or version not in entry["versions"]:
                return Response(204)
            self._refuse_in_use(kind, name, version)
            del entry["versions"][version]
            self._refresh_container(entry)
            return Response(200)
