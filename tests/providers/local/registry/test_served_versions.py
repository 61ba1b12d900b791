"""A model is not deleted while a running endpoint serves one of its versions; an endpoint
that was deleted (its config and logs stay, its server record does not) serves nothing."""

from __future__ import annotations

import json

import pytest
from mlform.engine.provider import DeleteRequest, Progress, ProviderContext, ResourceRef
from mlform.providers.local.registry.handler import ModelHandler


@pytest.fixture
def handler(tmp_path):
    ctx = ProviderContext("test", tmp_path, "local", {}, tmp_path / ".mlform" / "local")
    registry = ctx.data_dir / "registry" / "m" / "1"
    registry.mkdir(parents=True)
    (registry / "meta.json").write_text(json.dumps({"version": 1}))
    endpoint = ctx.data_dir / "endpoints" / "ep"
    endpoint.mkdir(parents=True)
    (endpoint / "config.json").write_text(json.dumps(
        {"stable": {"champion": {"model": "local://models/m/1", "path": "x"}}}))
    return ModelHandler(ctx)


def _delete(handler):
    return handler.delete(DeleteRequest(ResourceRef("m", "model", "m"), {}, {"name": "m"}),
                          Progress())


@pytest.mark.parametrize("running, refused", [
    pytest.param(True, True, id="a-running-endpoint-serves-it"),
    pytest.param(False, False, id="the-endpoint-was-deleted-before"),  # as in a destroy
])
def test_delete_is_refused_only_while_an_endpoint_serves_the_model(handler, running,
                                                                     refused):
    if running:
        (handler.paths.endpoint("ep") / "server.json").write_text("{}")
    response = _delete(handler)
    if refused:
        assert response.error == (
            "model 'm' cannot be deleted: endpoint 'ep' serves version 1. Deleting it would "
            "leave the endpoint nothing to load on its next start; move the endpoint to "
            "another model first, or destroy the endpoint with it")
        assert handler.paths.registry("m").is_dir()
    else:
        assert response.error is None
        assert not handler.paths.registry("m").exists()
