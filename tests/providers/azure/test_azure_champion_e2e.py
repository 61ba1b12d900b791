"""`better_than: champion` on azure, through the installed `mlform` command on the Azure
ML fake and Azurite: the evaluation command job gets, as its `champion` input, the
artifact of the newest model version tagged `mlform-aliases: champion`, and scores it on
the candidate's held-out rows.

Two runs of the same rows are trained in the first apply: `weak` sees `age` alone (which
says nothing of fraud), `strong` sees the amount too. The first version (weak) has no
champion to beat; strong beats it by the margin and becomes the champion; weak, offered
again, does not, and the refusal names the champion's value.
"""

from __future__ import annotations

import json
from pathlib import Path

import azure.ai.ml  # noqa: F401  imported before any MLClient names the fake's cloud
import pytest
from conftest import provider_env, provider_settings

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

STACK = "champ-az"
CSV = "amount,age,is_fraud\n" + "".join(
    f"{(i * 37) % 100},{20 + (i * 7) % 40},{int((i * 37) % 100 > 60)}\n" for i in range(80))
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


def outputs(stack: Path) -> dict:
    resources = json.loads((stack / ".mlform" / "state.json").read_text())["resources"]
    return {name: r["outputs"] for name, r in resources.items()}


def register(stack: Path, run: str) -> None:
    spec = stack / "mlform.yaml"
    text = spec.read_text()
    head, tail = text.split("    artifact: ${", 1)
    spec.write_text(head + "    artifact: ${" + run + tail[tail.index("."):])


def test_a_candidate_is_judged_against_the_champions_artifact(aml, azurite, run_mlform,
                                                               stack_writer, tmp_path):
    settings = json.dumps(provider_settings(aml, azurite))
    stack = stack_writer(tmp_path / "stack", f"version: 1\nstack: {STACK}\nproviders:\n"
                                             f"  azure: {settings}\nresources:\n{RESOURCES}")
    (stack / "data").mkdir()
    (stack / "data" / "transactions.csv").write_text(CSV)
    env = provider_env(aml, azurite)

    def applied() -> str:
        done = run_mlform(APPLY, stack, env=env, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout + done.stderr

    # no champion yet: the training run's metrics judge it, with no evaluation job
    assert "gate(s) with job" not in applied()
    found = outputs(stack)
    [gate] = found["fraud_model"]["gates"]
    assert (gate["passed"], gate["detail"]) == (True, "no champion to compare with yet")
    weak, strong = found["weak"]["metrics"]["auc"], found["strong"]["metrics"]["auc"]
    assert strong > weak + 0.05, (strong, weak)

    # the strong run is judged against version 1's artifact on its own held-out rows
    register(stack, "strong")
    assert "against the champion (version 1)" in applied()
    model = outputs(stack)["fraud_model"]
    [gate] = model["gates"]
    assert model["version"] == 2 and gate["passed"], gate
    assert (gate["measured"], gate["champion"]) == (pytest.approx(strong), pytest.approx(weak))

    # weak, no better than the champion (now version 2), is refused, naming its value
    register(stack, "weak")
    refused = run_mlform(APPLY, stack, env=env, timeout=600)
    said = refused.stdout + refused.stderr
    assert refused.returncode == 1, said
    assert f"gate 'auc >= champion + 0.05' failed: measured {weak:.4f} (champion " \
           f"(version 2) {strong:.4f}, candidate {weak:.4f})" in said, said
    assert "Traceback" not in said
    assert outputs(stack)["fraud_model"]["version"] == 2
