"""What an endpoint handler's tick makes of a server's logs and statistics, on every
provider whose server writes the local request and feedback logs (`ml.experiments.measure`),
and the `/explain` request and answer every server shares (`ml.serving.explaining`)."""

from __future__ import annotations

import json

import pytest
from mlform.ml.experiments.measure import kept_verdict, measure, serving_stats
from mlform.ml.serving.explaining import answer, requested_rows
from mlform.ml.serving.parsing import BadRequest

EXPERIMENT = {"name": "e1", "metric": "accuracy", "test": "fixed_horizon", "alpha": 0.05,
              "power": 0.8, "mde": 0.5, "baseline": 0.5, "control": None}


def test_measure_reads_the_logs_and_leaves_shadows_out(tmp_path):
    rows = [{"t": i, "id": f"r{i}", "variant": "a" if i % 2 else "b", "model": "m",
             "features": ["x"], "instances": [[1]], "predictions": [1]} for i in range(40)]
    (tmp_path / "requests.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "feedback.jsonl").write_text("".join(
        json.dumps({"t": r["t"], "id": r["id"], "labels": [1 if r["variant"] == "a" else 0]})
        + "\n" for r in rows))

    verdict = measure(EXPERIMENT, {"a": {"weight": 50}, "b": {"weight": 50},
                                   "s": {"weight": 0, "shadow": True}}, tmp_path, now=5.0,
                      serving={"a": {"requests": 20}})

    assert sorted(verdict["variants"]) == ["a", "b"]
    assert (verdict["status"], verdict["winner"], verdict["time"]) == ("winner", "a", 5.0)
    assert verdict["variants"]["a"]["observations"] == 20
    assert verdict["variants"]["a"]["serving"] == {"requests": 20}


def test_serving_stats_merge_a_variant_of_both_tracks():
    tracks = {"stable": {"variants": {"a": {"requests": 8, "errors": 1, "p99_ms": 3.0},
                                      "b": {"requests": 0, "errors": 0, "p99_ms": None}}},
              "canary": {"variants": {"a": {"requests": 2, "errors": 1, "p99_ms": 9.0}}}}
    assert serving_stats(tracks) == {
        "a": {"requests": 10, "errors": 2, "error_rate": 0.2, "p99_ms": 9.0},
        "b": {"requests": 0, "errors": 0, "error_rate": None, "p99_ms": None}}


@pytest.mark.parametrize(("experiment", "kept"), [
    pytest.param({"name": "e1"}, True, id="the-same-experiment-keeps-it"),
    pytest.param({"name": "e2"}, False, id="a-new-experiment-drops-it"),
    pytest.param(None, False, id="no-experiment-drops-it"),
])
def test_kept_verdict(experiment, kept):
    prior = {"url": "u", "experiment": {"name": "e1", "status": "winner"}}
    assert kept_verdict(prior, experiment) == ({"experiment": prior["experiment"]} if kept
                                               else {})


def test_an_explain_request_holds_at_most_100_instances():
    assert requested_rows(b'{"instances": [[1, 2]]}') == [[1, 2]]
    with pytest.raises(BadRequest, match="at most 100 instances can be explained in one "
                                         "request; this one has 101"):
        requested_rows(json.dumps({"instances": [[1]] * 101}).encode())
    assert answer([], "a", "m") == {"explanations": [], "method": "occlusion",
                                    "baseline": "training means", "variant": "a",
                                    "model": "m"}
