"""Bring your own model: a model file made outside mlform (a `torch.export` program,
TorchScript, ONNX, a scikit-learn pipeline) as an artifact every part of mlform loads.

An imported artifact is the usual directory with the user's file beside `model.json`:

    <artifact>/
      model.<ext>   the file as given: model.pt2, model.pt, model.onnx or model.joblib
      model.json    task, features, target, classes as for a trained artifact, and
                    "byom": {"format": "onnx", "file": "model.onnx"}

`mlform.ml.artifact.load_predictor` sends such a directory here, so an endpoint, a
batch job, the gates and the cloud serving scripts load it as they load a trained one.
What the file must take and give, per format:

- torch_export, torchscript: one float32 matrix (rows x features, in `features`
  order, raw values) in; logits out for classification (one column per class, or one
  column for a binary task), the value for regression. No preprocessing is added.
- onnx: with one input, the same float matrix (cast to the input's element type);
  with one input per feature (as skl2onnx makes for column transformers), each
  feature's column by name. Two or more outputs are (labels, probabilities) as
  skl2onnx writes them (a probability map per row is read in `classes` order); one
  output is logits or values, as for torch.
- sklearn: the object `joblib.load` returns; `predict` (and `predict_proba` for a
  classifier) is called on a DataFrame of the features (a numpy matrix when it was
  fitted without column names). Unpickling runs code: load only files you trust.

onnxruntime and joblib are imported when such a model is loaded, never before.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .artifact import _EXPORT_LOAD, FORMAT_VERSION, META_FILE, Predictor, check_meta

FORMATS: dict[str, tuple[str, ...]] = {
    "torch_export": (".pt2",),
    "torchscript": (".pt", ".pth", ".torchscript"),
    "onnx": (".onnx",),
    "sklearn": (".joblib", ".pkl", ".pickle"),
}
"""Each format and the file extensions it is inferred from (the first is the stored name)."""

_STORED = {"torch_export": "model.pt2", "torchscript": "model.pt", "onnx": "model.onnx",
           "sklearn": "model.joblib"}


class ByomError(ValueError):
    """The file cannot be imported as said (wrong format, task not told, no classes)."""


def format_of(path: Path, declared: str | None) -> str:
    """The format `declared`, else the one the extension names."""
    if declared:
        return declared
    suffix = path.suffix.lower()
    for fmt, suffixes in FORMATS.items():
        if suffix in suffixes:
            return fmt
    known = ", ".join(f"{f} ({' '.join(s)})" for f, s in FORMATS.items())
    raise ByomError(f"cannot tell the format of '{path.name}' from its extension; set "
                       f"'format' to one of: {known}")


def file_digest(path: Path) -> str:
    """The content version of a model file (12 hex digits of its sha256)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()[:12]


def import_model(path: Path, fmt: str, frame, target: str, features: list[str] | None,
                 task: str | None, classes: list[Any] | None, directory: Path) -> Predictor:
    """Write the artifact of the model file at `path` into `directory` and load it.

    `frame` (a DataFrame holding `target`) tells what the file does not: the features
    (every column but the target, unless given or the model names them), the task (from
    the model where it can tell: a scikit-learn classifier, an ONNX model with a label
    output) and the classes (the sorted target values, unless given or the model has
    them). Raises ByomError (a ValueError) saying what to set.
    """
    if target not in frame.columns:
        raise ByomError(f"target column '{target}' is not in the dataset (columns: "
                           f"{', '.join(map(str, frame.columns))})")
    directory.mkdir(parents=True, exist_ok=True)
    stored = directory / _STORED[fmt]
    shutil.copyfile(path, stored)
    own = _own_description(stored, fmt)
    names = features or own.get("features") or [str(c) for c in frame.columns if c != target]
    missing = [f for f in names if f not in frame.columns]
    if missing:
        raise ByomError(f"feature(s) {', '.join(missing)} not in the dataset")
    task = task or own.get("task")
    if task is None:
        raise ByomError(f"a {fmt} model does not say whether it classifies or regresses; "
                           "set 'task: classification' or 'task: regression'")
    meta: dict[str, Any] = {"format_version": FORMAT_VERSION, "task": task,
                            "features": list(names), "target": target,
                            "byom": {"format": fmt, "file": stored.name}}
    if task == "classification":
        found = classes or own.get("classes") or sorted(frame[target].dropna().unique().tolist())
        meta["classes"] = [_plain(c) for c in found]
    check_meta(meta)
    (directory / META_FILE).write_text(json.dumps(meta, indent=2))
    return load(directory, meta)


