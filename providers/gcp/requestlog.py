"""An endpoint's request log in GCS (written by container_serve.py) and the ground truth
users upload, read into the `Traffic` table monitors evaluate, through the very reader
the local provider's monitors use (`mlform.ml.serving.traffic.read_traffic`), so the same
rows give the same numbers.

Log objects live under `requests/<endpoint id>/<deployed model id>/<time>-....jsonl`,
one line per request in the local request log's format. Only the objects a window needs
are read: the newest until `window_rows` instances (the current window) and the oldest
until `window_rows` (the baseline of output drift). Ground truth: JSON lines
`{"id": "<request id>", "labels": [...]}` under `ground-truth/<endpoint id>/`.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from mlform.ml.monitoring.traffic import Traffic
from mlform.ml.serving.traffic import FEEDBACK_LOG, REQUEST_LOGS, read_traffic

from .gcs import Gcs


def _instances(text: bytes) -> int:
    count = 0
    for line in text.splitlines():
        try:
            count += len(json.loads(line).get("instances") or [])
        except (ValueError, AttributeError):
            continue
    return count


def read_requests(gcs: Gcs, bucket: str, prefix: str, window_rows: int,
                  truth: tuple[str, str] | None) -> Traffic:
    """The logged requests under `prefix` an evaluation of `window_rows` needs, with the
    labels uploaded under `truth` (bucket, prefix), or none when `truth` is None."""
    blobs = sorted(gcs.list(bucket, prefix), key=lambda b: (b.name.rsplit("/", 1)[-1], b.name))
    chunks: dict[int, bytes] = {}

    def read(i: int) -> bytes:
        if i not in chunks:
            chunks[i] = gcs.get(bucket, blobs[i].name) or b""
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
            for blob in sorted(gcs.list(*truth) if truth else [],
                               key=lambda b: (b.updated.timestamp() if b.updated else 0,
                                              b.name)):
                data = gcs.get(blob.bucket.name, blob.name) or b""
                out.write(data if data.endswith(b"\n") or not data else data + b"\n")
        return read_traffic(folder)


def feedback_note(uri: str) -> str:
    """The note of a performance check that found no labels for the window."""
    return (f"no ground truth for the logged requests under {uri}: upload JSON lines "
            '{"id": "<request id>", "labels": [...]} there (a request names its id with '
            '"parameters": {"id": ...}, or reads it from the answer\'s "id")')




def read_logs(gcs: Gcs, bucket: str, prefix: str, truths: list[tuple[str, str]]
              ) -> tuple[list[dict], list[dict]]:
    """Every logged request under `prefix` (`variant`: the deployed model id) and every
    ground-truth record under the (bucket, prefix) pairs `truths`, oldest object first:
    what an experiment's verdict reads (all of it, not a monitor's window)."""
    from mlform.ml.experiments.logged import json_lines

    requests = [record for blob in sorted(gcs.list(bucket, prefix),
                                          key=lambda b: (b.name.rsplit("/", 1)[-1], b.name))
                for record in json_lines(gcs.get(bucket, blob.name))]
    found = [blob for truth in dict.fromkeys(truths) for blob in gcs.list(*truth)]
    feedback = [record for blob in sorted(found, key=lambda b: (
        b.updated.timestamp() if b.updated else 0, b.name))
        for record in json_lines(gcs.get(blob.bucket.name, blob.name))]
    return requests, feedback
