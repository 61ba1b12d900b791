import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlform.engine.provider import (
    CreateRequest,
    DeleteRequest,
    DiffRequest,
    ObserveRequest,
    Progress,
    ResourceRef,
)
from mlform.engine.values import Unknown
from mlform.ml.artifact import load_predictor
from mlform.providers.local.paths import LocalPaths
from mlform.providers.local.training.handler import TrainingJobHandler

JOB = ResourceRef("train", "training_job")
FIXTURE_SCRIPT = Path(__file__).parent / "fixtures" / "train.py"


def job_inputs(dataset_uri, **overrides):
    return {"dataset": dataset_uri, "algorithm": "mlp_classifier", "target": "label",
            "hyperparameters": {"epochs": 3, "lr": 0.02, "hidden_layers": [8]}, **overrides}


def train(ctx, inputs, messages=None):
    sink = (lambda m, f: messages.append(m)) if messages is not None else None
    return TrainingJobHandler(ctx).create(CreateRequest(JOB, inputs, "key"), Progress(sink))


@pytest.mark.slow
def test_same_inputs_and_seed_give_identical_metrics_and_separable_data_scores_high(
        ctx, dataset_uri):
    first = train(ctx, job_inputs(dataset_uri))
    assert first.error is None, first.error
    assert first.outputs["metrics"]["auc"] > 0.9
    run_dir = LocalPaths(ctx.data_dir).run("train", first.outputs["run_id"])
    shutil.rmtree(run_dir)  # force a genuine second run of the same inputs

    second = train(ctx, job_inputs(dataset_uri))

    assert second.outputs["run_id"] == first.outputs["run_id"]
    assert second.outputs["metrics"] == first.outputs["metrics"]
    assert json.loads((run_dir / "status.json").read_text())["status"] == "succeeded"


@pytest.mark.slow
def test_a_finished_run_is_adopted_and_outputs_describe_it(ctx, dataset_uri):
    messages: list[str] = []
    first = train(ctx, job_inputs(dataset_uri))
    run_dir = LocalPaths(ctx.data_dir).run("train", first.outputs["run_id"])
    started = (run_dir / "status.json").read_text()

    again = train(ctx, job_inputs(dataset_uri), messages)

    assert again.outputs["metrics"] == first.outputs["metrics"]
    assert (run_dir / "status.json").read_text() == started
    assert any("adopting" in m for m in messages)
    assert again.outputs["artifact"] == f"local://runs/train/{first.outputs['run_id']}"
    assert again.outputs["device"] == "cpu"
    assert again.outputs["data_version"] == dataset_uri.rsplit("/", 1)[1]
    assert [r["run_id"] for r in again.outputs["runs"]] == [first.outputs["run_id"]]
    for name in ("params.json", "metrics.json", "train.log", "holdout.parquet"):
        assert (run_dir / name).is_file(), name
    assert "kind" in load_predictor(run_dir / "artifact").features


@pytest.mark.slow
def test_a_running_run_is_waited_on_not_started_again(ctx, dataset_uri):
    handler = TrainingJobHandler(ctx)
    plan = handler._plan("train", job_inputs(dataset_uri))
    process = handler._start(plan)  # as if an earlier apply had started it and died

    adopted = train(ctx, job_inputs(dataset_uri))

    assert adopted.error is None, adopted.error
    assert process.wait(timeout=60) == 0
    log = (plan.run_dir / "train.log").read_text()
    assert log.count("run ") == 1, log


@pytest.mark.slow
def test_gpu_requested_without_one_trains_on_cpu_and_says_so(ctx, dataset_uri):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    messages: list[str] = []
    done = train(ctx, job_inputs(dataset_uri, compute={"gpus": 1}), messages)
    assert done.outputs["device"] == "cpu"
    assert any("no GPU available" in m for m in messages)


@pytest.mark.slow
def test_custom_entrypoint_runs_under_the_documented_contract(ctx, dataset_uri):
    shutil.copy(FIXTURE_SCRIPT, ctx.stack_dir / "train.py")
    inputs = {"dataset": dataset_uri, "entrypoint": "train.py", "target": "label",
              "hyperparameters": {"epochs": 40}}

    done = train(ctx, inputs)

    assert done.error is None, done.error
    assert done.outputs["metrics"]["auc"] > 0.9
    assert "train_loss" in done.outputs["metrics"]
    log = Path(done.outputs["log"]).read_text()
    assert "epoch 40 loss" in log


