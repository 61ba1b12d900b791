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
