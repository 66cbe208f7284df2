"""The collector/API process: builds every component from settings, starts and stops them in order.

Start: lock the data directory, migrate, start the writer (which replays any spool), then the
receivers. Stop: stop accepting, drain the queue into the store (or the spool), close clients,
release the lock; each step bounded by the shutdown deadline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from driftline.auth import Authenticator
from driftline.collector.buffer import SpanQueue
from driftline.collector.consume import ExportResult, TraceConsumer
from driftline.collector.metrics import CollectorMetrics
from driftline.collector.normalize import Normalizer
from driftline.collector.ratelimit import TenantRateLimiter
from driftline.collector.receiver_grpc import OtlpGrpcServer
from driftline.collector.redact import Redactor, parse_patterns
from driftline.collector.wal import SpanLog
from driftline.collector.writer import SpanWriter, WriterOptions
from driftline.config import CollectorSettings
from driftline.pricing import Pricer
from driftline.store import DataDirLock, Store, StoreConfig

__all__ = ["Runtime"]

log = logging.getLogger(__name__)


class Runtime:
    def __init__(
        self,
        settings: CollectorSettings,
        registry: CollectorRegistry | None = None,
        insert: Callable[[Any], None] | None = None,
        ingest_clock: Callable[[], float] = time.time,
    ) -> None:
        s = settings
        self.settings = s
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = CollectorMetrics(self.registry)
        self.lock = DataDirLock(s.data_dir)
        self.store = Store(StoreConfig(s.effective_clickhouse_url, s.database), s.retention_days)
        self.auth = Authenticator(s.tenants_by_key_hash())
        self.queue = SpanQueue(s.queue_capacity_spans, on_change=self.metrics.queue_spans.set)
        self.metrics.queue_capacity.set(s.queue_capacity_spans)
        self.metrics.spool_capacity.set(s.spool_max_bytes)
        self.normalizer = Normalizer(pricer=Pricer(), max_value_bytes=s.max_value_bytes)
        self.spool: SpanLog | None = None
        self.writer: SpanWriter | None = None
        self.consumer: TraceConsumer | None = None
        self.grpc: OtlpGrpcServer | None = None
        self.ingest_clock = ingest_clock
        self._insert = insert or (lambda table: self.store.insert_arrow("spans", table))
        self.started = False

    def start(self) -> None:
        s = self.settings
        self.lock.acquire()
        try:
            self.store.migrate()
            # The spool lives beside the lock, so two processes can never share one.
            self.spool = SpanLog(s.data_dir / "spool", s.spool_max_bytes)
            self.consumer = TraceConsumer(
                self.normalizer,
                self.spool,
                self.queue,
                self.metrics,
                row_filter=Redactor(parse_patterns(s.redact)) if s.redact else None,
                rate_limiter=(
                    TenantRateLimiter(s.tenant_rate_limit_spans_per_s) if s.tenant_rate_limit_spans_per_s else None
                ),
                clock=lambda: self.ingest_clock(),  # noqa: PLW0108 - late-bound: tests swap the clock
            )
            self.writer = SpanWriter(
                self.queue,
                self.spool,
                self._insert,
                self.consumer.rebuild,
                self.metrics,
                WriterOptions(
                    batch_max_spans=s.batch_max_spans,
                    flush_interval_s=s.flush_interval_ms / 1000,
                    retries=s.write_retries,
                ),
            )
            self.writer.start()
            if s.grpc_enabled:
                self.grpc = OtlpGrpcServer(
                    self.consume, self.auth, self.metrics, s.http_host, s.grpc_port, s.max_request_bytes
                )
                self.grpc.start()
        except BaseException:
            if self.writer is not None:
                self.writer.stop(timeout_s=1)
            self.store.close()
            self.lock.release()
            raise
        self.started = True
        log.info("collector started: store %r, spool %d bytes pending", self.store.cfg, self.spool.pending_bytes)

    def consume(self, tenant: str, request: Any, protocol: str, body: bytes | None = None) -> ExportResult:
        if self.consumer is None:
            raise RuntimeError("runtime not started")
        return self.consumer.consume(tenant, request, protocol, body)

    def flush(self, timeout_s: float = 30.0) -> bool:
        return self.writer.flush(timeout_s) if self.writer is not None else True

    def ready(self) -> tuple[bool, list[str]]:
        """Ready means "send me spans": true while the spool can take them, even with the store
        down, so a store outage never takes collectors out of their Service. Store trouble is
        reported, not failed on."""
        problems: list[str] = []
        notes: list[str] = []
        if not self.started:
            problems.append("not started")
        if self.spool is not None and self.spool.pending_bytes >= self.spool.max_bytes * 0.95:
            problems.append("spool full")
        if self.writer is not None and self.writer.degraded:
            notes.append("store refuses writes; spooling")
        elif not self.store.ping():
            notes.append("store unreachable")
        return (not problems, problems + notes)

    def stop(self) -> None:
        if not self.started:
            return
        deadline = time.monotonic() + self.settings.shutdown_timeout_s
        if self.grpc is not None:  # stop accepting first
            self.grpc.stop(grace_s=min(5.0, self.settings.shutdown_timeout_s / 4))
            self.grpc = None
        if self.writer is not None:
            self.writer.stop(timeout_s=max(0.1, deadline - time.monotonic()))
        self.store.close()
        self.lock.release()
        self.started = False
        log.info("collector stopped")
