"""The scripts shipped to SageMaker's containers, run here the way the containers run them:
the training bundle trains for real and leaves artifact, metrics and held-out rows; the
serving functions answer mlform's request format; the evaluator measures gates."""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from aws_stack import CSV
from mlform.providers.aws import packaging

ML_ROOT = Path(importlib.util.find_spec("mlform.ml").origin).parent
LEGACY_SCRIPT = """\
import os
import pandas as pd
import torch
import mlform.providers.local.artifact
from mlform.providers.local.artifact import save_model

train = pd.read_csv(os.environ["MLFORM_TRAIN_DATA"])
assert mlform.providers.local.artifact.save_model is save_model
save_model(os.environ["MLFORM_MODEL_DIR"], torch.nn.Linear(2, 1),
           {"task": "classification", "features": ["amount", "age"], "target": "is_fraud",
            "classes": [0, 1], "preprocessing": {
                "amount": {"kind": "numeric", "mean": float(train.amount.mean()), "std": 1.0},
                "age": {"kind": "numeric", "mean": float(train.age.mean()), "std": 1.0}}})
"""

JOB = {"resource": "train", "algorithm": "logistic_regression", "target": "is_fraud",
       "features": None, "exclude": [], "hyperparameters": {"epochs": 2}, "seed": 0,
       "test_size": 0.25, "gpus": 0, "entrypoint": None}


def unpack(kind: str, settings: dict, into: Path, extra: dict | None = None) -> Path:
    data = packaging.tarball(packaging.bundle(kind, settings, extra))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


def test_bundles_are_reproducible():
    first = packaging.tarball(packaging.bundle("train", JOB))
    assert first == packaging.tarball(packaging.bundle("train", JOB))


@pytest.mark.parametrize("kind", ["train", "evaluate", "serve"])
def test_a_bundle_ships_the_whole_portable_core_and_no_provider(kind):
    files = packaging.bundle(kind, JOB)
    core = {f"mlform/ml/{p.relative_to(ML_ROOT).as_posix()}": p.read_bytes()
            for p in ML_ROOT.rglob("*.py")}
    assert {"mlform/ml/__init__.py", "mlform/ml/split.py", "mlform/ml/fingerprint.py",
            "mlform/ml/launch.py", "mlform/ml/artifact.py", "mlform/ml/trainers.py"} <= set(core)
    assert {name: files[name] for name in core if name in files} == core
    assert sorted(n for n in files if n.startswith("mlform/")) == \
        sorted(["mlform/__init__.py", *core])  # nothing of mlform.providers
    assert b"mlform.providers" not in files[f"{kind}.py"]


def run_training(root: Path, job: dict, extra: dict | None = None
                 ) -> subprocess.CompletedProcess:
    """The bundle's train.py as SageMaker starts it: data in the train channel."""
    code = unpack("train", job, root / "code", extra)
    channel = root / "input" / "data" / "train"
    channel.mkdir(parents=True)
    (channel / "data.csv").write_text(CSV)
    return subprocess.run([sys.executable, str(code / "train.py")], capture_output=True,
                          text=True, timeout=300, cwd=root,
                          env={"SM_CHANNEL_TRAIN": str(channel),
                               "SM_MODEL_DIR": str(root / "model"),
                               "SM_OUTPUT_DATA_DIR": str(root / "output"),
                               "PATH": "/usr/bin:/bin"})


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sagemaker")
    out = run_training(root, JOB)
    assert out.returncode == 0, out.stderr
    (root / "log.txt").write_text(out.stdout)
    return root


@pytest.mark.slow
def test_the_training_entry_holds_out_the_rows_mlform_ml_split_picks(trained):
    import pandas as pd
    from mlform.ml.split import split

    _, expected = split(pd.read_csv(io.StringIO(CSV)), "is_fraud", JOB["test_size"],
                        JOB["seed"], stratify=True)
    held = pd.read_csv(trained / "model" / "holdout.csv")
    pd.testing.assert_frame_equal(held, expected)


@pytest.mark.slow
def test_a_script_importing_the_artifact_module_by_its_old_name_still_trains(tmp_path):
    job = {**JOB, "algorithm": None, "entrypoint": "legacy_train.py"}
    out = run_training(tmp_path, job, {"legacy_train.py": LEGACY_SCRIPT.encode()})
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads((tmp_path / "model" / "model.json").read_text())["features"] == \
        ["amount", "age"]
    assert "mlform-metric accuracy=" in out.stdout


