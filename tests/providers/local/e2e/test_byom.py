"""Bring your own model, through the installed command and real HTTP: a scikit-learn
pipeline (joblib) and an ONNX file registered with `source:`, gated on a dataset, served
by local endpoints that answer what scikit-learn and onnxruntime answer on the same rows;
a new model file plans an update; a failing gate registers nothing.
"""

from __future__ import annotations

import json

import httpx
import numpy as np
import pandas as pd
import pytest

from .conftest import destroy_and_check, mlform_ok, output, write_fraud_data

pytestmark = pytest.mark.e2e

STACK = """
    version: 1
    stack: byom
    backend: {type: local}
    providers:
      local: {}
    resources:
      transactions:
        type: dataset
        source: data/transactions.csv
      sk_model:
        type: model
        source: {path: models/pipe.joblib, dataset: "${transactions.uri}", target: is_fraud}
        gates:
          - metric: auc
            min: 0.6
      onnx_model:
        type: model
        source: {path: models/forest.onnx, dataset: "${transactions.uri}", target: is_fraud}
        gates:
          - metric: accuracy
            min: 0.5
      sk_endpoint:
        type: endpoint
        variants:
          champion: {model: "${sk_model.uri}"}
        rollout: {wait: 100ms}
        rollback: {min_requests: 0}
      onnx_endpoint:
        type: endpoint
        variants:
          champion: {model: "${onnx_model.uri}"}
        rollout: {wait: 100ms}
        rollback: {min_requests: 0}
    outputs:
      sk_url: {value: "${sk_endpoint.url}"}
      onnx_url: {value: "${onnx_endpoint.url}"}
    """

FEATURES = ["amount", "hour", "merchant_risk", "account_age_days", "txn_last_24h"]


def _data(stack_dir) -> pd.DataFrame:
    return pd.read_csv(stack_dir / "data" / "transactions.csv")


def _fit_pipeline(frame: pd.DataFrame, c: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c)).fit(
        frame[FEATURES], frame["is_fraud"])


def _write_models(stack_dir, frame: pd.DataFrame) -> None:
    import joblib
    from skl2onnx import to_onnx
    from sklearn.ensemble import RandomForestClassifier

    models = stack_dir / "models"
    models.mkdir(exist_ok=True)
    joblib.dump(_fit_pipeline(frame, 1.0), models / "pipe.joblib")
    forest = RandomForestClassifier(n_estimators=8, max_depth=4, random_state=0).fit(
        frame[FEATURES].to_numpy(np.float32), frame["is_fraud"])
    onx = to_onnx(forest, frame[FEATURES].to_numpy(np.float32)[:1],
                  options={"zipmap": False})
    (models / "forest.onnx").write_bytes(onx.SerializeToString())


@pytest.fixture(scope="module")
def byom_stack(tmp_path_factory, stack_writer, run_mlform):
    directory = stack_writer(tmp_path_factory.mktemp("byom"), STACK)
    write_fraud_data(directory, seed=3, rows=600)
    assert list(_data(directory).columns) == [*FEATURES, "is_fraud"]
    _write_models(directory, _data(directory))
    mlform_ok(run_mlform, ["apply", "--auto-approve", "--no-color"], directory, timeout=300)
    yield directory
    destroy_and_check(run_mlform, directory)


def _predict(url: str, rows: list[list[float]]) -> list:
    r = httpx.post(f"{url}/predict", json={"instances": rows}, timeout=30.0)
    assert r.status_code == 200, r.text
    return r.json()["predictions"]


def _state_outputs(stack_dir, name: str) -> dict:
    state = json.loads((stack_dir / ".mlform" / "state.json").read_text())
    return state["resources"][name]["outputs"]


def test_a_sklearn_pipeline_serves_what_sklearn_predicts(byom_stack, run_mlform):
    import joblib

    frame = _data(byom_stack)
    rows = frame[FEATURES].head(200)
    pipeline = joblib.load(byom_stack / "models" / "pipe.joblib")
    served = _predict(output(run_mlform, byom_stack, "sk_url"), rows.values.tolist())
    assert served == pipeline.predict(rows).tolist()
    assert 0 < sum(served) < len(served)  # both classes: a real comparison


