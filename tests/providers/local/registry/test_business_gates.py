"""Business-outcome gates through the local registry: `better_than: champion` compares a
candidate with the version the `champion` alias names, on the candidate's held-out rows,
and the card reports the cost gate's threshold and the permutation importance."""

import json

import pytest
from mlform.engine.provider import CreateRequest, Progress, ResourceRef, UpdateRequest
from mlform.providers.local.paths import LocalPaths
from mlform.providers.local.registry.handler import ModelHandler

from .conftest import frame, train_run

pytestmark = pytest.mark.slow

GATES = [{"metric": "auc", "better_than": "champion", "margin": 0.01},
         {"cost": {"false_positive": 1, "false_negative": 5}, "max": 5}]


@pytest.fixture(scope="module")
def weak_run(ctx):
    """A run that never sees x1, half of what decides the label: clearly worse."""
    return train_run(ctx, "weak", frame(seed=2), exclude=["group", "x1"])


def register(handler, model, artifact, before=None):
    """Create `model` from `artifact`, or add it as a new version after `before`
    (the artifact and the response that registered it)."""
    if before is None:
        return handler.create(CreateRequest(
            ResourceRef(model, "model"), {"artifact": artifact, "gates": GATES}, "k"),
            Progress())
    return handler.update(UpdateRequest(
        ResourceRef(model, "model"), {"artifact": before[0], "gates": GATES},
        before[1].outputs, {"artifact": artifact, "gates": GATES}), Progress())


def test_better_than_champion_passes_a_better_candidate(ctx, fair_run, weak_run):
    handler = ModelHandler(ctx)
    first = register(handler, "rising", weak_run)
    assert first.error is None, first.error
    assert first.outputs["gates"][0]["detail"] == "no champion to compare with yet"
    better = register(handler, "rising", fair_run, (weak_run, first))
    assert better.error is None, better.error
    compared = better.outputs["gates"][0]
    assert compared["passed"] and compared["measured"] > compared["champion"] + 0.01
    assert compared["detail"].startswith("champion (version 1) ")
    assert better.outputs["aliases"] == {"champion": 2}


def test_better_than_champion_refuses_a_worse_candidate(ctx, fair_run, weak_run):
    handler = ModelHandler(ctx)
    first = register(handler, "falling", fair_run)
    assert first.error is None, first.error
    worse = register(handler, "falling", weak_run, (fair_run, first))
    assert worse.error.startswith("model 'falling' was not registered: 1 of 2 gate(s) "
                                  "failed\n  gate 'auc >= champion + 0.01' failed: measured ")
    assert "(champion (version 1) " in worse.error
    versions = LocalPaths(ctx.data_dir).registry("falling")
    assert sorted(p.name for p in versions.iterdir() if p.name.isdigit()) == ["1"]


def test_the_card_reports_the_cost_threshold_and_feature_importance(ctx, fair_run):
    created = ModelHandler(ctx).create(CreateRequest(
        ResourceRef("carded", "model"), {"artifact": fair_run, "gates": GATES[1:]}, "k"),
        Progress())
    assert created.error is None, created.error
    version_dir = LocalPaths(ctx.data_dir).model_version("carded", 1)
    card = json.loads((version_dir / "card.json").read_text())
    [decision] = card["decision"]
    gate = created.outputs["gates"][0]
    assert decision == {"gate": "expected_cost(fp=1, fn=5) <= 5", "threshold": gate["threshold"],
                        "costs": {"false_positive": 1.0, "false_negative": 5.0},
                        "cost_per_row": gate["measured"]}
    importance = card["importance"]
    assert importance["method"] == "permutation" and importance["metric"] == "auc"
    assert {f["feature"] for f in importance["features"]} == {"x0", "x1"}
    assert all(f["importance"] > 0.05 for f in importance["features"])
    markdown = (version_dir / "card.md").read_text()
    assert f"at least {gate['threshold']:.4f}: the threshold of least expected cost" in markdown
    assert "## Feature importance" in markdown and "| x0 | " in markdown
    page = (version_dir / "card.html").read_text()
    assert "<h2>Decision threshold</h2>" in page and "<h2>Feature importance</h2>" in page
