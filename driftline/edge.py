"""Limits at the edge, before a request reaches a route: header size and count, how long a request
may take to arrive, and how many request-body bytes may sit in memory at once.

uvicorn bounds none of these with httptools (a 16 MiB header, 20,000 headers and a client sending
one byte a second all got through), so the HTTP protocol is uvicorn's own with three checks added,
and the body budget is an ASGI middleware that answers 503 + Retry-After before reading a body
that would not fit.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["BodyBudget", "EdgeLimits", "guarded_protocol", "uvicorn_config"]

Scope = dict[str, Any]


@dataclass(frozen=True)
class EdgeLimits:
    max_header_bytes: int
    max_header_count: int
    request_timeout_s: float
    max_inflight_body_bytes: int
    # Reserved for a body of unknown length (chunked): the largest one a route accepts.
    unknown_length_bytes: int


def _response(status: bytes, msg: str) -> bytes:
    body = msg.encode()
    head = b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
    return head + b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body


class _HeaderLimit(Exception):
    """Raised inside a parser callback to stop parsing (httptools wraps it as a parser error)."""


def guarded_protocol(limits: EdgeLimits) -> type[HttpToolsProtocol]:
    class GuardedProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol, refusing oversized headers (431) and requests that do
        not arrive whole within request_timeout_s (408; also a connection that sends nothing)."""

        _refused = False
        _header_bytes = 0  # bytes received while this request's headers are incomplete
        _header_count = 0
        _headers_done = False
        _timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._timer is None:
                self._timer = self.loop.call_later(limits.request_timeout_s, self._too_slow)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _refuse(self, status: bytes, msg: str) -> None:
            self._refused = True
            self._disarm()
            if not self.transport.is_closing():
                self.transport.write(_response(status, msg))
                self.transport.close()

        def _too_slow(self) -> None:
            self._timer = None
            self._refuse(b"408 Request Timeout", f"request not received within {limits.request_timeout_s:g} s\n")

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._header_count = 0
            self._arm()

        def on_header(self, name: bytes, value: bytes) -> None:
            self._header_count += 1
            if self._header_count > limits.max_header_count:
                self._too_large()
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._headers_done = True
            super().on_headers_complete()

        def _too_large(self) -> None:
            msg = f"request headers exceed {limits.max_header_bytes} bytes or {limits.max_header_count} fields\n"
            self._refuse(b"431 Request Header Fields Too Large", msg)
            raise _HeaderLimit

        def on_message_complete(self) -> None:
            self._disarm()  # arrived whole: the app's own time is not limited here
            self._headers_done, self._header_bytes = False, 0
            super().on_message_complete()

        def send_400_response(self, msg: str) -> None:
            if not self._refused:  # a refusal above already answered and closed
                super().send_400_response(msg)

        def data_received(self, data: bytes) -> None:
            # httptools hands a header over only once it is whole, so a 16 MiB header is counted here,
            # in the bytes that arrive before the headers end.
            if self._refused:
                return
            if not self._headers_done:
                self._header_bytes += len(data)
            super().data_received(data)
            if not self._headers_done and not self._refused and self._header_bytes > limits.max_header_bytes:
                with contextlib.suppress(_HeaderLimit):  # not inside the parser: nothing to stop
                    self._too_large()

    return GuardedProtocol


class BodyBudget:
    """ASGI middleware: a request with a body reserves its Content-Length (or, without one, the
    largest body a route takes) before the app reads it; beyond max_inflight_body_bytes in total,
    503 + Retry-After, and the body is never read."""

    METHODS = frozenset({"POST", "PUT", "PATCH"})

    def __init__(self, app: Any, limits: EdgeLimits) -> None:
        self.app = app
        self.limits = limits
        self.in_use = 0

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") not in self.METHODS:
            await self.app(scope, receive, send)
            return
        need = self.limits.unknown_length_bytes
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit():
                need = min(int(value), need)  # larger ones are refused by the route (413) unread
        if self.in_use + need > self.limits.max_inflight_body_bytes:
            await _busy(send)
            return
        self.in_use += need
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                self.in_use -= need

        async def send_releasing(message: dict[str, Any]) -> None:
            # Released before the last byte goes out, so a client that has read its answer can
            # count on the space being free again.
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                release()
            await send(message)

        try:
            await self.app(scope, receive, send_releasing)
        finally:
            release()


async def _busy(send: Any) -> None:
    body = b'{"detail": "too many request bodies in flight, retry later"}'
    headers = [(b"content-type", b"application/json"), (b"retry-after", b"1"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def uvicorn_config(app: Any, limits: EdgeLimits) -> uvicorn.Config:
    """The uvicorn config of every Driftline HTTP server: the guarded protocol, the body budget."""
    return uvicorn.Config(
        BodyBudget(app, limits), http=guarded_protocol(limits), log_config=None, access_log=False, lifespan="auto"
    )
