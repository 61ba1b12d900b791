"""Monitors of a batch job's output, on predictions files written by the batch job's own
scoring code (`score_file`), and once end to end with a really trained model."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlform.engine.provider import (
    CreateRequest,
    Progress,
    ProviderContext,
    ResourceRef,
    TickRequest,
)
from mlform.ml.monitoring.report import render
from mlform.providers.local.batch import PREDICTIONS, RUNS, output_version, score_file
from mlform.providers.local.monitoring.batch_output import locate, read_batch_output
from mlform.providers.local.monitoring.handler import MonitorHandler
from mlform.providers.local.paths import batch_uri, dataset_uri

from .conftest import COUNTRIES, FEATURES, frame

REF = ResourceRef(name="score_monitor", type="monitor", id="score_monitor")
MODEL = "local://models/fraud/1"
HOUR = 3600.0
NOW = 1_000_000.0


class Rule:
    """A predictor that answers by a rule on the chunk's columns."""

    def __init__(self, rule: Callable[[pd.DataFrame], pd.Series]):
        self.rule = rule

    def predict(self, chunk: pd.DataFrame) -> list:
        return list(self.rule(chunk))


RIGHT = Rule(lambda chunk: chunk["is_fraud"])
WRONG_TWO_IN_FIVE = Rule(lambda chunk: np.where(chunk["row"] % 5 < 2, 1 - chunk["is_fraud"],
                                                chunk["is_fraud"]))
BY_AMOUNT = Rule(lambda chunk: (chunk["amount"] > 100).astype(int))


def batch_input(rows: int = 1000, seed: int = 5, amount_mean: float = 100.0,
                country: str | None = None, drop: tuple[str, ...] = ()) -> pd.DataFrame:
    """Rows drawn like the reference, with a `row` number the model does not use."""
    data = frame(rows, seed=seed, amount_mean=amount_mean)
    if country:
        data["country"] = country
    return data.assign(row=np.arange(rows)).drop(columns=list(drop))


def write_output(paths, job: str, data: pd.DataFrame, predictor=RIGHT,
                 chunk_rows: int = 128) -> str:
    """Score `data` into `batch/<job>/<version>/` as a run of the batch job does (its
    `score_file`, meta.json and runs.jsonl), with a model whose card names its target
    and features; returns the output uri."""
    card = paths.resolve(MODEL) / "card.json"
    card.parent.mkdir(parents=True, exist_ok=True)
    card.write_text(json.dumps({"model": "fraud", "version": 1, "target": "is_fraud",
                                "features": FEATURES}))
    digest = hashlib.sha256(data.to_csv().encode()).hexdigest()[:12]
    source = paths.root.parent / "inputs" / f"{digest}.parquet"
    source.parent.mkdir(parents=True, exist_ok=True)
    data.to_parquet(source, index=False)
    input_uri = dataset_uri(f"{job}_input", digest)
    version = output_version(MODEL, input_uri)
    directory = paths.batch(job, version)
    directory.mkdir(parents=True)
    rows = score_file(predictor, source, "parquet", directory / PREDICTIONS, chunk_rows,
                      Progress())
    meta = {"version": version, "model": MODEL, "input": input_uri, "rows": rows,
            "chunk_rows": chunk_rows, "seconds": 0.1, "created": "2026-01-01T00:00:00Z"}
    (directory / "meta.json").write_text(json.dumps(meta))
    with (directory.parent / RUNS).open("a") as runs:
        runs.write(json.dumps({"time": meta["created"], "version": version, "model": MODEL,
                               "input": input_uri, "rows": rows, "adopted": False,
                               "seconds": 0.1}) + "\n")
    return batch_uri(job, version)


@pytest.fixture
def handler(tmp_path: Path, paths) -> MonitorHandler:
    return MonitorHandler(ProviderContext(stack="fraud", stack_dir=tmp_path,
                                          provider_name="local", config={},
                                          data_dir=paths.root))


def spec(reference_uri: str, batch_job: str, **fields) -> dict:
    return {"batch_job": batch_job, "reference": reference_uri, "window_rows": 300,
            "min_rows": 100, "drift_share": 0.3, "schedule": "1h", **fields}


def tick(handler, inputs: dict, outputs: dict, now: float = NOW, stack_outputs=None):
    return handler.tick(TickRequest(resource=REF, inputs=inputs, outputs=outputs,
                                    stack_outputs=stack_outputs or {}, stack_inputs={},
                                    now=now))


def evaluation_of(response) -> dict:
    assert response.error is None, response.error
    return json.loads(Path(response.outputs["last_evaluation"]["evaluation"]).read_text())


