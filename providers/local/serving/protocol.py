"""The server's HTTP/1.1 connections: uvicorn's httptools protocol with bounds.

uvicorn bounds neither the size of a request's head nor the time it takes to
arrive: a client that opens a connection and sends nothing, or half a request
line, holds it for ever (slowloris), and a megabyte of headers is buffered
whole. This protocol adds, from the served config's `limits` (read per
connection, so a new config applies to new connections at once):

- `max_header_bytes`: a request line and headers larger than this are answered
  431 and the connection closed (counted as they arrive, so a head that never ends
  is not buffered beyond the bound);
- `header_timeout`: a request's head must have arrived this long after the
  connection opened or its first byte came; otherwise 408 (or a plain close when
  nothing was sent);
- `idle_timeout`: uvicorn's keep-alive timeout between requests.

The body's size and time are bounded by the app (`app.EndpointServer`), which sees
them through ASGI. Every answer given here is JSON, like the app's: uvicorn's own
answer to a malformed request is plain text.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from .config import ServerLimits


def bounded_protocol(limits: Callable[[], ServerLimits]) -> type[HttpToolsProtocol]:
    """The protocol class for `uvicorn.Config(http=...)`; `limits()` gives the bounds
    in force (the serving app's current config)."""

    class BoundedProtocol(_Bounded):
        current_limits = staticmethod(limits)

    return BoundedProtocol


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing an oversized head."""


class _Bounded(HttpToolsProtocol):
    current_limits: Callable[[], ServerLimits]

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._limits = self.current_limits()
        self.timeout_keep_alive = self._limits.idle_timeout
        self._in_head = True
        self._head_bytes = 0
        self._head_size = 0
        self._head_timer = None
        self._head_too_large = False
        # a connection that never sends a byte is bounded as one that sends half a request
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_timer is None:
                self._arm_head_timer()
        super().data_received(data)
        # counted before parsing, judged after: a chunk that ends the head and starts
        # the body is no oversized head
        if self._in_head and self._head_bytes > self._limits.max_header_bytes \
                and not self.transport.is_closing():
            self._head_too_large = True
            self.send_400_response("")

    # --- parser callbacks --------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_size = 0

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._disarm_head_timer()
        if self._head_size > self._limits.max_header_bytes:
            # a head that arrived whole in one read: the parser stops, and its error
            # is answered by `send_400_response`
            self._head_too_large = True
            raise _HeadTooLarge
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # what comes next on this connection is the head of another request
        self._in_head = True
        self._head_bytes = 0

    # --- answers -------------------------------------------------------------------

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request it cannot parse, as JSON."""
        if self._head_too_large:
            self._answer(431, "the request line and headers are larger than "
                              f"{self._limits.max_header_bytes} bytes (the endpoint's "
                              "limits.max_header_bytes)")
        else:
            self._answer(400, "invalid HTTP request: it could not be parsed as HTTP/1.1")

    def _answer(self, status: int, message: str) -> None:
        """Answer `status` with a JSON error and close the connection."""
        if self.transport.is_closing():
            return
        body = json.dumps({"error": message}).encode()
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head.extend([name, b": ", value, b"\r\n"])
        head.append(b"content-type: application/json\r\ncontent-length: %d\r\n"
                    b"connection: close\r\n\r\n" % len(body))
        self.transport.write(b"".join(head) + body)
        self.transport.close()

    # --- the head timer ------------------------------------------------------------

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self._limits.header_timeout,
                                                self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._in_head or self.transport.is_closing():
            return
        if self._head_bytes == 0 and (self.cycle is None or self.cycle.response_complete):
            self.transport.close()  # an idle connection: nothing to answer
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # the previous request is still being answered; its answer comes first
        self._answer(408, f"the request's line and headers did not arrive within "
                          f"{self._limits.header_timeout:g}s (the endpoint's "
                          "limits.header_timeout)")
