"""Shared fixtures: tiny model artifacts in a local registry, and endpoints that are
always stopped after the test, whatever it did."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from mlform.engine.provider import (
    CreateRequest,
    DeleteRequest,
    Progress,
    ProviderContext,
    ResourceRef,
)
from mlform.providers.local.paths import LocalPaths, model_uri
from mlform.providers.local.serving import process
from mlform.providers.local.serving.handler import EndpointHandler

FEATURES = ["a", "b", "c"]
CLASSES = ["no", "yes"]
MODELS = {
    # version: (bias of class "no", bias of class "yes"), so each version always
    # answers its own class and a response shows which version served it
    1: (5.0, -5.0),
    2: (-5.0, 5.0),
}
WIDE = 3
"""A version that expects four features: every three-feature request fails on it."""


def _save(directory: Path, n_features: int, bias: tuple[float, float]) -> None:
    import torch
    from mlform.ml.artifact import save_model

    module = torch.nn.Linear(n_features, 2)
    with torch.no_grad():
        module.weight.zero_()
        module.bias.copy_(torch.tensor(bias))
    features = FEATURES if n_features == 3 else FEATURES + ["d"]
    save_model(directory, module, {"task": "classification", "features": features,
                                   "classes": CLASSES, "target": "label"})


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> Path:
    """One artifact per version, saved once for the whole run."""
    root = tmp_path_factory.mktemp("artifacts")
    for version, bias in MODELS.items():
        _save(root / str(version), 3, bias)
    _save(root / str(WIDE), 4, (0.0, 0.0))
    return root


def with_registry(root: Path, artifacts: Path) -> Path:
    """`root` as a provider data directory whose registry holds model 'm', versions
    1, 2 and 3."""
    paths = LocalPaths(root)
    for version in artifacts.iterdir():
        shutil.copytree(version, paths.model_version("m", version.name) / "artifact")
    return root


def handler_for(data_dir: Path) -> EndpointHandler:
    return EndpointHandler(ProviderContext(
        stack="test", stack_dir=data_dir.parent, provider_name="local", config={},
        data_dir=data_dir))


@pytest.fixture
def data_dir(tmp_path: Path, artifacts: Path) -> Path:
    return with_registry(tmp_path / "local", artifacts)


def uri(version: int) -> str:
    return model_uri("m", version)


@pytest.fixture
def handler(data_dir: Path) -> EndpointHandler:
    return handler_for(data_dir)


@pytest.fixture
def endpoints(handler: EndpointHandler):
    """create(name, inputs) -> ApplyResponse; every endpoint created is stopped at the end."""
    created: list[str] = []

    def create(name: str, inputs: dict):
        created.append(name)
        return handler.create(CreateRequest(ResourceRef(name, "endpoint"), inputs, f"key-{name}"),
                              Progress())

    yield create
    for name in created:
        handler.delete(DeleteRequest(ResourceRef(name, "endpoint"), {}, {}), Progress())
        process.stop_all(handler.paths.endpoint(name))
