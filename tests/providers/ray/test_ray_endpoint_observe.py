"""What `observe` makes of the Serve applications it reads back, against Serve's
instance details as the dashboard answers them: drift (a deleted router, a replica
count or weight changed behind mlform's back) and health. No cluster: the details are
the REST API's shape, given by each case. And `check`'s plan-time refusal of rollout
steps a rollout cannot step."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from mlform.engine.provider import ObserveRequest, ProviderContext, ResourceRef
from mlform.providers.ray.endpoint import EndpointHandler
from mlform.providers.ray.serving import apps

ROUTER = "mlform-s-ep"
VARIANT = "mlform-s-ep--champion-0a1b2c3d"
RECORDED = {"variants": {"champion": {"model": "ray://models/m/1"}}}


def details(replicas: int = 1, weight: int = 100, router: bool = True,
            variant: str | None = "RUNNING") -> dict:
    table = apps.routing({"champion": {"app": VARIANT, "model": "ray://models/m/1",
                                       "weight": weight, "shadow": False}})
    found = {}
    if router:
        found[ROUTER] = {"status": "RUNNING", "message": "", "deployed_app_config": {
            "name": ROUTER, "args": {"mlform_stack": "s", "mlform_endpoint": "ep"},
            "import_path": apps.ROUTER_IMPORT,
            "deployments": [{"name": "router", "user_config": {"routing": table}}]}}
    if variant:
        found[VARIANT] = {"status": variant, "message": "", "deployments": {
            "variant": {"name": "variant", "target_num_replicas": replicas}}}
    return {"http_options": {"host": "127.0.0.1", "port": 8123}, "applications": found}


def observe(tmp_path: Path, answer: dict):
    class FakeServe:
        def details(self) -> dict:
            return answer

        def close(self) -> None:
            pass

    cfg = SimpleNamespace(address="http://head:8265", serve_port=8000)
    handler = EndpointHandler(ProviderContext("s", tmp_path, "gpu", {}, tmp_path / ".m"),
                              SimpleNamespace(storage=tmp_path, cfg=cfg))
    handler._serve = FakeServe  # type: ignore[method-assign]
    return handler.observe(ObserveRequest(ResourceRef("ep", "endpoint", ROUTER), RECORDED, {}))


def test_what_was_deployed_reads_back_as_written(tmp_path):
    found = observe(tmp_path, details())
    assert (found.exists, found.id, found.healthy) == (True, ROUTER, True)
    assert found.inputs == RECORDED
    assert found.outputs["url"] == "http://head:8123/s/ep"  # the port Serve reports


@pytest.mark.parametrize(("live", "inputs"), [
    pytest.param(details(replicas=3), {**RECORDED, "compute": {"instances": 3}},
                 id="replica-count-changed"),
    pytest.param(details(weight=40), {"variants": {"champion": {
        "model": "ray://models/m/1", "weight": 40}}}, id="weight-changed"),
])
def test_a_change_behind_mlforms_back_reads_back_as_drift(tmp_path, live, inputs):
    assert observe(tmp_path, live).inputs == inputs


def test_a_deleted_router_application_is_gone(tmp_path):
    found = observe(tmp_path, details(router=False))
    assert (found.exists, found.detail) == (False, f"Serve application '{ROUTER}' not found")


@pytest.mark.parametrize(("variant", "said"), [
    pytest.param(None, f"its variant application '{VARIANT}' is gone: the variant's requests "
                       "fail", id="variant-deleted"),
    pytest.param("DEPLOY_FAILED", f"its variant application '{VARIANT}' is DEPLOY_FAILED",
                 id="variant-failed"),
])
def test_a_variant_application_that_does_not_serve_is_unhealthy(tmp_path, variant, said):
    found = observe(tmp_path, details(variant=variant))
    assert (found.exists, found.healthy, found.detail) == (True, False, said)


def test_rollout_steps_that_cannot_be_stepped_are_a_plan_error(tmp_path):
    from mlform.engine.provider import CheckRequest

    handler = EndpointHandler(ProviderContext("s", tmp_path, "gpu", {}, tmp_path / ".m"),
                              SimpleNamespace(storage=tmp_path, cfg=None))
    checked = handler.check(CheckRequest(ResourceRef("ep", "endpoint"), {
        **RECORDED, "rollout": {"strategy": "canary", "steps": [50, 10]}}))
    assert [(p.path, p.message) for p in checked.problems] == [
        (("rollout",), "rollout.steps is [50, 10]; it must be increasing percentages "
                       "between 1 and 100, e.g. [10, 50, 100]")]
