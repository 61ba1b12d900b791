"""The azure provider's settings, names, VM sizes and error messages: what a user sees when
the configuration, the credentials, a role or a quota is wrong, without any service."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import requests
from mlform.providers.azure import compute, config, errors, naming
from mlform.providers.azure.clients import ArmError, retrying

SUB = "00000000-0000-0000-0000-000000000000"
GOOD = {"type": "azure", "subscription_id": SUB, "resource_group": "rg", "workspace": "ws",
        "storage_account": "mlstore", "container": "mlform"}


def _problems(**changes):
    cfg = {k: v for k, v in {**GOOD, **changes}.items() if v is not None}
    return [(p.path, p.message, p.help) for p in config.problems(cfg)]


@pytest.mark.parametrize(("changes", "expected"), [
    pytest.param({}, [], id="valid"),
    pytest.param({"workspace": None}, [(("workspace",), "required setting is missing",
                                        "add the Azure ML workspace name, e.g. "
                                        "'workspace: ml-ws'")], id="missing-workspace"),
    pytest.param({"workspce": "ws"}, [(("workspce",), "Extra inputs are not permitted",
                                       "did you mean 'workspace'?")], id="misspelt-setting"),
    pytest.param({"cloud": {"name": "AzureMars"}},
                 [(("cloud", "name"), "unknown cloud 'AzureMars'",
                   "use one of AzureCloud, AzureUSGovernment, AzureChinaCloud, or give "
                   "`resource_manager` (and the other endpoints) for a cloud of your own")],
                 id="unknown-cloud"),
    pytest.param({"vm_sizes": {"trainin": "Standard_DS3_v2"}},
                 [(("vm_sizes",), "Value error, unknown kind(s) ['trainin']; expected some of "
                   "['training', 'training_gpu', 'serving', 'serving_gpu', 'batch']", None)],
                 id="unknown-vm-kind"),
    pytest.param({"token_env": "ey.abc"},
                 [(("token_env",), "Value error, 'ey.abc' is not an environment variable "
                   "name: write the variable's name, not its value", None)],
                 id="a-token-where-its-variable-goes"),
])
def test_configuration_problems_name_the_setting_and_the_fix(changes, expected):
    got = _problems(**changes)
    assert [(path, msg) for path, msg, _ in got] == [(p, m) for p, m, _ in expected]
    for (_, _, help_), (_, _, want) in zip(got, expected, strict=True):
        if want:
            assert want in (help_ or "")


def test_a_custom_cloud_gives_mlclient_every_key_it_reads():
    cfg = config.load({**GOOD, "cloud": {"name": "Sovereign",
                                         "resource_manager": "https://arm.example/",
                                         "blob_endpoint": "http://127.0.0.1:10000/acct"}})
    assert set(cfg.cloud.metadata()) == {"resource_manager", "active_directory",
                                         "aml_resource_id", "storage_endpoint",
                                         "registry_discovery_endpoint", "azure_portal"}
    assert cfg.blob_url == "http://127.0.0.1:10000/acct"
    assert config.load({**GOOD, "cloud": {"name": "AzureUSGovernment"}}).blob_url == \
        "https://mlstore.blob.core.usgovcloudapi.net"


def test_two_custom_clouds_of_one_name_each_reach_their_own_endpoints(monkeypatch):
    # azure-ai-ml keeps the first metadata registered under a cloud name for the whole
    # process: without a name per set of endpoints, the second workspace's client was
    # reached at the first one's resource manager.
    from mlform.providers.azure.clients import Clients

    monkeypatch.setenv("AZURE_ACCESS_TOKEN", "header.e30.signature")
    seen = []
    for arm in ("https://arm-one.example/", "https://arm-two.example/"):
        cfg = config.load({**GOOD, "credential": "token",
                           "cloud": {"name": "Sovereign", "resource_manager": arm}})
        seen.append(Clients(cfg).ml._base_url)
    assert [url.split("/subscriptions")[0] for url in seen] == [
        "https://arm-one.example", "https://arm-two.example"]


@pytest.mark.parametrize(("kind", "wanted", "options", "size"), [
    pytest.param("training", {}, {}, "Standard_DS3_v2", id="default-training"),
    pytest.param("serving", {}, {}, "Standard_DS2_v2", id="default-serving"),
    pytest.param("training", {"cpus": 8, "memory_gb": 20}, {}, "Standard_DS4_v2",
                 id="by-cpus-and-memory"),
    pytest.param("training", {"gpus": 1}, {}, "Standard_NC4as_T4_v3", id="one-gpu"),
    pytest.param("training", {"gpus": 4}, {}, "Standard_NC64as_T4_v3", id="four-gpus"),
    pytest.param("training", {"gpus": 1}, {"instance_type": "Standard_NC24ads_A100_v4"},
                 "Standard_NC24ads_A100_v4", id="resource-override"),
])
def test_compute_maps_to_a_vm_size(kind, wanted, options, size):
    assert compute.vm_size(config.load(GOOD), kind, wanted, options) == size


def test_the_provider_vm_sizes_override_the_table():
    cfg = config.load({**GOOD, "vm_sizes": {"training_gpu": "Standard_NC6s_v3"}})
    assert compute.vm_size(cfg, "training", {"gpus": 1}, {}) == "Standard_NC6s_v3"


def test_names_fit_azure_rules_and_stay_distinct():
    long = "a-very-long-stack-name-for-fraud-detection"
    first, second = (naming.endpoint_name(long, f"endpoint-{i}") for i in (1, 2))
    assert first != second and all(3 <= len(n) <= 32 for n in (first, second))
    assert naming.endpoint_name("Fraud", "serve") != naming.endpoint_name("fraud", "serve")
    name = naming.deployment_name("champion", "azureml:fraud-model:3")
    assert name.startswith("champion-") and len(name) <= 32
    assert name != naming.deployment_name("champion", "azureml:fraud-model:4")
    assert naming.job_name("s", "train", "abc") == "s-train-abc"
    assert naming.job_name("s", "train", "abc", 2) == "s-train-abc-r2"


def _arm_error(status: int, body: dict, headers: dict | None = None) -> ArmError:
    response = requests.Response()
    response.status_code = status
    response._content = __import__("json").dumps(body).encode()
    response.headers.update(headers or {})
    return ArmError(response)


def test_an_authorization_failure_names_the_role_and_the_scope():
    scope = f"/subscriptions/{SUB}/resourceGroups/rg/providers/" \
            "Microsoft.MachineLearningServices/workspaces/ws"
    exc = _arm_error(403, {"error": {"code": "AuthorizationFailed", "message": (
        "The client 'x' with object id 'y' does not have authorization to perform action "
        "'Microsoft.MachineLearningServices/workspaces/jobs/write' over scope "
        f"'{scope}' or the scope is invalid.")}})
    said = errors.explain(exc, "jobs", "train")
    assert said.startswith("permission denied for 'train': the identity running mlform may "
                           "not perform 'Microsoft.MachineLearningServices/workspaces/jobs/"
                           f"write' on '{scope}'")
    assert "assign it the role 'AzureML Data Scientist' on that scope" in said


def test_a_quota_failure_names_the_quota():
    exc = _arm_error(400, {"error": {"code": "QuotaExceeded", "message": (
        "Operation could not be completed as it results in exceeding approved "
        "Standard NCASv3_T4 Family vCPUs quota. Current limit: 0.")}})
    assert errors.explain(exc, "deployments", "serve").startswith(
        "quota exceeded for 'serve': quota 'Standard NCASv3_T4 Family vCPUs'")


def test_throttling_is_retried_after_the_pause_the_service_asks_for_and_bounded():
    pauses: list[float] = []
    calls = []

    def throttled():
        calls.append(1)
        raise _arm_error(429, {"error": {"code": "TooManyRequests", "message": "slow down"}},
                         {"Retry-After": "7"})

    with pytest.raises(errors.AzureError, match="Azure kept failing the jobs call for 'train' "
                                                "after every retry: 429 slow down"):
        retrying(throttled, 3, "jobs", "train", sleep=pauses.append)
    assert len(calls) == 3 and pauses == [7.0, 7.0]


def test_a_server_error_that_clears_is_retried_once():
    answers = [_arm_error(503, {"error": {"code": "ServiceUnavailable", "message": "busy"}})]

    def flaky():
        if answers:
            raise answers.pop()
        return "ok"

    assert retrying(flaky, 3, "jobs", sleep=lambda s: None) == "ok"


STACK = textwrap.dedent("""\
    version: 1
    stack: cfg
    providers:
      aml:
        type: azure
        subscription_id: 00000000-0000-0000-0000-000000000000
        resource_group: rg
        workspace: ws
        storage_account: devstoreaccount1
        container: mlform
        credential: token
    resources:
      data:
        type: dataset
        provider: aml
        source: rows.csv
    """)


@pytest.fixture
def stack(tmp_path):
    (tmp_path / "mlform.yaml").write_text(STACK)
    (tmp_path / "rows.csv").write_text("a,b\n1,2\n")
    return tmp_path


def test_a_missing_setting_is_reported_at_the_provider_block(stack, run_mlform):
    (stack / "mlform.yaml").write_text(STACK.replace("    workspace: ws\n", ""))
    got = run_mlform(["validate"], stack)
    assert got.returncode == 1
    assert got.stderr == ("error: provider 'aml': workspace: required setting is missing\n"
                          "  --> mlform.yaml:4:3\n  |\n4 |   aml:\n  |   ^^^\n"
                          "help: add the Azure ML workspace name, e.g. 'workspace: ml-ws'\n")


def test_without_credentials_the_error_says_how_to_sign_in(stack, run_mlform):
    got = run_mlform(["apply", "--auto-approve"], stack, env={"AZURE_ACCESS_TOKEN": ""})
    assert got.returncode == 1
    assert "no Azure credentials found: run `az login`" in got.stderr
    assert "reads the access token from AZURE_ACCESS_TOKEN, which is not set" in got.stderr
    assert "Traceback" not in got.stderr


def test_without_the_azure_extra_the_error_says_what_to_install(stack):
    hide_and_run = ("import sys; sys.modules['azure.ai.ml'] = None; "
                    "sys.argv = ['mlform', 'apply', '--auto-approve']; "
                    "from mlform.engine.cli.main import main; main()")
    got = subprocess.run([sys.executable, "-c", hide_and_run], cwd=stack,
                         capture_output=True, text=True, timeout=120)
    assert got.returncode == 1
    assert "the azure provider needs azure-ai-ml: pip install 'mlform[azure]'" in got.stderr
    assert "Traceback" not in got.stderr
