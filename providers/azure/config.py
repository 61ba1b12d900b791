"""The provider's settings, as written under `providers: {<name>: {type: azure, ...}}`."""

from __future__ import annotations

import re
from typing import Any, Literal

from mlform.engine.diagnostics import did_you_mean
from mlform.engine.durations import seconds
from mlform.engine.provider import Problem
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEFAULT_TIMEOUTS = {
    "dataset": "30m",
    "training_job": "24h",
    "model": "2h",
    "endpoint": "1h",
    "batch_job": "24h",
    "monitor": "30m",
    "retraining_policy": "1m",
}

VM_KINDS = ("training", "training_gpu", "serving", "serving_gpu", "batch")
ENVIRONMENT_KINDS = ("training", "serving")
CREDENTIALS = ("default", "azure-cli", "managed-identity", "environment", "token")


class CloudConfig(BaseModel):
    """Endpoints of a sovereign cloud, a private deployment or an emulator. Leave it out
    for Azure's public cloud."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "AzureCloud"
    """`AzureCloud`, `AzureUSGovernment`, `AzureChinaCloud`, or a name of your own for
    the endpoints given below."""
    resource_manager: str | None = None
    """Azure Resource Manager, e.g. `https://management.usgovcloudapi.net/`."""
    active_directory: str | None = None
    """Microsoft Entra authority, e.g. `https://login.microsoftonline.us/`."""
    aml_resource_id: str | None = None
    """Azure ML's resource id (studio), e.g. `https://ml.azure.us/`."""
    storage_endpoint: str | None = None
    """Storage endpoint suffix, e.g. `core.usgovcloudapi.net`."""
    registry_discovery_endpoint: str | None = None
    """Azure ML registry discovery, e.g. `https://usgovarizona.api.ml.azure.us/`."""
    azure_portal: str | None = None
    blob_endpoint: str | None = None
    """The storage account's blob endpoint in full when it is not
    `https://<storage_account>.blob.<storage_endpoint>`, e.g. an Azurite emulator's
    `http://127.0.0.1:10000/devstoreaccount1`."""

    @property
    def custom(self) -> bool:
        return self.resource_manager is not None

    def metadata(self) -> dict[str, str]:
        """`cloud_metadata` for `MLClient(cloud=..., cloud_metadata=...)`."""
        rm = str(self.resource_manager)
        return {"resource_manager": rm,
                "active_directory": self.active_directory or "https://login.microsoftonline.com/",
                "aml_resource_id": self.aml_resource_id or rm,
                "storage_endpoint": self.storage_endpoint or "core.windows.net",
                "registry_discovery_endpoint": self.registry_discovery_endpoint or rm,
                "azure_portal": self.azure_portal or rm}


PUBLIC = {"AzureCloud": ("https://management.azure.com/", "core.windows.net"),
          "AzureUSGovernment": ("https://management.usgovcloudapi.net/",
                                "core.usgovcloudapi.net"),
          "AzureChinaCloud": ("https://management.chinacloudapi.cn/", "core.chinacloudapi.cn")}


