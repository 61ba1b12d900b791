"""A one-route server's answer (Vertex AI's container, Azure ML's /score): the options a
body gives at its top or under "parameters", and labels, scores or explanations as asked,
with what the request log keeps of each."""

from __future__ import annotations

import json

import pytest
from mlform.ml.explain import occlusion
from mlform.ml.serving.answering import answer, option
from mlform.ml.serving.parsing import BadRequest

ROWS = [[2.0, 0.5, 0.0], [-2.0, 0.0, 1.0], [0.3, -1.0, 0.0]]


@pytest.mark.parametrize(("body", "value"), [
    pytest.param({}, "labels", id="absent: the default"),
    pytest.param({"return": "probabilities"}, "probabilities", id="at the top, as on local"),
    pytest.param({"parameters": {"return": "probabilities"}}, "probabilities",
                 id="under parameters, where Vertex AI's predict puts options"),
    pytest.param({"return": "probabilities", "parameters": {"return": "probabilities"}},
                 "probabilities", id="in both places alike"),
    pytest.param({"parameters": ["return"]}, "labels", id="parameters that hold no options"),
])
def test_an_option_is_read_at_the_top_or_under_parameters(body, value):
    assert option(body, "return", "labels") == value


def test_an_option_given_twice_differently_is_refused():
    with pytest.raises(BadRequest, match=r"^'return' is given twice with different values: "
                                         r"at the top of the body \('labels'\) and in "
                                         r"'parameters' \('probabilities'\); give it once$"):
        option({"return": "labels", "parameters": {"return": "probabilities"}}, "return")


@pytest.mark.parametrize("where", ["top", "parameters"])
def test_probabilities_answer_with_labels_from_their_argmax_and_are_logged_as_scores(
        models, where):
    asked = {"return": "probabilities"}
    body = {"instances": ROWS, **(asked if where == "top" else {"parameters": asked})}
    got = answer(models["good"], body, "champion", "m@1")
    probabilities = got.answer["probabilities"]
    assert got.answer["classes"] == [0, 1]
    assert [sum(p) for p in probabilities] == pytest.approx([1.0] * len(ROWS))
    assert got.answer["predictions"] == [int(p[1] > p[0]) for p in probabilities] \
        == models["good"].predict(ROWS)
    assert (json.loads(got.predictions), json.loads(got.scores)) == \
        (got.answer["predictions"], probabilities)


def test_labels_alone_log_no_scores(models):
    got = answer(models["good"], {"instances": ROWS}, "champion", "m@1")
    assert got.answer == {"predictions": models["good"].predict(ROWS)}
    assert got.scores is None and json.loads(got.predictions) == got.answer["predictions"]


@pytest.mark.parametrize("body", [
    pytest.param({"explain": True}, id="at the top"),
    pytest.param({"parameters": {"explain": True}}, id="under parameters"),
])
def test_an_explanation_is_occlusion_in_locals_shape_and_is_not_logged(models, body):
    got = answer(models["good"], {"instances": ROWS, **body}, "champion", "m@1")
    assert got.answer == {"explanations": occlusion(models["good"], ROWS),
                          "method": "occlusion", "baseline": "training means",
                          "variant": "champion", "model": "m@1"}
    assert (got.predictions, got.scores) == (None, None)


@pytest.mark.parametrize(("body", "variant", "message"), [
    pytest.param({"instances": ROWS, "explain": 1}, "champion",
                 "'explain' must be true or false, not 1", id="a flag that is no boolean"),
    pytest.param({"instances": ROWS, "return": "scores"}, "champion",
                 "'return' must be one of 'labels', 'probabilities', not 'scores'",
                 id="an output that does not exist"),
    pytest.param({"instances": [[1.0] * 3] * 101, "explain": True}, "champion",
                 "at most 100 instances can be explained in one request; this one has 101",
                 id="more instances than one explanation takes"),
    pytest.param({"instances": [[1.0]], "explain": True}, "champion",
                 "variant 'champion' cannot explain these instances: instance 0 has 1 "
                 "values; expected 3 (strong, weak, noise)", id="a row of the wrong width"),
    pytest.param({"instances": [[1.0]], "explain": True}, None,
                 "cannot explain these instances: instance 0 has 1 values; expected 3 "
                 "(strong, weak, noise)", id="a row of the wrong width, no variant known"),
])
def test_a_bad_body_is_refused_in_locals_words(models, body, variant, message):
    with pytest.raises(BadRequest) as refused:
        answer(models["good"], body, variant, "m@1")
    assert str(refused.value) == message
