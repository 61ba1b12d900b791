"""Moves through the installed `mlform` command (issue 13 item 1): the example stack's
dataset, training job and model trained on `local`, then their `provider:` lines changed
to aws (moto). The plan shows moves, not replacements; apply copies and verifies the
content, creates no SageMaker training job, registers the model on aws with the gate
results and metrics recorded on local, and leaves no local file of the moved resources.
An apply killed with SIGKILL in the middle of the moves completes on the next apply with
nothing duplicated or orphaned.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from conftest import BUCKET, REGION, ROLE

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

STACK = """\
version: 1
stack: fraud
providers:
  local: {{}}
  sagemaker: {{type: aws, region: {region}, role_arn: "{role}", bucket: {bucket},
              endpoint_url: "{url}", poll_interval: 0.01}}
resources:
  transactions:
    type: dataset
    provider: {provider}
    source: data/transactions.csv
  train:
    type: training_job
    provider: {provider}
    dataset: ${{transactions.uri}}
    algorithm: logistic_regression
    target: is_fraud
    hyperparameters: {{epochs: 3, lr: 0.05}}
  fraud_model:
    type: model
    provider: {provider}
    artifact: ${{train.artifact}}
    gates:
      - metric: auc
        min: 0.5
"""
APPLY = ["apply", "--auto-approve", "--no-color"]
MOVED = ("transactions", "train", "fraud_model")


def write(stack: Path, url: str, provider: str) -> None:
    (stack / "mlform.yaml").write_text(STACK.format(region=REGION, role=ROLE, bucket=BUCKET,
                                                    url=url, provider=provider))


def ok(run_mlform, args: list, cwd: Path, timeout: float = 300):
    proc = run_mlform(args, cwd, timeout=timeout)
    assert proc.returncode == 0, f"mlform {args} exited {proc.returncode}\n{proc.stdout}\n" \
                                 f"{proc.stderr}"
    return proc


def state(stack: Path) -> dict:
    doc = json.loads((stack / ".mlform" / "state.json").read_text())
    return doc["resources"]


@pytest.fixture
def on_local(aws, tmp_path, run_mlform) -> Path:
    """The stack trained on local, its provider lines switched to aws (not applied)."""
    from mlform.engine.scaffold import write_sample_data

    write_sample_data(tmp_path / "data" / "transactions.csv", rows=400, seed=3)
    write(tmp_path, aws, "local")
    ok(run_mlform, APPLY, tmp_path)
    write(tmp_path, aws, "sagemaker")
    return tmp_path


def local_files(stack: Path) -> list[str]:
    root = stack / ".mlform" / "local"
    return sorted(str(p.relative_to(root)) for area in ("datasets", "runs", "registry")
                  for p in (root / area).rglob("*") if p.is_file())


def test_a_provider_change_moves_the_stack_instead_of_retraining(on_local, run_mlform,
                                                                 client):
    before = state(on_local)
    plan = ok(run_mlform, ["plan", "--no-color"], on_local).stdout
    assert "-> training_job.train will be moved from 'local' to 'sagemaker'\n" \
           "    # moves from provider 'local' to 'sagemaker': copied, not re-run\n" \
           "    # copies " in plan
    assert "-> dataset.transactions will be moved from 'local' to 'sagemaker'" in plan
    assert "-> model.fraud_model will be moved from 'local' to 'sagemaker'" in plan
    assert "Plan: 0 to add, 0 to change, 0 to destroy, 3 to move." in plan
    doc = json.loads(ok(run_mlform, ["plan", "--format", "json"], on_local).stdout)
    moves = {c["name"]: c for c in doc["changes"] if c["action"] == "move"}
    assert set(moves) == set(MOVED) and doc["summary"]["move"] == 3
    assert moves["train"]["moved_from"] == "local" and moves["train"]["copy_size"] > 0
    assert {f["path"] for f in moves["train"]["copies"]} >= {"metrics.json", "holdout.parquet"}
    markdown = ok(run_mlform, ["plan", "--format", "markdown"], on_local).stdout
    assert "🔵 move `local` -> `sagemaker`" in markdown and "3 to move" in markdown

    applied = ok(run_mlform, APPLY, on_local).stdout
    assert "Apply complete: 0 added, 0 changed, 3 destroyed, 3 moved." in applied
    sm = client("sagemaker")
    assert sm.list_training_jobs()["TrainingJobSummaries"] == []
    after = state(on_local)
    assert set(after) == set(MOVED)
    assert all(after[n]["provider"] == "sagemaker" for n in MOVED)
    assert after["train"]["outputs"]["metrics"] == before["train"]["outputs"]["metrics"]
    assert after["train"]["outputs"]["run_id"] == before["train"]["outputs"]["run_id"]
    assert after["fraud_model"]["outputs"]["gates"] == before["fraud_model"]["outputs"]["gates"]
    package = sm.describe_model_package(ModelPackageName=after["fraud_model"]["outputs"]["uri"])
    recorded = json.loads(package["CustomerMetadataProperties"]["mlform:gates"])
    assert recorded == before["fraud_model"]["outputs"]["gates"]
    artifact = after["train"]["outputs"]["artifact"]
    assert artifact.endswith(f"/training/train/{before['train']['outputs']['run_id']}"
                             "/output/model.tar.gz")
    assert local_files(on_local) == []
    assert "No changes." in ok(run_mlform, ["plan", "--no-color"], on_local).stdout


def test_a_move_killed_midway_completes_on_the_next_apply(on_local, run_mlform, client,
                                                          spawn_mlform):
    proc = spawn_mlform(APPLY, on_local)
    journal = on_local / ".mlform" / "state.journal"
    deadline = time.monotonic() + 120
    # kill once the training run's move has begun: its old object is set aside
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists() and '"train~deposed"' in journal.read_text():
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    plan = ok(run_mlform, ["plan", "--no-color"], on_local).stdout
    assert "to add" in plan and "retrain" not in plan
    ok(run_mlform, APPLY, on_local)
    after = state(on_local)
    assert set(after) == set(MOVED)
    assert all(after[n]["provider"] == "sagemaker" for n in MOVED)
    sm = client("sagemaker")
    assert sm.list_training_jobs()["TrainingJobSummaries"] == []
    groups = sm.list_model_package_groups()["ModelPackageGroupSummaryList"]
    assert len(groups) == 1
    packages = sm.list_model_packages(
        ModelPackageGroupName=groups[0]["ModelPackageGroupName"])["ModelPackageSummaryList"]
    assert len(packages) == 1
    s3 = client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert len([k for k in keys if k.endswith("model.tar.gz")]) == 1
    assert len([k for k in keys if "/datasets/" in k]) == 1
    assert local_files(on_local) == []
    assert "No changes." in ok(run_mlform, ["plan", "--no-color"], on_local).stdout
