"""Scoring script of mlform's managed online deployments (Azure's scoring contract:
azureml-inference-server-http calls `init()` once and `run(raw)` per request); never
imported by mlform itself.

`init()` loads the artifact under AZUREML_MODEL_DIR with `mlform.ml.artifact` (a folder
model sits in a folder of its own name there). `run()` answers the local provider's
prediction API: `{"instances": [[...], ...]}` (or objects by feature name) ->
`{"predictions": [...], "id": ...}`; with `"return": "probabilities"` the class
probabilities too, and with `"explain": true` local's `/explain` answer instead (an
online endpoint has the one route, /score: `mlform.ml.serving.answering`). A request
names itself with `"parameters": {"id": "..."}`, the id ground truth is joined by;
otherwise one is made.

Every answered request is appended to the request log monitors read, in the local
provider's line format (`mlform.ml.serving.reqlog.request_line`, with the scores
answered when the request asked for probabilities; explanations are not logged),
buffered and written every MLFORM_LOG_FLUSH_SECONDS as one blob under
`$MLFORM_REQUEST_LOG/<MLFORM_DEPLOYMENT>/<time>-<pid>-<n>.jsonl` in the container
MLFORM_BLOB_CONTAINER_URL names, signed with the deployment's managed identity, or with
MLFORM_STORAGE_KEY where the provider was given a storage key (emulators).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# Inside the container this file is a top-level module beside the `mlform` package it
# ships with; imported as part of mlform (tests) its folder must not shadow top-level
# names (it holds a `packaging.py`).
if not __package__:
    sys.path.insert(0, str(HERE))

STATE: dict[str, Any] = {}


def container_client() -> Any:
    from azure.storage.blob import ContainerClient

    url = os.environ["MLFORM_BLOB_CONTAINER_URL"]
    key = os.environ.get("MLFORM_STORAGE_KEY")
    if key:
        credential: Any = {"account_name": os.environ.get("MLFORM_STORAGE_ACCOUNT", ""),
                           "account_key": key}
    else:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    return ContainerClient.from_container_url(url, credential=credential)


class RequestLog:
    """Lines buffered in memory, written to blob as one blob per flush, off the request
    path; a failed write keeps the lines for the next flush."""

    def __init__(self, prefix: str, every: float):
        self.prefix = prefix.rstrip("/") + "/" if prefix else ""
        self.every = every
        self.lines: list[bytes] = []
        self.lock = threading.Lock()
        self.count = 0
        self.client: Any = None
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
        name = f"{self.prefix}{time.time():.6f}-{os.getpid()}-{self.count}.jsonl"
        try:
            if self.client is None:
                self.client = container_client()
            self.client.upload_blob(name, b"\n".join(lines) + b"\n", overwrite=True)
        except Exception as exc:
            print(f"request log: could not write {name}: {exc}", file=sys.stderr, flush=True)
            with self.lock:
                self.lines[:0] = lines


def model_folder(root: Path) -> Path:
    """The folder holding the artifact's manifest under AZUREML_MODEL_DIR."""
    from mlform.ml.artifact import META_FILE

    if (root / META_FILE).is_file():
        return root
    for found in sorted(root.rglob(META_FILE)):
        return found.parent
    raise FileNotFoundError(f"no {META_FILE} under {root}")


def init() -> None:
    from mlform.ml.artifact import load_predictor

    root = Path(os.environ.get("AZUREML_MODEL_DIR", "."))
    STATE["predictor"] = load_predictor(model_folder(root))
    STATE["model"] = os.environ.get("MLFORM_MODEL", "")
    STATE["deployment"] = os.environ.get("MLFORM_DEPLOYMENT", "")
    prefix = os.environ.get("MLFORM_REQUEST_LOG", "")
    STATE["log"] = RequestLog(f"{prefix.rstrip('/')}/{STATE['deployment']}" if prefix else "",
                              float(os.environ.get("MLFORM_LOG_FLUSH_SECONDS", "10")))


def bad_request(message: str) -> Any:
    """A 400 where the inference server offers it; elsewhere the error is raised."""
    try:
        from azureml.contrib.services.aml_response import AMLResponse  # type: ignore
    except ImportError:
        raise ValueError(message) from None
    return AMLResponse(json.dumps({"error": message}), 400)


def run(raw: Any) -> Any:
    from mlform.ml.serving.answering import answer
    from mlform.ml.serving.parsing import BadRequest, json_object
    from mlform.ml.serving.reqlog import request_line

    predictor = STATE["predictor"]
    data = raw.encode() if isinstance(raw, str) else bytes(raw)
    try:
        body = json_object(data)
        answered = answer(predictor, body, STATE["deployment"], STATE["model"])
    except BadRequest as e:
        return bad_request(str(e))
    if answered.predictions is None:  # an explanation: no prediction to log or name
        return answered.answer
    given = body.get("parameters")
    parameters = given if isinstance(given, dict) else {}
    rid = str(parameters.get("id") or uuid.uuid4().hex)
    STATE["log"].append(request_line((time.time(), rid, STATE["deployment"], STATE["model"],
                                      predictor.features, answered.rows, None,
                                      answered.predictions, answered.scores)))
    return {**answered.answer, "id": rid}
