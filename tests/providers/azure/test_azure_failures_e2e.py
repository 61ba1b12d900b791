"""Azure's refusals through the mlform command, on the Azure ML fake: throttling is
retried and the apply succeeds; an authorization failure names the action, the scope and
the role to assign, without a traceback."""

from __future__ import annotations

import json
import uuid

import pytest
from conftest import provider_env, provider_settings

pytestmark = pytest.mark.e2e


def _stack(aml, azurite, tmp_path, stack_writer):
    settings = json.dumps(provider_settings(aml, azurite, max_attempts=3))
    stack = stack_writer(tmp_path, f"""
        version: 1
        stack: failures-{uuid.uuid4().hex[:6]}
        providers:
          azure: {settings}
        resources:
          rows:
            type: dataset
            source: rows.csv
        """)
    # new content each time: a new data asset version is registered
    (stack / "rows.csv").write_text(f"a,b\n1,{uuid.uuid4().int % 1000}\n")
    return stack


def test_throttling_is_retried_after_retry_after(aml, azurite, tmp_path, stack_writer,
                                                 run_mlform):
    stack = _stack(aml, azurite, tmp_path, stack_writer)
    aml.fail_next("CreateOrUpdateDataVersion", 429)
    got = run_mlform(["apply", "--auto-approve"], stack, env=provider_env(aml, azurite),
                     timeout=300)
    assert got.returncode == 0, got.stdout + got.stderr


def test_an_authorization_failure_names_the_role_and_scope(aml, azurite, tmp_path,
                                                           stack_writer, run_mlform):
    stack = _stack(aml, azurite, tmp_path, stack_writer)
    aml.fail_next("CreateOrUpdateDataVersion", 403)
    got = run_mlform(["apply", "--auto-approve"], stack, env=provider_env(aml, azurite),
                     timeout=300)
    assert got.returncode == 1
    assert "error: rows failed: permission denied for 'rows': the identity running mlform " \
           "may not perform 'Microsoft.MachineLearningServices/workspaces/data/versions/" \
           "write' on '/subscriptions/" in got.stderr, got.stderr
    assert "assign it the role 'AzureML Data Scientist' on that scope" in got.stderr
    assert "Traceback" not in got.stderr
