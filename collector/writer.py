"""The writer: batches from the queue into ClickHouse, in spool-log order, one INSERT per flush.

The queue is an in-memory copy of the spool log's tail. The writer keeps one invariant: the log's
checkpoint only moves past a batch once ClickHouse has it. When an INSERT keeps failing, the writer
drops the in-memory copies (the log still holds them), keeps the queue draining so receivers keep
accepting until the spool is full, probes the store, and on recovery replays the log from the
checkpoint in order. Batches the replay already covered are skipped when they come off the queue.
A replayed batch that was in fact stored before a crash is collapsed by ReplacingMergeTree.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

from driftline.collector.buffer import Batch, SpanQueue
from driftline.collector.metrics import CollectorMetrics
from driftline.collector.wal import SpanLog

__all__ = ["SpanWriter", "WriterOptions"]

log = logging.getLogger(__name__)

InsertFn = Callable[[pa.Table], None]
# Turns a raw spooled request (tenant, OTLP protobuf body) back into rows, as the receiver did.
RebuildFn = Callable[[str, bytes], pa.Table]


@dataclass(frozen=True)
class WriterOptions:
    batch_max_spans: int = 20_000
    flush_interval_s: float = 0.5
    retries: int = 3
    retry_backoff_s: float = 0.2
    probe_interval_s: float = 1.0


class SpanWriter:
    def __init__(
        self,
        queue: SpanQueue,
        spool: SpanLog,
        insert: InsertFn,
        rebuild: RebuildFn,
        metrics: CollectorMetrics,
        options: WriterOptions = WriterOptions(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._q = queue
        self._log = spool
        self._insert = insert
        self._rebuild = rebuild
        self._m = metrics
        self._opt = options
        self._clock = clock
        self._force = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.degraded = False  # the store refused writes; spool holds the backlog
        self._next_probe = 0.0
        self.last_error: str = ""

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="driftline-writer", daemon=True)
        self._thread.start()

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Write everything queued now, and the spool if the store is up. True when done."""
        deadline = time.monotonic() + timeout_s
        self._force.set()
        self._q.wake()
        try:
            if not self._q.wait_empty(timeout_s):
                return False
            # The spool drains only once the store is back; the writer probes it meanwhile.
            while self._log.pending_bytes and time.monotonic() < deadline:
                self._q.wake()
                time.sleep(0.01)
            return self._log.pending_bytes == 0
        finally:
            self._force.clear()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Drain the queue (to the store or the spool), then stop."""
        self._q.close()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
        self._log.close()

    # -- the loop ------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            try:
                if self._log.pending_bytes and not self.degraded and self._q_is_behind():
                    self._replay()
                batches = self._q.take(self._opt.batch_max_spans, self._opt.flush_interval_s, self._force)
                if not batches:
                    if self._stop.is_set() and not len(self._q):
                        return
                    if self.degraded:
                        self._probe()
                    continue
                self._handle(batches)
            except Exception:  # the writer thread must never die
                log.exception("writer loop error")
                time.sleep(self._opt.retry_backoff_s)

    def _q_is_behind(self) -> bool:
        """True when the log holds records before the queue's oldest batch (a gap to replay)."""
        oldest = self._q.oldest_position()
        return oldest is None or oldest > self._log.checkpoint

    def _handle(self, batches: list[Batch]) -> None:
        n = sum(b.spans for b in batches)
        fresh = [b for b in batches if b.position >= self._log.checkpoint]
        if len(fresh) != len(batches):  # already written by a replay
            self._q.done(sum(b.spans for b in batches if b.position < self._log.checkpoint))
            batches = fresh
            n = sum(b.spans for b in batches)
        if not batches:
            return
        if self.degraded:
            # The spool log holds these; memory must stay bounded while the store is down.
            self._handle_degraded(batches, n)
            self._probe()
            return
        if batches[0].position > self._log.checkpoint:
            self._replay(until=batches[0].position)
            if self.degraded:
                self._handle_degraded(batches, n)
                return
        table = pa.concat_tables([b.table for b in batches])
        if self._write(table):
            self._log.advance(batches[-1].next_position)
            self._m.written_spans.inc(n)
        else:
            self._handle_degraded(batches, n)
            return
        self._q.done(n)
        self._update_gauges()

    def _handle_degraded(self, batches: list[Batch], n: int) -> None:
        """Let go of batches the store refused: the spool log keeps them for the replay."""
        self._m.write_batches.labels("spooled").inc()
        self._m.spooled_spans.inc(n)
        self._q.done(n)
        self._update_gauges()

    def _write(self, table: pa.Table) -> bool:
        """INSERT with bounded retries; False (and degraded) if the store keeps refusing."""
        for attempt in range(self._opt.retries + 1):
            t0 = time.perf_counter()
            try:
                self._insert(table)
            except Exception as e:  # any store failure is retryable here; data stays in the spool
                self.last_error = f"{type(e).__name__}: {str(e)[:200]}"
                if attempt < self._opt.retries:
                    self._m.write_retries.inc()
                    self._m.write_batches.labels("retry").inc()
                    time.sleep(self._opt.retry_backoff_s * (2**attempt))
                    continue
                log.warning(
                    "store refused %d spans after %d attempts (%s); spooling until it is back",
                    table.num_rows,
                    attempt + 1,
                    self.last_error,
                )
                self._m.write_batches.labels("failed").inc()
                self.degraded = True
                self._next_probe = self._clock() + self._opt.probe_interval_s
                return False
            self._m.write_seconds.observe(time.perf_counter() - t0)
            self._m.write_batches.labels("ok").inc()
            if self.last_error:
                log.info("store accepts writes again")
            self.last_error = ""
            return True
        return False

    def _probe(self) -> None:
        """While degraded: try the oldest spooled batch now and then; success ends the outage."""
        if self._clock() < self._next_probe:
            return
        self._next_probe = self._clock() + self._opt.probe_interval_s
        self.degraded = False
        self._replay()

    def _replay(self, until: int | None = None) -> None:
        """Write spooled records from the checkpoint, in order, batch by batch."""
        pending: list[pa.Table] = []
        rows = 0
        end = self._log.checkpoint
        for rec in self._log.read_from(self._log.checkpoint, until):
            table = rec.table if rec.table is not None else self._rebuild(rec.tenant, rec.body)
            pending.append(table)
            rows += table.num_rows
            end = rec.next_position
            if rows >= self._opt.batch_max_spans:
                if not self._replay_write(pending, rows, end):
                    return
                pending, rows = [], 0
        if pending:
            self._replay_write(pending, rows, end)
        self._update_gauges()

    def _replay_write(self, tables: list[pa.Table], rows: int, end: int) -> bool:
        if not self._write(pa.concat_tables(tables)):
            return False
        self._log.advance(end)
        self._m.replayed_spans.inc(rows)
        self._m.written_spans.inc(rows)
        return True

    def _update_gauges(self) -> None:
        self._m.spool_bytes.set(self._log.pending_bytes)
        self._m.spool_oldest_age.set(self._log.oldest_age_s())
