"""The model artifact format: a directory any part of the local provider can load and
predict with, without the code that trained the model.

    <artifact>/
      model.pt2     the network, saved with `torch.export` (batch dimension dynamic);
                    it maps the encoded feature matrix to logits (classification:
                    one column per class, or one column for a binary task) or to the
                    (optionally standardised) target (regression)
      weights.npz   instead of model.pt2, for a network of linear layers with ReLU
                    between them (the built-in trainers' `network.LayerStack`): its
                    weights as numpy arrays, the layer widths in model.json's
                    `network`; the same function, saved and loaded in milliseconds
                    where an export costs seconds, and read with pickling off
      model.json    what the network needs around it:
        format_version  1
        task            "classification" | "regression"
        features        input feature names, in order
        target          name of the predicted column
        classes         class labels, in logit order (classification)
        preprocessing   per feature, how its raw value becomes network input:
                          {"kind": "numeric", "mean": m, "std": s}
                            (missing values become the mean)
                          {"kind": "categorical", "encoding": "onehot" | "index",
                           "categories": [...]}   (unknown or missing: all zeros / 0)
                        a feature without an entry is passed through as a number
        target_scaling  regression only, optional: {"mean": m, "std": s}; the network's
                        output is multiplied by std and shifted by mean
        network         with weights.npz only: {"kind": "mlp", "activation": "relu",
                        "layers": [inputs, hidden..., outputs]}
        framework       versions of python, torch and numpy that wrote it

Encoding is the same code at training and prediction time (`encode`), so the two
cannot disagree.
"""

from __future__ import annotations

import json
import math
import platform
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
MODEL_FILE = "model.pt2"
META_FILE = "model.json"
TASKS = ("classification", "regression")


def encoded_width(meta: Mapping[str, Any]) -> int:
    """Number of network inputs the features encode to."""
    prep = meta.get("preprocessing", {})
    width = 0
    for name in meta["features"]:
        spec = prep.get(name, {"kind": "numeric"})
        onehot = spec["kind"] == "categorical" and spec.get("encoding", "onehot") == "onehot"
        width += len(spec["categories"]) if onehot else 1
    return width


def encode(columns: Mapping[str, Sequence[Any]], meta: Mapping[str, Any]):
    """The float32 matrix (rows × `encoded_width`) the network takes, from raw columns.

    `columns` maps each feature name to its values (a DataFrame works); raises
    ValueError naming the feature and row of the first value that cannot be used.
    """
    import numpy as np

    prep = meta.get("preprocessing", {})
    blocks = []
    for name in meta["features"]:
        if name not in columns:
            raise ValueError(f"missing feature '{name}'")
        spec = prep.get(name, {"kind": "numeric"})
        values = columns[name]
        if spec["kind"] == "categorical":
            blocks.append(_encode_categorical(name, values, spec))
        else:
            numbers = _as_numbers(name, values)
            mean, std = spec.get("mean", 0.0), spec.get("std", 1.0) or 1.0
            numbers = np.where(np.isnan(numbers), mean, numbers)
            blocks.append(((numbers - mean) / std)[:, None])
    if not blocks:
        return np.zeros((0, 0), dtype=np.float32)
    return np.hstack(blocks).astype(np.float32, copy=False)


def _as_numbers(name: str, values: Sequence[Any]):
    import numpy as np

    try:
        return np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        for row, value in enumerate(values):
            try:
                float(value if value is not None else "nan")
            except (TypeError, ValueError):
                raise ValueError(f"feature '{name}' is numeric: instance {row} has "
                                 f"{value!r}, expected a number") from None
        raise


def _encode_categorical(name: str, values: Sequence[Any], spec: Mapping[str, Any]):
    import numpy as np

    index: dict[str | None, int] = {str(c): i for i, c in enumerate(spec["categories"])}
    codes = np.fromiter((index.get(_category_key(v), -1) for v in values), dtype=np.int64)
    if spec.get("encoding", "onehot") == "index":
        return (codes + 1).astype(np.float32)[:, None]
    onehot = np.zeros((len(codes), len(index)), dtype=np.float32)
    known = codes >= 0
    onehot[np.nonzero(known)[0], codes[known]] = 1.0
    return onehot