@pytest.mark.parametrize(("data", "verdict", "drifted"), [
    pytest.param(batch_input(), "ok", [], id="a batch drawn like the reference is ok"),
    pytest.param(batch_input(amount_mean=160.0), "drift", ["amount"],
                 id="a shifted amount drifts alone"),
    pytest.param(batch_input(amount_mean=160.0, country=COUNTRIES[-1]), "drift",
                 ["amount", "country"], id="a shifted amount and country drift both"),
])
def test_drift_on_exactly_the_shifted_features(handler, paths, reference_uri, data, verdict,
                                               drifted):
    inputs = spec(reference_uri, write_output(paths, "score", data))
    assert handler.create(CreateRequest(REF, inputs, "k"), Progress()).error is None
    evaluation = evaluation_of(tick(handler, inputs, {}))
    assert (evaluation["verdict"], evaluation["drift"]["drifted_features"]) == (verdict, drifted)
    # the model's features: not its target, not `prediction`, not the unused `row`
    assert [f["name"] for f in evaluation["features"]] == FEATURES
    assert evaluation["rows"] == {"current": 300, "reference": 2000}


@pytest.mark.parametrize(("data", "predictor", "performance"), [
    pytest.param(batch_input(), RIGHT, {"value": 1.0, "rows": 300, "passed": True, "note": ""},
                 id="right predictions pass"),
    pytest.param(batch_input(), WRONG_TWO_IN_FIVE,
                 {"value": 0.6, "rows": 300, "passed": False, "note": ""},
                 id="two wrong in five breach the floor"),
    pytest.param(batch_input(drop=("is_fraud",)), BY_AMOUNT,
                 {"value": None, "rows": 0, "passed": None,
                  "note": "fewer labelled instances than min_rows 100"},
                 id="an input without the target column is not scored"),
])
def test_performance_compares_prediction_with_the_target_column(
        handler, paths, reference_uri, data, predictor, performance):
    inputs = spec(reference_uri, write_output(paths, "score", data, predictor),
                  performance={"metric": "accuracy", "min": 0.9})
    response = tick(handler, inputs, {})
    assert evaluation_of(response)["performance"] == {"metric": "accuracy", "min": 0.9,
                                                      "max": None, **performance}
    assert (response.breach or {}).get("kind") == \
        ("performance" if performance["passed"] is False else None)


def test_output_drift_compares_the_window_with_the_rows_before_it(handler, paths,
                                                                   reference_uri):
    always_fraud_at_the_end = Rule(lambda c: np.where(c["row"] >= 700, 1, c["is_fraud"]))
    inputs = spec(reference_uri, write_output(paths, "score", batch_input(),
                                              always_fraud_at_the_end))
    output = evaluation_of(tick(handler, inputs, {}))["output_drift"]
    assert (output["name"], output["baseline_rows"], output["drifted"]) == \
        ("prediction", 300, True)


def test_the_newest_rows_are_read_from_the_last_row_groups(paths):
    output = locate(paths, write_output(paths, "score", batch_input(), chunk_rows=128))
    traffic = read_batch_output(output, ["row"], last_rows=300)
    assert traffic.features["row"].tolist() == list(range(700, 1000))
    assert traffic.labels == batch_input()["is_fraud"].tolist()[700:]
    assert traffic.predictions == traffic.labels


@pytest.mark.parametrize(("data", "fields", "error"), [
    pytest.param(batch_input(drop=("age", "country")), {},
                 "lacks the reference's feature column(s) 'age', 'country': score data that "
                 "has them, or list the features to compare in 'features'",
                 id="an output without some of the model's features"),
    pytest.param(batch_input(drop=("age",)), {"features": ["amount", "age"]},
                 "lacks the reference's feature column(s) 'age': score data that has them, "
                 "or leave them out of 'features'", id="an output without a listed feature"),
])
def test_an_output_missing_feature_columns_is_refused(handler, paths, reference_uri, data,
                                                      fields, error):
    uri = write_output(paths, "score", data)
    inputs = spec(reference_uri, uri, **fields)
    created = handler.create(CreateRequest(REF, inputs, "k"), Progress())
    assert created.error == f"monitor 'score_monitor': batch output '{uri}' {error}"
    assert tick(handler, inputs, {}).error == \
        f"monitor 'score_monitor' could not evaluate: batch output '{uri}' {error}"


@pytest.mark.parametrize(("batch_job", "error"), [
    pytest.param("local://batch/score/000000000000",
                 "batch output 'local://batch/score/000000000000' not found at",
                 id="an output that was never written"),
    pytest.param("nightly", "batch job 'nightly' has no output under",
                 id="a job that never ran"),
    pytest.param("s3://bucket/predictions", "batch_job 's3://bucket/predictions' is not a "
                 "batch job of the local provider: use its output uri",
                 id="another provider's output"),
])
def test_create_refuses_an_output_that_is_not_there(handler, reference_uri, batch_job, error):
    response = handler.create(CreateRequest(REF, spec(reference_uri, batch_job), "k"),
                              Progress())
    assert response.error.startswith(f"monitor 'score_monitor': {error}")


