"""`mlform state migrate` from the local backend to S3 (moto) and back (issue 13 item 7),
and both backends locked for the whole copy: a teammate's apply against S3 is refused
while a migration from S3 holds the locks, and the local lock is held too."""

from __future__ import annotations

import json
import shutil
import threading

import pytest
from conftest import BUCKET, REGION
from mlform.engine.state.backend import LockHeld, LockInfo
from mlform.engine.state.local_backend import LocalBackend
from mlform.engine.state.migrate import ALREADY_THERE, migrate
from mlform.engine.state.s3_backend import S3Backend

pytestmark = pytest.mark.e2e

KEY = "stacks/roundtrip/state.json"
SPEC = """\
version: 1
stack: roundtrip
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


def on_s3(stack, url: str) -> None:
    (stack / "mlform.yaml").write_text(SPEC.replace(
        "BACKEND", f"backend: {{type: s3, bucket: {BUCKET}, key: {KEY}, region: {REGION}, "
                   f"endpoint_url: '{url}'}}"))


def on_local(stack) -> None:
    (stack / "mlform.yaml").write_text(SPEC.replace("BACKEND", "backend: {type: local}"))


def ok(run_mlform, args, cwd):
    got = run_mlform(args, cwd)
    assert got.returncode == 0, got.stdout + got.stderr
    return got


def s3_state(client) -> dict:
    return json.loads(client("s3").get_object(Bucket=BUCKET, Key=KEY)["Body"].read())


@pytest.fixture
def on_s3_stack(aws, null_stack, run_mlform):
    """A stack applied on the local backend, then migrated to S3 by the command."""
    stack = null_stack(SPEC.replace("BACKEND", "backend: {type: local}"))
    ok(run_mlform, ["apply", "--auto-approve"], stack)
    on_s3(stack, aws)
    ok(run_mlform, ["state", "migrate"], stack)
    return stack


def test_state_goes_to_s3_and_back_to_local(on_s3_stack, run_mlform, client, aws):
    stack = on_s3_stack
    stale = json.loads((stack / ".mlform" / "state.json").read_text())
    # an apply on S3 moves the state on: the local copy left behind is now stale
    (stack / "mlform.yaml").write_text((stack / "mlform.yaml").read_text()
                                       .replace("target: y", "target: z"))
    ok(run_mlform, ["apply", "--auto-approve"], stack)
    there = s3_state(client)
    assert there["serial"] > stale["serial"]
    assert there["resources"]["train"]["inputs"]["target"] == "z"

    on_local(stack)
    (stack / "mlform.yaml").write_text((stack / "mlform.yaml").read_text()
                                       .replace("target: y", "target: z"))
    back = ok(run_mlform, ["state", "migrate"], stack)
    assert back.stdout.startswith(
        f"Copied the state (2 resources, lineage {there['lineage']}, serial "
        f"{there['serial']}) from s3 state 's3://{BUCKET}/{KEY}' to local state "
        "'.mlform/state.json'.\n")
    local = json.loads((stack / ".mlform" / "state.json").read_text())
    assert (local["lineage"], local["serial"], local["resources"]) == \
        (there["lineage"], there["serial"], there["resources"])
    assert client("s3").list_objects_v2(Bucket=BUCKET, Prefix=KEY + ".lock")["KeyCount"] == 0
    free = LocalBackend(stack)  # the local lock was released too
    taken = LockInfo.mine("apply")
    free.lock(taken)
    free.unlock(taken.id)
    plan = run_mlform(["plan", "--detailed-exitcode"], stack)
    assert plan.returncode == 0, plan.stdout + plan.stderr


class PausedS3(S3Backend):
    """The S3 backend, holding still in the middle of a migration's copy (after both
    locks are taken, before the state is read) until the test lets it go."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reading = threading.Event()
        self.go = threading.Event()

    def read(self):
        self.reading.set()
        assert self.go.wait(120), "the test never let the migration go on"
        return super().read()


def test_an_apply_is_refused_while_a_migration_holds_both_locks(on_s3_stack, run_mlform,
                                                                tmp_path, aws):
    teammate = tmp_path / "teammate"
    shutil.copytree(on_s3_stack, teammate)  # another checkout, on S3 too
    on_local(on_s3_stack)
    source = PausedS3(BUCKET, KEY, REGION, endpoint_url=aws)
    target = LocalBackend(on_s3_stack)
    info = LockInfo.mine("state migrate")
    done = {}
    worker = threading.Thread(target=lambda: done.update(result=migrate(source, target, info)))
    worker.start()
    try:
        assert source.reading.wait(60)
        refused = run_mlform(["apply", "--auto-approve"], teammate)
        assert refused.returncode == 1
        assert refused.stderr.startswith(f"error: the state is locked: ID {info.id}, held by ")
        assert "running 'state migrate'" in refused.stderr
        with pytest.raises(LockHeld):
            LocalBackend(on_s3_stack).lock(LockInfo.mine("apply"))
    finally:
        source.go.set()
        worker.join(60)
    # nothing was applied on S3 since the first migration: the local copy holds this serial
    assert done["result"].outcome == ALREADY_THERE
    assert ok(run_mlform, ["plan", "--detailed-exitcode"], teammate).returncode == 0
