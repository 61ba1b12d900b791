"""The scripts shipped to SageMaker's containers, run here the way the containers run them:
the training bundle trains for real and leaves artifact, metrics and held-out rows; the
serving functions answer mlform's request format; the evaluator measures gates."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from aws_stack import CSV
from mlform.providers.aws import packaging

JOB = {"resource": "train", "algorithm": "logistic_regression", "target": "is_fraud",
       "features": None, "exclude": [], "hyperparameters": {"epochs": 2}, "seed": 0,
       "test_size": 0.25, "gpus": 0, "entrypoint": None}


def unpack(kind: str, settings: dict, into: Path) -> Path:
    data = packaging.tarball(packaging.bundle(kind, settings))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


def test_bundles_are_reproducible():
    first = packaging.tarball(packaging.bundle("train", JOB))
    assert first == packaging.tarball(packaging.bundle("train", JOB))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sagemaker")
    code = unpack("train", JOB, root / "code")
    channel = root / "input" / "data" / "train"
    channel.mkdir(parents=True)
    (channel / "data.csv").write_text(CSV)
    model_dir = root / "model"
    out = subprocess.run([sys.executable, str(code / "train.py")], capture_output=True,
                         text=True, timeout=300, cwd=root,
                         env={"SM_CHANNEL_TRAIN": str(channel), "SM_MODEL_DIR": str(model_dir),
                              "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    (root / "log.txt").write_text(out.stdout)
    return root


@pytest.mark.slow
def test_the_training_entry_trains_and_prints_metric_lines(trained):
    model_dir = trained / "model"
    assert {"model.pt2", "model.json", "metrics.json", "holdout.csv"} <= \
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
def test_the_evaluator_measures_fairness_and_robustness(trained, tmp_path):
    gates = [{"index": 1, "fairness": "demographic_parity_ratio", "sensitive_column": "gender"},
             {"index": 2, "robustness": "gaussian_noise", "noise": 0.5,
              "robustness_metric": "accuracy"}]
    code = unpack("evaluate", {"gates": gates}, tmp_path / "code")
    output = tmp_path / "out" / "evaluation.json"
    out = subprocess.run([sys.executable, str(code / "evaluate.py"), str(trained / "model"),
                          str(output)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    values = json.loads(output.read_text())["gates"]
    assert [v["index"] for v in values] == [1, 2]
    assert 0.0 <= values[0]["value"] <= 1.0
