"""`better_than: champion` on gcp, through the installed `mlform` command on the Vertex AI
fake and the GCS emulator: the evaluation custom job gets the artifact of the registry
version whose aliases include `champion` and scores it on the candidate's held-out rows.

Two runs of the same rows are trained in the first apply: `weak` sees `age` alone (which
says nothing of fraud), `strong` sees the amount too. The first version (weak) has no
champion to beat; strong beats it by the margin and becomes the champion; weak, offered
again, does not, and the refusal names the champion's value. (The stack is left to the
session's fakes: destroy is tested elsewhere, and its jobs are what cost here.)
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from gcp_stack import STACK, mlform, rows

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

RESOURCES = """\
  transactions:
    type: dataset
    source: data/transactions.csv
  weak:
    type: training_job
    dataset: ${transactions.uri}
    algorithm: logistic_regression
    target: is_fraud
    features: [age]
    hyperparameters: {epochs: 20, lr: 0.1}
  strong:
    type: training_job
    dataset: ${transactions.uri}
    algorithm: logistic_regression
    target: is_fraud
    hyperparameters: {epochs: 20, lr: 0.1}
  fraud_model:
    type: model
    artifact: ${weak.artifact}
    gates:
      - metric: auc
        better_than: champion
        margin: 0.05
"""
APPLY = ["apply", "--auto-approve", "--no-color"]


def applied(stack: Path) -> str:
    done = mlform(APPLY, stack)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def outputs(stack: Path) -> dict:
    resources = json.loads((stack / ".mlform" / "state.json").read_text())["resources"]
    return {name: r["outputs"] for name, r in resources.items()}


def register(stack: Path, run: str) -> None:
    spec = stack / "mlform.yaml"
    text = spec.read_text()
    head, tail = text.split("    artifact: ${", 1)
    spec.write_text(head + "    artifact: ${" + run + tail[tail.index("."):])


def test_a_candidate_is_judged_against_the_champions_artifact(gcs, vertex, tmp_path):
    bucket = f"mlform-champ-{uuid.uuid4().hex[:10]}"
    gcs.create_bucket(bucket)
    base = STACK.format(stack="champ", project=vertex.project, region=vertex.region,
                        bucket=bucket, vertex=vertex.url, gcs=gcs.url)
    stack = tmp_path / "champ"
    (stack / "data").mkdir(parents=True)
    (stack / "data" / "transactions.csv").write_text(rows())
    (stack / "mlform.yaml").write_text(base[:base.index("variables:")] + "resources:\n" +
                                       RESOURCES)
    # no champion yet: the training run's metrics judge it, with no evaluation job
    assert "gate(s) with a custom job" not in applied(stack)
    found = outputs(stack)
    [gate] = found["fraud_model"]["gates"]
    assert (gate["passed"], gate["detail"]) == (True, "no champion to compare with yet")
    weak, strong = found["weak"]["metrics"]["auc"], found["strong"]["metrics"]["auc"]
    assert strong > weak + 0.05, (strong, weak)

    # the strong run is judged against version 1's artifact on its own held-out rows
    register(stack, "strong")
    assert "with a custom job against the champion (version 1)" in applied(stack)
    model = outputs(stack)["fraud_model"]
    [gate] = model["gates"]
    assert model["version"] == 2 and gate["passed"], gate
    assert (gate["measured"], gate["champion"]) == (pytest.approx(strong), pytest.approx(weak))

    # weak, no better than the champion (now version 2), is refused, naming its value
    register(stack, "weak")
    refused = mlform(APPLY, stack)
    said = refused.stdout + refused.stderr
    assert refused.returncode == 1, said
    assert f"gate 'auc >= champion + 0.05' failed: measured {weak:.4f} (champion " \
           f"(version 2) {strong:.4f}, candidate {weak:.4f})" in said, said
    assert "Traceback" not in said
    assert outputs(stack)["fraud_model"]["version"] == 2
