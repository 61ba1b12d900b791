"""Trained runs to register: each is real training on a few hundred rows, done once per module."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlform.engine.provider import CreateRequest, Progress, ProviderContext, ResourceRef
from mlform.providers.local.dataset import DatasetHandler
from mlform.providers.local.training.handler import TrainingJobHandler


def frame(rows: int = 400, biased: bool = False, seed: int = 0) -> pd.DataFrame:
    """Separable on x0 + x1; when `biased`, group 'f' is almost never positive."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 2))
    group = rng.choice(["f", "m"], rows)
    positive = x[:, 0] + x[:, 1] > 0
    if biased:
        positive = positive & (group == "m")
    return pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "group": group,
                         "approved": positive.astype(int)})


def train_run(ctx: ProviderContext, job: str, data: pd.DataFrame, **inputs) -> str:
    (ctx.stack_dir / "data").mkdir(exist_ok=True)
    data.to_csv(ctx.stack_dir / "data" / f"{job}.csv", index=False)
    stored = DatasetHandler(ctx).create(CreateRequest(
        ResourceRef(job, "dataset"), {"source": f"data/{job}.csv"}, "k"), Progress())
    done = TrainingJobHandler(ctx).create(CreateRequest(
        ResourceRef(job, "training_job"),
        {"dataset": stored.outputs["uri"], "algorithm": "mlp_classifier", "target": "approved",
         "hyperparameters": {"epochs": 5, "lr": 0.03, "hidden_layers": [8]}, **inputs}, "k"),
        Progress())
    assert done.error is None, done.error
    return done.outputs["artifact"]


@pytest.fixture(scope="module")
def ctx(tmp_path_factory) -> ProviderContext:
    root: Path = tmp_path_factory.mktemp("stack")
    return ProviderContext("test", root, "local", {}, root / ".mlform" / "local")


@pytest.fixture(scope="module")
def fair_run(ctx) -> str:
    """The group column is random and not a feature."""
    return train_run(ctx, "fair", frame(), exclude=["group"])


@pytest.fixture(scope="module")
def biased_run(ctx) -> str:
    """The label depends on the group, and the group is a feature."""
    return train_run(ctx, "biased", frame(biased=True))
