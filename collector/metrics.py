"""The collector's own metrics. The registry is passed in (never the global one), and every label
comes from a small fixed set: protocol, reason, outcome. Never a trace id or a tenant-supplied string.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["DROP_REASONS", "REFUSE_REASONS", "REJECT_REASONS", "CollectorMetrics"]

# Why a whole request was refused (retryable) and why one span was rejected (permanent).
REFUSE_REASONS = ("queue_full", "spool_full", "rate_limited", "store_unavailable")
REJECT_REASONS = ("missing_trace_id", "missing_span_id", "bad_parent_span_id", "bad_timestamp", "invalid")
# Why accepted spans went to the quarantine instead of the store (collector/quarantine.py).
DROP_REASONS = ("store_rejected", "unreadable")


class CollectorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        p = "driftline_collector_"
        self.requests = Counter(
            p + "requests_total",
            "OTLP export requests by protocol and outcome.",
            ["protocol", "outcome"],
            registry=registry,
        )
        self.spans_received = Counter(
            p + "spans_received_total", "Spans in decoded export requests.", ["protocol"], registry=registry
        )
        self.spans_accepted = Counter(
            p + "spans_accepted_total",
            "Spans accepted into the write queue.",
            ["protocol"],
            registry=registry,
        )
        self.spans_refused = Counter(
            p + "refused_spans_total",
            "Spans refused with retry-later (the client keeps them).",
            ["reason"],
            registry=registry,
        )
        self.spans_rejected = Counter(
            p + "rejected_spans_total",
            "Spans rejected as invalid (reported in partial_success).",
            ["reason"],
            registry=registry,
        )
        self.spans_unpriced = Counter(
            p + "unpriced_spans_total",
            "Model calls with token counts but no known price: stored with cost NULL.",
            registry=registry,
        )
        self.decode_worker_restarts = Counter(
            p + "decode_worker_restarts_total",
            "Times the decode worker pool was rebuilt after a worker process died.",
            registry=registry,
        )
        self.queue_spans = Gauge(p + "queue_spans", "Spans waiting in memory to be written.", registry=registry)
        self.queue_capacity = Gauge(
            p + "queue_capacity_spans", "Capacity of the in-memory write queue.", registry=registry
        )
        self.write_batches = Counter(
            p + "write_batches_total",
            "INSERT batches by outcome (ok, retry, spooled, failed, rejected).",
            ["outcome"],
            registry=registry,
        )
        self.written_spans = Counter(p + "written_spans_total", "Spans written to ClickHouse.", registry=registry)
        self.write_seconds = Histogram(
            p + "write_duration_seconds",
            "Duration of one span INSERT.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.write_retries = Counter(p + "write_retries_total", "Retried INSERTs.", registry=registry)
        self.spool_bytes = Gauge(
            p + "spool_bytes", "Bytes in the on-disk spool not yet in the store.", registry=registry
        )
        self.spool_capacity = Gauge(p + "spool_capacity_bytes", "Capacity of the spool.", registry=registry)
        self.spool_oldest_age = Gauge(
            p + "spool_oldest_age_seconds",
            "Age of the oldest spooled batch (0 when empty).",
            registry=registry,
        )
        self.spooled_spans = Counter(p + "spooled_spans_total", "Spans written to the spool.", registry=registry)
        self.replayed_spans = Counter(
            p + "replayed_spans_total", "Spans replayed from the spool into ClickHouse.", registry=registry
        )
        self.dropped_spans = Counter(
            p + "dropped_spans_total",
            "Accepted spans the store refused for good (or a spool record that no longer reads): "
            "kept in the quarantine, not stored.",
            ["reason"],
            registry=registry,
        )
        self.dropped_records = Counter(
            p + "dropped_records_total",
            "Spool records set aside whole because their bytes no longer read (the disk changed them): "
            "kept in the quarantine; how many spans they held cannot be read.",
            ["reason"],
            registry=registry,
        )
        self.dropped_records.labels("unreadable")
        for r in DROP_REASONS:
            self.dropped_spans.labels(r)
        for r in REFUSE_REASONS:
            self.spans_refused.labels(r)
        for r in REJECT_REASONS:
            self.spans_rejected.labels(r)
