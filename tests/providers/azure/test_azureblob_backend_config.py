"""Configuring the Azure Blob state backend: spec errors at file:line:col, a missing `azure`
extra, missing or unusable credentials as clear errors, and what the stack records about the
backend."""

from __future__ import annotations

import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
from mlform.engine.state.record import backend_settings, describe_settings, same_backend

HEAD = "version: 1\nstack: cfg\nbackend:\n"
TAIL = "providers:\n  null: {}\n"
VALID = "  type: azureblob\n  storage_account: mystate\n  container: tfstate\n  key: cfg.json\n"
AZURE_ENV = ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_KEY", "AZURE_CLIENT_ID",
             "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "AZURE_USERNAME", "AZURE_PASSWORD",
             "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_ENDPOINT",
             "MSI_ENDPOINT")


@pytest.fixture
def no_azure_credentials(tmp_path, monkeypatch):
    """An environment (this process's and the commands it starts) where DefaultAzureCredential
    finds nothing: no service principal, no managed identity endpoint, an empty Azure CLI
    config, and no storage connection string or key."""
    for name in AZURE_ENV:
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "azure-config").mkdir(exist_ok=True)
    monkeypatch.setenv("AZURE_CONFIG_DIR", str(tmp_path / "azure-config"))


@pytest.mark.parametrize(("backend", "message"), [
    ("  type: azureblob\n  storage_account: mystate\n  key: cfg.json\n",
     "the azureblob backend needs 'storage_account', 'container' and 'key': backend: "
     "{type: azureblob, storage_account: mystate, container: tfstate, "
     "key: stacks/fraud/state.json}"),
    ("  type: azureblob\n  storage_account: mystate\n  container: tfstate\n",
     "the azureblob backend needs 'storage_account', 'container' and 'key': backend: "
     "{type: azureblob, storage_account: mystate, container: tfstate, "
     "key: stacks/fraud/state.json}"),
    (VALID + "  bucket: tfstate\n", "the azureblob backend takes 'container', not 'bucket'"),
    (VALID + "  endpoint_url: http://127.0.0.1:10000\n",
     "the azureblob backend takes 'account_url', not 'endpoint_url'"),
    (VALID.replace("mystate", "My_State"),
     "'My_State' is not a storage account name: 3 to 24 lowercase letters and digits"),
    (VALID.replace("tfstate", "tf--state"),
     "'tf--state' is not a container name: 3 to 63 lowercase letters, digits and single "
     "hyphens, starting and ending with a letter or digit"),
    (VALID.replace("cfg.json", "stacks/cfg/"),
     "'key' names the state blob, not a folder: 'stacks/cfg/state.json'"),
    (VALID + "  account_url: 'https://mystate.blob.core.windows.net/?sv=2024&sig=abc'\n",
     "'account_url' must be the account's blob endpoint, with no SAS token (credentials come "
     "from the environment), not 'https://mystate.blob.core.windows.net/?sv=2024&sig=abc'"),
], ids=["no-container", "no-key", "bucket-instead-of-container",
        "endpoint-url-instead-of-account-url", "bad-account-name", "bad-container-name",
        "key-is-a-folder", "sas-token-in-the-spec"])
def test_spec_errors_point_at_the_backend(null_stack, run_mlform, backend, message):
    stack = null_stack(HEAD + backend + TAIL)
    got = run_mlform(["validate"], stack)
    assert got.returncode == 1
    assert got.stderr.startswith(f"error: invalid value for 'backend': {message}\n"
                                 "  --> mlform.yaml:4:3\n")


def test_a_valid_azureblob_backend_validates(null_stack, run_mlform):
    stack = null_stack(HEAD + VALID + "  account_url: 'http://127.0.0.1:10000/mystate'\n" + TAIL)
    got = run_mlform(["validate"], stack)
    assert got.returncode == 0, got.stderr


def test_without_the_azure_extra_the_error_says_what_to_install(null_stack):
    stack = null_stack(HEAD + VALID + TAIL)
    hide_and_run = ("import sys; sys.modules['azure.storage.blob'] = None; "
                    "sys.argv = ['mlform', 'plan']; "
                    "from mlform.engine.cli.main import main; main()")
    got = subprocess.run([sys.executable, "-c", hide_and_run], cwd=stack,
                         capture_output=True, text=True, timeout=120)
    assert got.returncode == 1
    assert got.stderr == ("error: the azureblob backend needs azure-storage-blob and "
                          "azure-identity\nhelp: pip install 'mlform[azure]'\n")


