"""mlform.ml.byom_source: a model's `source:` as a run, shared by the providers that
register model files (local, aws): the file found from the stack, the digest that names
what would be registered, and the imported artifact measured on every row."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from mlform.ml.byom_source import file_version, import_run, run_digest, source_path


@pytest.fixture
def stack(tmp_path):
    """A stack directory with a scikit-learn classifier saved as models/m.joblib."""
    import joblib
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.random(80), "b": rng.random(80)})
    frame["y"] = (frame["a"] + 0.2 * rng.random(80) > 0.6).astype(int)
    (tmp_path / "models").mkdir()
    joblib.dump(LogisticRegression().fit(frame[["a", "b"]], frame["y"]),
                tmp_path / "models" / "m.joblib")
    frame.to_csv(tmp_path / "rows.csv", index=False)
    return tmp_path


def _frame(stack) -> pd.DataFrame:
    """The rows the stack's model was fitted on."""
    return pd.read_csv(stack / "rows.csv")


SOURCE = {"path": "models/m.joblib", "dataset": "s3://b/k/datasets/d/abc/data.csv",
          "target": "y"}


@pytest.mark.parametrize("given, message", [
    ("s3://bucket/m.onnx", "mlform reads model files on this machine"),
    ("models/absent.onnx", "model file 'models/absent.onnx' not found"),
], ids=["remote paths are refused", "a missing file is named"])
def test_source_path_refuses(stack, given, message):
    with pytest.raises(ValueError, match=message):
        source_path(stack, {**SOURCE, "path": given})


def test_the_digest_follows_the_file_and_the_settings_only(stack):
    first = run_digest(stack, SOURCE)
    assert run_digest(stack, dict(SOURCE)) == first
    assert run_digest(stack, {**SOURCE, "dataset": "s3://b/k/datasets/d/def/data.csv"}) != first
    version = file_version(stack, SOURCE)
    (stack / "models" / "m.joblib").write_bytes(b"another file")
    assert run_digest(stack, SOURCE) != first
    assert file_version(stack, SOURCE) != version


def test_import_run_measures_every_row(stack, tmp_path_factory):
    from sklearn.metrics import roc_auc_score

    frame = _frame(stack)
    out = tmp_path_factory.mktemp("artifact")
    metrics = import_run(stack, SOURCE, frame, out)
    import joblib

    model = joblib.load(stack / "models" / "m.joblib")
    assert metrics["auc"] == pytest.approx(
        roc_auc_score(frame["y"], model.predict_proba(frame[["a", "b"]])[:, 1]), abs=1e-12)
    assert sorted(p.name for p in out.iterdir()) == ["model.joblib", "model.json"]


def test_a_file_its_runtime_cannot_read_is_one_line(stack, tmp_path_factory):
    (stack / "models" / "m.joblib").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match=r"^model file 'models/m.joblib' cannot be loaded "
                                         r"as sklearn: "):
        import_run(stack, SOURCE, _frame(stack), tmp_path_factory.mktemp("artifact"))


NO_TORCH = textwrap.dedent("""
    import sys
    from pathlib import Path

    class NoTorch:  # an image without torch, such as SageMaker's scikit-learn one
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError("no torch here")

    sys.meta_path.insert(0, NoTorch())
    import pandas as pd
    from mlform.ml.artifact import load_predictor
    from mlform.ml.explain import permutation_importance
    from mlform.ml.gates import evaluate_gates
    from mlform.ml.serving.scores import predict

    directory, data = Path(sys.argv[1]), pd.read_csv(sys.argv[2])
    predictor = load_predictor(directory)
    [gate] = evaluate_gates([{"metric": "auc", "min": 0.5}], predictor, data, 0, [])
    assert gate.passed, gate
    permutation_importance(predictor, data, seed=0)
    import json
    print(json.dumps(predict(predictor, data[["a", "b"]].values.tolist(), "probabilities")[0]))
    """)


def test_an_imported_sklearn_model_is_judged_and_served_without_torch(stack,
                                                                      tmp_path_factory):
    """What the gate evaluation job and the serving script do on aws, in an image that
    holds scikit-learn and no torch."""
    out = tmp_path_factory.mktemp("artifact")
    import_run(stack, SOURCE, _frame(stack), out)
    _frame(stack).to_csv(out / "rows.csv", index=False)
    done = subprocess.run([sys.executable, "-c", NO_TORCH, str(out), str(out / "rows.csv")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    import joblib

    model = joblib.load(stack / "models" / "m.joblib")
    assert json.loads(done.stdout) == model.predict(_frame(stack)[["a", "b"]]).tolist()
