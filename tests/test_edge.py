"""Edge limits over real sockets against a real uvicorn on loopback serving the real app: oversized
headers (431), too many headers (431), half-sent requests (408 and cut off), and request bodies
in memory beyond the budget (503 + Retry-After)."""

from __future__ import annotations

import selectors
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from driftline.collector.service import CollectorService
from driftline.process import edge_limits
from driftline.server import create_app
from tests.conftest import KEY_A, make_settings

MIB = 1024 * 1024


@pytest.fixture
def edge(
    request: pytest.FixtureRequest, tmp_path: Path, chdb_path: Path, database: str
) -> Iterator[tuple[int, CollectorService]]:
    # 1 s to arrive whole, unless a test holds requests open on purpose (indirect parameter).
    timeout = getattr(request, "param", 1.0)
    s = make_settings(
        tmp_path / "data",
        f"chdb://{chdb_path}",
        database,
        request_timeout_s=timeout,
        max_request_bytes=MIB,
        max_inflight_body_bytes=3 * MIB,
        decode_workers=0,
    )
    rt = CollectorService(s)
    rt.start()
    from driftline.edge import uvicorn_config

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn_config(create_app(rt), edge_limits(s)))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    started = threading.Event()
    for _ in range(1000):  # uvicorn's own readiness flag, bounded
        if server.started:
            break
        started.wait(0.01)
    assert server.started
    try:
        yield sock.getsockname()[1], rt
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        rt.stop()


def _connect(port: int) -> socket.socket:
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    return c


def _send_until_answered(c: socket.socket, head: bytes, filler: bytes, total: int) -> bytes:
    """Send `head`, then `filler` up to `total` bytes, stopping as soon as the server answers.

    A selector, not select.select: the test process may hold more than FD_SETSIZE (1024) file
    descriptors by now (each chDB connection keeps a few /proc files open), which select() refuses.
    """
    with selectors.DefaultSelector() as sel:
        try:
            sel.register(c, selectors.EVENT_READ)
            c.sendall(head)
            sent = len(head)
            while sent < total and not sel.select(timeout=0):
                try:
                    c.sendall(filler)
                except (BrokenPipeError, ConnectionResetError):
                    break
                sent += len(filler)
        except BaseException:
            c.close()
            raise
    return _read_all(c)


def _read_all(c: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection; then closes ours."""
    out = b""
    with c:
        try:
            while chunk := c.recv(65536):
                out += chunk
        except ConnectionResetError:
            pass
    return out


def _healthy(port: int) -> bool:
    c = _connect(port)
    c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    return _read_all(c).startswith(b"HTTP/1.1 200")


def test_a_16_mib_header_is_refused(edge: tuple[int, CollectorService]) -> None:
    port, _ = edge
    c = _connect(port)
    answer = _send_until_answered(c, b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nX-Big: ", b"a" * 65536, 16 * MIB)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert _healthy(port)


def test_twenty_thousand_headers_are_refused(edge: tuple[int, CollectorService]) -> None:
    port, _ = edge
    c = _connect(port)
    headers = b"".join(b"x-h%d: v\r\n" % i for i in range(20_000))
    answer = _send_until_answered(c, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", headers, len(headers))
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert _healthy(port)


@pytest.mark.parametrize(
    "partial",
    [
        b"",  # connects and sends nothing
        b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nX-Slow",  # headers half sent
        b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
        b"Authorization: Bearer " + KEY_A.encode() + b"\r\nContent-Length: 100\r\n\r\n0123456789",  # body half sent
    ],
)
def test_half_sent_requests_are_cut_off(
    edge: tuple[int, CollectorService], partial: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    port, _ = edge
    c = _connect(port)
    t0 = time.monotonic()
    c.sendall(partial)
    answer = _read_all(c)  # returns when the server closes the connection (socket timeout: 10 s)
    assert time.monotonic() - t0 < 9, "the server held a half-sent request open"
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert _healthy(port)
    assert "OTLP/HTTP export failed" not in caplog.text  # a client cut off is not a server error


def _one_response(c: socket.socket) -> bytes:
    """One whole response (headers and its Content-Length of body) from a kept-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += c.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += c.recv(65536)
    return head + b"\r\n\r\n" + body


def _start_body(port: int, length: int) -> socket.socket:
    c = _connect(port)
    c.sendall(
        b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
        b"Authorization: Bearer %s\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % (KEY_A.encode(), length)
    )
    return c


@pytest.mark.parametrize("edge", [60.0], indirect=True)
def test_request_bodies_beyond_the_budget_get_503(edge: tuple[int, CollectorService]) -> None:
    port, _ = edge
    held = []
    for _ in range(3):  # 3 x 1 MiB reserved: the whole budget
        c = _start_body(port, MIB)
        # The server asks for the body only once the route reads it, after the reservation.
        assert c.recv(100).startswith(b"HTTP/1.1 100 Continue")
        held.append(c)
    extra = _start_body(port, MIB)
    answer = _read_all(extra)
    assert answer.startswith(b"HTTP/1.1 503"), answer[:200]
    assert b"retry-after: 1" in answer.lower()
    # A finished request frees its share: the next one is read (and refused on its merits, 400).
    first = held.pop()
    first.sendall(b"\xff" * MIB)
    assert _one_response(first).startswith(b"HTTP/1.1 400")
    again = _start_body(port, MIB)
    assert again.recv(100).startswith(b"HTTP/1.1 100 Continue")
    for c in [*held, again, first]:
        c.close()
