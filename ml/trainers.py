"""The built-in trainers: PyTorch networks for tabular data.

    mlp_classifier       hidden layers with ReLU, softmax cross-entropy
    mlp_regressor        hidden layers with ReLU, mean squared error on the standardised target
    logistic_regression  one linear layer, softmax cross-entropy, solved to the optimum
    linear_regression    one linear layer, mean squared error on the standardised target,
                         solved to the optimum

Numeric features are standardised with the training rows' mean and std (missing
values become the mean); other columns are categorical, one-hot encoded or, with
`categorical_encoding: index`, encoded as one number each. The encoding is
recorded in the artifact (see `artifact.py`), so prediction repeats it exactly.
The networks train with Adam over shuffled mini-batches (`epochs`, `lr`,
`batch_size`); the linear models are solved instead (`linear.py`: normal equations,
full-batch L-BFGS), so they ignore those three and reach the optimum whatever the
data's scale. With the same data, seed and hyperparameters a run gives the same
weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TASKS = {"mlp_classifier": "classification", "mlp_regressor": "regression",
         "logistic_regression": "classification", "linear_regression": "regression"}
LINEAR = frozenset({"logistic_regression", "linear_regression"})
DEFAULTS: dict[str, Any] = {"hidden_layers": [64, 32], "epochs": 10, "lr": 1e-3,
                            "batch_size": 64, "weight_decay": 0.0,
                            "categorical_encoding": "onehot"}

EpochCallback = Callable[[int, int, float], None]
"""Called after each epoch with (epoch, epochs, mean training loss)."""


@dataclass(frozen=True)
class Settings:
    hidden_layers: tuple[int, ...]
    epochs: int
    lr: float
    batch_size: int
    weight_decay: float
    categorical_encoding: str


def settings(algorithm: str, hyperparameters: dict[str, Any]) -> Settings:
    """The hyperparameters with defaults filled in; ValueError on names or values
    that the algorithm does not take."""
    if algorithm not in TASKS:
        raise ValueError(f"unknown algorithm '{algorithm}'; built-in trainers: "
                         f"{', '.join(TASKS)}")
    unknown = sorted(set(hyperparameters) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown hyperparameter(s) {', '.join(map(repr, unknown))} for "
                         f"'{algorithm}'; it takes {', '.join(DEFAULTS)}")
    if algorithm in LINEAR and hyperparameters.get("hidden_layers"):
        raise ValueError(f"'{algorithm}' has no hidden layers; use "
                         f"'{'mlp_classifier' if TASKS[algorithm] == 'classification' else 'mlp_regressor'}'"
                         " for a network with hidden_layers")
    merged = {**DEFAULTS, **hyperparameters}
    if algorithm in LINEAR:
        merged["hidden_layers"] = []
    try:
        chosen = Settings(hidden_layers=tuple(int(h) for h in merged["hidden_layers"]),
                          epochs=int(merged["epochs"]), lr=float(merged["lr"]),
                          batch_size=int(merged["batch_size"]),
                          weight_decay=float(merged["weight_decay"]),
                          categorical_encoding=str(merged["categorical_encoding"]))
    except (TypeError, ValueError) as e:
        raise ValueError(f"hyperparameters of '{algorithm}': {e}") from None
    if chosen.epochs < 1 or chosen.batch_size < 1 or chosen.lr <= 0:
        raise ValueError("hyperparameters: epochs and batch_size must be at least 1 and "
                         "lr greater than 0")
    if chosen.categorical_encoding not in ("onehot", "index"):
        raise ValueError("hyperparameter 'categorical_encoding' is 'onehot' or 'index', "
                         f"not '{chosen.categorical_encoding}'")
    return chosen


def fit_preprocessing(frame, features: list[str], encoding: str) -> dict[str, dict[str, Any]]:
    """Per feature, the encoding learned from the training rows."""
    from .profile import is_numeric

    prep = {}
    for name in features:
        column = frame[name]
        if is_numeric(column):
            values = column.astype("float64")
            mean = float(values.mean()) if values.notna().any() else 0.0
            std = float(values.std(ddof=0)) if values.notna().any() else 1.0
            prep[name] = {"kind": "numeric", "mean": mean, "std": std if std > 0 else 1.0}
        else:
            categories = sorted({str(v) for v in column.dropna()})
            prep[name] = {"kind": "categorical", "encoding": encoding, "categories": categories}
    return prep


def build_network(n_inputs: int, hidden_layers: tuple[int, ...], n_outputs: int):
    """Linear layers with ReLU between them (a `network.LayerStack`, which an artifact
    stores as weights and layer widths)."""
    from .network import build

    return build([n_inputs, *hidden_layers, n_outputs])


def train(algorithm: str, hyperparameters: dict[str, Any], frame, features: list[str],
          target: str, seed: int, device: str = "cpu",
          on_epoch: EpochCallback | None = None):
    """Train on `frame`; returns (network on cpu, artifact meta)."""
    import numpy as np
    import torch

    from .artifact import encode, encoded_width
    from .metrics import class_indices

    chosen = settings(algorithm, hyperparameters)
    task = TASKS[algorithm]
    meta: dict[str, Any] = {
        "task": task, "features": list(features), "target": target,
        "preprocessing": fit_preprocessing(frame, features, chosen.categorical_encoding)}
    y_raw = frame[target]
    if y_raw.isna().any():
        raise ValueError(f"target column '{target}' has {int(y_raw.isna().sum())} missing "
                         "value(s); drop or fill them in the dataset")
    loss_fn: torch.nn.Module
    if task == "classification":
        classes = sorted(y_raw.unique().tolist(), key=lambda c: (str(type(c)), c))
        if len(classes) < 2:
            raise ValueError(f"target column '{target}' has a single class "
                             f"({classes[0]!r}) in the training rows")
        meta["classes"] = [c.item() if hasattr(c, "item") else c for c in classes]
        y = torch.from_numpy(class_indices(y_raw.tolist(), meta["classes"]))
        n_outputs, loss_fn = len(classes), torch.nn.CrossEntropyLoss()
    else:
        values = y_raw.to_numpy(dtype=np.float64)
        scale = float(values.std()) or 1.0
        meta["target_scaling"] = {"mean": float(values.mean()), "std": scale}
        y = torch.from_numpy(((values - values.mean()) / scale).astype(np.float32))[:, None]
        n_outputs, loss_fn = 1, torch.nn.MSELoss()

    torch.manual_seed(seed)
    x = torch.from_numpy(encode(frame, meta)).to(device)
    y = y.to(device)
    network = build_network(encoded_width(meta), chosen.hidden_layers, n_outputs).to(device)
    if algorithm in LINEAR:
        from . import linear

        linear.fit(network, x, y, task, chosen.weight_decay, on_epoch)
    else:
        fit(network, x, y, loss_fn, chosen, seed, on_epoch)
    return network.to("cpu").eval(), meta


def fit(network, x, y, loss_fn, chosen: Settings, seed: int,
        on_epoch: EpochCallback | None = None) -> None:
    """Mini-batch Adam over shuffled rows, shuffled by a generator seeded with `seed`."""
    import torch

    optimiser = torch.optim.Adam(network.parameters(), lr=chosen.lr,
                                 weight_decay=chosen.weight_decay)
    shuffle = torch.Generator().manual_seed(seed)
    rows = x.shape[0]
    network.train()
    for epoch in range(1, chosen.epochs + 1):
        order = torch.randperm(rows, generator=shuffle).to(x.device)
        total = torch.zeros((), device=x.device)
        for start in range(0, rows, chosen.batch_size):
            batch = order[start:start + chosen.batch_size]
            optimiser.zero_grad(set_to_none=True)
            loss = loss_fn(network(x[batch]), y[batch])
            loss.backward()
            optimiser.step()
            total += loss.detach() * len(batch)
        if on_epoch:
            on_epoch(epoch, chosen.epochs, float(total) / max(rows, 1))
