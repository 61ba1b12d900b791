"""The scripts the azure provider ships into Azure ML (training command, scoring script),
run here as Azure runs them: the training script with mounted paths, the scoring script
through Azure's contract (`init()` once with AZUREML_MODEL_DIR, then `run(raw)`)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from mlform.providers.azure import packaging

pytestmark = pytest.mark.e2e  # trains a model in a subprocess

CSV = "amount,age,is_fraud\n" + "".join(
    f"{i * 3.5 % 97},{20 + i % 40},{int(i % 7 == 0)}\n" for i in range(60))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder written by the training script from its code folder, as a command job
    runs it: `python train.py --data <mounted file> --model <mounted output folder>`."""
    root = tmp_path_factory.mktemp("azure-train")
    code = root / "code"
    settings = {"resource": "train", "algorithm": "logistic_regression", "target": "is_fraud",
                "features": None, "exclude": [], "hyperparameters": {"epochs": 2},
                "seed": 7, "test_size": 0.25, "gpus": 0, "entrypoint": None}
    for name, data in packaging.folder("train", settings).items():
        (code / name).parent.mkdir(parents=True, exist_ok=True)
        (code / name).write_bytes(data)
    (root / "rows.csv").write_text(CSV)
    out = root / "outputs" / "model"
    got = subprocess.run([sys.executable, "train.py", "--data", str(root / "rows.csv"),
                          "--model", str(out)], cwd=code, capture_output=True, text=True,
                         timeout=300, env={"PATH": "/usr/bin:/bin"})
    assert got.returncode == 0, got.stderr
    return out


def test_the_training_script_writes_the_artifact_metrics_and_holdout(trained):
    assert {"metrics.json", "holdout.csv", "run.json", "model.json"} <= \
        {p.name for p in trained.iterdir()}
    assert "auc" in json.loads((trained / "metrics.json").read_text())
    assert json.loads((trained / "run.json").read_text())["seed"] == 7


def _scoring_module(tmp_path: Path):
    code = tmp_path / "code"
    for name, data in packaging.folder("score", {"resource": "serve"}).items():
        (code / name).parent.mkdir(parents=True, exist_ok=True)
        (code / name).write_bytes(data)
    spec = importlib.util.spec_from_file_location("azure_score_under_test", code / "score.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_scoring_script_finds_a_folder_model_and_answers_the_prediction_api(
        trained, tmp_path, monkeypatch):
    # As on the service, a folder model sits in a folder of its own name.
    model_dir = tmp_path / "azureml-models" / "m" / "1"
    (model_dir / "model").mkdir(parents=True)
    for path in trained.iterdir():
        (model_dir / "model" / path.name).write_bytes(path.read_bytes())
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("MLFORM_DEPLOYMENT", "champion-abc123")
    monkeypatch.delenv("MLFORM_REQUEST_LOG", raising=False)
    score = _scoring_module(tmp_path)
    score.init()
    answer = score.run(json.dumps({"instances": [[10.0, 30], [50.0, 41]],
                                   "parameters": {"id": "r-1"}}))
    assert answer["id"] == "r-1" and len(answer["predictions"]) == 2
    with pytest.raises(ValueError, match="instances"):
        score.run(json.dumps({"rows": []}))


def _initialised(trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The scoring script after `init()` on `trained`, its request log held in memory (a
    flush interval of an hour: the test reads the buffered lines)."""
    model_dir = tmp_path / "azureml-models" / "m" / "1"
    (model_dir / "model").mkdir(parents=True)
    for path in trained.iterdir():
        (model_dir / "model" / path.name).write_bytes(path.read_bytes())
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("MLFORM_DEPLOYMENT", "champion-abc123")
    monkeypatch.setenv("MLFORM_MODEL", "azureml:m:1")
    monkeypatch.setenv("MLFORM_REQUEST_LOG", "requests/ep")
    monkeypatch.setenv("MLFORM_LOG_FLUSH_SECONDS", "3600")
    score = _scoring_module(tmp_path)
    score.init()
    return score


ROWS = [[10.0, 30], [50.0, 41], [90.0, 25], [3.5, 59]]


def test_the_scoring_script_answers_probabilities_and_logs_them_as_scores(
        trained, tmp_path, monkeypatch):
    score = _initialised(trained, tmp_path, monkeypatch)
    labels = score.run(json.dumps({"instances": ROWS, "parameters": {"id": "r-labels"}}))
    top = score.run(json.dumps({"instances": ROWS, "return": "probabilities",
                                "parameters": {"id": "r-top"}}))
    nested = score.run(json.dumps({"instances": ROWS,
                                   "parameters": {"id": "r-nested", "return": "probabilities"}}))
    assert "probabilities" not in labels
    for answer in (top, nested):
        assert answer["classes"] == [0, 1]
        for row, label in zip(answer["probabilities"], answer["predictions"], strict=True):
            assert sum(row) == pytest.approx(1.0, abs=1e-6)
            assert label == answer["classes"][max(range(len(row)), key=row.__getitem__)]
        assert answer["predictions"] == labels["predictions"]
    assert nested["probabilities"] == top["probabilities"]
    logged = {line["id"]: line for line in map(json.loads, score.STATE["log"].lines)}
    assert "scores" not in logged["r-labels"]
    assert logged["r-top"]["scores"] == top["probabilities"]
    assert logged["r-nested"]["scores"] == nested["probabilities"]


def test_the_scoring_script_explains_as_occlusion_on_the_artifact(trained, tmp_path,
                                                                   monkeypatch):
    from mlform.ml.artifact import load_predictor
    from mlform.ml.explain import occlusion

    score = _initialised(trained, tmp_path, monkeypatch)
    answer = score.run(json.dumps({"instances": ROWS, "explain": True}))
    want = occlusion(load_predictor(trained), ROWS)
    assert answer == {"explanations": want, "method": "occlusion",
                      "baseline": "training means", "variant": "champion-abc123",
                      "model": "azureml:m:1"}
    assert score.STATE["log"].lines == []  # an explanation is no prediction to monitor


@pytest.mark.parametrize(("body", "says"), [
    pytest.param({"explain": "yes"}, "'explain' must be true or false",
                 id="explain is not a boolean"),
    pytest.param({"return": "scores"}, "'return' must be one of",
                 id="an unknown output"),
    pytest.param({"return": "labels", "parameters": {"return": "probabilities"}},
                 "'return' is given twice with different values",
                 id="the top and parameters disagree"),
    pytest.param({"explain": True, "instances": [[1.0, 2.0]] * 101},
                 "at most 100 instances can be explained", id="too many to explain"),
])
def test_the_scoring_script_refuses_a_bad_option(trained, tmp_path, monkeypatch, body, says):
    score = _initialised(trained, tmp_path, monkeypatch)
    with pytest.raises(ValueError, match=says):
        score.run(json.dumps({"instances": ROWS, **body}))
