"""The workspace and its datastores: what `MLClient` reads to find the workspace's storage,
and the default `workspaceblobstore` pointing at a container in Azurite, whose `listSecrets`
returns Azurite's account key (what the service returns for an account-key datastore)."""

from __future__ import annotations

from typing import Any

from .errors import not_found
from .frontend import WS, Request, Response, Router
from .state import PROVIDER, Store, system_data

DATASTORE = "workspaceblobstore"


class Workspace:
    def __init__(self, store: Store, storage_suffix: str):
        self.store = store
        self.storage_suffix = storage_suffix
        self.created = system_data()

    def register(self, router: Router) -> None:
        act = f"{PROVIDER}/workspaces"
        router.add("GET", WS, "GetWorkspace", f"{act}/read", self._get)
        router.add("GET", WS + r"/datastores", "ListDatastores", f"{act}/datastores/read",
                   self._list_datastores)
        router.add("GET", WS + r"/datastores/(?P<name>[^/]+)", "GetDatastore",
                   f"{act}/datastores/read", self._get_datastore)
        router.add("POST", WS + r"/datastores/(?P<name>[^/]+)/listSecrets", "ListDatastoreSecrets",
                   f"{act}/datastores/listsecrets/action", self._list_secrets)
        router.add("GET", r"/subscriptions/(?P<sub>[^/]+)/providers/Microsoft\.MachineLearningServices"
                          r"/locations/(?P<location>[^/]+)/mfeOperationsStatus/(?P<op>[^/]+)",
                   "GetOperationStatus", f"{PROVIDER}/locations/operationsstatus/read",
                   self._operation)

    def _operation(self, request: Request) -> Response:
        record = self.store.get_operation(request.groups["op"])
        # retry-after-ms while running: the SDK's poller waits that long instead of its
        # default (30s for ARM, 5s for endpoints), so tests do not sleep.
        headers = {"retry-after-ms": "200"} if record["status"] == "InProgress" else {}
        return Response(200, record, headers)

    def resource(self) -> dict[str, Any]:
        s = self.store
        storage = (f"/subscriptions/{s.subscription}/resourceGroups/{s.resource_group}/providers/"
                   f"Microsoft.Storage/storageAccounts/{s.account_name}")
        return {
            "id": s.workspace_id, "name": s.workspace, "type": f"{PROVIDER}/workspaces",
            "location": s.location, "kind": "Default", "tags": {}, "systemData": self.created,
            "identity": {"type": "SystemAssigned", "principalId": "00000000-0000-0000-0000-0000000000bb",
                         "tenantId": "00000000-0000-0000-0000-0000000000cc"},
            "sku": {"name": "Basic", "tier": "Basic"},
            "properties": {
                "friendlyName": s.workspace, "provisioningState": "Succeeded",
                "workspaceId": "00000000-0000-0000-0000-0000000000dd",
                "storageAccount": storage,
                "keyVault": storage.replace("Microsoft.Storage/storageAccounts", "Microsoft.KeyVault/vaults"),
                "applicationInsights": storage.replace("Microsoft.Storage/storageAccounts",
                                                       "Microsoft.insights/components"),
                "discoveryUrl": f"{s.url}/discovery",
                "mlFlowTrackingUri": f"azureml://{s.location}.api.azureml.ms/mlflow/v1.0{s.workspace_id}",
                "hbiWorkspace": False, "publicNetworkAccess": "Enabled",
                "v1LegacyMode": False, "enableDataIsolation": False,
            },
        }

    def datastore(self) -> dict[str, Any]:
        s = self.store
        return {
            "id": f"{s.workspace_id}/datastores/{DATASTORE}", "name": DATASTORE,
            "type": f"{PROVIDER}/workspaces/datastores", "systemData": self.created,
            "properties": {
                "datastoreType": "AzureBlob", "isDefault": True, "accountName": s.account_name,
                "containerName": s.container, "endpoint": self.storage_suffix, "protocol": "https",
                "serviceDataAccessAuthIdentity": "None", "description": None, "tags": {},
                "properties": {}, "credentials": {"credentialsType": "AccountKey"},
            },
        }

    def _get(self, request: Request) -> Response:
        return Response(200, self.resource())

    def _list_datastores(self, request: Request) -> Response:
        return Response(200, {"value": [self.datastore()]})

    def _get_datastore(self, request: Request) -> Response:
        if request.groups["name"] != DATASTORE:
            raise not_found("Datastore", request.groups["name"])
        return Response(200, self.datastore())

    def _list_secrets(self, request: Request) -> Response:
        if request.groups["name"] != DATASTORE:
            raise not_found("Datastore", request.groups["name"])
        return Response(200, {"secretsType": "AccountKey", "key": self.store.account_key})