@pytest.mark.slow
def test_a_failing_script_reports_its_error_and_log(ctx, dataset_uri):
    (ctx.stack_dir / "train.py").write_text("raise SystemExit('no GPU budget left')\n")
    done = train(ctx, {"dataset": dataset_uri, "entrypoint": "train.py", "target": "label"})
    assert "train.py exited with status 1" in done.error
    assert "no GPU budget left" in done.error


@pytest.mark.parametrize("change, path", [
    ({"hyperparameters": {"epochs": 4, "lr": 0.02, "hidden_layers": [8]}},
     "hyperparameters.epochs"),
    ({"seed": 7}, "seed"),
    ({"test_size": 0.3}, "test_size"),
    ({"dataset": "local://datasets/tx/ffffffffffff"}, "dataset"),
    ({"features": ["x0"]}, "features"),
], ids=["hyperparameters", "seed", "split", "data", "features"])
def test_what_the_model_learns_from_forces_a_new_run(ctx, change, path):
    prior = job_inputs("local://datasets/tx/aaaaaaaaaaaa")
    handler = TrainingJobHandler(ctx)
    diff = handler.diff(DiffRequest(
        JOB, prior, {"code_digest": handler._code_digest(prior)}, {**prior, **change}))
    assert diff.requires_replace == [path]
    assert diff.changes[0].reason
    assert diff.planned_outputs["artifact"].startswith("local://runs/train/")


def test_compute_changes_update_in_place(ctx):
    prior = job_inputs("local://datasets/tx/aaaaaaaaaaaa")
    handler = TrainingJobHandler(ctx)
    code = handler._code_digest(prior)
    diff = handler.diff(DiffRequest(JOB, prior, {"code_digest": code},
                                    {**prior, "compute": {"gpus": 1}}))
    assert [c.path for c in diff.changes] == ["compute"]
    assert diff.requires_replace == []


def test_edited_entrypoint_with_same_inputs_is_a_new_run(ctx):
    script = ctx.stack_dir / "train.py"
    script.write_text("print('v1')\n")
    inputs = {"dataset": "local://datasets/tx/aaaaaaaaaaaa", "entrypoint": "train.py",
              "target": "label"}
    handler = TrainingJobHandler(ctx)
    before = handler._code_digest(inputs)
    script.write_text("print('v2')\n")

    diff = handler.diff(DiffRequest(JOB, inputs, {"code_digest": before}, dict(inputs)))

    assert diff.requires_replace == ["code_digest"]
    assert diff.changes[0].before == before
    assert diff.note.startswith("train.py changed: code digest ")


def test_unknown_data_leaves_the_artifact_unknown(ctx):
    diff = TrainingJobHandler(ctx).diff(DiffRequest(
        JOB, None, None, job_inputs(Unknown("${tx.uri}"))))
    assert diff.error is None
    assert "artifact" not in diff.planned_outputs


@pytest.mark.parametrize("inputs, message", [
    ({"hyperparameters": {"epoch": 3}}, "unknown hyperparameter(s) 'epoch'"),
    ({"algorithm": "logistic_regression", "hyperparameters": {"hidden_layers": [4]}},
     "'logistic_regression' has no hidden layers"),
    ({"dataset": "local://datasets/tx/000000000000"}, "apply the dataset first"),
], ids=["misspelt", "linear-with-layers", "dataset-not-stored"])
def test_bad_inputs_are_reported_before_training(ctx, inputs, message):
    done = train(ctx, job_inputs("local://datasets/tx/000000000000", **inputs))
    assert message in done.error


@pytest.mark.slow
def test_observe_finds_an_interrupted_create_and_delete_removes_the_run(ctx, dataset_uri):
    handler = TrainingJobHandler(ctx)
    done = train(ctx, job_inputs(dataset_uri))
    seen = handler.observe(ObserveRequest(JOB, job_inputs(dataset_uri), None, "key"))
    assert seen.exists and seen.outputs["run_id"] == done.outputs["run_id"]

    handler.delete(DeleteRequest(JOB, job_inputs(dataset_uri), done.outputs), Progress())

    gone = handler.observe(ObserveRequest(JOB, job_inputs(dataset_uri), done.outputs))
    assert not gone.exists and "is gone" in gone.detail


def test_runner_without_a_run_dir_prints_usage():
    result = subprocess.run([sys.executable, "-m", "mlform.providers.local.training.runner"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "usage:" in result.stderr
