"""The endpoint handler's verbs against real servers: rollouts under traffic, rollback,
dead servers, stopping, adopting."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import signal
import threading
from collections import Counter

import httpx
import psutil
import pytest
from mlform.engine.provider import (
    CreateRequest,
    DeleteRequest,
    DiffRequest,
    ObserveRequest,
    Progress,
    ResourceRef,
    UpdateRequest,
)
from mlform.providers.local.serving import process
from mlform.providers.local.serving.client import ServerClient

from .conftest import WIDE, handler_for, uri

REF = ResourceRef("ep", "endpoint")


def one_variant(version: int, **extra) -> dict:
    return {"variants": {"champion": {"model": uri(version)}}, **extra}


class Traffic:
    """Requests sent back to back from a thread for as long as the `with` block runs."""

    def __init__(self, url: str):
        self.url = url
        self.statuses: Counter = Counter()
        self.answers: Counter = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self._stop.is_set():
                try:
                    r = client.post("/predict", json={"instances": [[1, 2, 3]]})
                except httpx.HTTPError as e:
                    self.statuses[type(e).__name__] += 1
                    continue
                self.statuses[r.status_code] += 1
                if r.status_code == 200:
                    self.answers[r.json()["predictions"][0]] += 1

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def server_processes(directory) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "mlform.providers.local.serving.server" in cmdline and str(directory) in cmdline:
            found.append(proc)
    return found


def predict(url: str) -> dict:
    return httpx.post(f"{url}/predict", json={"instances": [[1, 2, 3]]}, timeout=10).json()


# --- diff: no server needed --------------------------------------------------------

def test_diff_a_new_port_forces_replacement(handler) -> None:
    prior = one_variant(1, port=8001)
    r = handler.diff(DiffRequest(REF, prior, {"url": "http://127.0.0.1:8001"},
                                 one_variant(1, port=8002)))
    assert r.requires_replace == ["port"]
    assert r.changes[0].reason.startswith("the server listens on a fixed port")
    assert r.planned_outputs["url"] == "http://127.0.0.1:8002"


def test_diff_a_new_model_version_updates_in_place_and_says_which_variant(handler) -> None:
    prior_outputs = {"url": "http://127.0.0.1:8001", "port": 8001, "pid": 1}
    r = handler.diff(DiffRequest(REF, one_variant(1), prior_outputs,
                                 one_variant(2, rollout={"strategy": "canary"})))
    [change] = [c for c in r.changes if c.path == "variants.champion.model"]
    assert not change.forces_replacement
    assert change.reason == (f"variant 'champion' changes model version: {uri(1)} -> {uri(2)}; "
                             "traffic moves by canary rollout")
    assert r.planned_outputs == {"name": "ep", "url": "http://127.0.0.1:8001", "port": 8001,
                                 "traffic": {"champion": 100.0}}


def test_diff_refuses_bad_rollout_steps(handler) -> None:
    r = handler.diff(DiffRequest(REF, None, None, one_variant(
        1, rollout={"strategy": "canary", "steps": [50, 10]})))
    assert r.error.startswith("endpoint 'ep': rollout.steps is [50, 10]")


# --- real servers ------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.e2e
def test_update_under_steady_traffic_fails_no_request_and_keeps_the_url(
        handler, endpoints) -> None:
    created = endpoints("ep", one_variant(1))
    url = created.outputs["url"]
    steps: list[str] = []
    new = one_variant(2, rollout={"strategy": "canary", "steps": [25, 50], "wait": "300ms"})
    with Traffic(url) as traffic:
        updated = handler.update(UpdateRequest(REF, one_variant(1), created.outputs, new),
                                 Progress(lambda message, _f: steps.append(message)))
    assert updated.error is None
    assert updated.outputs["url"] == url and updated.outputs["pid"] == created.outputs["pid"]
    assert set(traffic.statuses) == {200}
    assert traffic.answers["no"] > 0 and traffic.answers["yes"] > 0
    assert predict(url)["predictions"] == ["yes"]
    assert [s.split(":")[0] for s in steps if "requests," in s] == \
        ["canary step 25%", "canary step 50%", "canary step 100%"]
    assert updated.detail.count("\n") == 2


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize("new, breach", [
    pytest.param(one_variant(2, rollout={"strategy": "canary", "steps": [10, 50],
                                         "wait": "300ms"},
                             rollback={"max_p99_latency_ms": 0.001}),
                 r"rolled back at canary step 10%: p99 latency \d+\.\d ms > 0.001 ms",
                 id="impossible latency bound"),
    pytest.param(one_variant(WIDE, rollout={"strategy": "linear", "step_percent": 50,
                                            "wait": "300ms"}),
                 r"rolled back at linear step 50%: error rate 1.000 \(\d+ of \d+ requests\) "
                 r"> 0.05",
                 id="a model that fails every request"),
])
def test_a_breached_bound_rolls_back_and_the_old_version_serves(
        handler, endpoints, new: dict, breach: str) -> None:
    created = endpoints("ep", one_variant(1))
    url = created.outputs["url"]
    with Traffic(url):
        updated = handler.update(UpdateRequest(REF, one_variant(1), created.outputs, new),
                                 Progress())
    assert updated.error is not None
    assert re.fullmatch(breach, updated.error), updated.error
    assert updated.outputs["traffic"] == {"champion": 100.0}
    health = httpx.get(f"{url}/health").json()
    assert health["variants"]["champion"]["model"] == uri(1) and health["canary"] is None
    assert all(predict(url)["predictions"] == ["no"] for _ in range(20))


@pytest.mark.slow
@pytest.mark.e2e
def test_observe_reports_a_killed_server_and_create_restarts_it_at_the_same_url(
        handler, endpoints) -> None:
    created = endpoints("ep", one_variant(1))
    pid = created.outputs["pid"]
    os.kill(pid, signal.SIGKILL)
    psutil.Process(pid).wait(5)
    observed = handler.observe(ObserveRequest(REF, one_variant(1), created.outputs))
    assert not observed.exists
    assert f"the server (pid {pid}, port {created.outputs['port']}) is not running" in \
        observed.detail
    again = endpoints("ep", one_variant(1))
    assert again.error is None
    assert again.outputs["url"] == created.outputs["url"] and again.outputs["pid"] != pid


@pytest.mark.slow
@pytest.mark.e2e
def test_observe_reads_back_the_live_variants(handler, endpoints) -> None:
    created = endpoints("ep", one_variant(1))
    observed = handler.observe(ObserveRequest(REF, one_variant(1), created.outputs))
    assert observed.exists and observed.healthy
    assert observed.inputs == one_variant(1)
    assert observed.outputs == created.outputs
    with ServerClient(created.outputs["port"],
                      process.read_token(handler.paths.endpoint("ep"))) as client:
        live = client.config()
        changed = live.stable["champion"].model_copy(update={"weight": 30})
        client.serve(live.model_copy(update={"stable": {"champion": changed}}))
    drifted = handler.observe(ObserveRequest(REF, one_variant(1), created.outputs))
    assert drifted.inputs == {"variants": {"champion": {"model": uri(1), "weight": 30}}}


@pytest.mark.slow
@pytest.mark.e2e
def test_delete_leaves_no_process_and_closes_the_port(handler, endpoints) -> None:
    created = endpoints("ep", one_variant(1))
    pid, port = created.outputs["pid"], created.outputs["port"]
    assert handler.delete(DeleteRequest(REF, one_variant(1), created.outputs), Progress()).error \
        is None
    assert not psutil.pid_exists(pid)
    assert not server_processes(handler.paths.endpoint("ep"))
    assert not process.port_in_use(port)
    assert not handler.observe(ObserveRequest(REF, one_variant(1), created.outputs)).exists
    assert handler.delete(DeleteRequest(REF, one_variant(1), created.outputs), Progress()).error \
        is None


@pytest.mark.slow
@pytest.mark.e2e
def test_create_adopts_the_server_an_interrupted_apply_started(
        handler, endpoints, data_dir) -> None:
    first = endpoints("ep", one_variant(1))
    # a new apply: a fresh handler that knows nothing of the first one
    messages: list[str] = []
    again = handler_for(data_dir).create(CreateRequest(REF, one_variant(1), "key-ep"),
                                         Progress(lambda m, _f: messages.append(m)))
    assert again.error is None
    assert again.outputs == first.outputs
    assert [p.pid for p in server_processes(handler.paths.endpoint("ep"))] == \
        [first.outputs["pid"]]
    assert messages == [f"adopted the running server (pid {first.outputs['pid']}) on port "
                        f"{first.outputs['port']}"]


def _unrecorded_server(handler, name: str) -> int:
    """A server as an apply killed between starting it and writing its record leaves it."""
    from mlform.providers.local.serving.config import serving_config, write_config

    directory = handler.paths.endpoint(name)
    directory.mkdir(parents=True, exist_ok=True)
    config = serving_config(name, _endpoint_spec(one_variant(1)), handler.paths)
    write_config(directory / "config.json", config)
    record = process.spawn(directory, 0, config.digest())
    process.record_path(directory).unlink()
    return record.pid


def _kill(pid: int) -> None:
    with contextlib.suppress(psutil.Error):
        psutil.Process(pid).kill()


def _endpoint_spec(inputs: dict):
    from mlform.engine.spec.models import Endpoint

    return Endpoint.model_validate({**inputs, "type": "endpoint"})


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize("verb", ["create", "delete"])
def test_a_server_no_record_names_is_stopped_by_the_next_create_or_delete(
        handler, endpoints, verb, request) -> None:
    stray = _unrecorded_server(handler, "ep")
    request.addfinalizer(lambda: _kill(stray))
    messages: list[str] = []
    progress = Progress(lambda m, _f: messages.append(m))
    if verb == "create":
        created = handler.create(CreateRequest(REF, one_variant(1), "key-ep"), progress)
        endpoints("ep", one_variant(1))  # stopped at the end of the test
        assert created.error is None
        assert [p.pid for p in server_processes(handler.paths.endpoint("ep"))] == \
            [created.outputs["pid"]]
    else:
        assert handler.delete(DeleteRequest(REF, {}, {}), progress).error is None
        assert not server_processes(handler.paths.endpoint("ep"))
    assert not psutil.pid_exists(stray) or psutil.Process(stray).status() == "zombie"
    assert messages[0] == (f"stopped server pid {stray}, which an interrupted apply started "
                           "and never recorded")


@pytest.mark.slow
@pytest.mark.e2e
def test_a_model_that_cannot_load_fails_create_and_leaves_no_server(
        handler, endpoints, data_dir) -> None:
    broken = handler.paths.model_version("m", 9) / "artifact"
    shutil.copytree(handler.paths.model_version("m", 1) / "artifact", broken)
    (broken / "model.pt2").write_bytes(b"not a model")
    created = endpoints("ep", one_variant(9))
    assert created.error.startswith(
        f"endpoint 'ep': the server could not load its models: model '{uri(9)}' failed to load")
    assert not server_processes(handler.paths.endpoint("ep"))


@pytest.mark.slow
@pytest.mark.e2e
def test_the_provider_lists_running_servers_and_names_an_unrecorded_one(
        handler, endpoints, data_dir, request) -> None:
    from mlform.engine.provider import ProviderContext
    from mlform.providers.local.provider import LocalProvider

    provider = LocalProvider(ProviderContext("test", data_dir.parent, "local", {}, data_dir))
    assert provider.list_owned() == []
    endpoints("ep", one_variant(1))
    record = process.read_record(handler.paths.endpoint("ep"))
    stray = _unrecorded_server(handler, "ep")
    request.addfinalizer(lambda: _kill(stray))
    process.write_record(handler.paths.endpoint("ep"), record)  # the recorded one stays
    assert provider.list_owned() == [
        ("endpoint", "ep"), ("endpoint", f"ep (server pid {stray}, never recorded)")]


@pytest.mark.slow
@pytest.mark.e2e
def test_a_log_size_written_with_a_unit_reads_back_as_written(handler, endpoints) -> None:
    """The server holds bytes; drift must not see `1MiB` against 1048576 as a change."""
    inputs = one_variant(1, logging={"max_bytes": "1MiB", "sample_rate": 0.5})
    created = endpoints("ep", inputs)
    assert created.error is None, created.error
    observed = handler.observe(ObserveRequest(REF, inputs, created.outputs))
    assert observed.inputs == inputs
    token = process.read_token(handler.paths.endpoint("ep"))
    with ServerClient(created.outputs["port"], token) as client:
        assert client.config().max_bytes == 2**20


def _shift_recorded_create_time(directory, seconds: float) -> None:
    """What a step of the wall clock between an apply and a destroy does to the record:
    psutil computes a create time from the boot time as the clock has it now, so the
    one recorded at start no longer matches the live server's."""
    record = process.read_record(directory)
    process.write_record(directory, dataclasses.replace(
        record, create_time=record.create_time + seconds))


