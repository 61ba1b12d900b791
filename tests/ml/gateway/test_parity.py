"""Parity before a cutover: both sides' answers to the same rows, judged by `parity:`."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from mlform.engine.spec.models import Parity
from mlform.ml.gateway import parity


@pytest.mark.parametrize(("old", "new", "condition", "breaches"), [
    pytest.param([0, 1, 1, 0], [0, 1, 1, 0], {}, [], id="same-labels-hold"),
    pytest.param([0, 1, 1, 0], [0, 1, 0, 0], {},
                 ["label agreement 0.750 (3 of 4 rows) < min_label_agreement 1"],
                 id="one-label-differs-breaks-full-agreement"),
    pytest.param([0, 1, 1, 0], [0, 1, 0, 0], {"min_label_agreement": 0.75}, [],
                 id="lower-bound-tolerates-it"),
    pytest.param([0.5, 1.0], [0.5, 1.2], {"min_label_agreement": None,
                                          "max_score_difference": 0.1},
                 ["largest score difference 0.2 > max_score_difference 0.1"],
                 id="regression-scores-differ"),
    pytest.param([{"label": 1, "score": 0.9}], [{"label": 1, "score": 0.905}],
                 {"max_score_difference": 0.01}, [], id="scored-answers-close-enough"),
    pytest.param([], [], {}, ["no rows to compare: the model has no readable held-out rows "
                              "and no requests were logged"], id="nothing-to-compare-fails"),
])
def test_compare(old, new, condition, breaches):
    result = parity.compare(old, new, Parity(**condition))
    assert result.breaches == breaches
    assert result.ok is (not breaches)


def test_a_side_that_cannot_answer_is_not_at_parity():
    def broken(rows):
        raise RuntimeError("endpoint b answered 503")

    result = parity.check([[1.0]], Parity(), "1 held-out rows", lambda rows: [0], broken)
    assert result.breaches == ["a side did not answer: endpoint b answered 503"]


def test_held_out_rows_of_a_training_run_drop_the_target(tmp_path):
    run = tmp_path / "runs" / "train" / "abc"
    (run / "artifact").mkdir(parents=True)
    pd.DataFrame({"amount": [1.5, 2.5], "is_fraud": [0, 1]}).to_parquet(
        run / "holdout.parquet", index=False)
    (run / "params.json").write_text(json.dumps({"target": "is_fraud"}))
    assert parity.held_out_rows(str(run)) == [{"amount": 1.5}, {"amount": 2.5}]
    assert parity.held_out_rows(f"file://{run / 'artifact'}") == [{"amount": 1.5},
                                                                   {"amount": 2.5}]
    assert parity.held_out_rows(str(tmp_path / "nothing")) == []
    assert parity.held_out_rows("s3://bucket/elsewhere") == []


def test_logged_requests_newest_first_across_the_rolled_file(tmp_path):
    (tmp_path / "requests.1.jsonl").write_text(json.dumps({"t": 1, "instances": [[1], [2]]})
                                               + "\n")
    (tmp_path / "requests.jsonl").write_text(
        json.dumps({"t": 2, "instances": [[3]]}) + "\nnot json\n"
        + json.dumps({"t": 3, "instances": [[4], [5]]}) + "\n")
    assert parity.logged_requests(tmp_path, 4) == [[5], [4], [3], [2]]


@pytest.mark.parametrize(("held", "logged", "size", "rows"), [
    pytest.param([1, 2, 3, 4], [9, 8], 4, [1, 2, 9, 8], id="half-and-half"),
    pytest.param([1, 2, 3, 4], [], 3, [1, 2, 3], id="no-logged-requests"),
    pytest.param([], [9, 8, 7], 2, [9, 8], id="no-held-out-rows"),
])
def test_sample(held, logged, size, rows):
    assert parity.sample(held, logged, size)[0] == rows


def test_held_out_objects_and_logged_lists_are_asked_in_separate_batches():
    asked: list[list] = []

    def side(rows):
        asked.append(rows)
        return [0] * len(rows)

    rows = [{"a": 1}, {"a": 2}, [1.0], [2.0], [3.0]]
    result = parity.check(rows, Parity(), "", side, lambda rows: [0] * len(rows), batch=2)
    assert result.ok and result.rows == 5
    assert asked == [[{"a": 1}, {"a": 2}], [[1.0], [2.0]], [[3.0]]]
