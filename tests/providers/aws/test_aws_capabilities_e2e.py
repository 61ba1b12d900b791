"""What SageMaker does not realise is refused by `mlform validate` and `mlform plan` at
its place in the spec, before an apply could fail half-way or ignore it; what it
ignores on purpose is a note in the plan. The stack keeps its state locally; the
provider talks to moto's server."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_stack import TRAINED_MODEL_STACK, write_data
from conftest import BUCKET, REGION, ROLE

HEAD = TRAINED_MODEL_STACK
ENDPOINT = """\
  fraud_endpoint:
    type: endpoint
    variants:
      champion: {{model: "${{fraud_model.uri}}"}}
"""

REFUSED = [
    # (id, reason, extra spec text, line with the fault, token marked, summary, help)
    ("model-card", "the SageMaker registry keeps no model card file",
     "outputs:\n  card: {{value: \"${{fraud_model.card}}\"}}\n",
     "card: {value:", "${fraud_model.card}",
     "provider 'sagemaker' does not produce 'card' for model 'fraud_model' in "
     "'${fraud_model.card}'",
     "help: outputs of a model on provider 'sagemaker': id, gates, name, uri, version"),
    ("batch-rows", "a transform job does not count the rows it scored",
     "  score:\n    type: batch_job\n    model: ${{fraud_model.uri}}\n"
     "    dataset: ${{transactions.uri}}\n"
     "outputs:\n  scored: {{value: \"${{score.rows}}\"}}\n",
     "scored: {value:", "${score.rows}",
     "provider 'sagemaker' does not produce 'rows' for batch_job 'score' in '${score.rows}'",
     "help: outputs of a batch_job on provider 'sagemaker': id, output_uri"),
    ("endpoint-port", "SageMaker chooses its own address: a port was silently ignored",
     ENDPOINT + "    port: 8080\n", "port: 8080", "port",
     "'port' is a setting of the local provider; provider 'sagemaker' (aws) has no use "
     "for it", "help: remove it: only a local provider reads it"),
    ("endpoint-feature-view", "online feature lookups are the local server's",
     ENDPOINT + "    feature_view: local://features/f/1\n",
     "feature_view: local://", "feature_view",
     "provider 'sagemaker' does not support 'feature_view' on a endpoint",
     "help: send full feature rows to SageMaker, or serve this endpoint with the local "
     "provider"),
]


def _stack(directory: Path, aws: str, extra: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "mlform.yaml").write_text((HEAD + extra).format(
        bucket=BUCKET, region=REGION, role=ROLE, url=aws))
    write_data(directory)
    return directory


@pytest.mark.parametrize("command", ["validate", "plan"])
@pytest.mark.parametrize(("reason", "extra", "line_has", "token", "summary", "help_text"),
                         [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_what_sagemaker_does_not_realise_is_refused_at_its_place(
        aws, tmp_path, run_mlform, command, reason, extra, line_has, token, summary,
        help_text):
    directory = _stack(tmp_path / "stack", aws, extra)
    got = run_mlform([command, "--no-color"], directory)
    text = got.stdout + got.stderr
    assert got.returncode == 1, f"{reason}\n{text}"
    assert f"error: {summary}" in text, text
    assert text.count("error: ") == 1, text  # said once, though the handler checks it too
    assert help_text in text, text
    lines = (directory / "mlform.yaml").read_text().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if line_has in line)
    column = lines[number - 1].index(token) + 1
    assert f"mlform.yaml:{number}:{column}" in text, text
    assert "Traceback" not in text


def test_fields_sagemaker_ignores_on_purpose_are_plan_notes(aws, tmp_path, run_mlform):
    directory = _stack(tmp_path / "stack", aws, ENDPOINT + (
        "    rollback: {{min_requests: 50}}\n    limits: {{max_body_bytes: 1MiB}}\n"
        "outputs:\n  url: {{value: \"${{fraud_endpoint.url}}\"}}\n"))
    assert run_mlform(["validate", "--no-color"], directory).returncode == 0
    got = run_mlform(["plan", "--no-color"], directory)
    assert got.returncode == 0, got.stdout + got.stderr
    assert "Notes:\n" \
           "  - endpoint.fraud_endpoint: 'rollback.min_requests' has no effect on provider " \
           "'sagemaker' (SageMaker's own rollout ignores it, judging each step by its " \
           "CloudWatch alarms (max_error_rate, max_p99_latency_ms) alone; a gateway's " \
           "cutover onto this endpoint does judge its steps by it)\n" \
           "  - endpoint.fraud_endpoint: 'limits' has no effect on provider 'sagemaker' " \
           "(SageMaker sets its own request limits)\n" in got.stdout, got.stdout
    markdown = run_mlform(["plan", "--format", "markdown"], directory)
    assert "> ℹ️ endpoint.fraud_endpoint: 'limits' has no effect" in markdown.stdout
