"""A retraining policy fires on aws under `mlform watch`: the engine decides it (as for
every provider) and retrains by a targeted apply that re-runs the SageMaker training
job and registers a new model version. The stack keeps its state locally; the
provider talks to moto's server."""

from __future__ import annotations

import json
import time

import pytest
from aws_stack import TRAINED_MODEL_STACK, write_data
from conftest import BUCKET, REGION, ROLE
from moto_extensions import SCRIPT

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

STACK = TRAINED_MODEL_STACK + """\
  nightly:
    type: retraining_policy
    training_job: train
    model: fraud_model
    action: {action}
    triggers:
      - schedule: 1s
    cooldown: 0s
"""


def succeed(run_mlform, args: list[str], stack) -> str:
    done = run_mlform(args, stack)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def outputs_of(run_mlform, stack, name: str) -> dict:
    return json.loads(succeed(run_mlform, ["show", name, "--json"], stack))["outputs"]


@pytest.mark.parametrize(("action", "said", "retrained"), [
    ("retrain", ["nightly: policy nightly: retraining 'train' (retrain): schedule 1s",
                 "nightly: retraining 'train' because schedule 1s",
                 "nightly: retrain rolled out"], True),
    ("record_only", ["nightly: policy nightly: would retrain 'train' (record_only): "
                     "schedule 1s"], False),
], ids=["retrain", "record-only"])
def test_a_schedule_policy_fires_on_watch(aws, tmp_path, run_mlform, client,
                                          action, said, retrained):
    (tmp_path / "mlform.yaml").write_text(STACK.format(
        region=REGION, role=ROLE, bucket=BUCKET, url=aws, action=action))
    write_data(tmp_path)
    SCRIPT.training["fraud-train-"] = {"metrics": {"auc": 0.93}}
    succeed(run_mlform, ["apply", "--auto-approve", "--no-color"], tmp_path)
    before = outputs_of(run_mlform, tmp_path, "train")["run_id"]
    assert outputs_of(run_mlform, tmp_path, "nightly")["last_action"] is None

    time.sleep(1.1)  # the schedule counts from the policy's apply
    out = succeed(run_mlform, ["watch", "--once", "--no-color"], tmp_path)

    for line in said:
        assert line in out
    assert ("retrain rolled out" in out) is retrained
    last = outputs_of(run_mlform, tmp_path, "nightly")["last_action"]
    assert (last["action"], last["training_job"]) == (action, "train")
    assert last["reason"].startswith("schedule 1s: last retrain ")
    jobs = [j["TrainingJobName"] for j in
            client("sagemaker").list_training_jobs()["TrainingJobSummaries"]]
    after = outputs_of(run_mlform, tmp_path, "train")["run_id"]
    model = outputs_of(run_mlform, tmp_path, "fraud_model")
    if retrained:  # a new SageMaker job ran (the old one is released), a new version
        assert after != before and sorted(jobs) == sorted([before, after])
        assert model["version"] == 2
    else:
        assert (after, jobs, model["version"]) == (before, [before], 1)
