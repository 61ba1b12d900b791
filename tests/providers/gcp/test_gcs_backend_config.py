"""Configuring the GCS state backend: spec errors at file:line:col, a missing `gcp` extra or
missing credentials as clear errors, and what the stack records about the backend."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest
from mlform.engine.state.record import backend_settings, describe_settings, same_backend

HEAD = "version: 1\nstack: cfg\nbackend:\n"
TAIL = "providers:\n  null: {}\n"


@pytest.mark.parametrize(("backend", "message"), [
    ("  type: gcs\n  prefix: stacks/cfg\n",
     "the gcs backend needs 'bucket' (and a 'prefix' per stack): "
     "backend: {type: gcs, bucket: my-bucket, prefix: stacks/fraud}"),
    ("  type: gcs\n  bucket: b\n  key: stacks/cfg/state.json\n",
     "the gcs backend takes 'prefix', not 'key': the state is '<prefix>/state.json'"),
], ids=["no-bucket", "key-instead-of-prefix"])
def test_spec_errors_point_at_the_backend(null_stack, run_mlform, backend, message):
    stack = null_stack(HEAD + backend + TAIL)
    got = run_mlform(["validate"], stack)
    assert got.returncode == 1
    assert got.stderr.startswith(f"error: invalid value for 'backend': {message}\n"
                                 "  --> mlform.yaml:4:3\n")


def test_a_valid_gcs_backend_validates(null_stack, run_mlform):
    stack = null_stack(HEAD + "  type: gcs\n  bucket: b\n  prefix: stacks/cfg\n" + TAIL)
    got = run_mlform(["validate"], stack)
    assert got.returncode == 0, got.stderr


def test_without_the_gcp_extra_the_error_says_what_to_install(null_stack):
    stack = null_stack(HEAD + "  type: gcs\n  bucket: b\n  prefix: stacks/cfg\n" + TAIL)
    hide_and_run = ("import sys; sys.modules['google.cloud.storage'] = None; "
                    "sys.argv = ['mlform', 'plan']; "
                    "from mlform.engine.cli.main import main; main()")
    got = subprocess.run([sys.executable, "-c", hide_and_run], cwd=stack,
                         capture_output=True, text=True, timeout=120)
    assert got.returncode == 1
    assert got.stderr == ("error: the gcs backend needs google-cloud-storage\n"
                          "help: pip install 'mlform[gcp]'\n")


def test_without_credentials_the_error_says_how_to_get_them(null_stack, run_mlform,
                                                             no_gcp_credentials):
    stack = null_stack(HEAD + "  type: gcs\n  bucket: b\n  prefix: stacks/cfg\n" + TAIL)
    got = run_mlform(["plan"], stack)
    assert got.returncode == 1
    assert got.stderr.startswith("error: the gcs backend found no Google Cloud credentials\n")
    assert "help: run 'gcloud auth application-default login', or set " \
           "GOOGLE_APPLICATION_CREDENTIALS" in got.stderr
    assert "Traceback" not in got.stderr and "WARNING" not in got.stderr


def gcs_cfg(**fields):
    base = dict(type="gcs", path=None, bucket="b", key=None, prefix=None, region=None,
                endpoint_url=None)
    return SimpleNamespace(**{**base, **fields})


def test_the_record_names_the_gcs_state_without_credentials():
    settings = backend_settings(gcs_cfg(prefix="/stacks/cfg/",
                                        endpoint_url="http://user:pw@127.0.0.1:4443"))
    assert settings == {"type": "gcs", "bucket": "b", "prefix": "stacks/cfg",
                        "endpoint_url": "http://127.0.0.1:4443"}
    assert describe_settings(settings) == "gcs state 'gs://b/stacks/cfg/state.json'"
    assert describe_settings(backend_settings(gcs_cfg())) == "gcs state 'gs://b/state.json'"


@pytest.mark.parametrize(("other", "same"), [
    (dict(prefix="stacks/cfg/"), True),
    (dict(prefix="stacks/other"), False),
    (dict(bucket="c", prefix="stacks/cfg"), False),
    (dict(prefix="stacks/cfg", endpoint_url="http://127.0.0.1:4443"), False),
], ids=["trailing-slash-is-the-same", "other-prefix", "other-bucket", "other-endpoint"])
def test_a_changed_prefix_bucket_or_endpoint_is_another_backend(other, same):
    mine = backend_settings(gcs_cfg(prefix="stacks/cfg"))
    assert same_backend(mine, backend_settings(gcs_cfg(**other))) is same
