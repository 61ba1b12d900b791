from __future__ import annotations

import json
import time
from pathlib import Path

from mlform.providers.local.serving.reqlog import JsonlLog, rolled_path


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


def test_records_are_turned_into_rows_by_the_writer(tmp_path: Path) -> None:
    log = JsonlLog(tmp_path / "x.jsonl", max_rows=10, to_row=lambda r: {"pair": list(r)})
    log.append((1, 2))
    log.close()
    assert rows(tmp_path / "x.jsonl") == [{"pair": [1, 2]}]
