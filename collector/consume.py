"""The consume stage every receiver hands decoded requests to: normalize -> spool -> queue.

It never touches ClickHouse: the request is answered as soon as its spans are normalized, in the
spool log and in the queue. Invalid spans are rejected one by one (and counted); their neighbours
go on. A request that does not fit is refused whole with retry-later, before anything is kept.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from driftline.collector.batch import rows_to_table
from driftline.collector.buffer import Batch, SpanQueue
from driftline.collector.errors import Refused
from driftline.collector.metrics import REJECT_REASONS, CollectorMetrics
from driftline.collector.normalize import InvalidSpan, Normalizer
from driftline.collector.ratelimit import TenantRateLimiter
from driftline.collector.wal import SpanLog, SpoolFull

__all__ = ["ExportResult", "RowFilter", "TraceConsumer"]


class RowFilter(Protocol):
    """A last step on each normalized row before it is kept (redaction)."""

    def __call__(self, row: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class ExportResult:
    accepted: int
    rejected: int
    error_message: str  # first rejection reason, for partial_success


class TraceConsumer:
    def __init__(
        self,
        normalizer: Normalizer,
        spool: SpanLog,
        queue: SpanQueue,
        metrics: CollectorMetrics,
        row_filter: RowFilter | None = None,
        rate_limiter: TenantRateLimiter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._norm = normalizer
        self._spool = spool
        self._queue = queue
        self._m = metrics
        self._filter = row_filter
        self._limiter = rate_limiter
        self._clock = clock  # stamps ingested_at; injectable so tests can make a span arrive "late"
        # Spool order must equal queue order, so the writer's checkpoint stays meaningful.
        self._accept_lock = threading.Lock()

    def consume(
        self, tenant: str, request: ExportTraceServiceRequest, protocol: str, body: bytes | None = None
    ) -> ExportResult:
        """`body`: the request's protobuf bytes when the receiver has them (saves re-encoding)."""
        if self._limiter is not None:
            n = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
            wait_s = self._limiter.try_take(tenant, n)
            if wait_s:
                self._m.spans_refused.labels("rate_limited").inc(n)
                raise Refused(
                    "rate_limited",
                    f"tenant over its rate limit, retry in {wait_s:.0f}s",
                    retry_after_s=int(wait_s),
                    http_status=429,
                )
        rows: list[dict[str, Any]] = []
        rejected = 0
        first_error = ""
        for row, err in self._normalize(request):
            if row is None:
                rejected += 1
                reason, _, msg = err.partition("\x00")
                self._m.spans_rejected.labels(reason if reason in REJECT_REASONS else "invalid").inc()
                first_error = first_error or msg
            else:
                rows.append(row)
        self._m.spans_received.labels(protocol).inc(len(rows) + rejected)
        if rows:
            self._keep(tenant, rows, request, body)
            self._m.spans_accepted.labels(protocol).inc(len(rows))
        if rejected:
            first_error = f"{rejected} span(s) rejected; first: {first_error}"
        return ExportResult(len(rows), rejected, first_error)

    def rebuild(self, tenant: str, body: bytes) -> pa.Table:
        """A spooled raw request back into rows (for replay). Rejected spans were counted the
        first time; here they are only left out."""
        req = ExportTraceServiceRequest.FromString(body)
        rows = [row for row, _ in self._normalize(req) if row is not None]
        return rows_to_table(tenant, rows, int(self._clock() * 1000))

    def _normalize(self, request: ExportTraceServiceRequest) -> Iterator[tuple[dict[str, Any] | None, str]]:
        for rs in request.resource_spans:
            res = self._norm.resource(rs.resource)
            for ss in rs.scope_spans:
                for span in ss.spans:
                    try:
                        row = self._norm.span(span, res, ss.scope)
                        if self._filter is not None:
                            self._filter(row)
                    except InvalidSpan as e:
                        yield None, e.reason + "\x00" + str(e)
                        continue
                    yield row, ""

    def _keep(
        self, tenant: str, rows: list[dict[str, Any]], request: ExportTraceServiceRequest, body: bytes | None
    ) -> None:
        table = rows_to_table(tenant, rows, int(self._clock() * 1000))
        n = len(rows)
        # Raw bytes are the cheap spool record; with redaction on, only redacted rows may be written.
        raw = None
        if self._filter is None:
            raw = body if body is not None else request.SerializeToString()
        with self._accept_lock:
            if not self._queue.has_room(n):
                self._m.spans_refused.labels("queue_full").inc(n)
                raise Refused(
                    "queue_full", "write queue is full, retry later", retry_after_s=1, http_status=429
                )
            try:
                pos = (
                    self._spool.append_raw(tenant, raw)
                    if raw is not None
                    else self._spool.append_table(table)
                )
            except SpoolFull as e:
                self._m.spans_refused.labels("spool_full").inc(n)
                raise Refused(
                    "spool_full", f"store unavailable and {e}; retry later", retry_after_s=5
                ) from None
            # has_room was checked under the same lock, so this cannot fail for capacity.
            if not self._queue.offer(Batch(table, pos, self._spool.head)):
                # Closed for shutdown: the batch is in the spool and is replayed at next start.
                pass
