import hashlib
import json
import stat
import subprocess
import sys
import textwrap
from datetime import datetime

import pytest
from mlform.engine.audit import AuditLog
from mlform.engine.values import Secret


def filled(tmp_path, count: int = 4) -> AuditLog:
    log = AuditLog(tmp_path)
    for n in range(1, count + 1):
        log.append(f"apply run-{n}", "ok", [{"resource": f"r{n}", "action": "create"}],
                   plan_digest=f"sha256:{n}", user="ana")
    return log


def lines(log: AuditLog) -> list[bytes]:
    return log.path.read_bytes().splitlines(keepends=True)


def test_entries_are_chained_and_verify_clean(tmp_path):
    log = filled(tmp_path, 3)
    entries = log.entries()
    assert [e["seq"] for e in entries] == [1, 2, 3]
    assert entries[0]["prev"] == ""
    assert entries[1]["prev"] == hashlib.sha256(lines(log)[0].rstrip(b"\n")).hexdigest()
    first = entries[0]
    assert (first["command"], first["result"], first["user"], first["plan_digest"],
            first["changes"], first["detail"]) == (
        "apply run-1", "ok", "ana", "sha256:1", [{"resource": "r1", "action": "create"}], {})
    assert datetime.fromisoformat(first["time"]).utcoffset().total_seconds() == 0
    assert json.loads(log.head_path.read_text()) == {"seq": 3, "digest": entries[2]["digest"]}
    assert log.verify() == []


def test_an_empty_log_verifies(tmp_path):
    assert AuditLog(tmp_path).verify() == []
    assert AuditLog(tmp_path).entries() == []


def test_files_are_private(tmp_path):
    log = filled(tmp_path, 1)
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.head_path.stat().st_mode) == 0o600


def test_a_sensitive_value_is_stored_as_a_digest_only(tmp_path):
    log = AuditLog(tmp_path, salt="audit-salt")
    entry = log.append("apply", "ok", [], None, detail={"token": Secret("hunter2")})
    assert b"hunter2" not in log.path.read_bytes()
    assert entry["detail"]["token"]["$sensitive"].startswith("hmac-sha256:audit-salt:")
    assert log.verify() == []


def test_a_change_without_resource_or_action_is_refused(tmp_path):
    with pytest.raises(ValueError, match="needs 'resource' and 'action'"):
        AuditLog(tmp_path).append("apply", "ok", [{"resource": "x"}], None)


def edit_result(log: AuditLog) -> None:
    kept = lines(log)
    kept[1] = kept[1].replace(b'"result":"ok"', b'"result":"failed"')
    log.path.write_bytes(b"".join(kept))


def edit_and_reseal(log: AuditLog) -> None:
    kept = lines(log)
    entry = json.loads(kept[1])
    entry["user"] = "mallory"
    del entry["digest"]
    body = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
    entry["digest"] = hashlib.sha256(body).hexdigest()
    kept[1] = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    log.path.write_bytes(b"".join(kept))


def drop(index: int):
    def tamper(log: AuditLog) -> None:
        kept = lines(log)
        del kept[index]
        log.path.write_bytes(b"".join(kept))
    return tamper


def swap_middle(log: AuditLog) -> None:
    kept = lines(log)
    kept[1], kept[2] = kept[2], kept[1]
    log.path.write_bytes(b"".join(kept))


def cut_last_line_short(log: AuditLog) -> None:
    log.path.write_bytes(log.path.read_bytes()[:-20])


@pytest.mark.parametrize("tamper, expected", [
    pytest.param(edit_result,
                 ["line 2 (seq 2): edited: its content does not match its digest",
                  "line 3 (seq 3): does not follow the line before it: an entry was removed, "
                  "reordered or edited"],
                 id="field-edited"),
    pytest.param(edit_and_reseal,
                 ["line 3 (seq 3): does not follow the line before it: an entry was removed, "
                  "reordered or edited"],
                 id="field-edited-and-digest-recomputed"),
    pytest.param(drop(1),
                 ["line 2 (seq 3): does not follow the line before it: an entry was removed, "
                  "reordered or edited",
                  "line 2 (seq 3): follows seq 1: an entry was removed or reordered"],
                 id="middle-entry-removed"),
    pytest.param(drop(-1),
                 ["the log ends at seq 3 but 'audit.head' records seq 4: entries were "
                  "removed from the end"],
                 id="last-entry-removed"),
    pytest.param(drop(0),
                 ["line 1 (seq 2): does not follow the line before it: an entry was removed, "
                  "reordered or edited",
                  "line 1 (seq 2): follows seq 0: an entry was removed or reordered"],
                 id="first-entry-removed"),
    pytest.param(swap_middle,
                 ["line 2 (seq 3): does not follow the line before it: an entry was removed, "
                  "reordered or edited",
                  "line 2 (seq 3): follows seq 1: an entry was removed or reordered",
                  "line 3 (seq 2): does not follow the line before it: an entry was removed, "
                  "reordered or edited",
                  "line 3 (seq 2): follows seq 3: an entry was removed or reordered",
                  "line 4 (seq 4): does not follow the line before it: an entry was removed, "
                  "reordered or edited",
                  "line 4 (seq 4): follows seq 2: an entry was removed or reordered"],
                 id="entries-reordered"),
    pytest.param(cut_last_line_short,
                 ["line 4: cut short: an append was interrupted",
                  "the log ends at seq 3 but 'audit.head' records seq 4: entries were "
                  "removed from the end"],
                 id="last-line-torn"),
])
def test_tampering_is_detected(tmp_path, tamper, expected):
    log = filled(tmp_path, 4)
    tamper(log)
    assert log.verify() == expected


def test_removing_the_last_entry_and_the_head_is_still_detected(tmp_path):
    log = filled(tmp_path, 3)
    drop(-1)(log)
    log.head_path.unlink()
    assert log.verify() == [f"'{log.head_path}' is missing: the end of the log cannot be "
                            "checked"]


def test_an_append_after_a_cut_keeps_the_gap_visible(tmp_path):
    log = filled(tmp_path, 3)
    drop(-1)(log)
    entry = log.append("apply", "ok", [], None)
    assert entry["seq"] == 4
    assert log.verify() == ["line 3 (seq 4): follows seq 2: an entry was removed or reordered"]


def test_an_append_interrupted_by_a_crash_is_dropped_by_the_next_one(tmp_path):
    log = filled(tmp_path, 2)
    with log.path.open("ab") as f:
        f.write(b'{"changes":[],"command":"apply","de')  # the head was not updated yet
    assert len(log.entries()) == 2
    log.append("apply", "ok", [], None)
    assert [e["seq"] for e in log.entries()] == [1, 2, 3]
    assert log.verify() == []


APPENDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from mlform.engine.audit import AuditLog

    log = AuditLog(Path(sys.argv[1]))
    for n in range(15):
        log.append(f"apply {sys.argv[2]}-{n}", "ok", [], None)
""")


def test_concurrent_appends_from_processes_keep_one_chain(tmp_path):
    writers = [subprocess.Popen([sys.executable, "-c", APPENDER, str(tmp_path), name])
               for name in ("a", "b")]
    assert [w.wait(timeout=60) for w in writers] == [0, 0]
    log = AuditLog(tmp_path)
    assert [e["seq"] for e in log.entries()] == list(range(1, 31))
    assert log.verify() == []