class AzureConfig(BaseModel):
    """Settings of one `azure` provider."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = "azure"
    subscription_id: str = Field(pattern=r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
    """The subscription holding the workspace (a GUID)."""
    resource_group: str = Field(min_length=1, max_length=90)
    workspace: str = Field(min_length=2, max_length=33)
    """The Azure Machine Learning workspace."""
    storage_account: str = Field(pattern=r"^[a-z0-9]{3,24}$")
    """The storage account for datasets, code, artifacts and request logs (usually the
    workspace's own; the workspace must have a datastore on `container` in it)."""
    container: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
    """The blob container in `storage_account`."""
    datastore: str = "workspaceblobstore"
    """The workspace datastore that points at `storage_account`/`container`; jobs and
    models name their blobs through it (`azureml://datastores/<datastore>/paths/...`)."""
    prefix: str = "mlform"
    """Blob prefix inside the container; the stack name is appended."""
    cloud: CloudConfig = Field(default_factory=CloudConfig)
    credential: Literal["default", "azure-cli", "managed-identity", "environment",
                        "token"] = "default"
    """How mlform signs in: `default` (DefaultAzureCredential), `azure-cli`,
    `managed-identity`, `environment` (AZURE_CLIENT_ID/SECRET/TENANT_ID), or `token`: an
    access token already acquired, read from the variable named by `token_env` (CI jobs
    that run `az account get-access-token`; the tests' loopback fake)."""
    token_env: str = "AZURE_ACCESS_TOKEN"
    storage_key_env: str | None = None
    """The name of an environment variable holding the storage account's key: blobs are
    then signed with the key (Azurite, or accounts without Entra data roles) instead of
    the credential. The key is handed to the scoring deployments as an environment
    variable so they can write the request log: use it with an emulator only."""
    vm_sizes: dict[str, str] = Field(default_factory=dict)
    """Overrides of the VM size table, by kind: training, training_gpu, serving,
    serving_gpu, batch."""
    environments: dict[str, str] = Field(default_factory=dict)
    """Environment overrides by kind (training, serving): `azureml:<name>@latest`,
    `azureml:<name>:<version>` or an environment of your own."""
    compute_cluster: str | None = None
    """A compute cluster jobs run on; without it jobs run on serverless compute with the
    VM size chosen from `compute`."""
    timeouts: dict[str, str | float] = Field(default_factory=dict)
    """Longest wait per resource type: `{training_job: 2h, endpoint: 30m}`."""
    poll_interval: float = Field(default=10.0, ge=0)
    """Seconds between two status reads of a running job or deployment."""
    max_attempts: int = Field(default=6, ge=1, le=50)
    """Attempts per call: 429 (after its Retry-After) and 5xx answers are retried."""
    log_flush_seconds: float = Field(default=10.0, gt=0)
    """How often the scoring script writes its buffered request log to blob."""

    @field_validator("timeouts")
    @classmethod
    def _durations(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = set(value) - set(DEFAULT_TIMEOUTS)
        if unknown:
            raise ValueError(f"unknown resource type(s) {sorted(unknown)}; "
                             f"expected some of {sorted(DEFAULT_TIMEOUTS)}")
        for duration in value.values():
            seconds(duration)
        return value

    @field_validator("vm_sizes")
    @classmethod
    def _vm_kinds(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = set(value) - set(VM_KINDS)
        if unknown:
            raise ValueError(f"unknown kind(s) {sorted(unknown)}; expected some of "
                             f"{list(VM_KINDS)}")
        return value

    @field_validator("environments")
    @classmethod
    def _environment_kinds(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = set(value) - set(ENVIRONMENT_KINDS)
        if unknown:
            raise ValueError(f"unknown kind(s) {sorted(unknown)}; expected some of "
                             f"{list(ENVIRONMENT_KINDS)}")
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return value.strip("/")

    @field_validator("container")
    @classmethod
    def _container(cls, value: str) -> str:
        if "--" in value:
            raise ValueError(f"'{value}' is not a container name: no two hyphens in a row")
        return value

    @field_validator("token_env", "storage_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError(f"'{value}' is not an environment variable name: write the "
                             "variable's name, not its value")
        return value

    def timeout(self, resource_type: str) -> float:
        return seconds(self.timeouts.get(resource_type, DEFAULT_TIMEOUTS[resource_type]))

    @property
    def resource_manager(self) -> str:
        if self.cloud.resource_manager:
            return self.cloud.resource_manager.rstrip("/") + "/"
        return PUBLIC.get(self.cloud.name, PUBLIC["AzureCloud"])[0]

    @property
    def blob_url(self) -> str:
        """The storage account's blob endpoint, e.g. `https://acct.blob.core.windows.net`."""
        if self.cloud.blob_endpoint:
            return self.cloud.blob_endpoint.rstrip("/")
        suffix = self.cloud.storage_endpoint or \
            PUBLIC.get(self.cloud.name, PUBLIC["AzureCloud"])[1]
        return f"https://{self.storage_account}.blob.{suffix}"

    @property
    def workspace_id(self) -> str:
        return (f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
                f"/providers/Microsoft.MachineLearningServices/workspaces/{self.workspace}")


def load(config: dict[str, Any]) -> AzureConfig:
    return AzureConfig.model_validate(config or {})


REQUIRED_HELP = {
    "subscription_id": "add the subscription id (a GUID): `az account show --query id`",
    "resource_group": "add the workspace's resource group, e.g. 'resource_group: ml-rg'",
    "workspace": "add the Azure ML workspace name, e.g. 'workspace: ml-ws'",
    "storage_account": "add the storage account for datasets and artifacts (the "
                       "workspace's own: `az ml workspace show --query storage_account`)",
    "container": "add the blob container, e.g. 'container: mlform'",
}


def problems(config: dict[str, Any]) -> list[Problem]:
    """Every problem with `config`, each at the setting it concerns, with the fix."""
    try:
        cfg = load(config)
    except ValidationError as exc:
        return [_problem(err) for err in exc.errors()]
    if cfg.cloud.name not in PUBLIC and not cfg.cloud.custom:
        return [Problem(("cloud", "name"), f"unknown cloud '{cfg.cloud.name}'",
                        help=f"use one of {', '.join(PUBLIC)}, or give `resource_manager` "
                             "(and the other endpoints) for a cloud of your own")]
    return []


def _problem(err: Any) -> Problem:
    path = tuple(err["loc"])
    name = str(path[0]) if path else ""
    if err["type"] == "missing":
        return Problem(path, "required setting is missing", key=True,
                       help=REQUIRED_HELP.get(name, f"add '{name}:' to the provider"))
    if err["type"] == "extra_forbidden":
        fields = CloudConfig.model_fields if len(path) > 1 and path[0] == "cloud" \
            else AzureConfig.model_fields
        return Problem(path, err["msg"], key=True,
                       help=did_you_mean(str(path[-1]), fields)
                       or f"settings: {', '.join(fields)}")
    return Problem(path, err["msg"])
