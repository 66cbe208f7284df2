"""Run services in one process: bind, lock and migrate the store, start, serve HTTP, stop in order.

`driftline collector`, `scorer`, `api` run one service each; `driftline up` runs all three on the
embedded store. Whatever runs, shutdown walks every service through the same phases (STYLE.md #6),
all within shutdown_timeout_s: stop accepting (HTTP, then each service's own listeners), stop the
scheduler, drain buffers into the store, then close the store and release the data directory.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from prometheus_client import CollectorRegistry

from driftline import __version__
from driftline.auth import Authenticator
from driftline.config import ConfigError, ServerSettings
from driftline.edge import EdgeLimits, uvicorn_config
from driftline.service import Service
from driftline.store import DataDirInUse, DataDirLock, Store

__all__ = ["ENDPOINT_FILE", "ProcessContext", "edge_limits", "run_services", "setup_logging"]

# In the data directory while a process serves: its HTTP base URL.
ENDPOINT_FILE = "endpoint"

log = logging.getLogger("driftline")


class _JsonFormatter(logging.Formatter):
    """One JSON object a line: what log pipelines expect from a service."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


@dataclass
class ProcessContext:
    """What the services of one process share: settings, the store, one metrics registry, the keys."""

    settings: ServerSettings
    store: Store
    registry: CollectorRegistry
    auth: Authenticator
    # Called once HTTP serves, with its base URL; returns a stop function (run before HTTP stops).
    on_serving: list[Callable[[str], Callable[[], None]]] = field(default_factory=list)


def _fail(msg: str, code: int) -> int:
    print(f"driftline: error: {msg}", file=sys.stderr)
    return code


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def run_services(
    command: str,
    settings: ServerSettings,
    build: Callable[[ProcessContext], Sequence[Service]],
    auth: Authenticator | None = None,
) -> int:
    """Run until SIGINT/SIGTERM; the exit code (0 clean, 1 cannot start, 2 bad configuration)."""
    from driftline.collector.service import ListenError
    from driftline.server import build_app, by_listener, metrics_app

    s = settings
    setup_logging(s.log_level)
    try:
        sock = _bind(s.http_host, s.http_port)
    except OSError as e:
        return _fail(f"cannot listen on {s.http_host}:{s.http_port}: {e.strerror}", 1)
    msock: socket.socket | None = None
    if s.metrics_port >= 0:
        try:
            msock = _bind(s.metrics_host, s.metrics_port)
        except OSError as e:
            sock.close()
            return _fail(f"cannot listen for /metrics on {s.metrics_host}:{s.metrics_port}: {e.strerror}", 1)
    sockets = [sock] if msock is None else [sock, msock]
    lock = DataDirLock(s.data_dir)
    try:
        lock.acquire()
    except DataDirInUse as e:
        for x in sockets:
            x.close()
        return _fail(str(e), 1)
    # Every tenant's prompts can live here (embedded store, spool, quarantine): this user only.
    os.chmod(s.data_dir, 0o700)
    store = Store(s.store_config(), s.retention_days)
    ctx = ProcessContext(s, store, CollectorRegistry(), auth or Authenticator(s.key_grants()))
    started: list[Service] = []

    def close() -> None:
        store.close()
        lock.release()
        for x in sockets:
            x.close()

    try:
        store.migrate()
        services = list(build(ctx))
        for svc in services:
            svc.start()
            started.append(svc)
    except (ConfigError, ListenError, DataDirInUse) as e:
        _shutdown(started, time.monotonic() + s.shutdown_timeout_s)
        close()
        return _fail(str(e), 2 if isinstance(e, ConfigError) else 1)
    except BaseException:
        _shutdown(started, time.monotonic() + s.shutdown_timeout_s)
        close()
        raise

    # Start-up objects (price tables, lexicons, the app) live for the whole process: freezing them
    # keeps the cyclic GC from walking them on every collection (measured 5-8% of ingest CPU).
    gc.collect()
    gc.freeze()
    token = s.metrics_token.get_secret_value()
    app: Any = build_app(services, ctx.registry, metrics=msock is None, metrics_token=token)
    if msock is not None:
        app = by_listener(app, metrics_app(ctx.registry, token), msock.getsockname()[1])
    server = uvicorn.Server(uvicorn_config(app, edge_limits(s)))
    # uvicorn re-raises SIGINT/SIGTERM after its own shutdown, which would kill the process before
    # the services drain. So the main thread owns the signals and uvicorn runs beside it.
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    web = threading.Thread(target=server.run, kwargs={"sockets": sockets}, name="driftline-http")
    web.start()
    while not server.started and web.is_alive():  # the banner means "send now": wait until true
        stop.wait(0.02)
    base = _url(sock)
    stoppers = [hook(base) for hook in ctx.on_serving]
    # Where this process serves, for one-off commands that find the data directory held
    # (`driftline score backfill` goes through the server then).
    endpoint = s.data_dir / ENDPOINT_FILE
    endpoint.write_text(base + "\n")
    parts = [p for svc in services for p in svc.describe(base)]
    parts += [f"metrics {_url(msock or sock)}/metrics", f"data {s.data_dir.resolve()}"]
    print(f"Driftline {__version__} {command}: {', '.join(parts)}", file=sys.stderr)
    try:
        while not stop.wait(0.5):
            if not web.is_alive():  # uvicorn failed on its own
                break
    finally:
        log.info("shutting down: stop accepting, stop jobs, drain, close")
        deadline = time.monotonic() + s.shutdown_timeout_s
        for stop_client in stoppers:  # clients of this server (the demo): their last batch lands first
            stop_client()
        server.should_exit = True  # 1. stop accepting HTTP; in-flight requests finish
        web.join(max(0.1, deadline - time.monotonic()))
        _shutdown(services, deadline)
        endpoint.unlink(missing_ok=True)
        close()  # 4. close the store, release the data directory
    return 0


def edge_limits(s: ServerSettings) -> EdgeLimits:
    return EdgeLimits(
        max_header_bytes=s.max_header_bytes,
        max_header_count=s.max_header_count,
        request_timeout_s=s.request_timeout_s,
        max_inflight_body_bytes=s.max_inflight_body_bytes,
        # A collector takes bodies up to max_request_bytes; other routes (feedback) far less.
        unknown_length_bytes=int(getattr(s, "max_request_bytes", 1024 * 1024)),
    )


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"


def _shutdown(services: Sequence[Service], deadline: float) -> None:
    """Phases 1-3 over every service in turn, each phase bounded by the one deadline."""
    for phase in ("stop_accepting", "stop_jobs", "drain"):
        for svc in services:
            try:
                getattr(svc, phase)(deadline)
            except Exception:  # one service failing to stop must not keep the others from draining
                log.exception("%s: %s failed", svc.name, phase)