@pytest.mark.slow
def test_a_target_that_is_no_column_fails_in_one_line(tmp_path):
    out = run_training(tmp_path, {**JOB, "target": "fraud"})
    assert out.returncode == 1
    assert out.stderr.strip() == "error: target column 'fraud' is not in the data " \
        "(columns: amount, age, gender, is_fraud)"


@pytest.mark.slow
def test_the_training_entry_trains_and_prints_metric_lines(trained):
    model_dir = trained / "model"
    # a built-in trainer's network is stored as weights (mlform.ml.network)
    assert {"weights.npz", "model.json", "metrics.json", "holdout.csv"} <= \
        {p.name for p in model_dir.iterdir()}
    metrics = json.loads((model_dir / "metrics.json").read_text())
    log = (trained / "log.txt").read_text()
    assert f"mlform-metric accuracy={metrics['accuracy']}" in log


@pytest.mark.slow
def test_the_serving_functions_answer_mlform_requests(trained, tmp_path):
    code = unpack("serve", {"resource": "m"}, tmp_path / "code")
    probe = (f"import sys; sys.path.insert(0, {str(code)!r}); import serve, json; "
             f"p = serve.model_fn({str(trained / 'model')!r}); "
             "x = serve.input_fn(json.dumps({'instances': "
             "[{'amount': 1.0, 'age': 30, 'gender': 'f'}]}), 'application/json'); "
             "print(serve.output_fn(serve.predict_fn(x, p), 'application/json')[0])")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["predictions"][0] in (0, 1)


@pytest.mark.slow
def test_the_serving_functions_answer_probabilities_when_asked(trained, tmp_path):
    code = unpack("serve", {"resource": "m"}, tmp_path / "code")
    probe = (f"import sys; sys.path.insert(0, {str(code)!r}); import serve, json; "
             f"p = serve.model_fn({str(trained / 'model')!r}); "
             "x = serve.input_fn(json.dumps({'instances': "
             "[{'amount': 1.0, 'age': 30, 'gender': 'f'}, {'amount': 90.0, 'age': 20, "
             "'gender': 'm'}], 'return': 'probabilities'}), 'application/json'); "
             "print(serve.output_fn(serve.predict_fn(x, p), 'application/json')[0])")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["classes"] == [0, 1]
    for label, probabilities in zip(answer["predictions"], answer["probabilities"],
                                    strict=True):
        assert sum(probabilities) == pytest.approx(1.0)
        assert label == probabilities.index(max(probabilities))


@pytest.mark.slow
def test_the_evaluator_judges_cost_gates(trained, tmp_path):
    gates = [{"cost": {"false_positive": 1, "false_negative": 10}, "max": 100}]
    code = unpack("evaluate", {"gates": gates, "seed": 3}, tmp_path / "code")
    output = tmp_path / "out" / "evaluation.json"
    out = subprocess.run([sys.executable, str(code / "evaluate.py"), str(trained / "model"),
                          str(output)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    [cost] = json.loads(output.read_text())["gates"]
    assert (cost["kind"], cost["passed"], cost["costs"]) == \
        ("cost", True, {"false_positive": 1, "false_negative": 10})
    assert 0.0 <= cost["threshold"] <= 1.0 + 1e-9


@pytest.mark.slow
def test_the_evaluator_measures_fairness_and_robustness(trained, tmp_path):
    # a difference, not a ratio: the logistic regression, solved to its optimum on these
    # 60 rows without signal, selects nobody, and a ratio of selection rates 0/0 is undefined
    gates = [{"fairness": "demographic_parity_difference", "sensitive_column": "gender"},
             {"robustness": "gaussian_noise", "noise": 0.5, "robustness_metric": "accuracy",
              "max": 0.9}]
    code = unpack("evaluate", {"gates": gates, "seed": 3, "sensitive": [[1, "max"]]},
                  tmp_path / "code")
    output = tmp_path / "out" / "evaluation.json"
    out = subprocess.run([sys.executable, str(code / "evaluate.py"), str(trained / "model"),
                          str(output)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    written = json.loads(output.read_text())
    assert written["format"] == 2
    fairness, robustness = written["gates"]
    assert (fairness["kind"], robustness["kind"]) == ("fairness", "robustness")
    assert 0.0 <= fairness["measured"] <= 1.0
    assert set(fairness["groups"]) == {"f", "m"}
    assert (robustness["max"], robustness["sensitive"]) == (None, ["max"])
    assert "0.9" not in robustness["gate"]
