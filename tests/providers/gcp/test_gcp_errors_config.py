"""The gcp provider's configuration problems, Google Cloud failures in words, retries, and
missing credentials or libraries as errors a user can act on (no traceback)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from google.api_core import exceptions as gexc
from mlform.engine.provider import (
    CreateRequest,
    ObserveRequest,
    Progress,
    ProviderContext,
    ResourceRef,
)
from mlform.providers.gcp.clients import retrying
from mlform.providers.gcp.errors import GcpError, explain
from mlform.providers.gcp.provider import GcpProvider

CONFIG = {"type": "gcp", "project": "my-ml-project", "region": "us-central1",
          "bucket": "ml-bucket"}
QUIET = Progress(lambda *_: None)


def provider(tmp_path, **overrides) -> GcpProvider:
    config = {k: v for k, v in {**CONFIG, **overrides}.items() if v is not None}
    return GcpProvider(ProviderContext("fraud", tmp_path, "vertex", config,
                                       tmp_path / ".mlform" / "vertex"))


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"project": None}, "project: required setting is missing"),
    ({"bucket": "gs://ml-bucket"}, "'gs://ml-bucket' is not a bucket name: write the name "
                                   "alone, lowercase, without gs://"),
    ({"region": "US Central"}, "region: String should match pattern"),
    ({"timeouts": {"training_job": "two hours"}}, "'two hours' is not a duration"),
    ({"machine_types": {"gpu": "a2-highgpu-1g"}}, "unknown kind(s) ['gpu']"),
    ({"buckett": "x"}, "buckett: Extra inputs are not permitted"),
], ids=["project-required", "bucket-is-a-name", "region-shape", "timeouts-are-durations",
        "machine-kinds-are-known", "unknown-setting"])
def test_validate_config_lists_problems(tmp_path, overrides, expected):
    problems = provider(tmp_path, **overrides).validate_config()
    assert any(expected in str(p) for p in problems), problems


def test_an_unknown_setting_suggests_the_right_one(tmp_path):
    [problem] = provider(tmp_path, buckett="x").validate_config()
    assert problem.help == "did you mean 'bucket'?"


def test_a_misconfigured_provider_answers_with_an_error(tmp_path):
    (tmp_path / "d.csv").write_text("a\n1\n")
    answer = provider(tmp_path, bucket="gs://x").create(
        CreateRequest(ResourceRef("d", "dataset"), {"source": "d.csv"}, "k"), QUIET)
    assert answer.error.startswith("provider 'vertex' is misconfigured: bucket:")


@pytest.mark.parametrize(("exc", "method", "expected"), [
    (gexc.PermissionDenied("Permission 'aiplatform.customJobs.create' denied on resource "
                           "'//aiplatform.googleapis.com/projects/p/locations/r' (or it may "
                           "not exist)."), "create_custom_job",
     "permission denied: the identity running mlform lacks 'aiplatform.customJobs.create' on "
     "'//aiplatform.googleapis.com/projects/p/locations/r'"),
    (gexc.Forbidden("forbidden"), "deploy_model",
     "lacks 'aiplatform.endpoints.deploy' on 'serve'"),
    (gexc.ResourceExhausted("Quota exceeded for quota metric "
                            "'aiplatform.googleapis.com/custom_model_training_cpus' and limit "
                            "'CPUs per region'"), "create_custom_job",
     "quota exceeded calling 'create_custom_job' on 'serve': quota "
     "'aiplatform.googleapis.com/custom_model_training_cpus'"),
    (gexc.ServiceUnavailable("try later"), "get_endpoint",
     "Google Cloud kept failing 'get_endpoint' on 'serve' after every retry: 503 try later"),
], ids=["permission-from-the-message", "permission-from-the-method", "quota-named",
        "retries-exhausted"])
def test_failures_are_explained(exc, method, expected):
    assert expected in explain(exc, method, "serve")


def test_429_and_5xx_are_retried_with_backoff_and_a_403_is_not():
    calls, pauses = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise gexc.ServiceUnavailable("busy") if len(calls) == 1 else \
                gexc.TooManyRequests("slow down")
        return "done"

    assert retrying(flaky, 5, "get_custom_job", sleep=pauses.append) == "done"
    assert len(calls) == 3 and len(pauses) == 2 and pauses[1] > pauses[0] * 0.9

    denied = []

    def forbidden():
        denied.append(1)
        raise gexc.PermissionDenied("no")

    with pytest.raises(GcpError, match="permission denied"):
        retrying(forbidden, 5, "get_custom_job", sleep=pauses.append)
    assert len(denied) == 1


def test_retries_are_bounded():
    attempts = []

    def down():
        attempts.append(1)
        raise gexc.InternalServerError("boom")

    with pytest.raises(GcpError, match="after every retry: 500 boom"):
        retrying(down, 3, "list_models", sleep=lambda s: None)
    assert len(attempts) == 3


@pytest.mark.usefixtures("no_gcp_credentials")
def test_missing_credentials_are_reported_with_how_to_configure(tmp_path):
    (tmp_path / "d.csv").write_text("a\n1\n")
    answer = provider(tmp_path).create(
        CreateRequest(ResourceRef("d", "dataset"), {"source": "d.csv"}, "k"), QUIET)
    assert answer.error.startswith("no Google Cloud credentials found: run `gcloud auth "
                                   "application-default login`")


def test_a_missing_library_names_the_extra(tmp_path, monkeypatch):
    # every loaded module of the library, not just its top: an earlier test may have
    # imported the submodules, which an import would then find without its parent
    for name in [m for m in sys.modules if m.startswith("google.cloud.aiplatform")] + [
            "google.cloud.aiplatform_v1"]:
        monkeypatch.setitem(sys.modules, name, None)
    if "google.cloud" in sys.modules:  # `from google.cloud import x` reads the attribute first
        monkeypatch.delattr(sys.modules["google.cloud"], "aiplatform_v1", raising=False)
    answer = provider(tmp_path, api_endpoint="http://127.0.0.1:9").observe(ObserveRequest(
        ResourceRef("train", "training_job", "projects/p/locations/r/customJobs/1"), {},
        {"job": "projects/p/locations/r/customJobs/1"}))
    assert answer.error == ("the gcp provider needs google-cloud-aiplatform: "
                            "pip install 'mlform[gcp]'")


def test_importing_the_package_does_not_import_the_google_libraries():
    code = ("import sys, mlform.providers.gcp, mlform.providers.gcp.provider; "
            "print(sorted(m for m in sys.modules if m.startswith(('google.cloud.aiplatform', "
            "'google.cloud.storage', 'google.auth', 'google.api_core'))))")
    assert subprocess.check_output([sys.executable, "-c", code], text=True).strip() == "[]"


@pytest.mark.e2e
@pytest.mark.usefixtures("no_gcp_credentials")
def test_the_command_reports_missing_credentials_without_a_traceback(tmp_path, run_mlform):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rows.csv").write_text("a,b\n1,2\n")
    (tmp_path / "mlform.yaml").write_text(
        "version: 1\nstack: fraud\nproviders:\n  vertex: {type: gcp, project: my-ml-project, "
        "region: us-central1, bucket: ml-bucket}\nresources:\n  rows:\n    type: dataset\n"
        "    source: data/rows.csv\n")
    done = run_mlform(["apply", "--auto-approve", "--no-color"], tmp_path)
    assert done.returncode == 1
    assert "no Google Cloud credentials found" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_a_shadow_variant_is_refused_at_its_field(tmp_path):
    from mlform.engine.provider import CheckRequest

    answer = provider(tmp_path).check(CheckRequest(ResourceRef("serve", "endpoint"), {
        "variants": {"champion": {"model": "projects/p/locations/r/models/m@1"},
                     "candidate": {"model": "projects/p/locations/r/models/m@2",
                                   "shadow": True}}}))
    [problem] = answer.problems
    assert problem.path == ("variants", "candidate", "shadow")
    assert problem.message == "Vertex AI endpoints have no shadow traffic"
    assert "rollout: {strategy: canary}" in problem.help
