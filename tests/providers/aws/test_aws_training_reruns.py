"""A training_job plans the same re-runs, for the same reasons, on aws as on local: both
take them from mlform.ml.fingerprint."""

from __future__ import annotations

import pytest
from mlform.engine.provider import DiffRequest, ProviderContext, ResourceRef
from mlform.ml.fingerprint import code_digest
from mlform.providers.local.training.handler import TrainingJobHandler as LocalJobs

JOB = ResourceRef("train", "training_job")
BASE = {"dataset": "s3://mlform-test-bucket/fraud/datasets/tx/v1/data.csv",
        "algorithm": "mlp_classifier", "target": "is_fraud",
        "hyperparameters": {"epochs": 5, "lr": 0.01}}
SCRIPT = "train.py"


@pytest.mark.parametrize(("change", "expected"), [
    pytest.param({"seed": 3}, [("seed", "another seed means a new run")], id="seed"),
    pytest.param({"test_size": 0.4}, [("test_size", "another held-out split means a new run")],
                 id="test_size"),
    pytest.param({"features": ["amount", "age"]},
                 [("features", "other features mean a new run")], id="features"),
    pytest.param({"exclude": ["gender"]}, [("exclude", "other features mean a new run")],
                 id="exclude"),
    pytest.param({"target": "label"}, [("target", "another target means a new run")],
                 id="target"),
    pytest.param({"dataset": "s3://mlform-test-bucket/fraud/datasets/tx/v2/data.csv"},
                 [("dataset", "new training data means a new run")], id="data"),
    pytest.param({"hyperparameters": {"epochs": 9, "lr": 0.01}},
                 [("hyperparameters.epochs", "new hyperparameters mean a new run")],
                 id="hyperparameters"),
    pytest.param({"algorithm": "logistic_regression"},
                 [("algorithm", "another algorithm means a new run")], id="algorithm"),
])
def test_aws_and_local_plan_the_same_reruns_with_the_same_reasons(change, expected,
                                                                   make_provider, tmp_path):
    desired = {**BASE, **change}
    prior_outputs = {"code_digest": code_digest(None)}
    request = DiffRequest(JOB, BASE, prior_outputs, desired)
    aws = make_provider().diff(request)
    local = local_handler(tmp_path).diff(request)
    assert aws.error is None and local.error is None, (aws.error, local.error)
    assert reasons(aws) == reasons(local) == expected


def test_an_edited_script_is_a_rerun_on_both_with_the_same_reason(make_provider, tmp_path):
    script = tmp_path / SCRIPT
    script.write_text("print('first')\n")
    before = code_digest(script)
    script.write_text("print('second')\n")
    inputs = {**BASE, "algorithm": None, "entrypoint": SCRIPT}
    request = DiffRequest(JOB, inputs, {"code_digest": before}, inputs)
    aws = make_provider().diff(request)
    local = local_handler(tmp_path).diff(request)
    assert reasons(aws) == reasons(local) == [("code_digest", "train.py changed")]
    assert aws.changes[0].after == local.changes[0].after == code_digest(script)
    assert aws.note == local.note == \
        f"train.py changed: code digest {before} -> {code_digest(script)}"


def test_a_job_applied_by_an_earlier_release_plans_no_rerun(make_provider, tmp_path):
    """Earlier aws releases recorded no code digest for a built-in trainer."""
    request = DiffRequest(JOB, BASE, {"code_digest": None, "run_id": "fraud-train-0"}, BASE)
    assert make_provider().diff(request).changes == []


def test_run_defining_inputs_name_another_sagemaker_job(make_provider):
    jobs = make_provider().handler("training_job")
    names = {jobs.job_name("train", {**BASE, **change})
             for change in ({}, {"seed": 1}, {"test_size": 0.3}, {"features": ["amount"]},
                            {"provider_options": {"aws": {"volume_gb": 50}}})}
    assert len(names) == 5
    assert jobs.job_name("train", {**BASE, "seed": 0, "test_size": 0.2}) == \
        jobs.job_name("train", BASE)  # a default written out is the same job


def local_handler(stack_dir) -> LocalJobs:
    return LocalJobs(ProviderContext("fraud", stack_dir, "local", {},
                                     stack_dir / ".mlform" / "local"))


def reasons(diff) -> list[tuple[str, str]]:
    return [(c.path, c.reason) for c in diff.changes if c.forces_replacement]
