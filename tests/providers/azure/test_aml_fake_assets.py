"""The real MLClient against the Azure ML fake: the workspace and its default datastore on
Azurite, versioned assets (data, code, models, environments), and the service-shaped errors
and injected failures (throttling retried by the SDK, authorization naming action and scope)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aml_fake import AmlFake
from azure.ai.ml.constants import AssetTypes
from azure.ai.ml.entities import Data, Model
from azure.ai.ml.exceptions import ValidationException
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient
from azurite import Azurite

pytestmark = pytest.mark.e2e

CURATED = "AzureML-acpt-pytorch-2.2-cuda12.1"


def _uri(path: str) -> str:
    return f"azureml://datastores/workspaceblobstore/paths/{path}"


def test_workspace_and_default_datastore_reach_azurite(ml_client: Any, aml: AmlFake,
                                                      azurite: Azurite) -> None:
    workspace = ml_client.workspaces.get(aml.workspace_name)
    assert workspace.storage_account.endswith(f"/storageAccounts/{azurite.account_name}")
    store = ml_client.datastores.get_default(include_secrets=True)
    assert (store.name, store.container_name, store.account_name) == (
        "workspaceblobstore", aml.container, azurite.account_name)
    # the secret listSecrets returned really opens the container
    client = BlobServiceClient(account_url=azurite.url,
                               credential={"account_name": store.account_name,
                                           "account_key": store.credentials.account_key})
    name = f"probe-{uuid.uuid4().hex}"
    client.get_container_client(aml.container).upload_blob(name, b"x")
    assert name in set(client.get_container_client(aml.container).list_blob_names())


def test_another_workspace_is_not_found(aml_env: AmlFake) -> None:
    from azure.ai.ml import MLClient

    other = MLClient(aml_env.credential(), aml_env.subscription, aml_env.resource_group, "nope",
                     cloud=aml_env.cloud_name, cloud_metadata=aml_env.cloud_metadata,
                     enable_telemetry=False)
    with pytest.raises(ResourceNotFoundError):
        other.workspaces.get("nope")


def test_data_versions_latest_tags_and_immutability(ml_client: Any) -> None:
    name = f"ds-{uuid.uuid4().hex[:8]}"
    ml_client.data.create_or_update(Data(name=name, version="1", path=_uri("d/a/"),
                                         type=AssetTypes.URI_FOLDER))
    second = ml_client.data.create_or_update(Data(name=name, version="2", path=_uri("d/b.csv"),
                                                  type=AssetTypes.URI_FILE, tags={"k": "v"}))
    assert second.id.endswith(f"/data/{name}/versions/2")
    latest = ml_client.data.get(name, label="latest")
    assert (latest.version, latest.type, latest.tags) == ("2", "uri_file", {"k": "v"})
    assert sorted(d.version for d in ml_client.data.list(name=name)) == ["1", "2"]
    # the same version again with the same content is fine; other content is refused
    ml_client.data.create_or_update(Data(name=name, version="1", path=_uri("d/a/"),
                                         type=AssetTypes.URI_FOLDER))
    with pytest.raises(HttpResponseError, match="immutable"):
        ml_client.data.create_or_update(Data(name=name, version="1", path=_uri("d/other/"),
                                             type=AssetTypes.URI_FOLDER))
    with pytest.raises(ResourceNotFoundError):
        ml_client.data.get(name, version="9")


def test_models_keep_tags_and_flavors(ml_client: Any) -> None:
    name = f"m-{uuid.uuid4().hex[:8]}"
    model = ml_client.models.create_or_update(Model(
        name=name, version="3", path=_uri(f"models/{name}/"), type=AssetTypes.CUSTOM_MODEL,
        tags={"mlform.alias.prod": "1"}, flavors={"python_function": {"loader_module": "mlform"}}))
    assert model.version == "3" and model.tags == {"mlform.alias.prod": "1"}
    got = ml_client.models.get(name, version="3")
    assert got.path.endswith(f"/paths/models/{name}/")
    assert got.flavors == {"python_function": {"loader_module": "mlform"}}
    assert got.type == AssetTypes.CUSTOM_MODEL
    got.tags["mlform.alias.prod"] = "2"
    ml_client.models.create_or_update(got)
    assert ml_client.models.get(name, version="3").tags == {"mlform.alias.prod": "2"}
    assert [m.version for m in ml_client.models.list(name=name)] == ["3"]


def test_curated_environment_by_label(ml_client: Any) -> None:
    env = ml_client.environments.get(CURATED, label="latest")
    assert env.name == CURATED and env.id.endswith(f"/environments/{CURATED}/versions/1")
    # only AzureML-* names are built in; the SDK words a missing @latest as a validation error
    with pytest.raises(ValidationException, match="does not exist"):
        ml_client.environments.get("my-own-env", label="latest")


def test_throttling_is_retried_and_authorization_names_action_and_scope(ml_client: Any,
                                                                       aml: AmlFake) -> None:
    name = f"ds-{uuid.uuid4().hex[:8]}"
    ml_client.data.create_or_update(Data(name=name, version="1", path=_uri("x/"),
                                         type=AssetTypes.URI_FOLDER))
    aml.fail_next("GetDataVersion", 429)
    aml.fail_next("GetDataVersion", 503)
    assert ml_client.data.get(name, version="1").version == "1"  # azure-core's retry policy
    aml.fail_next("GetDataVersion", 403)
    with pytest.raises(HttpResponseError) as err:
        ml_client.data.get(name, version="1")
    assert err.value.status_code == 403
    assert err.value.error.code == "AuthorizationFailed"
    assert "Microsoft.MachineLearningServices/workspaces/data/versions/read" in str(err.value)
    assert f"/workspaces/{aml.workspace_name}/data/{name}/versions/1" in str(err.value)
