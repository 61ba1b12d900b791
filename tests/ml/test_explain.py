"""Permutation importance and occlusion explanations (`mlform.ml.explain`) on models with
chosen weights."""

from __future__ import annotations

import pytest
from mlform.ml.explain import occlusion, permutation_importance


def test_permutation_importance_ranks_a_planted_strong_feature_first(models, labelled_rows):
    found = permutation_importance(models["good"], labelled_rows(seed=7), seed=1)
    ranked = [f["feature"] for f in found["features"]]
    assert ranked == ["strong", "weak", "noise"]
    by_name = {f["feature"]: f for f in found["features"]}
    assert by_name["strong"]["importance"] > 0.2
    assert by_name["noise"]["importance"] == 0.0  # a weight of 0: shuffling changes nothing
    assert (found["metric"], found["repeats"], found["rows"]) == ("auc", 5, 400)


def test_permutation_importance_repeats_for_the_same_seed(models, labelled_rows):
    holdout = labelled_rows(seed=7)
    assert permutation_importance(models["worse"], holdout, seed=3) == \
        permutation_importance(models["worse"], holdout, seed=3)


def test_occlusion_of_a_linear_model_moves_with_its_weights(models):
    """At the training means (0 here) every feature is occluded to 0: the change of the
    predicted class's probability follows the sign and size of weight × value."""
    [explained] = occlusion(models["good"], [[1.0, 1.0, 5.0]])
    assert explained["prediction"] == 1
    attributions = explained["attributions"]
    assert attributions["strong"] > attributions["weak"] > 0
    assert attributions["noise"] == 0.0
    assert explained["score"] == pytest.approx(
        models["good"].predict_proba([[1.0, 1.0, 5.0]])[0][1])


def test_occlusion_takes_objects_and_names_a_bad_instance(models):
    by_name = occlusion(models["good"], [{"strong": -1.0, "weak": 0.0, "noise": 0.0}])
    assert by_name[0]["prediction"] == 0 and by_name[0]["attributions"]["strong"] > 0
    with pytest.raises(ValueError, match=r"instance 1 has 2 values; expected 3 "
                                         r"\(strong, weak, noise\)"):
        occlusion(models["good"], [[0, 0, 0], [0, 0]])
