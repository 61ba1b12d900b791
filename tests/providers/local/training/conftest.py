"""A stack directory with a stored dataset, for training tests."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlform.engine.provider import CreateRequest, Progress, ProviderContext, ResourceRef
from mlform.providers.local.dataset import DatasetHandler


def separable_frame(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """Two classes a straight line separates, plus a categorical and a noise column."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    kind = rng.choice(["a", "b", "c"], rows)
    return pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "noise": x[:, 2], "kind": kind,
                         "label": np.where(x[:, 0] + x[:, 1] > 0, "fraud", "ok")})


@pytest.fixture
def ctx(tmp_path: Path) -> ProviderContext:
    return ProviderContext("test", tmp_path, "local", {}, tmp_path / ".mlform" / "local")


@pytest.fixture
def dataset_uri(ctx: ProviderContext) -> str:
    (ctx.stack_dir / "data").mkdir()
    separable_frame().to_csv(ctx.stack_dir / "data" / "tx.csv", index=False)
    response = DatasetHandler(ctx).create(
        CreateRequest(ResourceRef("tx", "dataset"), {"source": "data/tx.csv"}, "key"), Progress())
    assert response.error is None
    return response.outputs["uri"]
