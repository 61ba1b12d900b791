"""Retirement of registered versions: `keep_last` and `retire_after` remove the artifacts
(which endpoints load) of old versions nothing points to, and keep their model cards."""

import html
import json
import re

import pytest
from mlform.engine.provider import (
    CreateRequest,
    DiffRequest,
    Progress,
    ResourceRef,
)
from mlform.providers.local.paths import LocalPaths
from mlform.providers.local.registry.card_html import render_html
from mlform.providers.local.registry.handler import ModelHandler

from .conftest import frame, train_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(ctx) -> list[str]:
    """Three trained runs; registering them in order makes versions 1, 2 and 3."""
    return [train_run(ctx, f"retire{seed}", frame(seed=seed), exclude=["group"])
            for seed in range(3)]


def register(ctx, model: str, artifact: str, **inputs):
    done = ModelHandler(ctx).create(CreateRequest(
        ResourceRef(model, "model"), {"artifact": artifact, **inputs}, "k"), Progress())
    assert done.error is None, done.error
    return done.outputs


def state_of(ctx, model: str) -> dict[int, str]:
    """Per version: 'live' (artifact present) or 'retired' (archived: card, no artifact)."""
    found = {}
    for directory in sorted(LocalPaths(ctx.data_dir).registry(model).glob("[0-9]*")):
        meta = json.loads((directory / "meta.json").read_text())
        cards = (directory / "card.json").is_file() and (directory / "card.md").is_file()
        assert cards, f"version {directory.name} lost its model card"
        has_artifact = (directory / "artifact" / "model.json").is_file()
        assert has_artifact != bool(meta.get("retired")), directory
        found[meta["version"]] = "live" if has_artifact else "retired"
    return found


@pytest.mark.parametrize(("aliases", "expected"), [
    ([["champion"], ["champion"], ["champion"]], {1: "retired", 2: "retired", 3: "live"}),
    ([["stable"], ["champion"], ["champion"]], {1: "live", 2: "retired", 3: "live"}),
    ([["champion"], ["challenger"], ["champion"]], {1: "retired", 2: "live", 3: "live"}),
], ids=["only-the-newest-is-kept", "an-alias-holds-an-old-version",
        "the-challenger-alias-holds-version-2"])
def test_keep_last_retires_only_versions_no_alias_points_to(ctx, runs, aliases, expected):
    model = f"keep_{'_'.join(a[0] for a in aliases)}"
    for run, names in zip(runs, aliases, strict=True):
        outputs = register(ctx, model, run, aliases=names, retirement={"keep_last": 1})
    assert state_of(ctx, model) == expected
    assert {v["version"]: "retired" if v["retired"] else "live"
            for v in outputs["versions"]} == expected


def test_retire_after_retires_unused_versions_older_than_the_limit(ctx, runs):
    register(ctx, "aged", runs[0])
    register(ctx, "aged", runs[1])
    first = LocalPaths(ctx.data_dir).model_version("aged", 1) / "meta.json"
    meta = json.loads(first.read_text())
    first.write_text(json.dumps({**meta, "created": "2020-01-01T00:00:00Z"}))
    register(ctx, "aged", runs[2], retirement={"retire_after": "30d"})
    # version 2 is unused too, but younger than 30 days
    assert state_of(ctx, "aged") == {1: "retired", 2: "live", 3: "live"}


def test_a_retired_version_is_registered_afresh_when_its_run_comes_back(ctx, runs):
    for run in runs[:2]:
        register(ctx, "comeback", run, retirement={"keep_last": 1})
    back = register(ctx, "comeback", runs[0], retirement={"keep_last": 1})
    assert back["version"] == 3
    assert state_of(ctx, "comeback") == {1: "retired", 2: "retired", 3: "live"}


@pytest.mark.parametrize("user", ["endpoint", "batch_job"])
def test_a_version_an_endpoint_or_batch_job_uses_is_never_retired(ctx, runs, user):
    model = f"used_by_{user}"
    register(ctx, model, runs[0])
    paths = LocalPaths(ctx.data_dir)
    uri = f"local://models/{model}/1"
    # What the endpoint and batch handlers record about the version they serve or used.
    if user == "endpoint":
        where = paths.endpoint(f"ep_{model}") / "config.json"
        doc = {"stable": {"champion": {"model": uri, "weight": 100}}, "canary": None}
    else:
        where = paths.batch(f"score_{model}", "abc123") / "meta.json"
        doc = {"model": uri}
    where.parent.mkdir(parents=True, exist_ok=True)
    where.write_text(json.dumps(doc))
    if user == "endpoint":  # a running endpoint has its server record beside its config
        (where.parent / "server.json").write_text("{}")
    register(ctx, model, runs[1], retirement={"keep_last": 1})
    register(ctx, model, runs[2], retirement={"keep_last": 1})
    assert state_of(ctx, model) == {1: "live", 2: "retired", 3: "live"}


def test_the_plan_says_which_versions_would_be_retired_and_why(ctx, runs):
    first = register(ctx, "planned", runs[0])
    diff = ModelHandler(ctx).diff(DiffRequest(
        ResourceRef("planned", "model"), {"artifact": runs[0]}, first,
        {"artifact": runs[1], "retirement": {"keep_last": 1}}))
    assert "retire" in diff.note and "version 1" in diff.note


def test_the_archived_card_of_a_retired_version_renders_as_html(ctx, runs):
    register(ctx, "carded", runs[0], owner="risk-team <risk@example.com>",
             intended_use="loan pre-screening", gates=[
                 {"metric": "auc", "min": 0.6},
                 {"fairness": "four_fifths_rule", "sensitive_column": "group"},
                 {"robustness": "gaussian_noise", "noise": 0.1, "max": 0.5}])
    register(ctx, "carded", runs[1], retirement={"keep_last": 1})
    assert state_of(ctx, "carded")[1] == "retired"
    card = json.loads((LocalPaths(ctx.data_dir).model_version("carded", 1)
                       / "card.json").read_text())
    page = render_html(card)
    text = html.unescape(re.sub(r"<[^>]+>", " ", page))
    assert "<script" not in page and "href=" not in page and "src=" not in page
    assert "risk-team &lt;risk@example.com&gt;" in page  # escaped, not markup
    assert "loan pre-screening" in text
    assert card["data"]["version"] in text and f"{card['data']['profile']['rows']} rows" in text
    assert all(f" {name} " in text for name in card["data"]["profile"]["columns"])
    assert " hyperparameters  epochs=5, lr=0.03, hidden_layers=[8] " in text
    assert f"{card['metrics']['auc']:.4f}" in text
    assert [g["kind"] for g in card["gates"]] == ["metric", "fairness", "robustness"]
    assert all(g["gate"] in text for g in card["gates"])
    assert page.count("class=pass>pass") == 3
    assert "Fairness by group" in text and " f " in text and " m " in text
