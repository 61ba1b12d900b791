"""`plan --preview` of a stack whose real provider is aws: the scratch copy is a local
stack (every provider turned into `local`, only what the retrained jobs need, a large
dataset sampled), and the champion's figures come from the aws state."""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
from mlform.engine.plan.model import Action, Plan, ResourceChange
from mlform.engine.preview import make_preview, retrained
from mlform.engine.preview.scratch import build
from mlform.engine.spec.loader import load_stack
from mlform.engine.state.model import ResourceState, State
from mlform.engine.values import Unknown

AWS_STACK = """
    version: 1
    stack: fraud
    backend: {type: s3, bucket: state-bucket, key: fraud/state.json, region: eu-west-1}
    providers:
      sagemaker: {type: aws, region: eu-west-1, role_arn: "arn:aws:iam::1:role/r",
                  bucket: artifacts}
    resources:
      transactions:
        type: dataset
        source: data/transactions.csv
      train:
        type: training_job
        dataset: ${transactions.uri}
        algorithm: mlp_classifier
        target: is_fraud
        hyperparameters: {epochs: 3, lr: 0.01}
        provider_options: {aws: {instance_type: ml.m5.xlarge}}
      fraud_model:
        type: model
        artifact: ${train.artifact}
        gates:
          - metric: auc
            min: 0.85
      fraud_endpoint:
        type: endpoint
        variants:
          champion: {model: "${fraud_model.uri}", weight: 100}
    """
CSV = "amount,age,is_fraud\n" + "".join(
    f"{i * 3.5 % 97},{20 + i % 40},{int(i * 3.5 % 97 > 60)}\n" for i in range(120))


@pytest.fixture
def aws_stack(tmp_path: Path) -> Path:
    stack = tmp_path / "stack"
    (stack / "data").mkdir(parents=True)
    (stack / "mlform.yaml").write_text(textwrap.dedent(AWS_STACK).lstrip())
    (stack / "data" / "transactions.csv").write_text(CSV)
    (stack / "notes.txt").write_text("copied along")
    return stack


def digests(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_the_scratch_copy_of_an_aws_stack_is_a_local_stack_of_the_jobs_inputs(aws_stack):
    """The endpoint and model stay out, the provider keeps its name but becomes local, the
    backend is local, and a dataset over the row cap is a seeded sample in the copy."""
    before = digests(aws_stack)
    scratch = build(load_stack(aws_stack), ["train"], row_cap=50)
    try:
        spec = json.loads((scratch.dir / "mlform.yaml").read_text())
        assert spec["backend"] == {"type": "local"}
        assert spec["providers"] == {"sagemaker": {"type": "local"}}
        assert list(spec["resources"]) == ["transactions", "train"]
        assert spec["resources"]["transactions"] == {
            "type": "dataset", "source": "preview-data/transactions.csv", "format": "csv"}
        assert scratch.sampled == {"transactions": "50 of 120 rows"}
        assert len((scratch.dir / "preview-data" / "transactions.csv").read_text()
                   .splitlines()) == 51
        assert (scratch.dir / "notes.txt").read_text() == "copied along"
        assert not (scratch.dir / "data" / "transactions.csv").exists()
        copy = load_stack(scratch.dir)  # a valid stack, every resource on a local provider
        assert {p.type for p in copy.providers.values()} == {"local"}
    finally:
        scratch.close()
    assert not scratch.dir.exists() and digests(aws_stack) == before


def plan_and_state(stack) -> tuple[Plan, State]:
    job = ResourceChange("train", "training_job", "sagemaker", Action.DELETE_CREATE,
                         {}, stack.resources["train"].inputs)
    model = ResourceChange("fraud_model", "model", "sagemaker", Action.UPDATE, {},
                           {"artifact": Unknown("train.artifact"),
                            "gates": [{"metric": "auc", "min": 0.85}]},
                           dependencies=("train",))
    endpoint = ResourceChange("fraud_endpoint", "endpoint", "sagemaker", Action.NOOP, {}, {})
    plan = Plan("fraud", "lineage", 4, "", (job, model, endpoint))
    state = State("lineage", 4, "fraud", resources={
        "train": ResourceState("train", "training_job", "sagemaker", "fraud-train-1", {},
                               {"metrics": {"auc": 0.95, "accuracy": 0.9}}),
        "fraud_model": ResourceState(
            "fraud_model", "model", "sagemaker", "fraud-model", {"artifact": "s3://a/m.tgz"},
            {"gates": [{"gate": "auc >= 0.85", "passed": True, "measured": 0.95}]})})
    return plan, state


def test_only_models_whose_training_job_retrains_are_previewed(aws_stack):
    plan, _ = plan_and_state(load_stack(aws_stack))
    assert [(m.name, j.name) for m, j in retrained(plan)] == [("fraud_model", "train")]


@pytest.mark.e2e
def test_an_aws_stack_previews_on_local_against_the_champion_figures_in_state(aws_stack):
    """No cloud is reached: the job trains in the local scratch copy, is judged on its own
    held-out rows (an aws champion's rows are not on this machine), and the champion's
    side is what the aws provider recorded; the real stack gets no .mlform at all."""
    stack = load_stack(aws_stack)
    before = digests(aws_stack)
    session = SimpleNamespace(stack=stack, dir=aws_stack,
                              options=SimpleNamespace(vars=[], var_files=[]))
    plan, state = plan_and_state(stack)
    said: list[str] = []
    section = make_preview(session, plan, state, row_cap=100, say=said.append)

    assert said == ["preview: training train on a scratch copy with the local provider"]
    [model] = section["models"]
    assert model["error"] == ""
    assert model["evaluated_on"] == (
        "the candidate's own held-out rows (the champion's figures are those its aws "
        "provider recorded in state), 20 rows")
    assert model["sampled"] == "transactions: 100 of 120 rows"
    metrics = {m["metric"]: m for m in model["metrics"]}
    assert metrics["auc"]["before"] == 0.95 and metrics["accuracy"]["before"] == 0.9
    assert 0.0 <= metrics["auc"]["after"] <= 1.0
    [gate] = model["gates"]
    assert gate["gate"] == "auc >= 0.85" and gate["before"] == 0.95
    assert gate["passed_before"] is True
    assert gate["passed"] is (gate["measured"] >= 0.85)
    assert gate["measured"] == metrics["auc"]["after"]
    assert digests(aws_stack) == before and not (aws_stack / ".mlform").exists()
