"""What serves is never deleted before its replacement is proven (issue: a forced model
replacement whose gate failed deleted the version the endpoint served, and said
"0 destroyed"); aliases follow what is really served.

The tests share one stack and run in file order.
"""

from __future__ import annotations

import json
import os
import shutil
import signal

import pytest

from .conftest import Traffic, health, mlform_ok, output, server_record

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

APPLY = ["apply", "--auto-approve", "--no-color"]


def registry(stack_dir):
    return stack_dir / ".mlform" / "local" / "registry" / "fraud_model"


def served(url: str) -> str:
    return health(url)["variants"]["champion"]["model"]


def last_audit(stack_dir) -> dict:
    lines = (stack_dir / ".mlform" / "audit.jsonl").read_text().splitlines()
    return json.loads(lines[-1])


def test_a_forced_replacement_whose_gate_fails_keeps_the_served_version(fraud_stack_dir,
                                                                         run_mlform):
    mlform_ok(run_mlform, APPLY, fraud_stack_dir, timeout=300)
    url = output(run_mlform, fraud_stack_dir, "url")
    assert served(url) == "local://models/fraud_model/1"

    failed = run_mlform(APPLY + ["--replace", "fraud_model", "--var", "min_auc=0.999"],
                        fraud_stack_dir, timeout=300)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "gate 'auc >= 0.999' failed" in failed.stderr
    assert "0 added, 0 changed, 0 destroyed" in failed.stdout
    assert (registry(fraud_stack_dir) / "1" / "artifact").is_dir()
    listed = mlform_ok(run_mlform, ["state", "list"], fraud_stack_dir).stdout
    assert "fraud_model\tmodel" in listed and "~deposed" not in listed
    assert not [c for c in last_audit(fraud_stack_dir)["changes"] if c["action"] == "delete"]

    # the version is still there for a server that starts again
    os.kill(server_record(fraud_stack_dir)["pid"], signal.SIGKILL)
    mlform_ok(run_mlform, APPLY, fraud_stack_dir, timeout=300)
    assert served(output(run_mlform, fraud_stack_dir, "url")) == \
        "local://models/fraud_model/1"


def test_a_forced_replacement_that_passes_keeps_the_registry(fraud_stack_dir, run_mlform):
    done = mlform_ok(run_mlform, APPLY + ["--replace", "fraud_model"], fraud_stack_dir,
                     timeout=300)
    assert "evaluating 1 gate(s) on the held-out rows again" in done.stdout
    assert "0 destroyed" in done.stdout
    assert (registry(fraud_stack_dir) / "1" / "artifact").is_dir()
    again = run_mlform(["plan", "--detailed-exitcode", "--no-color"], fraud_stack_dir)
    assert again.returncode == 0, again.stdout + again.stderr


def test_deleting_a_model_an_endpoint_serves_is_refused(fraud_stack_dir, run_mlform):
    spec = fraud_stack_dir / "mlform.yaml"
    original = spec.read_text()
    assert "\n    type: model\n" in original
    spec.write_text(original.replace(
        "\n    type: model\n",
        "\n    type: model\n    lifecycle: {create_before_destroy: false}\n"))
    try:
        refused = run_mlform(APPLY + ["--replace", "fraud_model"], fraud_stack_dir,
                             timeout=300)
    finally:
        spec.write_text(original)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "model 'fraud_model' cannot be deleted: endpoint 'fraud_endpoint' serves " \
           "version 1" in refused.stderr
    assert (registry(fraud_stack_dir) / "1" / "artifact").is_dir()


def test_a_rolled_back_canary_moves_no_alias(fraud_stack_dir, run_mlform):
    url = output(run_mlform, fraud_stack_dir, "url")
    aliases = json.loads((registry(fraud_stack_dir) / "aliases.json").read_text())
    assert aliases == {"champion": 1}
    from .conftest import write_fraud_data

    write_fraud_data(fraud_stack_dir, seed=5)
    spec = fraud_stack_dir / "mlform.yaml"
    original = spec.read_text()
    spec.write_text(original.replace(
        "    rollout: {strategy: canary, steps: [10, 50, 100], wait: 200ms}\n",
        "    rollout: {strategy: canary, steps: [10, 50, 100], wait: 200ms}\n"
        "    rollback: {max_p99_latency_ms: 0.001, min_requests: 1}\n"))
    try:
        with Traffic(url) as traffic:
            failed = run_mlform(APPLY, fraud_stack_dir, timeout=300)
    finally:
        spec.write_text(original)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "rolled back" in failed.stderr
    assert traffic.failures == []
    assert (registry(fraud_stack_dir) / "2").is_dir()  # registered: its gates passed
    assert served(url) == "local://models/fraud_model/1"
    aliases = json.loads((registry(fraud_stack_dir) / "aliases.json").read_text())
    assert aliases == {"champion": 1}, "the alias moved to a version that was rolled back"
    pending = json.loads((registry(fraud_stack_dir) / "pending.json").read_text())
    assert pending == {"champion": 2}

    # the same version rolled out for good takes the alias when the rollout completes
    with Traffic(url):
        mlform_ok(run_mlform, APPLY, fraud_stack_dir, timeout=300)
    assert served(url) == "local://models/fraud_model/2"
    aliases = json.loads((registry(fraud_stack_dir) / "aliases.json").read_text())
    assert aliases == {"champion": 2}
    assert not (registry(fraud_stack_dir) / "pending.json").exists()


def test_drift_flags_an_endpoint_serving_a_version_that_no_longer_exists(fraud_stack_dir,
                                                                         run_mlform):
    shutil.rmtree(registry(fraud_stack_dir) / "2")
    drift = run_mlform(["drift", "--no-color"], fraud_stack_dir)
    assert drift.returncode == 2, drift.stdout + drift.stderr
    assert "local://models/fraud_model/2, which no longer exist in the registry" in \
        drift.stdout + drift.stderr
