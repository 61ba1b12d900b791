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


def linear_artifact(directory: Path, amount_weight: float) -> Path:
    """A binary classifier scoring by `amount` alone (age weighs nothing), with the
    example's rows as its held-out rows."""
    import torch
    from mlform.ml.artifact import save_model

    module = torch.nn.Linear(2, 1)
    with torch.no_grad():
        module.weight.copy_(torch.tensor([[amount_weight, 0.0]]))
        module.bias.zero_()
    save_model(directory, module, {
        "task": "classification", "features": ["amount", "age"], "target": "is_fraud",
        "classes": [0, 1], "preprocessing": {
            "amount": {"kind": "numeric", "mean": 48.0, "std": 28.0},
            "age": {"kind": "numeric", "mean": 40.0, "std": 11.5}}})
    (directory / "holdout.csv").write_text(CSV)
    return directory


@pytest.fixture(scope="module")
def rival_artifacts(tmp_path_factory) -> tuple[Path, Path, float, float]:
    """(better, worse, better's auc, worse's auc): scoring by amount and by -amount."""
    import pandas as pd
    from mlform.ml.artifact import load_predictor
    from mlform.ml.metrics import evaluate

    root = tmp_path_factory.mktemp("rivals")
    up, down = linear_artifact(root / "up", 1.0), linear_artifact(root / "down", -1.0)
    rows = pd.read_csv(io.StringIO(CSV))
    auc_up = evaluate(load_predictor(up), rows)["auc"]
    auc_down = evaluate(load_predictor(down), rows)["auc"]
    assert auc_up != pytest.approx(auc_down)  # the rows must tell the two apart
    return (up, down, auc_up, auc_down) if auc_up > auc_down else (down, up, auc_down, auc_up)


def judge(code: Path, candidate: Path, output: Path, champion: Path | None = None) -> dict:
    command = [sys.executable, str(code / "evaluate.py"), str(candidate), str(output)]
    out = subprocess.run(command + ([str(champion)] if champion else []),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(output.read_text())


CHAMPION_GATES = [{"metric": "auc", "better_than": "champion"},
                  {"cost": {"false_positive": 1, "false_negative": 5},
                   "better_than": "champion"}]


@pytest.mark.slow
def test_the_evaluator_passes_a_candidate_better_than_the_champion(rival_artifacts, tmp_path):
    better, worse, auc_better, auc_worse = rival_artifacts
    code = unpack("evaluate", {"gates": CHAMPION_GATES, "seed": 0,
                               "champion": {"name": "version 3"}}, tmp_path / "code")
    auc, cost = judge(code, better, tmp_path / "evaluation.json", worse)["gates"]
    assert (auc["passed"], auc["measured"], auc["champion"]) == \
        (True, pytest.approx(auc_better), pytest.approx(auc_worse))
    assert auc["detail"].startswith("champion (version 3) ")
    assert cost["kind"] == "cost" and cost["champion"] is not None


@pytest.mark.slow
def test_the_evaluator_fails_a_candidate_worse_than_the_champion(rival_artifacts, tmp_path):
    better, worse, auc_better, auc_worse = rival_artifacts
    code = unpack("evaluate", {"gates": CHAMPION_GATES[:1], "seed": 0,
                               "champion": {"name": "version 3"}}, tmp_path / "code")
    [auc] = judge(code, worse, tmp_path / "evaluation.json", better)["gates"]
    assert (auc["passed"], auc["measured"], auc["champion"]) == \
        (False, pytest.approx(auc_worse), pytest.approx(auc_better))


@pytest.mark.slow
def test_the_evaluator_without_a_champion_yet_passes_and_without_its_artifact_fails(
        rival_artifacts, tmp_path):
    better = rival_artifacts[0]
    first = unpack("evaluate", {"gates": CHAMPION_GATES[:1], "champion": None},
                   tmp_path / "first")
    [gate] = judge(first, better, tmp_path / "first.json")["gates"]
    assert (gate["passed"], gate["detail"]) == (True, "no champion to compare with yet")
    lost = unpack("evaluate", {"gates": CHAMPION_GATES[:1], "champion": {"name": "version 2"}},
                  tmp_path / "lost")
    [gate] = judge(lost, better, tmp_path / "lost.json")["gates"]
    assert gate["passed"] is False and "version 2" in gate["detail"]


@pytest.mark.slow
def test_the_evaluator_ranks_the_feature_the_model_uses_first(rival_artifacts, tmp_path):
    better = rival_artifacts[0]
    code = unpack("evaluate", {"gates": [], "seed": 0}, tmp_path / "code")
    importance = judge(code, better, tmp_path / "evaluation.json")["importance"]
    assert (importance["method"], importance["metric"], importance["rows"]) == \
        ("permutation", "auc", 60)
    amount, age = importance["features"]
    assert (amount["feature"], age["feature"]) == ("amount", "age")
    assert amount["importance"] > 0 and age["importance"] == 0.0
