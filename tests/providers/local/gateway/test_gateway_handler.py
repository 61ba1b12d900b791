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


def _shift_recorded_create_time(directory, seconds: float) -> None:
    """What a step of the wall clock between an apply and a destroy does to the record:
    psutil computes a create time from the boot time as the clock has it now, so the
    one recorded at start no longer matches the live process's."""
    path = directory / "server.json"
    record = json.loads(path.read_text())
    record["create_time"] += seconds
    path.write_text(json.dumps(record))


def test_a_proxy_is_recognised_and_stopped_by_delete_after_the_clock_stepped(handler):
    made = handler.create(CreateRequest(REF, INPUTS, "key"), QUIET)
    directory, pid = handler.directory("front"), made.outputs["pid"]
    _shift_recorded_create_time(directory, 1.0)

    seen = handler.observe(ObserveRequest(REF, INPUTS, made.outputs))
    assert seen.exists and seen.outputs["pid"] == pid
    again = handler.create(CreateRequest(REF, INPUTS, "key"), QUIET)
    assert (again.outputs["pid"], again.outputs["url"]) == (pid, made.outputs["url"])

    said = []
    gone = handler.delete(DeleteRequest(REF, INPUTS, again.outputs),
                          Progress(lambda msg, _: said.append(msg)))
    assert gone.error is None
    assert said == [f"stopped the proxy (pid {pid})"]
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not directory.exists() and handler.running_proxies() == []


def test_delete_stops_every_proxy_of_the_gateway_and_names_them(handler):
    made = handler.create(CreateRequest(REF, INPUTS, "key"), QUIET)
    directory = handler.directory("front")
    (directory / "server.json").unlink()  # an apply killed before recording its proxy
    second = handler.create(CreateRequest(REF, INPUTS, "key"), QUIET)
    # the first proxy is stopped by the apply that finds it unrecorded
    assert "pid" in second.outputs, second.error
    assert second.outputs["pid"] != made.outputs["pid"]
    assert not psutil.pid_exists(made.outputs["pid"]) or \
        psutil.Process(made.outputs["pid"]).status() == psutil.STATUS_ZOMBIE

    said = []
    handler.delete(DeleteRequest(REF, INPUTS, second.outputs),
                   Progress(lambda msg, _: said.append(msg)))
    assert said == [f"stopped the proxy (pid {second.outputs['pid']})"]
    assert handler.running_proxies() == []


def test_an_orphaned_proxy_ends_itself_once_its_directory_is_gone(handler):
    import shutil
    import time

    made = handler.create(CreateRequest(REF, INPUTS, "key"), QUIET)
    proc = psutil.Process(made.outputs["pid"])
    shutil.rmtree(handler.directory("front"))  # a delete that did not stop it
    deadline = time.monotonic() + 20
    while proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the proxy outlived its directory"
        time.sleep(0.2)
    assert not process.port_in_use(made.outputs["port"])


def test_a_proxy_knows_when_it_is_no_longer_its_gateways(handler):
    from mlform.providers.local.gateway.watchdog import Watchdog

    made = handler.create(CreateRequest(REF, INPUTS, "key"), QUIET)
    directory, pid = handler.directory("front"), made.outputs["pid"]
    assert Watchdog(directory, pid).orphaned() is None
    # another proxy than this one is recorded and runs: replaced, once seen twice
    replaced = Watchdog(directory, pid + 1)
    assert replaced.orphaned() is None
    assert replaced.orphaned() == f"the gateway's record names another proxy (pid {pid})"
    # a missing record is not a reason: a proxy runs a moment before it is recorded
    (directory / "server.json").rename(directory / "kept.json")
    assert [Watchdog(directory, pid + 1).orphaned() for _ in range(2)] == [None, None]
    (directory / "kept.json").rename(directory / "server.json")
    # its directory removed and made again (a new gateway of the same name)
    mine = Watchdog(directory, pid)
    moved = directory.with_name("front-old")
    directory.rename(moved)
    directory.mkdir()
    assert mine.orphaned() == f"its directory {directory} was removed"
    directory.rmdir()
    moved.rename(directory)
