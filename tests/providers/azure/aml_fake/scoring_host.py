"""The scoring host one deployment runs (started by serving.py as its own process): Azure's
scoring contract as azureml-inference-server-http implements it.

    python scoring_host.py <code_dir> <scoring_script> <port>

with AZUREML_MODEL_DIR set. It imports the scoring script from the code folder, calls `init()`
once, and only then listens on 127.0.0.1:<port>: `GET /` answers 200 (liveness and readiness),
`POST /score` calls `run(raw_body)` with the request body as text and answers the result as
JSON (a string result is JSON-encoded too, as the inference server does), or 500 with the
traceback when `run` raises. A crash in `init()` exits non-zero with the traceback on stderr.

Standalone on purpose: it imports nothing from the fake.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def main() -> None:
    code_dir, script, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sys.path.insert(0, code_dir)
    os.chdir(code_dir)
    spec = importlib.util.spec_from_file_location("score", os.path.join(code_dir, script))
    if spec is None or spec.loader is None:
        sys.exit(f"cannot load scoring script {script} from {code_dir}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "init") or not hasattr(module, "run"):
        sys.exit(f"scoring script {script} must define init() and run(raw_data)")
    module.init()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, data: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._reply(200, b"Healthy", "text/plain")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode("utf-8", errors="replace")
            try:
                result = module.run(raw)
                data = json.dumps(result).encode()
            except Exception:
                text = traceback.format_exc()
                print(text, file=sys.stderr, flush=True)
                self._reply(500, text.encode(), "text/plain")
                return
            self._reply(200, data, "application/json")

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print(f"scoring host ready on port {port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
