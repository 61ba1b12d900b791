"""Append-only JSON-lines logs written off the request path, rolled over when full.

Requests hand a record to `append` (a queue put); a background thread turns
records into lines and writes them every `flush_every` seconds, so serving never
waits on the disk. When the current file holds `max_rows` lines, or would pass `max_bytes`,
it becomes `<name>.1.jsonl` (replacing the previous one) and a new file starts:
the newest rows are always kept, and at most twice either bound is on disk.

The request log is read by monitors; its rows are
`{"t", "id", "variant", "model", "features", "instances", "predictions"}`
(instances as lists in `features` order), plus `"scores"` (each instance's class
probabilities) for a request that asked for them (`scores`), and the feedback log's
rows are `{"t", "id", "labels"}`.
"""

from __future__ import annotations

import functools
import json
import logging
import queue
import re
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

REQUESTS_FILE = "requests.jsonl"
FEEDBACK_FILE = "feedback.jsonl"

log = logging.getLogger("mlform.serving")


def rolled_path(path: Path) -> Path:
    """Where the previous rows go when `path` rolls over: requests.jsonl -> requests.1.jsonl."""
    return path.with_name(f"{path.stem}.1{path.suffix}")


class JsonlLog:
    def __init__(self, path: Path, max_rows: int, max_bytes: int | None = None,
                 flush_every: float = 0.5, to_line: Callable[[Any], str | bytes] | None = None):
        """`to_line` turns an appended record into the line written (default: the
        record as JSON), in the writer thread, so that the cost stays off the
        request path. The file rolls over at `max_rows` lines or `max_bytes`
        bytes, whichever comes first."""
        self.path = Path(path)
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self._to_line = to_line or _json
        self._flush_every = flush_every
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._rows = _count_lines(self.path)
        self._bytes = self.path.stat().st_size if self.path.exists() else 0
        self._thread = threading.Thread(target=self._run, name=f"log-{self.path.name}",
                                        daemon=True)
        self._thread.start()

    def append(self, record: Any) -> None:
        self._queue.put(record)

    def close(self) -> None:
        """Write what is queued and stop the writer."""
        self._stopping.set()
        self._thread.join()

    def _run(self) -> None:
        # waking per interval rather than per record batches the work: one open
        # and a few buffer-sized writes for everything queued meanwhile
        while not self._stopping.wait(self._flush_every):
            self._drain()
        self._drain()

    def _drain(self) -> None:
        """Write what is queued now (not what arrives meanwhile: the drain ends)."""
        out = None
        try:
            for _ in range(self._queue.qsize()):
                record = self._queue.get_nowait()
                try:
                    line = self._to_line(record)
                    # inside the try: text that is not UTF-8 (a lone surrogate) loses its
                    # record, not the writer thread
                    data = (line if isinstance(line, bytes) else line.encode("utf-8")) + b"\n"
                except (TypeError, ValueError):
                    log.exception("a record could not be written to %s", self.path.name)
                    continue
                if self._full(len(data)):
                    if out is not None:
                        out.close()
                        out = None
                    self.path.replace(rolled_path(self.path))
                    self._rows = self._bytes = 0
                if out is None:
                    # lines go out in buffer-sized writes: one write of everything
                    # queued (megabytes at a high request rate) costs far more
                    out = self.path.open("ab", buffering=_WRITE_BUFFER)
                out.write(data)
                self._rows += 1
                self._bytes += len(data)
        finally:
            if out is not None:
                out.close()


    def _full(self, adding: int) -> bool:
        """Whether the current file must roll over before `adding` more bytes (a file
        always takes one line, however long)."""
        if self._rows >= self.max_rows:
            return True
        return self.max_bytes is not None and self._rows > 0 and \
            self._bytes + adding > self.max_bytes


_WRITE_BUFFER = 1 << 20


# the raw body of `{"instances": [...]}` holds the instances' JSON text as sent
_INSTANCES_ONLY = re.compile(rb'\s*\{\s*"instances"\s*:(.*)\}\s*', re.DOTALL)


def request_line(record: tuple) -> bytes:
    """The request log's line for `(t, id, variant, model, features, instances, body,
    predictions[, scores])`, where either `body` holds the raw request body of the form
    `{"instances": [[...], ...]}` or `instances` holds the parsed instances (lists
    or objects by feature name), `predictions` is the JSON text of the answer and
    `scores`, when given and not None, the JSON text of its class probabilities.

    Logging every request used to cost more than predicting it, and not for the
    writing: the parsed instances, kept until the next flush, are thousands of
    lists the garbage collector has to scan again and again. Raw bytes and text
    are not scanned, and reusing them saves encoding the numbers again.
    """
    t, rid, variant, model, features, instances, body, predictions = record[:8]
    scores = record[8] if len(record) > 8 else None
    head = f'{{"t":{_json(t)},"id":{_json(rid)},{_served_by(variant, model, tuple(features))}'
    # an ASCII body is the same text in UTF-8, which the log is written in
    match = _INSTANCES_ONLY.fullmatch(body) if body is not None and body.isascii() else None
    if match and body.count(b'"instances"') == 1:
        rows = match[1].strip()
    else:
        if instances is None:
            instances = json.loads(body)["instances"]
        if instances and isinstance(instances[0], Mapping):
            instances = [[row.get(f) for f in features] for row in instances]
        rows = _json(instances).encode("utf-8")
    line = b'%s,"instances":%s,"predictions":%s' % (
        head.encode("utf-8"), rows, predictions.encode("utf-8"))
    return line + (b',"scores":%s}' % scores.encode("utf-8") if scores is not None else b"}")


@functools.lru_cache(maxsize=256)
def _served_by(variant: str, model: str, features: tuple[str, ...]) -> str:
    """The part of a line that is the same for every request a variant answers."""
    return _json({"variant": variant, "model": model, "features": features})[1:-1]


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as f:
        return sum(1 for _ in f)


def _plain(value: Any) -> Any:
    """numpy scalars and other non-JSON values a model may return."""
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


# one encoder for all lines: `json.dumps` with options builds a new one per call,
# which costs more than encoding a short line
_json = json.JSONEncoder(separators=(",", ":"), default=_plain).encode
