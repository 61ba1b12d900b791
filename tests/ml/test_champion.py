"""`mlform.ml.champion`: what every provider's evaluation makes of the champion it was
handed (the settings' value and the folder its artifact was fetched into), and metric
gates judged with no champion yet."""

from __future__ import annotations

import pytest
from conftest import linear_classifier
from mlform.ml import champion as champions
from mlform.ml.gates import NO_CHAMPION_HERE, Champion, evaluate_gates, metric_gates

GATE = {"metric": "auc", "better_than": "champion", "margin": 0.05}


@pytest.mark.parametrize("setting, folder, expected", [
    (None, None, None),
    (NO_CHAMPION_HERE, None, NO_CHAMPION_HERE),
    ({"name": "version 3"}, None,
     "no artifact of the champion (version 3) reached the evaluation"),
    ({"name": "version 3"}, "missing",
     "no artifact of the champion (version 3) reached the evaluation"),
], ids=["none-yet", "a-reason-passes-through", "no-folder", "a-folder-that-is-not-there"])
def test_what_the_settings_say_without_an_artifact(tmp_path, setting, folder, expected):
    assert champions.load(setting, tmp_path / folder if folder else None) == expected


def test_a_folder_without_a_model_is_a_reason_not_a_crash(tmp_path):
    reason = champions.load({"name": "version 2"}, tmp_path)
    assert isinstance(reason, str)
    assert reason.startswith("the champion (version 2) cannot be loaded to compare with: ")


def test_the_champion_loaded_is_scored_on_the_candidates_rows(tmp_path, labelled_rows):
    worse = linear_classifier(tmp_path / "worse", [0.5, 0.7, 1.0])
    good = linear_classifier(tmp_path / "good", [3.0, 0.7, 0.0])
    champion = champions.load(champions.named(4), tmp_path / "worse")
    assert isinstance(champion, Champion) and champion.name == "version 4"
    holdout = labelled_rows(seed=5)
    [result] = evaluate_gates([GATE], good, holdout, champion=champion)
    [alone] = evaluate_gates([{"metric": "auc", "min": 0.0}], worse, holdout)
    assert result.passed and result.champion == pytest.approx(alone.measured)
    assert result.detail.startswith("champion (version 4) ")


def test_with_no_champion_yet_metric_gates_judge_the_bounds_alone():
    bounded = {**GATE, "min": 0.9}
    [first, low] = metric_gates([GATE, bounded], {"auc": 0.8}, "training run r",
                                champion=None)
    assert (first.passed, first.measured, first.detail) == \
        (True, 0.8, "no champion to compare with yet")
    assert not low.passed  # the bound still holds with nothing to beat


@pytest.mark.parametrize("one, other, same", [
    ("gs://b/run/", "gs://b/run", True), ("gs://b/run", "gs://b/run", True),
    ("gs://b/run1", "gs://b/run", False), (None, "gs://b/run", False)],
    ids=["trailing-slash", "equal", "another-run", "none"])
def test_same_artifact(one, other, same):
    assert champions.same_artifact(one, other) is same


def test_wanted_reads_gates_by_attribute_or_by_key():
    from mlform.engine.spec.models import Gate

    assert champions.wanted([{"metric": "auc", "min": 0.5}, GATE])
    assert champions.wanted([Gate.model_validate(GATE)])
    assert not champions.wanted([Gate.model_validate({"metric": "auc", "min": 0.5})])


def test_evaluation_settings_carry_the_champion_only_when_a_gate_compares():
    plain = [{"metric": "auc", "min": 0.7}]
    settings, fetch = champions.evaluation_settings(plain, 3, {(0, "min")},
                                                    ("s3://b/v2/", {"name": "version 2"}))
    assert settings == {"gates": plain, "seed": 3, "sensitive": [[0, "min"]]}
    assert fetch == "s3://b/v2/"
    settings, fetch = champions.evaluation_settings([GATE], 0, (), None)
    assert settings[champions.SETTING] is None and fetch is None
    settings, fetch = champions.evaluation_settings([GATE], 0, (),
                                                    ("gs://b/v2/", {"name": "version 2"}))
    assert settings[champions.SETTING] == {"name": "version 2"} and fetch == "gs://b/v2/"


def test_a_new_champion_is_a_new_judgement():
    settings, _ = champions.evaluation_settings([GATE], 0, (), None)
    without = champions.judged("s3://b/run/", 2, settings, None)
    assert "champion_artifact" not in without
    assert champions.judged("s3://b/run/", 2, settings, "s3://b/v1/") != \
        champions.judged("s3://b/run/", 2, settings, "s3://b/v2/")


def test_the_registry_names_its_champion_unless_it_is_the_candidate(tmp_path):
    import json

    registry = tmp_path / "registry" / "m"

    def folder(version):
        return registry / str(version)

    assert champions.in_registry(registry, folder, "/runs/a") is None  # no aliases yet
    folder(2).mkdir(parents=True)
    (folder(2) / "meta.json").write_text(json.dumps({"artifact": "/runs/a/"}))
    (registry / "aliases.json").write_text(json.dumps({"champion": 2}))
    assert champions.in_registry(registry, folder, "/runs/b") == \
        ({"name": "version 2"}, folder(2) / "artifact")
    assert champions.in_registry(registry, folder, "/runs/a") is None  # the candidate itself
    (registry / "aliases.json").write_text('{"champ')  # half written: none to read yet
    assert champions.in_registry(registry, folder, "/runs/b") is None
