"""The HTTP front of the fake: a threaded `http.server` on 127.0.0.1, a route table of
(verb, path pattern, RPC method, IAM permission) and JSON in and out.

Every request is checked for the project and region it names, may be failed on purpose by the
test controls (`fail_next`), and any `ApiError` becomes the `{"error": {...}}` body the Google
API client libraries turn into their typed exceptions.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .errors import ApiError

LOC = r"projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
ID = r"[^/:]+"

# handler(match groups, query (one value per key), body) -> (status, reply)
Handler = Callable[[dict[str, str], dict[str, str], dict[str, Any]], tuple[int, Any]]


@dataclass(frozen=True)
class Route:
    verb: str
    pattern: re.Pattern[str]
    method: str       # the RPC name, e.g. "CreateCustomJob" (what fail_next names)
    permission: str   # the IAM permission the real service checks, e.g. "aiplatform.customJobs.create"
    handler: Handler


class Router:
    """The route table and the per-call checks (location, injected failures)."""

    def __init__(self, check_location: Callable[[str, str, str, str], None],
                 take_failure: Callable[[str, str, str], ApiError | None]):
        self.routes: list[Route] = []
        self._check_location = check_location
        self._take_failure = take_failure

    def add(self, verb: str, path: str, method: str, permission: str, handler: Handler) -> None:
        self.routes.append(Route(verb, re.compile(path + r"$"), method, permission, handler))

    def dispatch(self, verb: str, raw_path: str, body: dict[str, Any]) -> tuple[int, Any]:
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
            resource = path.split("/", 2)[2] if path.count("/") >= 2 else path
            resource = resource.split(":", 1)[0]
            try:
                if "project" in groups and "location" in groups:
                    self._check_location(groups["project"], groups["location"],
                                         route.permission, resource)
                failure = self._take_failure(route.method, route.permission, resource)
                if failure is not None:
                    raise failure
                return route.handler(groups, query, body)
            except ApiError as e:
                return e.http_code, e.body()
        error = ApiError("NOT_FOUND", f"The fake does not serve {verb} {path}.")
        return error.http_code, error.body()


class _Handler(BaseHTTPRequestHandler):
    router: Router  # set on the subclass made per server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read their own logs
        pass

    def _serve(self, verb: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            status, reply = 400, ApiError("INVALID_ARGUMENT", "Invalid JSON payload received.").body()
        else:
            try:
                status, reply = self.router.dispatch(verb, self.path, body)
            except Exception as e:  # a bug in the fake: say so in the reply, do not hang the client
                status, reply = 500, ApiError("INTERNAL", f"fake internal error: {e!r}").body()
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")


class Server:
    """A ThreadingHTTPServer on a free loopback port, serving `router` from a daemon thread."""

    def __init__(self, router: Router):
        handler = type("Handler", (_Handler,), {"router": router})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="vertex-fake",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
