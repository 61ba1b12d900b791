"""An endpoint's request log in blob (written by container_score.py) and the ground truth
users upload, read into the `Traffic` table monitors evaluate, through the very reader
the local provider's monitors use (`mlform.ml.serving.traffic.read_traffic`), so the same
rows give the same numbers.

Log objects live under `requests/<endpoint>/<deployment>/<time>-....jsonl`,
one line per request in the local request log's format. Only the objects a window needs
are read: the newest until `window_rows` instances (the current window) and the oldest
until `window_rows` (the baseline of output drift). Ground truth: JSON lines
`{"id": "<request id>", "labels": [...]}` under `ground-truth/<endpoint>/`.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from mlform.ml.monitoring.traffic import Traffic
from mlform.ml.serving.traffic import FEEDBACK_LOG, REQUEST_LOGS, read_traffic

from .blob import Blob


def _instances(text: bytes) -> int:
    count = 0
    for line in text.splitlines():
        try:
            count += len(json.loads(line).get("instances") or [])
        except (ValueError, AttributeError):
            continue
    return count


def read_requests(blob: Blob, prefix: str, window_rows: int, truth: str | None) -> Traffic:
    """The logged requests under `prefix` an evaluation of `window_rows` needs, with the
    labels uploaded under the prefix `truth`, or none when `truth` is None."""
    blobs = sorted(blob.list(prefix), key=lambda b: (b.name.rsplit("/", 1)[-1], b.name))
    chunks: dict[int, bytes] = {}

    def read(i: int) -> bytes:
        if i not in chunks:
            chunks[i] = blob.get(blobs[i].name) or b""
        return chunks[i]

    rows, end = 0, len(blobs)
    while end > 0 and rows < window_rows:
        end -= 1
        rows += _instances(read(end))
    rows, start = 0, 0
    while start < end and rows < window_rows:
        rows += _instances(read(start))
        start += 1
    with tempfile.TemporaryDirectory(prefix="mlform-traffic-") as tmp:
        folder = Path(tmp)
        with (folder / REQUEST_LOGS[-1]).open("wb") as out:
            for i in sorted(chunks):
                data = chunks[i]
                out.write(data if data.endswith(b"\n") or not data else data + b"\n")
        with (folder / FEEDBACK_LOG).open("wb") as out:
            for found in sorted(blob.list(truth) if truth else [],
                                key=lambda b: (b.last_modified.timestamp()
                                               if b.last_modified else 0, b.name)):
                data = blob.get(found.name) or b""
                out.write(data if data.endswith(b"\n") or not data else data + b"\n")
        return read_traffic(folder)


def feedback_note(uri: str) -> str:
    """The note of a performance check that found no labels for the window."""
    return (f"no ground truth for the logged requests under {uri}: upload JSON lines "
            '{"id": "<request id>", "labels": [...]} there (a request names its id with '
            '"parameters": {"id": ...}, or reads it from the answer\'s "id")')




def read_logs(blob: Blob, prefix: str, truths: list[str]) -> tuple[list[dict], list[dict]]:
    """Every logged request under `prefix` (`variant`: the deployment) and every
    ground-truth record under the prefixes `truths`, oldest blob first: what an
    experiment's verdict reads (all of it, not a monitor's window)."""
    from mlform.ml.experiments.logged import json_lines

    requests = [record for found in sorted(blob.list(prefix),
                                           key=lambda b: (b.name.rsplit("/", 1)[-1], b.name))
                for record in json_lines(blob.get(found.name))]
    labelled = [found for truth in dict.fromkeys(truths) for found in blob.list(truth)]
    feedback = [record for found in sorted(labelled, key=lambda b: (
        b.last_modified.timestamp() if b.last_modified else 0, b.name))
        for record in json_lines(blob.get(found.name))]
    return requests, feedback
