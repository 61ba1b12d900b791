"""The real ModelServiceClient (REST transport) against the Vertex fake's Model Registry."""

from __future__ import annotations

from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud.aiplatform_v1 import ModelServiceClient, types
from vertex_fake import VertexFake

pytestmark = pytest.mark.e2e


@pytest.fixture
def models(vertex: VertexFake) -> ModelServiceClient:
    return vertex.client(ModelServiceClient)


def _model(labels: dict[str, str] | None = None, aliases: list[str] | None = None) -> types.Model:
    return types.Model(
        display_name="churn", labels=labels or {}, version_aliases=aliases or [],
        artifact_uri="gs://bucket/models/churn/1",
        container_spec={"image_uri": "us-docker.pkg.dev/p/serving:1", "command": ["python", "serve.py"],
                        "args": ["--x"], "env": [{"name": "A", "value": "1"}],
                        "ports": [{"container_port": 8080}], "predict_route": "/predict",
                        "health_route": "/health"})


def _upload(client: ModelServiceClient, vertex: VertexFake, **kw: Any) -> Any:
    parent = f"projects/{vertex.project}/locations/{vertex.region}"
    model = kw.pop("model", None) or _model()
    return client.upload_model(request={"parent": parent, "model": model, **kw}).result(timeout=30)


def test_upload_versions_and_aliases(vertex: VertexFake, models: ModelServiceClient) -> None:
    first = _upload(models, vertex, model_id="churn-v", model=_model({"mlform-stack": "s"}, ["candidate"]))
    name = f"projects/{vertex.project_number}/locations/{vertex.region}/models/churn-v"
    assert (first.model, first.model_version_id) == (name, "1")
    second = _upload(models, vertex, parent_model=name, model=_model({"mlform-stack": "s"}, ["candidate"]))
    assert second.model_version_id == "2"

    default = models.get_model(name=name)
    assert default.version_id == "1" and list(default.version_aliases) == ["default"]
    assert default.container_spec.predict_route == "/predict"
    assert default.container_spec.ports[0].container_port == 8080
    assert default.artifact_uri == "gs://bucket/models/churn/1"
    assert models.get_model(name=f"{name}@candidate").version_id == "2"  # the alias moved
    assert models.get_model(name=f"{name}@2").labels["mlform-stack"] == "s"

    moved = models.merge_version_aliases(name=f"{name}@2", version_aliases=["default", "prod"])
    assert set(moved.version_aliases) == {"candidate", "default", "prod"}
    assert models.get_model(name=name).version_id == "2"
    assert models.merge_version_aliases(name=f"{name}@2", version_aliases=["-prod"]).version_aliases
    assert "prod" not in models.get_model(name=f"{name}@2").version_aliases
    with pytest.raises(exceptions.BadRequest, match="default alias cannot be removed"):
        models.merge_version_aliases(name=f"{name}@2", version_aliases=["-default"])
    with pytest.raises(exceptions.BadRequest, match="Invalid version alias"):
        models.merge_version_aliases(name=f"{name}@2", version_aliases=["7"])

    versions = models.list_model_versions(name=name)
    assert sorted(v.version_id for v in versions) == ["1", "2"]
    with pytest.raises(exceptions.NotFound):
        models.get_model(name=f"{name}@9")

    with pytest.raises(exceptions.Conflict, match="already exists"):
        _upload(models, vertex, model_id="churn-v")


def test_list_update_and_delete(vertex: VertexFake, models: ModelServiceClient) -> None:
    parent = f"projects/{vertex.project}/locations/{vertex.region}"
    _upload(models, vertex, model_id="m-a", model=_model({"team": "a"}))
    _upload(models, vertex, model_id="m-b", model=_model({"team": "b"}))
    listed = models.list_models(request={"parent": parent, "filter": "labels.team=a"})
    assert [m.name.rsplit("/", 1)[1] for m in listed] == ["m-a"]

    name = f"{parent}/models/m-a"
    updated = models.update_model(model={"name": name, "labels": {"team": "c"}},
                                  update_mask={"paths": ["labels"]})
    assert dict(updated.labels) == {"team": "c"}

    v2 = _upload(models, vertex, parent_model=name)
    with pytest.raises(exceptions.BadRequest, match="default alias"):
        models.delete_model_version(name=f"{name}@1").result(timeout=30)
    models.delete_model_version(name=f"{name}@{v2.model_version_id}").result(timeout=30)
    assert [v.version_id for v in models.list_model_versions(name=name)] == ["1"]
    models.delete_model(name=name).result(timeout=30)
    with pytest.raises(exceptions.NotFound):
        models.get_model(name=name)


def test_upload_is_validated(vertex: VertexFake, models: ModelServiceClient) -> None:
    with pytest.raises(exceptions.BadRequest, match="image_uri"):
        _upload(models, vertex, model=types.Model(display_name="x"))
    with pytest.raises(exceptions.NotFound):
        _upload(models, vertex, parent_model=f"projects/{vertex.project}/locations/{vertex.region}/models/nope")
