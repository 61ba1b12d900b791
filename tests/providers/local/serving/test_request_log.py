from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from mlform.ml.serving.reqlog import JsonlLog, request_line, rolled_path


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_rows_are_written_in_order_and_flushed_on_close(tmp_path: Path) -> None:
    log = JsonlLog(tmp_path / "requests.jsonl", max_rows=100)
    for i in range(10):
        log.append({"i": i})
    log.close()
    assert [r["i"] for r in rows(tmp_path / "requests.jsonl")] == list(range(10))


def test_rows_reach_the_file_without_closing(tmp_path: Path) -> None:
    log = JsonlLog(tmp_path / "requests.jsonl", max_rows=100, flush_every=0.05)
    log.append({"i": 1})
    deadline = time.monotonic() + 5
    while not rows(tmp_path / "requests.jsonl") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert rows(tmp_path / "requests.jsonl") == [{"i": 1}]
    log.close()


def test_a_full_log_rolls_over_and_keeps_the_newest_rows(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    log = JsonlLog(path, max_rows=5)
    for i in range(12):
        log.append({"i": i})
    log.close()
    assert rolled_path(path).name == "requests.1.jsonl"
    assert [r["i"] for r in rows(rolled_path(path))] == [5, 6, 7, 8, 9]
    assert [r["i"] for r in rows(path)] == [10, 11]


def test_a_log_rolls_over_at_its_size_bound_too(tmp_path: Path) -> None:
    """Large requests fill a log long before its row bound: the size bound keeps the
    disk use at most twice `max_bytes`, and a line longer than that still fits a file."""
    path = tmp_path / "requests.jsonl"
    log = JsonlLog(path, max_rows=1000, max_bytes=100)
    for i in range(10):
        log.append({"i": i, "pad": "x" * 30})  # 44 bytes a line with its newline
    log.append({"i": 10, "pad": "x" * 200})
    log.close()
    assert [r["i"] for r in rows(rolled_path(path))] == [8, 9]
    assert [r["i"] for r in rows(path)] == [10]
    reopened = JsonlLog(path, max_rows=1000, max_bytes=100)
    reopened.append({"i": 11})
    reopened.close()
    assert [r["i"] for r in rows(rolled_path(path))] == [10]
    assert [r["i"] for r in rows(path)] == [11]


def test_a_reopened_log_counts_the_rows_already_there(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    first = JsonlLog(path, max_rows=3)
    for i in range(2):
        first.append({"i": i})
    first.close()
    second = JsonlLog(path, max_rows=3)
    for i in range(2, 4):
        second.append({"i": i})
    second.close()
    assert [r["i"] for r in rows(rolled_path(path))] == [0, 1, 2]
    assert [r["i"] for r in rows(path)] == [3]


def test_records_are_turned_into_lines_by_the_writer(tmp_path: Path) -> None:
    log = JsonlLog(tmp_path / "x.jsonl", max_rows=10, to_line=lambda r: json.dumps(list(r)))
    log.append((1, 2))
    log.close()
    assert rows(tmp_path / "x.jsonl") == [[1, 2]]


def test_a_record_that_cannot_be_written_does_not_stop_the_log(tmp_path: Path) -> None:
    log = JsonlLog(tmp_path / "x.jsonl", max_rows=10)
    log.append({"bad": object()})
    log.append({"i": 1})
    log.close()
    assert len(rows(tmp_path / "x.jsonl")) == 2


FEATURES = ["a", "b"]
ROW = {"t": 1.5, "id": "r1", "variant": "v", "model": "local://models/m/1",
       "features": FEATURES, "instances": [[1, 2.5], [3, None]], "predictions": ["no", "yes"]}


@pytest.mark.parametrize("instances, body", [
    pytest.param(None, b'{"instances": [[1, 2.5], [3, null]]}', id="raw body reused"),
    pytest.param(None, b' {\n "instances" :[[1,2.5],[3,null]] }\n', id="raw body with spaces"),
    pytest.param(None, b'{"\\u0069nstances": [[1, 2.5], [3, null]]}',
                 id="escaped key: parsed again"),
    pytest.param([[1, 2.5], [3, None]], None, id="parsed lists"),
    pytest.param([{"b": 2.5, "a": 1}, {"a": 3}], None, id="objects in feature order"),
])
def test_request_line(instances, body) -> None:
    line = request_line((1.5, "r1", "v", "local://models/m/1", FEATURES, instances, body,
                         '["no","yes"]'))
    assert json.loads(line) == ROW
    assert list(json.loads(line)) == list(ROW)


def test_a_body_that_is_not_ascii_is_logged_as_utf8() -> None:
    """Only an ASCII body's text is reused as it is: a UTF-16 body's bytes would not
    be UTF-8 in the log."""
    for body in ('{"instances": [["é", 1]]}'.encode("utf-16"),
                 '{"instances": [["é", 1]]}'.encode()):
        line = request_line((1.5, "r1", "v", "m", FEATURES, None, body, '["no"]'))
        assert json.loads(line.decode("utf-8"))["instances"] == [["é", 1]]