def _own_description(path: Path, fmt: str) -> dict[str, Any]:
    """What the file says about itself: a scikit-learn estimator its task, classes and
    column names; an ONNX model with a label output that it classifies."""
    if fmt == "sklearn":
        estimator = _load_sklearn(path)
        out: dict[str, Any] = {}
        if hasattr(estimator, "classes_"):
            out.update(task="classification", classes=list(estimator.classes_))
        elif hasattr(estimator, "predict"):
            out["task"] = "regression"
        if hasattr(estimator, "feature_names_in_"):
            out["features"] = [str(c) for c in estimator.feature_names_in_]
        return out
    if fmt == "onnx":
        session = _onnx_session(path)
        outputs = session.get_outputs()
        if len(outputs) >= 2 or "float" not in outputs[0].type:
            return {"task": "classification"}
    return {}


def load(directory: Path, meta: Mapping[str, Any], device: str = "cpu") -> Predictor:
    """The predictor of an imported artifact (`meta["byom"]` says its format)."""
    fmt = meta["byom"]["format"]
    path = Path(directory) / meta["byom"]["file"]
    if not path.is_file():
        raise ValueError(f"'{directory}' is not a model artifact: {path.name} is missing")
    if fmt == "torch_export":
        import torch
        import torch.export  # noqa: F401 - loading needs it

        with _EXPORT_LOAD:  # torch.export.load is not safe in two threads at once
            network: Any = torch.export.load(path).module().to(device)
        return Predictor(network, dict(meta), device)
    if fmt == "torchscript":
        import warnings

        import torch

        with warnings.catch_warnings():  # deprecated in torch, still the user's format
            warnings.simplefilter("ignore", DeprecationWarning)
            network = torch.jit.load(str(path), map_location=device).eval()
        return Predictor(network, dict(meta), device)
    if fmt == "onnx":
        return OnnxPredictor(_onnx_session(path), dict(meta))
    if fmt == "sklearn":
        return SklearnPredictor(_load_sklearn(path), dict(meta))
    raise ValueError(f"model.json: unknown imported format '{fmt}' (known: "
                     f"{', '.join(FORMATS)})")


def _onnx_session(path: Path):
    try:
        import onnxruntime
    except ImportError as e:
        raise ValueError("an ONNX model needs onnxruntime: pip install 'mlform[byom]'") from e
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _load_sklearn(path: Path):
    import joblib  # ships with scikit-learn

    return joblib.load(path)


def _plain(value: Any) -> Any:
    """numpy scalars as Python ones, for model.json and JSON answers."""
    return value.item() if hasattr(value, "item") else value


class _TablePredictor(Predictor):
    """A predictor whose model takes the feature columns itself (no torch network)."""

    def __init__(self, meta: dict[str, Any]):
        super().__init__(None, meta, "cpu")

    def _frame(self, instances):
        import pandas as pd

        return pd.DataFrame(self._columns(instances), columns=self.features)