def _category_key(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def check_meta(meta: Mapping[str, Any]) -> None:
    """Raise ValueError when `meta` is not a usable model.json."""
    if meta.get("task") not in TASKS:
        raise ValueError(f"model.json: 'task' must be one of {', '.join(TASKS)}, "
                         f"not {meta.get('task')!r}")
    features = meta.get("features")
    if not isinstance(features, list) or not features or \
            not all(isinstance(f, str) for f in features):
        raise ValueError("model.json: 'features' must be a non-empty list of column names")
    if meta["task"] == "classification" and len(meta.get("classes") or []) < 2:
        raise ValueError("model.json: a classification model needs 'classes' "
                         "(at least two labels, in the order of the network's outputs)")
    for name, spec in meta.get("preprocessing", {}).items():
        if name not in features:
            raise ValueError(f"model.json: preprocessing names '{name}', which is not a feature")
        if spec.get("kind") not in ("numeric", "categorical"):
            raise ValueError(f"model.json: preprocessing of '{name}' needs 'kind': "
                             "numeric or categorical")
        if spec["kind"] == "categorical" and not isinstance(spec.get("categories"), list):
            raise ValueError(f"model.json: categorical feature '{name}' needs 'categories'")


def save_model(directory: str | Path, module, meta: Mapping[str, Any]) -> Path:
    """Write `module` (a torch.nn.Module taking the encoded matrix) and `meta` as an
    artifact in `directory`; returns the directory. A built-in trainer's network is
    stored as weights (weights.npz), any other module as a `torch.export` program."""
    import numpy as np
    import torch

    from .network import WEIGHTS_FILE, describe, save_weights

    check_meta(meta)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    module = module.to("cpu").eval()
    network = describe(module)
    if network is not None:
        save_weights(directory / WEIGHTS_FILE, module)
        (directory / MODEL_FILE).unlink(missing_ok=True)
        meta = {**meta, "network": network}
    else:
        from torch.export import Dim

        example = torch.zeros(2, encoded_width(meta))
        with torch.no_grad():
            program = torch.export.export(module, (example,),
                                          dynamic_shapes=({0: Dim.DYNAMIC},))
        torch.export.save(program, directory / MODEL_FILE)
        (directory / WEIGHTS_FILE).unlink(missing_ok=True)
        meta = {k: v for k, v in meta.items() if k != "network"}
    full = {"format_version": FORMAT_VERSION, **meta,
            "framework": {"python": platform.python_version(), "torch": torch.__version__,
                          "numpy": np.__version__}}
    (directory / META_FILE).write_text(json.dumps(full, indent=2, default=_json_scalar))
    return directory


def _json_scalar(value: Any) -> Any:
    """numpy scalars in meta (a mean computed by numpy) as plain numbers."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def read_meta(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / META_FILE
    if not path.is_file():
        raise ValueError(f"'{directory}' is not a model artifact: {META_FILE} is missing")
    meta = json.loads(path.read_text())
    check_meta(meta)
    return meta


_EXPORT_LOAD = threading.Lock()
"""torch.export.load sets a process-wide deserializer while it runs and fails when a
second thread loads at the same time (two models of one stack registered in parallel
both load their artifact to evaluate gates)."""


def load_predictor(directory: str | Path, device: str = "cpu") -> Predictor:
    meta = read_meta(directory)
    if "byom" in meta:  # a model file brought from elsewhere (mlform.ml.byom)
        from .byom import load

        # before torch: a scikit-learn or ONNX model serves in an image without it
        return load(Path(directory), meta, device)
    import torch

    if "network" in meta:  # a built-in trainer's network, stored as weights
        from .network import WEIGHTS_FILE
        from .network import load as load_network

        weights = Path(directory) / WEIGHTS_FILE
        if not weights.is_file():
            raise ValueError(f"'{directory}' is not a model artifact: {WEIGHTS_FILE} "
                             "is missing")
        return Predictor(load_network(meta["network"], weights).to(device), meta, device)
    model_path = Path(directory) / MODEL_FILE
    if not model_path.is_file():
        raise ValueError(f"'{directory}' is not a model artifact: {MODEL_FILE} is missing")
    # Any: the exported module carries attributes (`validate_inputs`) nn.Module does not declare
    with _EXPORT_LOAD:
        network: Any = torch.export.load(model_path).module().to(device)
    # The exported module re-matches each call's arguments against the traced
    # structure in a Python hook, which costs as much as running this size of
    # network. The Predictor always passes one matrix whose width `encode` fixed,
    # and the graph's own guards still check its shape, so the hook only costs.
    if hasattr(network, "validate_inputs"):
        network.validate_inputs = False
    return Predictor(network, meta, device)


class Predictor:
    """A loaded artifact: raw instances in, predictions out, one forward pass per batch.

    Instances are a list of lists (values in `features` order), a list of dicts
    (by feature name; other keys are ignored), or a mapping of feature name to a
    column of values (a DataFrame).
    """

    def __init__(self, network, meta: dict[str, Any], device: str):
        self.network = network
        self.meta = meta
        self.device = device
        self.features: list[str] = list(meta["features"])
        self.task: str = meta["task"]
        self.target: str | None = meta.get("target")
        self.classes: list[Any] | None = meta.get("classes")
        prep = meta.get("preprocessing", {})
        specs = [prep.get(f, {"kind": "numeric"}) for f in self.features]
        # All-numeric models take a list of rows as one matrix: no per-feature loop.
        self._numeric = all(s["kind"] != "categorical" for s in specs)
        if self._numeric:
            import numpy as np

            self._mean = np.array([s.get("mean", 0.0) for s in specs], dtype=np.float64)
            self._std = np.array([s.get("std", 1.0) or 1.0 for s in specs], dtype=np.float64)

    def predict(self, instances) -> list:
        """Class labels (classification) or numbers (regression)."""
        if self.task == "classification":
            # the most probable class is the one with the largest logit: no softmax
            logits = self._forward(instances)
            if logits.shape[1] == 1:
                picked = (logits[:, 0] > 0.0).tolist()
            else:
                picked = logits.argmax(axis=1).tolist()
            classes = self.classes
            assert classes is not None, "check_meta requires classes of a classifier"
            return [classes[i] for i in picked]
        return self._regression(instances).tolist()

    def predict_proba(self, instances) -> list[list[float]]:
        """Per instance, the probability of each class in `classes` order."""
        if self.task != "classification":
            raise ValueError("predict_proba needs a classification model; this one is "
                             "a regression model")
        return self._probabilities(instances).tolist()

    def _regression(self, instances):
        out = self._forward(instances)[:, 0]
        scaling = self.meta.get("target_scaling")
        if scaling:
            out = out * scaling["std"] + scaling["mean"]
        return out

    def _probabilities(self, instances):
        import numpy as np

        logits = self._forward(instances)
        if logits.shape[1] == 1:
            p1 = 1.0 / (1.0 + np.exp(-logits[:, 0]))
            return np.stack([1.0 - p1, p1], axis=1)
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)

    def _forward(self, instances):
        import numpy as np
        import torch

        matrix = self._fast_matrix(instances)
        if matrix is None:
            matrix = encode(self._columns(instances), self.meta)
        if matrix.shape[0] == 0:
            return np.zeros((0, len(self.classes or [None])))
        batch = torch.from_numpy(matrix)
        if self.device != "cpu":
            batch = batch.to(self.device)
        with torch.no_grad():
            out = self.network(batch)
        if self.device != "cpu":
            out = out.to("cpu")
        out = out.numpy().astype(np.float64)
        return out[:, None] if out.ndim == 1 else out

    def _fast_matrix(self, instances):
        """The encoded matrix of a list of numeric rows, or None to take the general path
        (which also explains what is wrong with a bad instance)."""
        import numpy as np

        if not self._numeric or not isinstance(instances, list) or not instances \
                or not isinstance(instances[0], list | tuple):
            return None
        try:
            rows = np.asarray(instances, dtype=np.float64)
        except (TypeError, ValueError):
            return None
        if rows.ndim != 2 or rows.shape[1] != len(self.features):
            return None
        rows = np.where(np.isnan(rows), self._mean, rows)
        return ((rows - self._mean) / self._std).astype(np.float32)

    def _columns(self, instances) -> Mapping[str, Sequence[Any]]:
        if isinstance(instances, Mapping) or hasattr(instances, "columns"):
            missing = [f for f in self.features if f not in instances]
            if missing:
                raise ValueError(f"missing feature(s) {_quoted(missing)}")
            return {f: list(instances[f]) for f in self.features}
        if not isinstance(instances, Sequence) or isinstance(instances, str):
            raise ValueError("instances must be a list of lists or a list of objects")
        if not instances:
            return {f: [] for f in self.features}
        if all(isinstance(row, Mapping) for row in instances):
            for i, row in enumerate(instances):
                missing = [f for f in self.features if f not in row]
                if missing:
                    raise ValueError(f"instance {i} lacks feature(s) {_quoted(missing)}")
            return {f: [row[f] for row in instances] for f in self.features}
        for i, row in enumerate(instances):
            if isinstance(row, Mapping | str) or not isinstance(row, Sequence):
                raise ValueError(f"instance {i} is not a list of values: instances must "
                                 "be all lists or all objects")
            if len(row) != len(self.features):
                raise ValueError(f"instance {i} has {len(row)} values; expected "
                                 f"{len(self.features)} ({', '.join(self.features)})")
        return dict(zip(self.features, (list(col) for col in zip(*instances, strict=True)),
                        strict=True))


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)
