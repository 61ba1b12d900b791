"""The stack's record of its backend and state, and the continuity checks made against it."""

from __future__ import annotations

import stat
from types import SimpleNamespace

import pytest
from mlform.engine.diagnostics import MlformError
from mlform.engine.state.continuity import check_continuity
from mlform.engine.state.model import State
from mlform.engine.state.record import (
    BackendRecord,
    RecordStore,
    backend_settings,
    same_backend,
)

WHERE = "local state '.mlform/state.json'"


def spec_backend(**fields) -> SimpleNamespace:
    base = dict(type="local", path=None, bucket=None, key=None, region=None, endpoint_url=None)
    return SimpleNamespace(**{**base, **fields})


def state(lineage: str = "lin-a", serial: int = 4) -> State:
    return State(lineage=lineage, serial=serial, stack="s", salt="x")


@pytest.mark.parametrize("record, read, refusal", [
    pytest.param(BackendRecord({}), None, None, id="nothing-seen-nothing-there"),
    # reason: a stack that never saw a state has nothing to compare with
    pytest.param(BackendRecord({}), state(), None, id="first-state-is-taken"),
    pytest.param(BackendRecord({}, "lin-a", 4), state(serial=4), None, id="same-serial"),
    pytest.param(BackendRecord({}, "lin-a", 4), state(serial=9), None, id="serial-moved-on"),
    # reason: another machine sharing the backend may have written meanwhile
    pytest.param(BackendRecord({}, "lin-a", 4), state(serial=3),
                 f"{WHERE} went back from serial 4 to serial 3", id="serial-set-back"),
    pytest.param(BackendRecord({}, "lin-a", 4), state("lin-b", 9),
                 f"{WHERE} holds another state than the one this stack last used",
                 id="other-lineage"),
    pytest.param(BackendRecord({}, "lin-a", 4), None, f"{WHERE} is gone", id="state-removed"),
])
def test_continuity(record, read, refusal):
    if refusal is None:
        check_continuity(record, read, WHERE)
        return
    with pytest.raises(MlformError) as caught:
        check_continuity(record, read, WHERE)
    assert caught.value.diagnostics[0].summary == refusal
    assert "'mlform state accept'" in caught.value.diagnostics[0].help


def test_serials_seen_never_go_back_within_a_lineage():
    record = BackendRecord({}, "lin-a", 7)
    assert record.seen("lin-a", 5).serial == 7
    assert record.seen("lin-a", 8).serial == 8
    assert record.seen("lin-b", 1) == BackendRecord({}, "lin-b", 1)


@pytest.mark.parametrize("a, b, same", [
    pytest.param(spec_backend(), spec_backend(path=".mlform/state.json"), True,
                 id="default-path-written-out"),
    pytest.param(spec_backend(path="./state/../.mlform/state.json"), spec_backend(), True,
                 id="same-path-spelt-differently"),
    pytest.param(spec_backend(), spec_backend(path="other/state.json"), False,
                 id="another-local-path"),
    pytest.param(spec_backend(type="s3", bucket="b", key="k", region="us-east-1"),
                 spec_backend(type="s3", bucket="b", key="/k", region="eu-west-1"), True,
                 id="s3-region-alone-does-not-move-the-state"),
    pytest.param(spec_backend(type="s3", bucket="b", key="k"),
                 spec_backend(type="s3", bucket="b", key="k2"), False, id="s3-other-key"),
    pytest.param(spec_backend(), spec_backend(type="s3", bucket="b", key="k"), False,
                 id="local-to-s3"),
])
def test_same_backend(a, b, same):
    assert same_backend(backend_settings(a), backend_settings(b)) is same


def test_recorded_settings_hold_no_credentials():
    settings = backend_settings(spec_backend(type="s3", bucket="b", key="k",
                                             endpoint_url="https://ak:sk@s3.example:9000/x"))
    assert settings["endpoint_url"] == "https://s3.example:9000/x"


def test_the_record_is_private_and_round_trips(tmp_path):
    (tmp_path / ".mlform").mkdir(mode=0o755)
    (tmp_path / ".mlform").chmod(0o755)
    store = RecordStore(tmp_path)
    record = BackendRecord(backend_settings(spec_backend()), "lin-a", 3)
    store.save(record)
    assert store.load() == record
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.dir.stat().st_mode) == 0o700


def test_an_unreadable_record_is_no_record(tmp_path):
    store = RecordStore(tmp_path)
    store.dir.mkdir()
    store.path.write_text("{broken")
    assert store.load() is None
