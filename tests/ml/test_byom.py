"""mlform.ml.byom: model files made elsewhere, imported as artifacts that
`load_predictor` loads; each answers what its own runtime answers on the same rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlform.ml.artifact import load_predictor
from mlform.ml.byom import ByomError, format_of, import_model

# TorchScript is deprecated in torch, and still a format users bring
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(120, 3)), columns=["a", "b", "c"])
    return x.assign(y=(x.a - x.b > 0).astype(int), v=x.a * 2.0 + x.c)


def _import(tmp_path: Path, name: str, frame, fmt=None, **kwargs):
    path = tmp_path / name
    import_model(path, format_of(path, fmt), frame.drop(columns=kwargs.pop("drop", [])),
                 kwargs.pop("target", "y"), kwargs.pop("features", None),
                 kwargs.pop("task", None), kwargs.pop("classes", None), tmp_path / "artifact")
    return load_predictor(tmp_path / "artifact")


@pytest.mark.slow  # torch.export imports dynamo: seconds, however small the module
def test_a_torch_export_program_gives_the_modules_logits(tmp_path, frame):
    import torch

    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2).eval()
    x = torch.tensor(frame[["a", "b", "c"]].to_numpy(np.float32))
    program = torch.export.export(net, (x[:2],),
                                  dynamic_shapes=({0: torch.export.Dim.DYNAMIC},))
    torch.export.save(program, tmp_path / "net.pt2")
    predictor = _import(tmp_path, "net.pt2", frame, task="classification", drop=["v"])
    expected = torch.softmax(net(x), dim=1).detach().numpy()
    assert np.asarray(predictor.predict_proba(frame)) == pytest.approx(expected, abs=1e-5)
    assert predictor.predict(frame.head(5)) == expected[:5].argmax(axis=1).tolist()


def test_a_torchscript_regressor_gives_the_modules_values(tmp_path, frame):
    import torch

    net = torch.nn.Linear(3, 1).eval()
    torch.jit.save(torch.jit.script(net), tmp_path / "net.pt")
    predictor = _import(tmp_path, "net.pt", frame, task="regression", target="v",
                        drop=["y"])
    x = torch.tensor(frame[["a", "b", "c"]].to_numpy(np.float32))
    assert predictor.predict(frame) == pytest.approx(net(x)[:, 0].tolist(), abs=1e-5)


def test_an_onnx_classifier_with_a_probability_map_per_row(tmp_path, frame):
    """skl2onnx's default output (ZipMap): probabilities read in `classes` order."""
    import onnxruntime
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    x = frame[["a", "b", "c"]].to_numpy(np.float32)
    model = LogisticRegression().fit(x, frame.y)
    (tmp_path / "m.onnx").write_bytes(to_onnx(model, x[:1]).SerializeToString())
    predictor = _import(tmp_path, "m.onnx", frame, drop=["v"])
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    labels, maps = session.run(None, {session.get_inputs()[0].name: x})
    assert (predictor.task, predictor.classes) == ("classification", [0, 1])
    assert predictor.predict(frame) == labels.tolist()
    proba = np.asarray(predictor.predict_proba(frame))
    assert proba[:, 1] == pytest.approx([m[1] for m in maps], abs=1e-6)
    assert proba.sum(axis=1) == pytest.approx(1.0, abs=1e-12)


def test_a_sklearn_regressor_fitted_without_names_takes_the_features_in_order(tmp_path,
                                                                             frame):
    import joblib
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit(frame[["c", "a"]].to_numpy(), frame.v)
    joblib.dump(model, tmp_path / "r.joblib")
    predictor = _import(tmp_path, "r.joblib", frame, target="v", features=["c", "a"])
    assert predictor.task == "regression"
    rows = [{"a": 1.0, "b": 9.0, "c": 2.0}]
    assert predictor.predict(rows) == pytest.approx(model.predict([[2.0, 1.0]]).tolist())


@pytest.mark.parametrize(("name", "kwargs", "message"), [
    pytest.param("m.bin", {}, "cannot tell the format of 'm.bin' from its extension",
                 id="unknown-extension"),
    pytest.param("m.pt", {}, "a torchscript model does not say whether it classifies",
                 id="torch-needs-a-task"),
    pytest.param("m.pt", {"task": "regression", "target": "nope"},
                 "target column 'nope' is not in the dataset", id="missing-target"),
])
def test_what_the_file_cannot_tell_is_asked_for(tmp_path, frame, name, kwargs, message):
    import torch

    torch.jit.save(torch.jit.script(torch.nn.Linear(3, 1)), tmp_path / name)
    with pytest.raises(ByomError, match=message):
        _import(tmp_path, name, frame, drop=["v"], **kwargs)