def test_an_endpoint_and_a_batch_job_together_are_refused(handler, paths, reference_uri):
    inputs = spec(reference_uri, write_output(paths, "score", batch_input()), endpoint="fraud")
    assert handler.create(CreateRequest(REF, inputs, "k"), Progress()).error == (
        "monitor 'score_monitor': set one of 'endpoint' (an endpoint's id, such as "
        "'${fraud_endpoint.id}') or 'batch_job' (a batch job's output uri, such as "
        "'${score.output_uri}')")


def test_a_job_named_by_its_id_is_its_newest_output(handler, paths, reference_uri):
    write_output(paths, "score", batch_input())
    newest = write_output(paths, "score", batch_input(amount_mean=160.0))
    response = tick(handler, spec(reference_uri, "score"), {})
    assert response.outputs["last_evaluation"]["batch_output"] == newest
    assert response.outputs["last_evaluation"]["drifted_features"] == ["amount"]
    report = render(evaluation_of(response), "text").splitlines()
    assert report[1] == f"current rows 300 (of batch output {newest}), reference rows 2000"
    assert f"(of batch output {newest})," in \
        Path(response.outputs["last_evaluation"]["report"]).read_text()


def test_tick_evaluates_on_schedule_and_at_once_when_the_job_holds_a_new_output(
        handler, paths, reference_uri):
    first = write_output(paths, "score", batch_input())
    inputs = spec(reference_uri, first)
    evaluated = tick(handler, inputs, {})
    assert evaluated.events[0].startswith(f"monitor score_monitor on {first}: ok: 0 of 3")

    assert tick(handler, inputs, evaluated.outputs, now=NOW + 60).outputs is None
    again = tick(handler, inputs, evaluated.outputs, now=NOW + HOUR)
    assert again.outputs["last_evaluation"]["t"] == NOW + HOUR

    rescored = write_output(paths, "score", batch_input(amount_mean=160.0))
    state = {"score": {"output_uri": rescored}, "other": {"output_uri": "local://batch/x/1"}}
    followed = tick(handler, inputs, again.outputs, now=NOW + HOUR + 60, stack_outputs=state)
    last = followed.outputs["last_evaluation"]
    assert (last["batch_output"], last["verdict"]) == (rescored, "drift")
    assert tick(handler, inputs, followed.outputs, now=NOW + HOUR + 120,
                stack_outputs=state).outputs is None


def test_too_few_rows_claim_nothing(handler, paths, reference_uri):
    inputs = spec(reference_uri, write_output(paths, "score", batch_input(rows=50)))
    evaluation = evaluation_of(tick(handler, inputs, {}))
    assert evaluation["verdict"] == "insufficient_data"
    assert evaluation["summary"] == ("50 row(s) in the batch output, fewer than min_rows 100: "
                                     "no verdict yet")


@pytest.mark.slow
def test_a_really_scored_batch_output_end_to_end(tmp_path):
    from mlform.providers.local.batch import BatchJobHandler
    from mlform.providers.local.dataset import DatasetHandler
    from mlform.providers.local.registry.handler import ModelHandler
    from mlform.providers.local.training.handler import TrainingJobHandler

    ctx = ProviderContext("fraud", tmp_path, "local", {}, tmp_path / ".mlform" / "local")

    def apply(handler, name: str, rtype: str, inputs: dict) -> dict:
        done = handler.create(CreateRequest(ResourceRef(name, rtype), inputs, "k"), Progress())
        assert done.error is None, done.error
        return done.outputs

    def dataset(name: str, data: pd.DataFrame) -> str:
        (tmp_path / f"{name}.csv").write_text(data.to_csv(index=False))
        return apply(DatasetHandler(ctx), name, "dataset", {"source": f"{name}.csv"})["uri"]

    reference = dataset("transactions", frame(600, seed=1))
    run = apply(TrainingJobHandler(ctx), "train", "training_job", {
        "dataset": reference, "algorithm": "logistic_regression", "target": "is_fraud",
        "seed": 0, "hyperparameters": {"epochs": 2, "lr": 0.05}})
    model = apply(ModelHandler(ctx), "fraud", "model", {"artifact": run["artifact"]})["uri"]
    scored = apply(BatchJobHandler(ctx), "score", "batch_job", {
        "model": model, "dataset": dataset("tonight", batch_input(amount_mean=160.0)),
        "chunk_rows": 256})

    handler = MonitorHandler(ctx)
    inputs = spec(reference, scored["output_uri"], performance={"metric": "accuracy"})
    assert handler.create(CreateRequest(REF, inputs, "k"), Progress()).error is None
    evaluation = evaluation_of(tick(handler, inputs, {}))
    assert evaluation["batch_output"] == scored["output_uri"]
    assert evaluation["drift"]["drifted_features"] == ["amount"]
    assert [f["name"] for f in evaluation["features"]] == FEATURES
    assert evaluation["performance"]["rows"] == 300
    assert 0.0 <= evaluation["performance"]["value"] <= 1.0
