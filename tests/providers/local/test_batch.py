"""Batch scoring with a really trained and registered model (trained once per module)."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlform.engine.provider import (
    CreateRequest,
    DiffRequest,
    Progress,
    ProviderContext,
    ResourceRef,
    TickRequest,
)
from mlform.ml.artifact import load_predictor
from mlform.providers.local.batch import BatchJobHandler, output_version
from mlform.providers.local.dataset import DatasetHandler
from mlform.providers.local.paths import LocalPaths
from mlform.providers.local.registry.handler import ModelHandler
from mlform.providers.local.training.handler import TrainingJobHandler

pytestmark = pytest.mark.slow


def table(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 2))
    return pd.DataFrame({"id": np.arange(rows), "x0": x[:, 0], "x1": x[:, 1],
                         "kind": rng.choice(["a", "b", "c"], rows),
                         "label": (x[:, 0] + x[:, 1] > 0).astype(int)})


def store(ctx, name: str, frame: pd.DataFrame, fmt: str = "parquet") -> str:
    path = ctx.stack_dir / "data" / f"{name}.{fmt}"
    path.parent.mkdir(exist_ok=True)
    # small row groups, so that chunks cut across them
    frame.to_csv(path, index=False) if fmt == "csv" else \
        frame.to_parquet(path, index=False, row_group_size=700)
    done = DatasetHandler(ctx).create(CreateRequest(
        ResourceRef(name, "dataset"), {"source": str(path.relative_to(ctx.stack_dir))}, "k"),
        Progress())
    assert done.error is None, done.error
    return done.outputs["uri"]


def register(ctx, seed: int) -> str:
    trained = TrainingJobHandler(ctx).create(CreateRequest(
        ResourceRef(f"train{seed}", "training_job"),
        {"dataset": store(ctx, "train", table(300, seed)), "algorithm": "logistic_regression",
         "target": "label", "exclude": ["id"], "seed": seed,
         "hyperparameters": {"epochs": 3, "lr": 0.05}}, "k"), Progress())
    assert trained.error is None, trained.error
    registered = ModelHandler(ctx).create(CreateRequest(
        ResourceRef("scorer", "model"), {"artifact": trained.outputs["artifact"]}, "k"),
        Progress())
    assert registered.error is None, registered.error
    return registered.outputs["uri"]


@pytest.fixture(scope="module")
def ctx(tmp_path_factory) -> ProviderContext:
    root = tmp_path_factory.mktemp("stack")
    return ProviderContext("test", root, "local", {}, root / ".mlform" / "local")


@pytest.fixture(scope="module")
def models(ctx) -> list[str]:
    return [register(ctx, 0), register(ctx, 1)]


def run_job(ctx, name: str, inputs: dict, seen: list | None = None):
    progress = Progress(lambda message, fraction: seen.append(message)) \
        if seen is not None else Progress()
    return BatchJobHandler(ctx).create(CreateRequest(ResourceRef(name, "batch_job"), inputs,
                                                     "k"), progress)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_chunked_scoring_equals_one_shot_scoring_and_a_rerun_is_a_no_op(ctx, models, fmt):
    frame = table(3000, seed=7)
    data = store(ctx, f"score_{fmt}", frame, fmt)
    seen: list[str] = []
    done = run_job(ctx, f"nightly_{fmt}", {"model": models[0], "dataset": data,
                                           "chunk_rows": 256}, seen)
    assert done.error is None, done.error
    version = output_version(models[0], data)
    assert done.outputs["output_uri"] == f"local://batch/nightly_{fmt}/{version}"
    assert done.outputs["rows"] == 3000
    assert len(seen) == math.ceil(3000 / 256)
    assert seen[-1] == f"chunk {len(seen)}: 3000/3000 rows scored"

    scored = pd.read_parquet(done.outputs["path"])
    predictor = load_predictor(LocalPaths(ctx.data_dir).resolve(models[0]) / "artifact")
    assert scored["prediction"].tolist() == predictor.predict(frame)
    pd.testing.assert_frame_equal(scored.drop(columns="prediction"), frame)

    written = (ctx.data_dir / "batch" / f"nightly_{fmt}" / version / "predictions.parquet")
    before = written.stat().st_mtime_ns
    again: list[str] = []
    rerun = run_job(ctx, f"nightly_{fmt}", {"model": models[0], "dataset": data,
                                            "chunk_rows": 1000}, again)
    assert rerun.outputs["output_uri"] == done.outputs["output_uri"]
    assert again == [f"predictions {version} already exist: adopting them"]
    assert written.stat().st_mtime_ns == before
    runs = [json.loads(line) for line in Path(done.outputs["runs"]).read_text().splitlines()]
    assert [r["adopted"] for r in runs] == [False, True]


def test_the_plan_names_the_new_output_when_the_model_changes(ctx, models):
    data = store(ctx, "plan_input", table(50))
    prior = {"model": models[0], "dataset": data}
    diff = BatchJobHandler(ctx).diff(DiffRequest(
        ResourceRef("nightly", "batch_job"), prior,
        {"version": output_version(models[0], data)}, {**prior, "model": models[1]}))
    version = output_version(models[1], data)
    assert [c.path for c in diff.changes] == ["model"]
    assert diff.planned_outputs == {"output_uri": f"local://batch/nightly/{version}",
                                    "version": version}
    assert diff.note == f"scores again as version {version} (local://batch/nightly/{version})"


def test_a_scheduled_job_scores_again_only_when_its_model_moved(ctx, models):
    data = store(ctx, "scheduled_input", table(200))
    inputs = {"model": models[0], "dataset": data, "schedule": "1h", "chunk_rows": 64}
    first = run_job(ctx, "hourly", inputs)

    def tick(model_now: str, now: float, outputs: dict):
        return BatchJobHandler(ctx).tick(TickRequest(
            ResourceRef("hourly", "batch_job"), inputs, outputs,
            stack_outputs={"scorer": {"uri": model_now}, "scheduled_input": {"uri": data}},
            stack_inputs={}, now=now))

    assert tick(models[0], 0.0, first.outputs).outputs is None
    moved = tick(models[1], 0.0, first.outputs)
    assert moved.error is None, moved.error
    assert moved.outputs["version"] == output_version(models[1], data)
    assert moved.outputs["model"] == models[1]
    assert moved.events == [f"scored 200 rows of {data} with {models[1]}: "
                            f"{moved.outputs['output_uri']}"]
    recorded = {**first.outputs, **moved.outputs}
    assert tick(models[0], 60.0, recorded).outputs is None  # within the schedule's hour
    assert tick(models[0], 3601.0, recorded).outputs["model"] == models[0]


def test_a_job_without_schedule_has_no_tick(ctx, models):
    assert BatchJobHandler(ctx).tick(TickRequest(
        ResourceRef("once", "batch_job"), {"model": models[0], "dataset": "x"}, {}, {}, {},
        0.0)) is None


def test_scoring_with_a_retired_version_says_so(ctx, models):
    data = store(ctx, "retired_input", table(20))
    model_dir = LocalPaths(ctx.data_dir).resolve(models[0])
    hidden = model_dir.parent / ".artifact-aside"
    (model_dir / "artifact").rename(hidden)
    try:
        done = run_job(ctx, "late", {"model": models[0], "dataset": data})
    finally:
        hidden.rename(model_dir / "artifact")
    assert done.error == (f"batch job 'late': model '{models[0]}' is retired: its artifact "
                          "was removed; score with a version that is not retired")
