"""The collector service: receive -> decode -> normalize -> buffer -> write, assembled from settings.

Start: migrate (when it owns the store), start the writer (which replays any spool), the decode
workers, then the gRPC receiver; the OTLP/HTTP receiver is a router the process serves. Stop, in
the process's phases: stop gRPC (stop accepting), then drain the queue into the store or the spool,
each bounded by the deadline.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from prometheus_client import CollectorRegistry

from driftline.auth import Authenticator
from driftline.collector.buffer import SpanQueue
from driftline.collector.consume import ExportResult, Prepared, TraceConsumer
from driftline.collector.metrics import CollectorMetrics
from driftline.collector.ratelimit import TenantRateLimiter
from driftline.collector.receiver_grpc import OtlpGrpcServer
from driftline.collector.receiver_http import otlp_http_router
from driftline.collector.wal import SpanLog
from driftline.collector.workers import DecodeWorkers, PrepareOptions, build_preparer
from driftline.collector.writer import SpanWriter, WriterOptions
from driftline.config import CollectorSettings
from driftline.service import Service
from driftline.store import DataDirLock, Store

__all__ = ["CollectorService", "ListenError", "available_cpus", "grpc_concurrency", "run"]

log = logging.getLogger(__name__)


class ListenError(OSError):
    """A listener could not bind its address; the message names the address."""


class CollectorService(Service):
    """`store`: the process's store (shared with other services in `driftline up`). Without one the
    service owns a store and the data directory's lock, and `stop()` closes them: how tests and
    benchmarks run a collector alone."""

    name = "collector"

    def __init__(
        self,
        settings: CollectorSettings,
        registry: CollectorRegistry | None = None,
        insert: Callable[[Any], None] | None = None,
        ingest_clock: Callable[[], float] = time.time,
        *,
        store: Store | None = None,
        auth: Authenticator | None = None,
    ) -> None:
        s = settings
        self.settings = s
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = CollectorMetrics(self.registry)
        self._owns_store = store is None
        self.lock = DataDirLock(s.data_dir)
        self.store = store or Store(s.store_config(), s.retention_days)
        self.auth = auth or Authenticator(s.key_grants())
        self.queue = SpanQueue(s.queue_capacity_spans, on_change=self.metrics.queue_spans.set)
        self.metrics.queue_capacity.set(s.queue_capacity_spans)
        self.metrics.spool_capacity.set(s.spool_max_bytes)
        opts = PrepareOptions(
            max_request_bytes=s.max_request_bytes,
            max_value_bytes=s.max_value_bytes,
            redact=tuple(s.redact),
            price_overrides=s.model_prices(),
        )
        # In this process: replays of spooled requests.
        self.preparer = build_preparer(opts)
        self.normalizer = self.preparer.normalizer
        workers = s.decode_workers if s.decode_workers >= 0 else min(available_cpus(), 8)
        self.decoders = DecodeWorkers(workers, opts, self.metrics, local=self.preparer)
        # Keeping a prepared batch (spool append, queue) is quick but does file I/O: off the event loop.
        self._keeper: ThreadPoolExecutor | None = None
        self.spool: SpanLog | None = None
        self.writer: SpanWriter | None = None
        self.consumer: TraceConsumer | None = None
        self.grpc: OtlpGrpcServer | None = None
        self.ingest_clock = ingest_clock
        self._insert = insert or (lambda table: self.store.insert_arrow("spans", table))
        self.started = False

    def start(self) -> None:
        s = self.settings
        if self._owns_store:
            self.lock.acquire()
        try:
            # Every tenant's prompts live here (store, spool, quarantine): this user only.
            os.chmod(s.data_dir, 0o700)
            if self._owns_store:
                self.store.migrate()
            # The spool lives beside the lock, so two processes can never share one.
            self.spool = SpanLog(s.data_dir / "spool", s.spool_max_bytes)
            self.consumer = TraceConsumer(
                self.spool,
                self.queue,
                self.metrics,
                rate_limiter=(
                    TenantRateLimiter(s.tenant_rate_limit_spans_per_s) if s.tenant_rate_limit_spans_per_s else None
                ),
            )
            self.writer = SpanWriter(
                self.queue,
                self.spool,
                self._insert,
                lambda tenant, body: self.preparer.rebuild(tenant, body, self._now_ms()),
                self.metrics,
                WriterOptions.from_settings(s),
                ping=self.store.ping,
            )
            self.writer.start()
            self.decoders.start()
            self._keeper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="otlp-keep")
            if s.grpc_enabled:
                self.grpc = self._grpc_server()
                self.grpc.start()
        except BaseException:
            self.decoders.stop()
            if self.writer is not None:
                self.writer.stop(timeout_s=1)
            if self._owns_store:
                self.store.close()
                self.lock.release()
            raise
        self.started = True
        log.info("collector started: store %r, spool %d bytes pending", self.store.cfg, self.spool.pending_bytes)

    def _grpc_server(self) -> OtlpGrpcServer:
        s = self.settings
        try:
            return OtlpGrpcServer(
                self.ingest,
                self.auth,
                self.metrics,
                s.http_host,
                s.grpc_port,
                s.max_request_bytes,
                max_concurrent_rpcs=grpc_concurrency(s.max_inflight_body_bytes, s.max_request_bytes),
            )
        except (OSError, RuntimeError) as e:  # grpcio raises RuntimeError("Failed to bind ...")
            raise ListenError(f"cannot listen for OTLP/gRPC on {s.http_host}:{s.grpc_port}: address in use") from e

    def routers(self) -> list[APIRouter]:
        return [otlp_http_router(self.ingest_async, self.auth, self.metrics, self.settings.max_request_bytes)]

    def describe(self, base_url: str) -> list[str]:
        grpc = f"{self.settings.http_host}:{self.grpc.port}" if self.grpc is not None else "off"
        return [f"OTLP/HTTP {base_url}/v1/traces", f"OTLP/gRPC {grpc}"]

    def _now_ms(self) -> int:
        return int(self.ingest_clock() * 1000)

    def ingest(self, tenant: str, body: bytes, encoding: str, media: str, protocol: str) -> ExportResult:
        """One OTLP export request as received: prepare (in a decode worker), then keep."""
        if self.consumer is None:
            raise RuntimeError("collector not started")
        prepared = self.decoders.prepare(tenant, body, encoding, media, self._now_ms())
        return self.consumer.keep(tenant, prepared, protocol, body)

    async def ingest_async(self, tenant: str, body: bytes, encoding: str, media: str, protocol: str) -> ExportResult:
        """`ingest` for the event loop: waits for the worker and the keeper without blocking it."""
        consumer, keeper = self.consumer, self._keeper
        if consumer is None or keeper is None:
            raise RuntimeError("collector not started")
        prepared: Prepared = await self.decoders.prepare_async(tenant, body, encoding, media, self._now_ms())
        return await asyncio.get_running_loop().run_in_executor(keeper, consumer.keep, tenant, prepared, protocol, body)

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Write everything queued now (tests and benchmarks flush on demand instead of waiting)."""
        return self.writer.flush(timeout_s) if self.writer is not None else True

    def health(self) -> tuple[list[str], list[str]]:
        """Ready means "send me spans": true while the spool can take them, even with the store
        down, so a store outage never takes collectors out of their Service. Store trouble is
        reported, not failed on."""
        problems: list[str] = []
        notes: list[str] = []
        if not self.started:
            problems.append("not started")
        if self.spool is not None and self.writer is not None:
            if self.writer.backlog_bytes() >= self.spool.max_bytes * 0.95:
                problems.append("spool full")
            if self.writer.stalled:
                problems.append(f"writer stalled: {self.writer.stalled}")
        if self.writer is not None and self.writer.degraded:
            notes.append("store refuses writes; spooling")
        elif not self.store.ping():
            notes.append("store unreachable")
        return problems, notes

    def status(self) -> dict[str, object]:
        return {"spool_bytes": self.spool.pending_bytes if self.spool is not None else 0}

    def ready(self) -> tuple[bool, list[str]]:
        problems, notes = self.health()
        return (not problems, problems + notes)

    def stop_accepting(self, deadline: float) -> None:
        if self.grpc is not None:
            self.grpc.stop(grace_s=max(0.1, min(5.0, (deadline - time.monotonic()) / 4)))
            self.grpc = None

    def drain(self, deadline: float) -> None:
        """Stop the workers, write the queue into the store (or the spool) by the deadline."""
        self.decoders.stop()
        if self._keeper is not None:
            self._keeper.shutdown(wait=True)
            self._keeper = None
        if self.writer is not None:
            self.writer.stop(timeout_s=max(0.1, deadline - time.monotonic()))
        if self.started:
            self.started = False
            log.info("collector stopped")

    def stop(self) -> None:
        """Every phase, then close the store if this service owns it."""
        if not self.started:
            return
        deadline = time.monotonic() + self.settings.shutdown_timeout_s
        self.stop_accepting(deadline)
        self.drain(deadline)
        if self._owns_store:
            self.store.close()
            self.lock.release()


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota (a container's
    CPU limit, which os.cpu_count() does not see)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return n


def run(settings: CollectorSettings) -> int:
    """`driftline collector`: the collector alone (OTLP/HTTP, OTLP/gRPC, health, /metrics)."""
    from driftline.process import run_services

    return run_services(
        "collector",
        settings,
        lambda ctx: [CollectorService(settings, ctx.registry, store=ctx.store, auth=ctx.auth)],
    )


def grpc_concurrency(max_inflight_body_bytes: int, max_request_bytes: int) -> int:
    """Concurrent OTLP/gRPC exports allowed: as many largest-possible bodies as the in-memory body
    budget holds (the HTTP side reserves each body against the same budget)."""
    return max(1, max_inflight_body_bytes // max_request_bytes)
