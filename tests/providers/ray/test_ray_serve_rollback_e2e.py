"""A rollout on Ray Serve that breaches its rollback bound: a new model version that
fails every request it gets, rolled out as a canary while a client sends requests. All
traffic goes back to the old version, the apply fails with the rollback failure that
opens an incident, and the new version's application is removed. Driven through the
provider's verbs on the session's real cluster, with two hand-made artifacts (no
training)."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import httpx
import pytest
from mlform.engine.provider import (
    CreateRequest,
    DeleteRequest,
    Failure,
    Progress,
    ProviderContext,
    ResourceRef,
    UpdateRequest,
)

pytestmark = [pytest.mark.e2e]

STACK = "rollback"
ENDPOINT = ResourceRef("ep", "endpoint")
GOOD = {"variants": {"c": {"model": "ray://models/m/1"}},
        "rollout": {"strategy": "canary", "steps": [50, 100], "wait": "1s"},
        "rollback": {"min_requests": 5, "max_error_rate": 0.1}}
BROKEN = {**GOOD, "variants": {"c": {"model": "ray://models/m/2"}}}


def artifacts(registry: Path) -> None:
    """Version 1 answers; version 2 answers every request with an error: its network
    has three outputs for two classes, and the third always wins."""
    import torch
    from mlform.ml.artifact import save_model

    meta = {"task": "classification", "features": list("abcd"), "classes": [0, 1]}
    for version, outputs in ((1, 2), (2, 3)):
        torch.manual_seed(version)
        last = torch.nn.Linear(8, outputs)
        if outputs == 3:
            with torch.no_grad():
                last.bias[:] = torch.tensor([0.0, 0.0, 100.0])
        save_model(registry / "m" / str(version) / "artifact",
                   torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), last), meta)


def test_a_breach_puts_every_request_back_on_the_old_version(ray_cluster, tmp_path):
    from mlform.providers.ray.provider import RayProvider

    storage = ray_cluster.storage / "rollback-e2e"
    artifacts(storage / STACK / "registry")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = RayProvider(ProviderContext(
        STACK, tmp_path, "gpu", {"type": "ray", "address": ray_cluster.address,
                                 "storage": str(storage), "serve_port": port},
        tmp_path / ".mlform" / "gpu"))
    created = provider.create(CreateRequest(ENDPOINT, GOOD, "rollback.ep.k"), Progress())
    assert created.error is None, created.error
    url = created.outputs["url"]
    stop, answered = threading.Event(), []

    def client() -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                got = http.post(f"{url}/predict", json={"instances": [[1, 2, 3, 4]]})
                answered.append(got.status_code)

    sender = threading.Thread(target=client)
    sender.start()
    try:
        rolled = provider.update(UpdateRequest(ResourceRef("ep", "endpoint", created.id), GOOD,
                                               created.outputs, BROKEN), Progress())
    finally:
        stop.set()
        sender.join()
    try:
        assert rolled.failure is Failure.ROLLED_BACK
        assert rolled.error.startswith("rolled back at canary step 50%: error rate 1.000"), \
            rolled.error
        assert rolled.outputs["traffic"] == {"c": 100.0}
        assert 500 in answered  # the canary's requests failed, which is what was judged
        health = httpx.get(f"{url}/health", timeout=30).json()
        assert health["models"] == ["ray://models/m/1"] and health["canary"] is None
        apps = httpx.get(f"{ray_cluster.address}/api/serve/applications/",
                         timeout=30).json()["applications"]
        # the new version's application is removed (Serve may still be deleting it)
        assert sorted(n for n, app in apps.items() if n.startswith(f"mlform-{STACK}-")
                      and app["status"] != "DELETING") == \
            [f"mlform-{STACK}-ep", *created.outputs["applications"]]
        after = [httpx.post(f"{url}/predict", json={"instances": [[1, 2, 3, 4]]},
                            timeout=30).status_code for _ in range(5)]
        assert after == [200] * 5
    finally:
        gone = provider.delete(DeleteRequest(ENDPOINT, GOOD, created.outputs), Progress())
        provider.close()
    assert gone.error is None
