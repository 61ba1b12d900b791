"""The built-in trainers' network as plain data: a stack of linear layers with ReLU
between them, described by its layer widths and stored as named float32 arrays.

An artifact holding such a network (see `artifact.py`) needs no `torch.export`
program: `describe` gives the widths written in model.json, `save_weights` writes
`weights.npz` (numpy's format, read back with pickling off, so loading runs no code
from the file), and `load` rebuilds the same module from the two. Exporting and
loading a program costs seconds and imports `torch.export`; this costs milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

KIND = "mlp"
WEIGHTS_FILE = "weights.npz"


class LayerStack(torch.nn.Sequential):
    """Linear layers with ReLU between them: what `build` makes and `describe` knows."""


def build(widths: list[int] | tuple[int, ...]) -> LayerStack:
    """Linear layers from widths[i] to widths[i + 1], ReLU between them."""
    layers: list[torch.nn.Module] = []
    for i, (width, following) in enumerate(zip(widths, widths[1:], strict=False)):
        if i:
            layers.append(torch.nn.ReLU())
        layers.append(torch.nn.Linear(width, following))
    return LayerStack(*layers)


def describe(module: Any) -> dict[str, Any] | None:
    """The description of a `LayerStack` for model.json; None for any other module,
    which an artifact then stores as a `torch.export` program."""
    if type(module) is not LayerStack:  # a subclass may compute something else
        return None
    linears = [m for m in module if isinstance(m, torch.nn.Linear)]
    if not linears or not all(isinstance(m, torch.nn.Linear | torch.nn.ReLU) for m in module):
        return None
    return {"kind": KIND, "activation": "relu",
            "layers": [linears[0].in_features] + [m.out_features for m in linears]}


def save_weights(path: Path, module: torch.nn.Module) -> None:
    import numpy as np

    arrays = {name: tensor.detach().to("cpu", torch.float32).numpy()
              for name, tensor in module.state_dict().items()}
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def load(description: Mapping[str, Any], path: Path) -> LayerStack:
    """The module `description` and the weights at `path` make; ValueError when they
    do not fit each other."""
    import numpy as np

    if description.get("kind") != KIND or description.get("activation") != "relu":
        raise ValueError(f"model.json: unknown network {dict(description)!r}; this mlform "
                         f"reads kind '{KIND}' with activation 'relu'")
    widths = description.get("layers")
    if not isinstance(widths, list) or len(widths) < 2 or \
            not all(isinstance(w, int) and w > 0 for w in widths):
        raise ValueError("model.json: 'network.layers' must list at least two layer widths")
    module = build(widths)
    with np.load(path, allow_pickle=False) as stored:
        state = {name: torch.from_numpy(stored[name]) for name in stored.files}
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"{path.name} does not fit the network in model.json: "
                         f"{str(e).splitlines()[0]}") from None
    return module.eval()
