"""Fixtures: artifacts with chosen weights (no training), for tests of what the core
measures on them: a logistic model over features whose influence the test decides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

FEATURES = ["strong", "weak", "noise"]


def linear_classifier(directory: Path, weights: list[float], bias: float = 0.0):
    """A binary classifier whose positive-class logit is `weights · features + bias`,
    features passed through unscaled; returns the loaded predictor."""
    import torch
    from mlform.ml.artifact import load_predictor, save_model

    module = torch.nn.Linear(len(weights), 1)
    with torch.no_grad():
        module.weight.copy_(torch.tensor([weights]))
        module.bias.fill_(bias)
    prep = {f: {"kind": "numeric", "mean": 0.0, "std": 1.0} for f in FEATURES}
    save_model(directory, module, {"task": "classification", "features": FEATURES,
                                   "classes": [0, 1], "target": "y", "preprocessing": prep})
    return load_predictor(directory)


def rows(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Labels driven mostly by `strong`, a little by `weak`, not at all by `noise`."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    logit = 3.0 * x[:, 0] + 0.7 * x[:, 1] + rng.normal(scale=0.5, size=n)
    return pd.DataFrame({"strong": x[:, 0], "weak": x[:, 1], "noise": x[:, 2],
                         "y": (logit > 0).astype(int)})


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """"good" leans on the strong feature; "worse" on noise."""
    root = tmp_path_factory.mktemp("models")
    return {"good": linear_classifier(root / "good", [3.0, 0.7, 0.0]),
            "worse": linear_classifier(root / "worse", [0.5, 0.7, 1.0])}


@pytest.fixture(scope="session")
def labelled_rows():
    """`rows(n, seed)`: held-out rows whose label the strong feature drives."""
    return rows
