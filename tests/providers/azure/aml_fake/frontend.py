"""The HTTP front of the fake: a threaded `http.server` on 127.0.0.1 behind TLS, a route table
of (verb, path pattern, operation name, RBAC action) and JSON in and out.

ARM matches paths case-insensitively (the SDK sends `resourceGroups`, `Microsoft.
MachineLearningServices`, ...), so patterns compile with IGNORECASE. Every request may be failed
on purpose by the test controls (`fail_next`), and any `AzureError` becomes the
`{"error": {...}}` body azure-core turns into its typed exceptions.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .errors import AzureError

SUB = r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
WS = SUB + r"/providers/Microsoft\.MachineLearningServices/workspaces/(?P<ws>[^/]+)"
NAME = r"[^/]+"


@dataclass
class Request:
    verb: str
    path: str
    groups: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str]
    raw: bytes

    def json(self) -> dict[str, Any]:
        try:
            value = json.loads(self.raw) if self.raw.strip() else {}
        except ValueError as e:
            raise AzureError(400, "BadRequest", f"Invalid JSON payload received: {e}") from e
        if not isinstance(value, dict):
            raise AzureError(400, "BadRequest", "The request body must be a JSON object.")
        return value


@dataclass
class Response:
    status: int
    body: Any = None                 # JSON-serialisable, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Response]
# take_failure(operation, action, scope) -> an injected error, or None
FailureSource = Callable[[str, str, str], AzureError | None]


@dataclass(frozen=True)
class Route:
    verb: str
    pattern: re.Pattern[str]
    operation: str   # e.g. "CreateJob" (what fail_next names)
    action: str      # the RBAC action the service checks, e.g. ".../workspaces/jobs/write"
    handler: Handler


class Router:
    """The route table and the per-call checks (workspace scope, injected failures)."""

    def __init__(self, take_failure: FailureSource, check_scope: Callable[[dict[str, str]], None]):
        self.routes: list[Route] = []
        self._take_failure = take_failure
        self._check_scope = check_scope

    def add(self, verb: str, path: str, operation: str, action: str, handler: Handler) -> None:
        self.routes.append(Route(verb, re.compile(path + r"/?$", re.IGNORECASE), operation,
                                 action, handler))

    def dispatch(self, verb: str, raw_path: str, headers: dict[str, str], raw: bytes) -> Response:
        parts = urlsplit(raw_path)
        path = unquote(parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        for route in self.routes:
            if route.verb != verb:
                continue
            match = route.pattern.match(path)
            if match is None:
                continue
            groups = {k: v for k, v in match.groupdict().items() if v is not None}
            try:
                self._check_scope(groups)
                failure = self._take_failure(route.operation, route.action, path)
                if failure is not None:
                    raise failure
                return route.handler(Request(verb, path, groups, query, headers, raw))
            except AzureError as e:
                return Response(e.status, e.body(), e.headers())
        error = AzureError(404, "NoRegisteredProviderFound" if "/providers/" in path else "NotFound",
                           f"The fake does not serve {verb} {path}.")
        return Response(error.status, error.body(), error.headers())


class _Handler(BaseHTTPRequestHandler):
    router: Router  # set on the subclass made per server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read their own logs
        pass

    def _serve(self, verb: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            response = self.router.dispatch(verb, self.path, headers, raw)
        except Exception as e:  # a bug in the fake: say so in the reply, do not hang the client
            error = AzureError(500, "InternalServerError", f"fake internal error: {e!r}")
            response = Response(500, error.body())
        if isinstance(response.body, bytes):
            data, kind = response.body, "application/octet-stream"
        elif response.body is None:
            data, kind = b"", "application/json; charset=utf-8"
        else:
            data, kind = json.dumps(response.body).encode(), "application/json; charset=utf-8"
        self.send_response(response.status)
        headers = {"Content-Type": kind, "x-ms-request-id": "fake", **response.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")


class Server:
    """A ThreadingHTTPServer on a free loopback port behind TLS (`cert`, `key`), serving
    `router` from a daemon thread."""

    def __init__(self, router: Router, cert: Path, key: Path):
        handler = type("Handler", (_Handler,), {"router": router})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        # The handshake happens on the first read, in the request's own thread, so a slow or
        # broken client never blocks the accept loop.
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True,
                                                 do_handshake_on_connect=False)
        self.url = f"https://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="aml-fake",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
