"""Serving script of mlform's Vertex AI models (runs inside the model's container under
Vertex AI's custom-container contract); never imported by mlform itself.

It loads the artifact from AIP_STORAGE_URI with `mlform.ml.artifact`, listens on
AIP_HTTP_PORT, answers AIP_HEALTH_ROUTE with 200 once loaded, and AIP_PREDICT_ROUTE with
the local provider's prediction API: `{"instances": [[...], ...]}` (or objects by feature
name) -> `{"predictions": [...]}`; with `"return": "probabilities"` the class
probabilities too, and with `"explain": true` local's `/explain` answer instead
(`mlform.ml.serving.answering`; either option at the top of the body or under
`"parameters"`, where Vertex AI's predict puts options). A request may name itself with
`"parameters": {"id": "..."}`, the id ground truth is joined by; otherwise one is made.

Every answered request is appended to the request log monitors read, in the local
provider's line format (`mlform.ml.serving.reqlog.request_line`, with the scores
answered when the request asked for probabilities; explanations are not logged),
buffered and written every MLFORM_LOG_FLUSH_SECONDS as one object under
`$MLFORM_REQUEST_LOG/<AIP_ENDPOINT_ID>/<AIP_DEPLOYED_MODEL_ID>/<time>-<n>.jsonl`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# Inside the container this file runs as a script beside the `mlform` package it ships
# with; imported as part of mlform (tests) its folder must not shadow top-level names
# (it holds a `packaging.py`).
if not __package__:
    sys.path.insert(0, str(HERE))

MAX_BODY = 8 * 2**20


def storage_client():
    from google.cloud import storage

    return storage.Client(project=os.environ.get("CLOUD_ML_PROJECT_ID"))


def split_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("gs://"):].partition("/")
    return bucket, key


def download_dir(uri: str, to: Path) -> None:
    bucket, prefix = split_uri(uri.rstrip("/") + "/")
    for blob in storage_client().list_blobs(bucket, prefix=prefix):
        path = to / blob.name[len(prefix):]
        path.parent.mkdir(parents=True, exist_ok=True)
        blob.download_to_filename(str(path))


class RequestLog:
    """Lines buffered in memory, written to GCS as one object per flush, off the request
    path; a failed write keeps the lines for the next flush."""

    def __init__(self, root: str, every: float):
        endpoint = os.environ.get("AIP_ENDPOINT_ID", "")
        deployed = os.environ.get("AIP_DEPLOYED_MODEL_ID", "") or "0"
        # a batch prediction job serves no endpoint: its instances are no endpoint's traffic
        self.prefix = f"{root.rstrip('/')}/{endpoint}/{deployed}/" if root and endpoint else ""
        self.every = every
        self.lines: list[bytes] = []
        self.lock = threading.Lock()
        self.count = 0
        if self.prefix:
            threading.Thread(target=self._run, daemon=True).start()

    def append(self, line: bytes) -> None:
        if self.prefix:
            with self.lock:
                self.lines.append(line)

    def _run(self) -> None:
        while True:
            time.sleep(self.every)
            self.flush()

    def flush(self) -> None:
        with self.lock:
            lines, self.lines = self.lines, []
        if not lines:
            return
        self.count += 1
        bucket, key = split_uri(f"{self.prefix}{time.time():.6f}-{os.getpid()}-{self.count}"
                                 ".jsonl")
        try:
            storage_client().bucket(bucket).blob(key).upload_from_string(
                b"\n".join(lines) + b"\n", content_type="application/x-ndjson")
        except Exception as exc:
            print(f"request log: could not write {key}: {exc}", file=sys.stderr, flush=True)
            with self.lock:
                self.lines[:0] = lines


class Serving:
    def __init__(self) -> None:
        self.predictor: Any = None
        self.model = os.environ.get("MLFORM_MODEL_URI", "")
        self.log = RequestLog(os.environ.get("MLFORM_REQUEST_LOG", ""),
                              float(os.environ.get("MLFORM_LOG_FLUSH_SECONDS", "10")))

    def load(self) -> None:
        """Load the artifact; a failure ends the container with the reason, which the
        platform reports as the deployment's failure."""
        try:
            from mlform.ml.artifact import load_predictor

            local = Path(tempfile.mkdtemp(prefix="mlform-model-"))
            download_dir(os.environ["AIP_STORAGE_URI"], local)
            self.predictor = load_predictor(local)
        except Exception as e:
            print(f"cannot load the model from {os.environ.get('AIP_STORAGE_URI')}: {e!r}",
                  file=sys.stderr, flush=True)
            os._exit(1)

    def predict(self, raw: bytes) -> tuple[int, dict]:
        from mlform.ml.serving.answering import answer
        from mlform.ml.serving.parsing import BadRequest, json_object
        from mlform.ml.serving.reqlog import request_line

        predictor = self.predictor
        if predictor is None:
            return 503, {"error": "the model is still loading"}
        deployed = os.environ.get("AIP_DEPLOYED_MODEL_ID", "")
        try:
            body = json_object(raw)
            answered = answer(predictor, body, deployed, self.model)
        except BadRequest as e:
            return 400, {"error": str(e)}
        if answered.predictions is None:  # an explanation: no prediction to log or name
            return 200, answered.answer
        given = body.get("parameters")
        parameters: dict[str, Any] = given if isinstance(given, dict) else {}
        rid = str(parameters.get("id") or uuid.uuid4().hex)
        self.log.append(request_line((time.time(), rid, deployed, self.model,
                                      predictor.features, answered.rows, None,
                                      answered.predictions, answered.scores)))
        return 200, {**answered.answer, "id": rid}


def handler_for(serving: Serving) -> type[BaseHTTPRequestHandler]:
    predict_route = os.environ.get("AIP_PREDICT_ROUTE", "/predict")
    health_route = os.environ.get("AIP_HEALTH_ROUTE", "/health")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet access log
            return

        def _send(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(data)  # unless the caller went away

        def do_GET(self) -> None:
            if self.path.split("?")[0] == health_route:
                ready = serving.predictor is not None
                self._send(200 if ready else 503, {"status": "ok" if ready else "loading"})
            else:
                self._send(404, {"error": f"no route {self.path}"})

        def do_POST(self) -> None:
            if self.path.split("?")[0] != predict_route:
                self._send(404, {"error": f"no route {self.path}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._send(413, {"error": f"the body is larger than {MAX_BODY} bytes"})
                return
            try:
                status, body = serving.predict(self.rfile.read(length))
            except Exception as e:  # answered as a 500; the reason goes to the log
                print(f"prediction failed: {e!r}", file=sys.stderr, flush=True)
                status, body = 500, {"error": f"prediction failed: {e}"}
            self._send(status, body)

    return Handler


def main() -> None:
    serving = Serving()
    server = ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("AIP_HTTP_PORT", "8080"))),
                                 handler_for(serving))
    server.daemon_threads = True

    def stop(*_: object) -> None:
        serving.log.flush()  # what was answered is logged before the container goes
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    threading.Thread(target=serving.load, daemon=True).start()
    print(f"mlform serving on port {server.server_address[1]}", flush=True)
    server.serve_forever()
    serving.log.flush()


if __name__ == "__main__":
    main()
