"""The consume stage: decode -> normalize -> Arrow (`Preparer`), then spool -> queue (`TraceConsumer`).

The two halves are split so the CPU-heavy one can run in decode worker processes
(collector/workers.py) while the receiving process keeps only the cheap, stateful part: the spool
log, the queue and the metrics. Neither touches ClickHouse: a request is answered as soon as its
spans are normalized, in the spool log and in the queue. Invalid spans are rejected one by one (and
counted); their neighbours go on. A request that does not fit is refused whole with retry-later,
before anything is kept.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Final, Protocol

import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from driftline.collector.batch import rows_to_table
from driftline.collector.buffer import Batch, SpanQueue
from driftline.collector.decode import decode_json, decode_protobuf, decompress
from driftline.collector.errors import PayloadTooLarge, Refused
from driftline.collector.metrics import REJECT_REASONS, CollectorMetrics
from driftline.collector.normalize import InvalidSpan, Normalizer, arguments_pending, fill_arguments
from driftline.collector.normalize import unpriced as is_unpriced
from driftline.collector.ratelimit import TenantRateLimiter
from driftline.collector.wal import RecordTooLarge, SpanLog, SpoolFull

__all__ = ["JSON", "PROTOBUF", "ExportResult", "Prepared", "Preparer", "Rejection", "RowFilter", "TraceConsumer"]

PROTOBUF: Final = "application/x-protobuf"
JSON: Final = "application/json"
# What building the Arrow table raises for a value no column can hold (an Int64 overflow, ...).
_UNSTORABLE: Final = (pa.ArrowException, OverflowError, TypeError, ValueError)


class RowFilter(Protocol):
    """A last step on each normalized row before it is kept (redaction)."""

    def __call__(self, row: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class ExportResult:
    accepted: int
    rejected: int
    error_message: str  # first rejection reason, for partial_success


@dataclass(frozen=True)
class Prepared:
    """One export request turned into rows: what a decode worker hands back to the receiver."""

    table: pa.Table | None  # None when every span was rejected
    rejected: dict[str, int] = field(default_factory=dict)  # reason -> spans
    first_error: str = ""
    unpriced: int = 0  # model calls whose cost stays NULL (normalize.unpriced)
    # The protobuf body to spool when the receiver's bytes are not it (JSON, gzip); else None.
    body: bytes | None = None
    redacted: bool = False  # rows were redacted: spool them, never a raw body

    @property
    def accepted(self) -> int:
        return 0 if self.table is None else self.table.num_rows

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Crossing from a decode worker: the table travels as one Arrow IPC stream (a bytes copy,
        # read back zero-copy), 2-3x cheaper than pickling its arrays one buffer at a time.
        ipc = None
        if self.table is not None:
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, self.table.schema) as w:
                w.write_table(self.table)
            ipc = sink.getvalue().to_pybytes()
        return _prepared_from_ipc, (ipc, self.rejected, self.first_error, self.unpriced, self.body, self.redacted)


def _prepared_from_ipc(
    ipc: bytes | None, rejected: dict[str, int], first_error: str, unpriced: int, body: bytes | None, redacted: bool
) -> Prepared:
    table = pa.ipc.open_stream(ipc).read_all() if ipc is not None else None
    return Prepared(table, rejected, first_error, unpriced, body, redacted)


@dataclass(frozen=True)
class Rejection:
    """One span the normalizer refused: a metrics label from REJECT_REASONS and the message for
    partial_success."""

    reason: str
    message: str


class Preparer:
    """decode -> normalize -> redact -> one Arrow table. Stateless: safe in any thread or process."""

    def __init__(self, normalizer: Normalizer, row_filter: RowFilter | None, max_request_bytes: int) -> None:
        self.normalizer = normalizer
        self._filter = row_filter
        self._max_bytes = max_request_bytes

    def prepare_body(self, tenant: str, body: bytes, encoding: str, media: str, ingested_at_ms: int) -> Prepared:
        """An OTLP request body as received (maybe gzip, protobuf or JSON). Raises BadRequest /
        PayloadTooLarge for a body that cannot be decoded at all."""
        raw = decompress(body, encoding, self._max_bytes)
        if media == JSON:
            request = decode_json(raw)
            spool_body: bytes | None = request.SerializeToString()
        else:
            request = decode_protobuf(raw)
            spool_body = raw if raw is not body else None
        out = self.prepare(tenant, request, ingested_at_ms)
        if out.redacted or out.table is None:
            return out  # redacted rows are spooled as rows: the raw body must not reach the disk
        return replace(out, body=spool_body)

    def prepare(self, tenant: str, request: ExportTraceServiceRequest, ingested_at_ms: int) -> Prepared:
        """The per-span rules, for a live request and a replayed one alike: a span the normalizer
        refuses, or whose values no column can hold, is left out and counted; its neighbours go on."""
        rows: list[dict[str, Any]] = []
        rejected: dict[str, int] = {}
        first_error = ""
        unpriced = 0
        pending: list[dict[str, Any]] = []
        for row in self._normalize(request):
            if isinstance(row, Rejection):
                reason = row.reason if row.reason in REJECT_REASONS else "invalid"
                rejected[reason] = rejected.get(reason, 0) + 1
                first_error = first_error or row.message
                continue
            rows.append(row)
            if is_unpriced(row):
                unpriced += 1
            elif arguments_pending(row):
                pending.append(row)
        if pending:
            fill_arguments(rows, pending)
        table = None
        if rows:
            try:
                table = rows_to_table(tenant, rows, ingested_at_ms)
            except _UNSTORABLE:
                # A value no column can hold: find the rows at fault; their neighbours go on.
                good = []
                for row in rows:
                    try:
                        rows_to_table(tenant, [row], ingested_at_ms)
                        good.append(row)
                    except _UNSTORABLE as e:
                        rejected["invalid"] = rejected.get("invalid", 0) + 1
                        first_error = first_error or f"span {row.get('span_id')}: a value out of range: {e}"
                table = rows_to_table(tenant, good, ingested_at_ms) if good else None
        return Prepared(table, rejected, first_error, unpriced, redacted=self._filter is not None)

    def rebuild(self, tenant: str, body: bytes, ingested_at_ms: int) -> pa.Table | None:
        """A spooled raw request back into rows (for replay), through exactly the rules `prepare`
        applied when it was accepted. Rejected spans were counted then; here they are only left
        out. None when no span is left."""
        return self.prepare(tenant, ExportTraceServiceRequest.FromString(body), ingested_at_ms).table

    def _normalize(self, request: ExportTraceServiceRequest) -> Iterator[dict[str, Any] | Rejection]:
        for rs in request.resource_spans:
            res = self.normalizer.resource(rs.resource)
            for ss in rs.scope_spans:
                for span in ss.spans:
                    try:
                        row = self.normalizer.span(span, res, ss.scope)
                        if self._filter is not None:
                            self._filter(row)
                    except InvalidSpan as e:
                        yield Rejection(e.reason, str(e))
                        continue
                    yield row


class TraceConsumer:
    """Keeps prepared requests: rate limit, spool log, write queue, metrics. One per process."""

    def __init__(
        self,
        spool: SpanLog,
        queue: SpanQueue,
        metrics: CollectorMetrics,
        rate_limiter: TenantRateLimiter | None = None,
    ) -> None:
        self._spool = spool
        self._queue = queue
        self._m = metrics
        self._limiter = rate_limiter
        # Spool order must equal queue order, so the writer's checkpoint stays meaningful.
        self._accept_lock = threading.Lock()

    def keep(self, tenant: str, prepared: Prepared, protocol: str, body: bytes | None) -> ExportResult:
        """`body`: the request as received. It is the spool record when `prepared` carries no body
        of its own (the preparer sets one unless the body was plain protobuf) and no redaction ran
        (then the table itself is spooled)."""
        n = prepared.accepted
        n_rejected = sum(prepared.rejected.values())
        if self._limiter is not None:
            wait_s = self._limiter.try_take(tenant, n + n_rejected)
            if wait_s:
                self._m.spans_refused.labels("rate_limited").inc(n + n_rejected)
                raise Refused(
                    "rate_limited",
                    f"tenant over its rate limit, retry in {wait_s:.0f}s",
                    retry_after_s=int(wait_s),
                    http_status=429,
                )
        for reason, count in prepared.rejected.items():
            self._m.spans_rejected.labels(reason).inc(count)
        self._m.spans_received.labels(protocol).inc(n + n_rejected)
        if prepared.unpriced:
            self._m.spans_unpriced.inc(prepared.unpriced)
        if prepared.table is not None:
            raw = None if prepared.redacted else (prepared.body if prepared.body is not None else body)
            self._keep(tenant, prepared.table, raw)
            self._m.spans_accepted.labels(protocol).inc(n)
        error = f"{n_rejected} span(s) rejected; first: {prepared.first_error}" if n_rejected else ""
        return ExportResult(n, n_rejected, error)

    def _keep(self, tenant: str, table: pa.Table, raw: bytes | None) -> None:
        """Spool, then queue, under one lock. `raw` is the cheap spool record (the protobuf
        request); without it (redaction on) the rows themselves are spooled."""
        n = table.num_rows
        with self._accept_lock:
            if not self._queue.has_room(n):
                self._m.spans_refused.labels("queue_full").inc(n)
                raise Refused("queue_full", "write queue is full, retry later", retry_after_s=1, http_status=429)
            held = self._queue.held_from()
            try:
                if raw is not None:
                    pos = self._spool.append_raw(tenant, raw, held)
                else:
                    pos = self._spool.append_table(table, held)
            except RecordTooLarge as e:
                # Permanent for this request: a retry would meet the same limit (413, no RetryInfo;
                # counted in requests_total by its status, like a body over max_request_bytes).
                raise PayloadTooLarge(f"{e}: raise spool_max_bytes or send smaller requests") from None
            except SpoolFull as e:
                self._m.spans_refused.labels("spool_full").inc(n)
                raise Refused("spool_full", f"store unavailable and {e}; retry later", retry_after_s=5) from None
            # has_room was checked under the same lock, so this cannot fail for capacity.
            if not self._queue.offer(Batch(table, pos, self._spool.head)):
                # Closed for shutdown: the batch is in the spool and is replayed at next start.
                pass