def test_an_onnx_model_serves_what_onnxruntime_predicts(byom_stack, run_mlform):
    import onnxruntime

    rows = _data(byom_stack)[FEATURES].head(200)
    session = onnxruntime.InferenceSession(str(byom_stack / "models" / "forest.onnx"),
                                           providers=["CPUExecutionProvider"])
    labels = session.run(None, {session.get_inputs()[0].name:
                                rows.to_numpy(np.float32)})[0]
    served = _predict(output(run_mlform, byom_stack, "onnx_url"), rows.values.tolist())
    assert served == labels.tolist()
    assert 0 < sum(served) < len(served)


def test_the_gates_judge_every_row_of_the_dataset(byom_stack):
    import joblib
    from sklearn.metrics import roc_auc_score

    frame = _data(byom_stack)
    pipeline = joblib.load(byom_stack / "models" / "pipe.joblib")
    expected = roc_auc_score(frame["is_fraud"], pipeline.predict_proba(frame[FEATURES])[:, 1])
    [gate] = _state_outputs(byom_stack, "sk_model")["gates"]
    assert gate["passed"] is True
    assert gate["measured"] == pytest.approx(expected, abs=1e-9)
    card = (byom_stack / ".mlform" / "local" / "registry" / "sk_model" / "1" / "card.md")
    assert f"{expected:.4f}" in card.read_text()


def test_a_new_model_file_plans_an_update_and_registers_a_new_version(byom_stack,
                                                                      run_mlform):
    import joblib

    frame = _data(byom_stack)
    joblib.dump(_fit_pipeline(frame, 0.001), byom_stack / "models" / "pipe.joblib")
    plan = run_mlform(["plan", "--detailed-exitcode", "--no-color"], byom_stack)
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert "model file 'models/pipe.joblib' changed" in plan.stdout
    mlform_ok(run_mlform, ["apply", "--auto-approve", "--no-color"], byom_stack, timeout=300)
    assert _state_outputs(byom_stack, "sk_model")["version"] == 2
    rows = frame[FEATURES].tail(100)
    served = _predict(output(run_mlform, byom_stack, "sk_url"), rows.values.tolist())
    assert served == joblib.load(byom_stack / "models" / "pipe.joblib").predict(rows).tolist()
    again = run_mlform(["plan", "--detailed-exitcode", "--no-color"], byom_stack)
    assert again.returncode == 0, again.stdout + again.stderr


GATED = """
    version: 1
    stack: byom-gated
    resources:
      transactions:
        type: dataset
        source: data/transactions.csv
      strict_model:
        type: model
        source:
          path: models/pipe.joblib
          dataset: ${transactions.uri}
          target: is_fraud
        gates:
          - metric: auc
            min: 0.999
    """


def test_a_failing_gate_registers_nothing(tmp_path, stack_writer, run_mlform):
    directory = stack_writer(tmp_path, GATED)
    write_fraud_data(directory, seed=3, rows=300)
    frame = _data(directory)
    (directory / "models").mkdir()
    import joblib
    from sklearn.metrics import roc_auc_score

    pipeline = _fit_pipeline(frame, 1.0)
    joblib.dump(pipeline, directory / "models" / "pipe.joblib")
    auc = roc_auc_score(frame["is_fraud"], pipeline.predict_proba(frame[FEATURES])[:, 1])
    proc = run_mlform(["apply", "--auto-approve", "--no-color"], directory, timeout=180)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    text = proc.stdout + proc.stderr
    assert "model 'strict_model' was not registered" in text
    assert f"{auc:.4f}" in text
    assert "Traceback" not in text
    registry = directory / ".mlform" / "local" / "registry" / "strict_model"
    assert not [p for p in registry.glob("*") if p.name.isdigit()]
    state = json.loads((directory / ".mlform" / "state.json").read_text())
    assert "strict_model" not in state["resources"] or \
        state["resources"]["strict_model"].get("status") != "created"


def test_a_missing_model_file_is_a_plan_error(tmp_path, stack_writer, run_mlform):
    directory = stack_writer(tmp_path, GATED)
    write_fraud_data(directory, seed=3, rows=50)
    proc = run_mlform(["plan", "--no-color"], directory)
    assert proc.returncode == 1
    assert "error:" in proc.stderr
    assert "model file 'models/pipe.joblib' not found" in proc.stderr
    assert "Traceback" not in proc.stderr