class SklearnPredictor(_TablePredictor):
    def __init__(self, estimator, meta: dict[str, Any]):
        super().__init__(meta)
        self.estimator = estimator
        self._by_name = hasattr(estimator, "feature_names_in_")

    def _input(self, instances):
        frame = self._frame(instances)
        return frame if self._by_name else frame.to_numpy()

    def predict(self, instances) -> list:
        rows = self._input(instances)
        if len(rows) == 0:
            return []
        return [_plain(v) for v in self.estimator.predict(rows)]

    def _regression(self, instances):
        import numpy as np

        return np.asarray(self.predict(instances), dtype=np.float64)

    def _probabilities(self, instances):
        import numpy as np

        rows = self._input(instances)
        if len(rows) == 0:
            return np.zeros((0, len(self.classes or [])))
        proba = np.asarray(self.estimator.predict_proba(rows), dtype=np.float64)
        # columns follow the estimator's classes_; model.json's classes may be reordered
        own = [_plain(c) for c in self.estimator.classes_]
        return proba[:, [own.index(c) for c in (self.classes or own)]]


class OnnxPredictor(_TablePredictor):
    def __init__(self, session, meta: dict[str, Any]):
        super().__init__(meta)
        self.session = session
        self._inputs = session.get_inputs()
        self._outputs = [o.name for o in session.get_outputs()]

    def _feed(self, instances) -> dict[str, Any]:
        import numpy as np

        columns = self._columns(instances)
        if len(self._inputs) == 1:
            matrix = np.column_stack([np.asarray(columns[f], dtype=np.float64)
                                      for f in self.features])
            return {self._inputs[0].name: matrix.astype(_numpy_type(self._inputs[0].type))}
        missing = [i.name for i in self._inputs if i.name not in columns]
        if missing:
            raise ValueError(f"the ONNX model's input(s) {', '.join(missing)} are not "
                             "features of this model")
        return {i.name: _column(columns[i.name], i.type) for i in self._inputs}

    def _run(self, instances) -> list:
        return self.session.run(self._outputs, self._feed(instances))

    def _rows(self, instances) -> int:
        columns = self._columns(instances)
        return len(next(iter(columns.values()), []))

    def predict(self, instances) -> list:
        if self._rows(instances) == 0:
            return []
        if self.task == "classification" and len(self._outputs) >= 2:
            return [_plain(v) for v in self._run(instances)[0].reshape(-1)]
        return super().predict(instances)

    def _probabilities(self, instances):
        import numpy as np

        if len(self._outputs) < 2:
            return super()._probabilities(instances)
        if self._rows(instances) == 0:
            return np.zeros((0, len(self.classes or [])))
        proba = self._run(instances)[1]
        if isinstance(proba, list):  # skl2onnx's ZipMap: one {class: probability} per row
            proba = [[row.get(c, row.get(str(c), 0.0)) for c in self.classes or []]
                     for row in proba]
        proba = np.asarray(proba, dtype=np.float64)
        # float32 probabilities miss 1 by a rounding error; metrics want them to add up
        return proba / np.clip(proba.sum(axis=1, keepdims=True), 1e-12, None)

    def _forward(self, instances):
        import numpy as np

        if self._rows(instances) == 0:
            return np.zeros((0, len(self.classes or [None])))
        out = np.asarray(self._run(instances)[0], dtype=np.float64)
        return out[:, None] if out.ndim == 1 else out


def _column(values, onnx_type: str):
    """One feature as the (rows x 1) tensor an ONNX input of `onnx_type` takes."""
    import numpy as np

    if onnx_type == "tensor(string)":  # onnxruntime takes strings as Python objects
        return np.array([str(v) for v in values], dtype=object).reshape(-1, 1)
    return np.asarray(values).reshape(-1, 1).astype(_numpy_type(onnx_type))


def _numpy_type(onnx_type: str):
    """The numpy dtype of an ONNX tensor type such as `tensor(float)`."""
    import numpy as np

    kind = onnx_type.removeprefix("tensor(").removesuffix(")")
    return {"float": np.float32, "double": np.float64, "int64": np.int64, "int32": np.int32,
            "bool": np.bool_}.get(kind, np.float32)