@pytest.mark.slow
@pytest.mark.e2e
def test_a_server_is_recognised_and_stopped_by_delete_after_the_clock_stepped(
        handler, endpoints) -> None:
    created = endpoints("ep", one_variant(1))
    directory, pid, port = handler.paths.endpoint("ep"), created.outputs["pid"], \
        created.outputs["port"]
    _shift_recorded_create_time(directory, 1.0)

    observed = handler.observe(ObserveRequest(REF, one_variant(1), created.outputs))
    assert observed.exists and observed.healthy and observed.outputs["pid"] == pid
    assert handler.running_servers() == [("endpoint", "ep")]
    again = handler.create(CreateRequest(REF, one_variant(1), "key-ep"), Progress())
    assert (again.outputs["pid"], again.outputs["url"]) == (pid, created.outputs["url"])

    said: list[str] = []
    gone = handler.delete(DeleteRequest(REF, one_variant(1), again.outputs),
                          Progress(lambda m, _f: said.append(m)))
    assert gone.error is None
    assert said == [f"stopped the server (pid {pid})"]
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not server_processes(directory) and not process.port_in_use(port)
    assert not directory.exists() and handler.running_servers() == []


@pytest.mark.slow
@pytest.mark.e2e
def test_delete_keeps_the_files_while_a_server_still_runs_and_names_it(
        handler, endpoints, monkeypatch) -> None:
    created = endpoints("ep", one_variant(1))
    directory, pid = handler.paths.endpoint("ep"), created.outputs["pid"]
    monkeypatch.setattr(process, "_signal_group", lambda pid, sig: None)  # it ignores them
    handler.stop_timeout = 0.2
    failed = handler.delete(DeleteRequest(REF, one_variant(1), created.outputs), Progress())
    assert failed.error == f"endpoint 'ep': the server (pid {pid}) still runs 0.2s after SIGKILL"
    assert process.read_record(directory).pid == pid  # the next destroy finds it again
    monkeypatch.undo()
    handler.stop_timeout = 10.0
    assert handler.delete(DeleteRequest(REF, one_variant(1), created.outputs),
                          Progress()).error is None
    assert not server_processes(directory) and not directory.exists()
