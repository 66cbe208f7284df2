"""The write path assembled for tests: the real spool, queue, consumer, preparer and writer over
the real store, with two test knobs at the store boundary only (an insert that can be taken down
or made to refuse given spans) and a clock the test moves."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client import CollectorRegistry

from driftline.collector.buffer import SpanQueue
from driftline.collector.consume import PROTOBUF, ExportResult, TraceConsumer
from driftline.collector.metrics import CollectorMetrics
from driftline.collector.ratelimit import TenantRateLimiter
from driftline.collector.wal import SpanLog
from driftline.collector.workers import PrepareOptions, build_preparer
from driftline.collector.writer import SpanWriter, WriterOptions
from driftline.store import Store
from tests.support.sql import admin_client

__all__ = ["FakeClock", "StoreGate", "WritePath", "stored_ids"]

NOW_MS = 1_800_000_000_000


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@dataclass
class StoreGate:
    """The store boundary: raises a retryable error while `down`, a permanent one (TYPE_MISMATCH)
    for a table holding a span id in `refuse`, else inserts into the real store."""

    store: Store
    down: bool = False
    refuse: set[str] = field(default_factory=set)
    inserts: int = 0
    stored: threading.Event = field(default_factory=threading.Event)
    failed: threading.Event = field(default_factory=threading.Event)

    def __call__(self, table: pa.Table) -> None:
        if self.down:
            self.failed.set()
            raise OperationalError("connection refused (test: store down)")
        if self.refuse & set(table.column("span_id").to_pylist()):
            raise DatabaseError("Code: 53. DB::Exception: Type mismatch (test)", code=53, name="TYPE_MISMATCH")
        self.store.insert_arrow("spans", table)
        self.inserts += 1
        self.stored.set()


def stored_ids(store: Store, tenant: str) -> list[str]:
    """Span ids stored for `tenant`, one per stored row (duplicates collapsed by FINAL)."""
    with admin_client(store) as c:
        res = c.query(
            f"SELECT span_id FROM {store.cfg.database}.spans FINAL WHERE tenant = {{tenant:String}}",
            parameters={"tenant": tenant},
        )
        return [str(r[0]) for r in res.result_rows]


class WritePath:
    def __init__(
        self,
        data_dir: Path,
        store: Store,
        *,
        spool_bytes: int = 10**9,
        queue_spans: int = 100_000,
        rate: float = 0.0,
        **options: Any,
    ) -> None:
        self.registry = CollectorRegistry()
        self.metrics = CollectorMetrics(self.registry)
        self.clock = FakeClock()
        self.gate = StoreGate(store)
        self.spool = SpanLog(data_dir / "spool", spool_bytes)
        self.queue = SpanQueue(queue_spans)
        self.preparer = build_preparer(PrepareOptions(max_request_bytes=16 << 20, max_value_bytes=65536))
        limiter = TenantRateLimiter(rate, clock=self.clock) if rate else None
        self.consumer = TraceConsumer(self.spool, self.queue, self.metrics, rate_limiter=limiter)
        opts = {"flush_interval_s": 0.0, "retries": 0, "retry_backoff_s": 0.0, "probe_interval_s": 5.0, **options}
        self.writer = SpanWriter(
            self.queue,
            self.spool,
            self.gate,
            lambda tenant, body: self.preparer.rebuild(tenant, body, NOW_MS),
            self.metrics,
            WriterOptions(**opts),
            clock=self.clock,
            ping=lambda: not self.gate.down and store.ping(),  # the gate's outage is the store's
        )

    def send(self, tenant: str, req: ExportTraceServiceRequest) -> ExportResult:
        body = req.SerializeToString()
        prepared = self.preparer.prepare_body(tenant, body, "", PROTOBUF, NOW_MS)
        return self.consumer.keep(tenant, prepared, "http", body)

    def steps(self, n: int = 5) -> None:
        """Run the writer loop by hand (its thread is not started)."""
        for _ in range(n):
            self.writer.step()

    def metric(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value
