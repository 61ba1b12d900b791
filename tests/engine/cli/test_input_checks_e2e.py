"""Provider checks of resource inputs through the installed command: a broken stack fails
`validate` (and `plan`) with the problem at its file:line:col and the fix, before any
apply; a correct stack, and one whose inputs are known only after apply, still plan."""

from __future__ import annotations

import pytest

CSV = "amount,hour,merchant_risk,is_fraud\n" + "".join(
    f"{10 + i * 3.5:.2f},{i % 24},{(i % 10) / 10:.1f},{int(i % 7 == 0)}\n" for i in range(60))

STACK = """\
version: 1
stack: checks
backend: {type: local}
providers:
  local: {}
variables:
  token: {type: string, sensitive: true, default: hunter2}
resources:
  transactions:
    type: dataset
    source: data/transactions.csv
  train:
    type: training_job
    dataset: ${transactions.uri}
    algorithm: mlp_classifier
    target: is_fraud
    hyperparameters:
      epochs: 3
      lr: 0.01
  fraud_model:
    type: model
    artifact: ${train.artifact}
  fraud_endpoint:
    type: endpoint
    variants:
      champion:
        model: ${fraud_model.uri}
  drift_monitor:
    type: monitor
    endpoint: ${fraud_endpoint.id}
    reference: ${transactions.uri}
"""

AWS_PROVIDER = """\
  aws:
    role_arn: arn:aws:iam::123456789012:role/mlform
    bucket: my-ml-bucket
"""


def _stack(write_stack, tmp_path, *edits: tuple[str, str]):
    text = STACK
    for old, new in edits:
        assert old in text
        text = text.replace(old, new, 1)
    directory = write_stack(tmp_path / "stack", text)
    (directory / "data").mkdir()
    (directory / "data" / "transactions.csv").write_text(CSV)
    return directory


def _location(directory, line_has: str, token: str) -> str:
    lines = (directory / "mlform.yaml").read_text().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if line_has in line)
    return f"--> mlform.yaml:{number}:{lines[number - 1].index(token) + 1}"


# (id, reason, edit of the spec, line that holds the fault, token at fault, summary, help)
CASES = [
    ("unknown-hyperparameter", "a misspelt hyperparameter is named, with the right spelling",
     ("      lr: 0.01", "      lrr: 0.01"), "lrr:", "lrr",
     "error: unknown hyperparameter 'lrr' for 'mlp_classifier'", "help: did you mean 'lr'?"),
    ("hyperparameter-of-wrong-type", "a wrongly typed hyperparameter says the type expected",
     ("epochs: 3", "epochs: three"), "epochs:", "three",
     "error: hyperparameter 'epochs' of 'mlp_classifier' must be an integer, not 'three'",
     "help: write epochs: 10"),
    ("variant-model-as-plain-name", "a model written by name is refused with the reference",
     ("model: ${fraud_model.uri}", "model: fraud_model"), "model: fraud_model", "fraud_model",
     "error: variant 'champion': model 'fraud_model' is a plain name, not a model version",
     "help: refer to the model resource's uri: model: ${fraud_model.uri}"),
    ("sensitive-training-input", "a training job writes its inputs in clear",
     ("    target: is_fraud\n", "    target: is_fraud\n    tags:\n      team: ${var.token}\n"),
     "team:", "${var.token}",
     "error: 'tags.team' is sensitive, but a training_job's inputs are written in clear to "
     "the run's params.json", "help: use a value that is not sensitive"),
    ("sensitive-monitor-tag", "a monitor writes its inputs in clear",
     ("    reference: ${transactions.uri}\n",
      "    reference: ${transactions.uri}\n    tags:\n      owner: ${var.token}\n"),
     "owner:", "${var.token}",
     "error: 'tags.owner' is sensitive, but a monitor's inputs are written in clear to its "
     "config.json", "help: use a value that is not sensitive"),
    ("aws-provider-without-region", "a provider's configuration is checked at its place",
     [("  local: {}\n", "  local: {}\n" + AWS_PROVIDER),
      ("    type: dataset\n", "    type: dataset\n    provider: aws\n")], "  aws:", "aws",
     "error: provider 'aws': region: required setting is missing",
     "help: add the AWS region to create resources in, e.g. 'region: eu-west-1'"),
]
PLAN_ONLY = [
    ("target-not-a-column", "plan knows the dataset's columns from its header",
     ("target: is_fraud", "target: is_frad"), "target:", "is_frad",
     "error: target column 'is_frad' is not in the dataset",
     "help: did you mean 'is_fraud'? the dataset's columns: amount, hour, merchant_risk, "
     "is_fraud"),
    ("feature-not-a-column", "each feature is a column of the dataset",
     ("    target: is_fraud\n", "    target: is_fraud\n    features: [amount, hours]\n"),
     "features:", "hours",
     "error: feature column 'hours' is not in the dataset", "help: did you mean 'hour'?"),
    ("monitor-feature-not-a-column", "a monitor's features are columns of its reference",
     ("    reference: ${transactions.uri}\n",
      "    reference: ${transactions.uri}\n    features: [amount, risk]\n"),
     "features: [amount, risk]", "risk",
     "error: feature 'risk' is not a column of the reference dataset",
     "help: its columns: amount, hour, merchant_risk, is_fraud"),
]


def _assert_reported(got, directory, line_has, token, summary, help_text) -> None:
    output = got.stdout + got.stderr
    assert got.returncode == 1, output
    assert summary in output, output
    assert _location(directory, line_has, token) in output, output
    assert help_text in output, output
    assert "Traceback" not in output, output


@pytest.mark.parametrize(("reason", "edit", "line_has", "token", "summary", "help_text"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@pytest.mark.parametrize("command", ["validate", "plan"])
def test_broken_inputs_are_reported_at_their_place(stack_writer, tmp_path, run_mlform, command, reason,
                                                   edit, line_has, token, summary, help_text):
    directory = _stack(stack_writer, tmp_path, *(edit if isinstance(edit, list) else [edit]))
    got = run_mlform([command, "--no-color"], directory)
    _assert_reported(got, directory, line_has, token, summary, help_text)
    assert not (directory / ".mlform" / "local" / "runs").exists(), reason


@pytest.mark.parametrize(("reason", "edit", "line_has", "token", "summary", "help_text"),
                         [c[1:] for c in PLAN_ONLY], ids=[c[0] for c in PLAN_ONLY])
def test_columns_are_checked_at_plan(stack_writer, tmp_path, run_mlform, reason, edit, line_has, token,
                                     summary, help_text):
    directory = _stack(stack_writer, tmp_path, edit)
    got = run_mlform(["plan", "--no-color"], directory)
    _assert_reported(got, directory, line_has, token, summary, help_text)


@pytest.mark.parametrize("edit", [
    ("epochs: 3", "epochs: 3"),
    # rows of a dataset not yet stored are known only after apply: nothing to judge
    ("epochs: 3", "epochs: ${transactions.rows}"),
], ids=["correct-stack", "unknown-hyperparameter-value-is-not-judged"])
def test_a_correct_stack_validates_and_plans(stack_writer, tmp_path, run_mlform, edit):
    directory = _stack(stack_writer, tmp_path, edit)
    got = run_mlform(["validate", "--no-color"], directory)
    assert got.returncode == 0, got.stdout + got.stderr
    got = run_mlform(["plan", "--no-color"], directory)
    assert got.returncode == 0, got.stdout + got.stderr
    assert "Plan: 5 to add, 0 to change, 0 to destroy." in got.stdout
