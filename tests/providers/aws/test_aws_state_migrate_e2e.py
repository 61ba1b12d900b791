"""Moving a stack's state from the local backend to S3 (moto) with `mlform state migrate`."""

from __future__ import annotations

import json
import threading

import pytest
from conftest import BUCKET, REGION
from mlform.engine.state.backend import LockInfo
from mlform.engine.state.s3_backend import S3Backend

pytestmark = pytest.mark.e2e

KEY = "stacks/moving/state.json"
SPEC = """\
version: 1
stack: moving
BACKEND
providers:
  null: {}
resources:
  data:
    type: dataset
    source: data.csv
  train:
    type: training_job
    dataset: ${data.uri}
    algorithm: mlp_classifier
    target: y
"""


@pytest.fixture
def moved(aws, null_stack, run_mlform):
    """A stack applied on the local backend, whose spec now names an S3 backend."""
    stack = null_stack(SPEC.replace("BACKEND\n", ""))
    got = run_mlform(["apply", "--auto-approve"], stack)
    assert got.returncode == 0, got.stderr
    (stack / "mlform.yaml").write_text(SPEC.replace(
        "BACKEND", f"backend: {{type: s3, bucket: {BUCKET}, key: {KEY}, region: {REGION}, "
                   f"endpoint_url: '{aws}'}}"))
    return stack


def s3_state(client) -> dict | None:
    listed = client("s3").list_objects_v2(Bucket=BUCKET, Prefix=KEY)
    if not any(o["Key"] == KEY for o in listed.get("Contents", [])):
        return None
    return json.loads(client("s3").get_object(Bucket=BUCKET, Key=KEY)["Body"].read())


def test_local_to_s3_is_refused_then_migrated(moved, run_mlform, client, aws):
    refused = run_mlform(["plan"], moved)
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        "error: the backend changed, but the state is still in local state "
        "'.mlform/state.json' (2 resources)\n  --> mlform.yaml:3:1\n")
    assert f"  = mlform.yaml now points at s3 state 's3://{BUCKET}/{KEY}'; " in refused.stderr
    assert s3_state(client) is None

    local = json.loads((moved / ".mlform" / "state.json").read_text())
    got = run_mlform(["state", "migrate"], moved)
    assert got.returncode == 0, got.stderr
    assert got.stdout.startswith(
        f"Copied the state (2 resources, lineage {local['lineage']}, serial "
        f"{local['serial']}) from local state '.mlform/state.json' to s3 state "
        f"'s3://{BUCKET}/{KEY}'.\n")
    assert s3_state(client) == local
    assert client("s3").list_objects_v2(Bucket=BUCKET, Prefix=KEY + ".lock")["KeyCount"] == 0
    plan = run_mlform(["plan", "--detailed-exitcode"], moved)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    record = json.loads((moved / ".mlform" / "backend.json").read_text())
    assert record["backend"] == {"type": "s3", "bucket": BUCKET, "key": KEY,
                                 "region": REGION, "endpoint_url": aws}


def test_migrate_waits_for_or_is_refused_by_the_s3_lock(moved, run_mlform, client, aws):
    holder = S3Backend(BUCKET, KEY, REGION, endpoint_url=aws)
    held = LockInfo.mine("apply")
    holder.lock(held)

    refused = run_mlform(["state", "migrate"], moved)
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"error: the state is locked: ID {held.id}, held by ")
    assert "running 'apply'" in refused.stderr
    assert f"  = lock: s3 state 's3://{BUCKET}/{KEY}'\n" in refused.stderr
    assert s3_state(client) is None

    release = threading.Timer(2.0, holder.unlock, args=(held.id,))
    release.start()
    try:
        waited = run_mlform(["state", "migrate", "--lock-timeout", "60s"], moved)
    finally:
        release.join()
    assert waited.returncode == 0, waited.stderr
    assert sorted(s3_state(client)["resources"]) == ["data", "train"]
