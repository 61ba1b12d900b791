"""Shared fixtures for the azure tests: one Azurite (real blob emulator) and one Azure ML fake
(tests/providers/azure/aml_fake) per test session.

The fake serves https with a self-signed certificate for 127.0.0.1. The session fixture `aml`
sets no environment variable; a test that talks to it through the SDK asks for `aml_env` (or
`ml_client`), which points REQUESTS_CA_BUNDLE and SSL_CERT_FILE at `aml.ca_bundle` for that
test only (monkeypatch), so nothing leaks into other tests. `aml.ca_bundle` holds certifi's
roots plus the fake's certificate, so trusting it never distrusts anything else. Commands a
test starts (`mlform ...`) get it through their environment: `aml.env()`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from azurite import Azurite, azurite_binary, start_azurite

if TYPE_CHECKING:
    from aml_fake import AmlFake


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """A started `azurite-blob` on loopback, shared by the session; `.url`,
    `.connection_string`, `.account_name`, `.account_key`, `.client()`."""
    if azurite_binary() is None:
        pytest.skip("azurite-blob is not installed "
                    "(npm install --prefix build/azurite azurite@3.35.0)")
    emulator = start_azurite(tmp_path_factory.mktemp("azurite"))
    yield emulator
    emulator.stop()


@pytest.fixture
def blob_container(azurite: Azurite) -> str:
    """A new, empty container in the session's Azurite (containers keep tests apart)."""
    name = f"mlform-test-{uuid.uuid4().hex[:12]}"
    azurite.create_container(name)
    return name


@pytest.fixture(scope="session")
def aml(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AmlFake]:
    """The Azure ML fake (ARM + workspace REST) on https loopback, shared by the session; its
    workspace's default datastore is a container in `azurite`."""
    from aml_fake import start_aml_fake

    fake = start_aml_fake(azurite, tmp_path_factory.mktemp("aml"))
    yield fake
    fake.stop()


@pytest.fixture
def aml_env(aml: AmlFake, monkeypatch: pytest.MonkeyPatch) -> AmlFake:
    """`aml`, with this test's process trusting its certificate (REQUESTS_CA_BUNDLE,
    SSL_CERT_FILE) until the test ends."""
    for name, value in aml.env().items():
        monkeypatch.setenv(name, value)
    # MLClient(cloud=...) writes the cloud's name to os.environ; undo that after the test too.
    monkeypatch.setenv("AZUREML_CURRENT_CLOUD", aml.cloud_name)
    return aml


@pytest.fixture
def ml_client(aml_env: AmlFake) -> Any:
    """A real `azure.ai.ml.MLClient` bound to the fake's workspace."""
    return aml_env.ml_client()


def provider_settings(aml: AmlFake, azurite: Azurite, **more: Any) -> dict[str, Any]:
    """The `azure` provider's settings for the fake's workspace: the fake's endpoints as a
    custom cloud, Azurite as the blob endpoint, the token from AZURE_ACCESS_TOKEN and the
    storage key from AZURE_STORAGE_KEY (see `provider_env`)."""
    return {"type": "azure", "subscription_id": aml.subscription,
            "resource_group": aml.resource_group, "workspace": aml.workspace_name,
            "storage_account": azurite.account_name, "container": aml.container,
            "credential": "token", "storage_key_env": "AZURE_STORAGE_KEY",
            "cloud": {"name": "MLFormTest", **aml.cloud_metadata, "blob_endpoint": azurite.url},
            "poll_interval": 0.2, **more}


def provider_env(aml: AmlFake, azurite: Azurite) -> dict[str, str]:
    """The environment an `mlform` command on the fake needs: trust its certificate, a
    token (unsigned, JWT-shaped as the SDK decodes it) and Azurite's well-known key."""
    scope = aml.cloud_metadata["resource_manager"] + ".default"
    return {**aml.env(), "AZURE_ACCESS_TOKEN": aml.credential().get_token(scope).token,
            "AZURE_STORAGE_KEY": azurite.account_key}


@pytest.fixture
def azure_env(aml: AmlFake, azurite: Azurite, monkeypatch: pytest.MonkeyPatch
              ) -> dict[str, str]:
    """`provider_env`, set in this test's process too (until the test ends)."""
    env = provider_env(aml, azurite)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