def test_without_credentials_the_error_says_how_to_get_them(null_stack, run_mlform,
                                                             no_azure_credentials):
    stack = null_stack(HEAD + VALID + TAIL)
    started = time.monotonic()
    got = run_mlform(["plan"], stack)
    assert got.returncode == 1
    assert got.stderr.startswith(
        "error: the azureblob backend found no Azure credentials\n"
        "  = DefaultAzureCredential failed to retrieve a token from the included credentials.\n"
        "help: run 'az login', or set AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET")
    assert "AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_KEY" in got.stderr
    assert "Traceback" not in got.stderr and "WARNING" not in got.stderr
    assert "Attempted credentials" not in got.stderr
    # Refused at once, not after the storage client's retries (over a minute).
    assert time.monotonic() - started < 60


def test_an_http_endpoint_needs_a_key_not_a_token(null_stack, run_mlform,
                                                  no_azure_credentials):
    stack = null_stack(HEAD + VALID + "  account_url: 'http://127.0.0.1:10000/mystate'\n" + TAIL)
    got = run_mlform(["plan"], stack)
    assert got.returncode == 1
    assert got.stderr == (
        "error: the azureblob backend cannot sign in to 'http://127.0.0.1:10000/mystate' "
        "without https\n"
        "  = Azure access tokens are only sent over https\n"
        "help: for an emulator, set AZURE_STORAGE_CONNECTION_STRING (Azurite's development "
        "account) or AZURE_STORAGE_KEY\n")


def test_a_malformed_connection_string_is_named(null_stack, run_mlform, no_azure_credentials):
    stack = null_stack(HEAD + VALID + TAIL)
    got = run_mlform(["plan"], stack, env={"AZURE_STORAGE_CONNECTION_STRING": "not one"})
    assert got.returncode == 1
    assert got.stderr.startswith(
        "error: AZURE_STORAGE_CONNECTION_STRING is not a storage connection string\n")
    assert "Traceback" not in got.stderr


def test_without_a_key_the_default_credential_signs_in_for_storage(no_azure_credentials,
                                                                   monkeypatch):
    """DefaultAzureCredential by default: asked once, up front, for a storage token, and then
    used by the client for the account's public endpoint."""
    import azure.identity
    from azure.core.credentials import AccessToken
    from mlform.engine.state.azureblob_backend import AzureBlobBackend

    asked: list[tuple[str, ...]] = []

    class SignedIn:
        def get_token(self, *scopes, **kwargs):
            asked.append(scopes)
            return AccessToken("token", int(time.time()) + 3600)

    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", SignedIn)
    backend = AzureBlobBackend("mystate", "tfstate", "stacks/cfg/state.json")
    assert asked == [("https://storage.azure.com/.default",)]
    assert isinstance(backend.container.credential, SignedIn)
    assert backend.container.url == "https://mystate.blob.core.windows.net/tfstate"
    assert backend.describe() == \
        "azureblob state 'https://mystate.blob.core.windows.net/tfstate/stacks/cfg/state.json'"


def azureblob_cfg(**fields):
    base = dict(type="azureblob", path=None, bucket=None, key="stacks/cfg/state.json",
                prefix=None, region=None, endpoint_url=None, storage_account="mystate",
                container="tfstate", account_url=None)
    return SimpleNamespace(**{**base, **fields})


def test_the_record_names_the_azureblob_state_without_credentials():
    settings = backend_settings(azureblob_cfg(
        key="/stacks/cfg/state.json",
        account_url="https://user:pw@mystate.blob.core.usgovcloudapi.net/?sv=2024&sig=abc"))
    assert settings == {"type": "azureblob", "storage_account": "mystate",
                        "container": "tfstate", "key": "stacks/cfg/state.json",
                        "account_url": "https://mystate.blob.core.usgovcloudapi.net"}
    assert describe_settings(settings) == ("azureblob state 'https://mystate.blob.core."
                                           "usgovcloudapi.net/tfstate/stacks/cfg/state.json'")
    assert describe_settings(backend_settings(azureblob_cfg())) == \
        "azureblob state 'https://mystate.blob.core.windows.net/tfstate/stacks/cfg/state.json'"


@pytest.mark.parametrize(("other", "same"), [
    (dict(key="/stacks/cfg/state.json"), True),
    (dict(account_url="https://mystate.blob.core.windows.net/"), True),
    (dict(key="stacks/other/state.json"), False),
    (dict(container="other"), False),
    (dict(storage_account="otheraccount"), False),
    (dict(account_url="http://127.0.0.1:10000/mystate"), False),
], ids=["leading-slash-is-the-same", "the-default-endpoint-written-out-is-the-same",
        "other-key", "other-container", "other-account", "other-endpoint"])
def test_a_changed_account_container_key_or_endpoint_is_another_backend(other, same):
    mine = backend_settings(azureblob_cfg())
    assert same_backend(mine, backend_settings(azureblob_cfg(**other))) is same
