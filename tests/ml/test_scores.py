"""Scores through the portable core: what `/predict` answers for `"return"`, the request
log's `scores`, reading them back, and output drift judged on them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from mlform.engine.spec.models import Monitor
from mlform.ml.monitoring.evaluate import evaluate
from mlform.ml.monitoring.traffic import Traffic
from mlform.ml.serving import scores
from mlform.ml.serving.parsing import BadRequest
from mlform.ml.serving.reqlog import request_line
from mlform.ml.serving.traffic import read_traffic


def test_a_regression_model_answers_its_numbers_when_asked_for_probabilities(tmp_path,
                                                                              labelled_rows):
    import torch
    from mlform.ml.artifact import load_predictor, save_model

    save_model(tmp_path, torch.nn.Linear(3, 1), {"task": "regression",
                                                 "features": ["strong", "weak", "noise"],
                                                 "target": "y"})
    predictor = load_predictor(tmp_path)
    predictions, probabilities = scores.predict(predictor, [[1, 2, 3]], scores.PROBABILITIES)
    assert probabilities is None and predictions == predictor.predict([[1, 2, 3]])


def test_labels_come_from_the_probabilities_of_the_same_pass(models):
    instances = [[2.0, 0.0, 0.0], [-2.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    labels, probabilities = scores.predict(models["good"], instances, scores.PROBABILITIES)
    assert labels == [1, 0, 0]  # an exact tie goes to the first class, as `predict` has it
    assert labels == models["good"].predict(instances)
    assert [sum(p) for p in probabilities] == pytest.approx([1.0, 1.0, 1.0])


@pytest.mark.parametrize("body, expected", [
    ({"instances": [[1]]}, "labels"), ({"return": "probabilities"}, "probabilities")])
def test_requested_output(body, expected):
    assert scores.requested(body) == expected


def test_an_unknown_output_is_a_bad_request():
    with pytest.raises(BadRequest, match="'return' must be one of 'labels', 'probabilities', "
                                         "not 3"):
        scores.requested({"return": 3})


def test_the_request_log_keeps_scores_and_monitors_read_them_back(tmp_path):
    lines = [request_line((1.0, "r1", "a", "m", ["x"], [[1.0], [2.0]], None, '["no","yes"]',
                           "[[0.9,0.1],[0.2,0.8]]")),
             request_line((2.0, "r2", "a", "m", ["x"], None, b'{"instances": [[3.0]]}',
                           '["no"]'))]
    assert json.loads(lines[0])["scores"] == [[0.9, 0.1], [0.2, 0.8]]
    assert "scores" not in json.loads(lines[1])
    (tmp_path / "requests.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    traffic = read_traffic(tmp_path)
    assert traffic.scores == [[0.9, 0.1], [0.2, 0.8], None]
    assert traffic.rows(1).scores == [[0.2, 0.8], None]


def _traffic(baseline_scores, current_scores) -> Traffic:
    rows = len(baseline_scores) + len(current_scores)
    probabilities = [[1 - p, p] for p in [*baseline_scores, *current_scores]]
    # the labels stay the same on both sides: only the scores move
    labels = ["yes" if p >= 0.5 else "no" for p in [*baseline_scores, *current_scores]]
    return Traffic(pd.DataFrame({"x": np.zeros(rows)}), labels, [None] * rows,
                   [float(i) for i in range(rows)], probabilities)


def test_output_drift_is_judged_on_scores_when_they_are_logged():
    rng = np.random.default_rng(0)
    monitor = Monitor.model_validate({"type": "monitor", "endpoint": "e", "reference": "r",
                                      "window_rows": 1000, "min_rows": 50})
    reference = pd.DataFrame({"x": np.zeros(500)})
    # scores slide from 0.55-0.75 to 0.8-1.0: every label stays "yes"
    shifted = _traffic(rng.uniform(0.55, 0.75, 1000), rng.uniform(0.8, 1.0, 1000))
    output = evaluate(monitor, shifted, reference, now=0.0)["output_drift"]
    assert (output["on"], output["name"], output["kind"]) == ("scores", "score", "numeric")
    assert output["drifted"] and output["baseline_rows"] == 1000
    steady = _traffic(rng.uniform(0.55, 0.75, 1000), rng.uniform(0.55, 0.75, 1000))
    assert not evaluate(monitor, steady, reference, now=0.0)["output_drift"]["drifted"]
    unscored = Traffic(shifted.features, shifted.predictions, shifted.labels, shifted.times)
    on_labels = evaluate(monitor, unscored, reference, now=0.0)["output_drift"]
    assert on_labels["on"] == "predictions" and not on_labels["drifted"]
