"""Reports of an evaluation: a readable table, json, and a page that stands alone."""

from __future__ import annotations

import json
import re

import pytest
from mlform.engine.spec.models import Monitor
from mlform.ml.monitoring.evaluate import evaluate, read_reference
from mlform.ml.monitoring.report import render
from mlform.ml.serving.traffic import read_traffic


@pytest.fixture
def evaluation(paths, reference_uri, log_traffic) -> dict:
    log_traffic("fraud", requests=30, seed=2)
    log_traffic("fraud", requests=30, seed=3, amount_mean=160.0, start=5_000.0)
    spec = Monitor.model_validate({"type": "monitor", "endpoint": "fraud", "window_rows": 300,
                                   "reference": reference_uri, "drift_share": 0.3,
                                   "performance": {"metric": "accuracy", "min": 0.9}})
    return evaluate(spec, read_traffic(paths.endpoint("fraud")),
                    read_reference(paths.resolve(reference_uri)), now=1_700_000_000.0,
                    name="fraud_monitor")


def test_text_is_a_table_of_feature_method_value_threshold_and_verdict(evaluation):
    lines = render(evaluation, "text").splitlines()
    assert lines[0] == "monitor fraud_monitor at 2023-11-14T22:13:20+00:00: drift"
    header = lines.index(next(line for line in lines if line.startswith("feature")))
    assert lines[header].split() == ["feature", "kind", "method", "value", "drift", "when",
                                     "verdict"]
    amount = next(line for line in lines if line.startswith("amount")).split()
    assert amount[:3] == ["amount", "numeric", "wasserstein"]
    assert amount[4:] == [">=", "0.1", "drift"]
    country = next(line for line in lines if line.startswith("country")).split()
    assert country[-3:] == [">=", "0.1", "ok"]
    assert any(line.startswith("performance: accuracy 1.0000 (min 0.9) over 300 labelled")
               for line in lines)


def test_json_holds_the_whole_evaluation(evaluation):
    assert json.loads(render(evaluation, "json")) == evaluation


def test_html_stands_alone(evaluation):
    page = render(evaluation, "html")
    assert not re.search(r"https?://", page)
    assert not re.search(r"<script|<link|<img|<iframe|@import|url\(", page, re.IGNORECASE)
    # one histogram per compared feature, plus the predictions
    assert page.count("<svg") == len(evaluation["features"]) + 1
    assert "<title>monitor fraud_monitor: drift</title>" in page


def test_html_escapes_what_it_shows(evaluation):
    evaluation["features"][0]["name"] = "<b>amount</b>"
    page = render(evaluation, "html")
    assert "<b>amount</b>" not in page and "&lt;b&gt;amount&lt;/b&gt;" in page


def test_an_unknown_format_names_the_known_ones(evaluation):
    with pytest.raises(ValueError, match="unknown report format 'pdf': use one of "
                                         "text, json, html"):
        render(evaluation, "pdf")
