import json

import pytest
from mlform.engine.provider import (
    CreateRequest,
    DeleteRequest,
    ObserveRequest,
    Progress,
    ResourceRef,
    UpdateRequest,
)
from mlform.ml.artifact import load_predictor
from mlform.providers.local.paths import LocalPaths
from mlform.providers.local.registry.handler import ModelHandler

from .conftest import frame, train_run

pytestmark = pytest.mark.slow


def register(ctx, resource, artifact, **inputs):
    return ModelHandler(ctx).create(
        CreateRequest(ResourceRef(resource, "model"), {"artifact": artifact, **inputs}, "k"),
        Progress())


def test_registering_writes_a_version_with_card_and_moves_aliases(ctx, fair_run):
    first = register(ctx, "scorer", fair_run, owner="risk-team",
                     intended_use="loan pre-screening",
                     gates=[{"metric": "auc", "min": 0.8},
                            {"fairness": "four_fifths_rule", "sensitive_column": "group"}])
    assert first.error is None, first.error
    assert first.outputs["uri"] == "local://models/scorer/1"
    version_dir = LocalPaths(ctx.data_dir).model_version("scorer", 1)
    card = json.loads((version_dir / "card.json").read_text())
    assert card["owner"] == "risk-team"
    assert card["data"]["profile"]["rows"] == 400
    assert set(card["fairness"]) == {first.outputs["gates"][1]["gate"]}
    markdown = (version_dir / "card.md").read_text()
    assert "## Fairness by group" in markdown and "loan pre-screening" in markdown
    assert load_predictor(version_dir / "artifact").task == "classification"

    again = register(ctx, "scorer", fair_run)
    assert again.outputs["version"] == 1  # the same run is the same version

    other = train_run(ctx, "fair2", frame(seed=1), exclude=["group"])
    second = ModelHandler(ctx).update(UpdateRequest(
        ResourceRef("scorer", "model"), {"artifact": fair_run}, first.outputs,
        {"artifact": other, "aliases": ["challenger"]}), Progress())
    assert second.outputs["version"] == 2
    assert second.outputs["aliases"] == {"champion": 1, "challenger": 2}
    assert [v["version"] for v in second.outputs["versions"]] == [1, 2]


def test_a_failed_gate_leaves_the_registry_unchanged(ctx, biased_run):
    registry = LocalPaths(ctx.data_dir).registry("lender")
    failed = register(ctx, "lender", biased_run, gates=[
        {"metric": "auc", "min": 0.5},
        {"fairness": "demographic_parity_ratio", "sensitive_column": "group", "min": 0.8}])

    assert failed.error.startswith("model 'lender' was not registered: 1 of 2 gate(s) failed")
    assert "gate 'demographic_parity_ratio(group): demographic_parity_ratio >= 0.8' " \
           "failed: measured 0." in failed.error
    assert not list(registry.glob("*/meta.json"))
    assert not (registry / "aliases.json").exists()


def test_observe_and_delete(ctx, fair_run):
    handler = ModelHandler(ctx)
    done = register(ctx, "ephemeral", fair_run)
    ref = ResourceRef("ephemeral", "model")
    assert handler.observe(ObserveRequest(ref, {"artifact": fair_run}, None, "k")).exists

    handler.delete(DeleteRequest(ref, {"artifact": fair_run}, done.outputs), Progress())

    gone = handler.observe(ObserveRequest(ref, {"artifact": fair_run}, done.outputs))
    assert not gone.exists and "is gone" in gone.detail
    assert not LocalPaths(ctx.data_dir).registry("ephemeral").exists()


def test_an_artifact_that_is_not_a_run_is_refused(ctx):
    failed = register(ctx, "stray", "local://runs/nope/123")
    assert "is incomplete" in failed.error
