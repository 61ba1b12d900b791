"""The local gateway's proxy process, driven through its handler: started detached,
read back, found by `list_owned` (also when an interrupted apply never recorded it),
restarted on its port when dead, stopped by delete."""

from __future__ import annotations

import json
import os
import signal

import httpx
import psutil
import pytest
from mlform.engine.provider import (
    CreateRequest,
    DeleteRequest,
    ObserveRequest,
    Progress,
    ProviderContext,
    ResourceRef,
)
from mlform.providers.local.gateway.handler import GatewayHandler
from mlform.providers.local.serving import process

pytestmark = pytest.mark.e2e

QUIET = Progress(lambda *_: None)
REF = ResourceRef("front", "gateway")
INPUTS = {"routes": [{"endpoint": "http://127.0.0.1:9", "weight": 100, "backend": {
    "resource": "ep", "provider": "cloud", "provider_type": "null", "config": {},
    "outputs": {"url": "http://127.0.0.1:9", "name": "ep"},
    "rollout": {"strategy": "all_at_once"}, "rollback": {}}}]}


@pytest.fixture
def handler(tmp_path):
    made = GatewayHandler(ProviderContext("s", tmp_path, "local", {}, tmp_path / "local"))
    yield made
    made.delete(DeleteRequest(REF, INPUTS, {}), QUIET)


def test_the_proxy_is_supervised_like_an_endpoint_server(handler):
    made = handler.create(CreateRequest(REF, INPUTS, "key"), QUIET)
    assert made.error is None
    url, pid = made.outputs["url"], made.outputs["pid"]
    assert made.outputs["weights"] == {"ep": 100.0}
    assert httpx.get(f"{url}/health").json()["status"] == "ok"
    # a backend whose provider cannot invoke: the client gets a clear 5xx, not a hang
    answer = httpx.post(f"{url}/predict", json={"instances": [[1.0]]}, timeout=10)
    assert answer.status_code == 502
    assert "cannot invoke" in answer.text
    assert handler.running_proxies() == [("gateway", "front")]

    proc = psutil.Process(pid)
    os.kill(pid, signal.SIGKILL)
    proc.wait(10)
    gone = handler.observe(ObserveRequest(REF, INPUTS, made.outputs))
    assert not gone.exists and "is not running" in gone.detail
    again = handler.create(CreateRequest(REF, INPUTS, "key"), QUIET)
    assert again.outputs["url"] == url and again.outputs["pid"] != pid

    handler.delete(DeleteRequest(REF, INPUTS, again.outputs), QUIET)
    assert handler.running_proxies() == [] and not process.port_in_use(again.outputs["port"])


def test_a_proxy_no_record_names_is_an_orphan_and_stopped_by_the_next_apply(handler):
    made = handler.create(CreateRequest(REF, INPUTS, "key"), QUIET)
    directory = handler.directory("front")
    record = json.loads((directory / "server.json").read_text())
    (directory / "server.json").unlink()
    assert handler.running_proxies() == [
        ("gateway", f"front (proxy pid {record['pid']}, never recorded)")]
    handler.create(CreateRequest(REF, INPUTS, "key"), QUIET)
    assert handler.running_proxies() == [("gateway", "front")]
    assert made.error is None
