"""The writer: batches from the queue into ClickHouse, in spool-log order.

The queue is an in-memory copy of the spool log's tail. The writer keeps one invariant: the log's
checkpoint only moves past a batch once ClickHouse has it, or the quarantine has the spans the
store refused for good. Nothing may stop the checkpoint for ever:

- A retryable failure (collector/errors.py store_error_is_permanent) is retried a few times; then
  the writer is degraded: it lets go of the in-memory copies (the log still holds them), keeps the
  queue draining so receivers keep accepting until the spool's backlog is full, probes the store on
  its own timer (no new span needs to arrive) and on recovery replays the log from the checkpoint.
- A permanent failure is bisected down to the spans at fault, which go to the quarantine
  (collector/quarantine.py) and `dropped_spans_total{reason}`; the rest is stored.
- A "retryable" failure that may be the data's (a ClickHouse error code the classifier lists
  neither as the data's nor as the store's trouble, collector/errors.py): once the same batch has
  failed `escalate_after_probes` probes in a row while the store answers a ping (it is up; it
  refuses this batch), the batch is bisected anyway. During that bisection a part is only set
  aside while the store still answers, so an outage starting then quarantines nothing.
- A replayed raw request is rebuilt through the same per-span rules as a live one
  (Preparer.rebuild); a record that cannot be rebuilt at all is quarantined whole, and so are
  bytes the disk corrupted (the replay resumes at the next good record).
- One INSERT never spans more than MAX_DAYS_PER_INSERT days, so a backfill or a bad client clock
  never meets ClickHouse's partitions-per-INSERT limit (the spans table is partitioned by day).

Batches the replay already covered are skipped when they come off the queue. A replayed batch that
was in fact stored before a crash is collapsed by ReplacingMergeTree.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import pyarrow as pa

from driftline.collector.buffer import Batch, SpanQueue
from driftline.collector.errors import store_error_is_permanent, store_error_may_be_the_data
from driftline.collector.metrics import CollectorMetrics
from driftline.collector.quarantine import Quarantine
from driftline.collector.wal import CorruptRecord, LogRecord, SpanLog
from driftline.config import CollectorSettings
from driftline.store.partitions import MAX_DAYS_PER_INSERT, split_by_days

__all__ = ["MAX_DAYS_PER_INSERT", "SpanWriter", "WriterOptions"]

log = logging.getLogger(__name__)

InsertFn = Callable[[pa.Table], None]
# Turns a raw spooled request (tenant, OTLP protobuf body) back into rows, as the receiver did
# (None when every span is rejected).
RebuildFn = Callable[[str, bytes], pa.Table | None]


_STALL_LOG_INTERVAL_S: Final = 60.0


def _default(field: str) -> object:
    return CollectorSettings.model_fields[field].default


@dataclass(frozen=True)
class WriterOptions:
    """Defaults are the settings' defaults (one source); `from_settings` is what runs."""

    batch_max_spans: int = int(_default("batch_max_spans"))  # type: ignore[call-overload]
    flush_interval_s: float = int(_default("flush_interval_ms")) / 1000  # type: ignore[call-overload]
    retries: int = int(_default("write_retries"))  # type: ignore[call-overload]
    retry_backoff_s: float = 0.2
    probe_interval_s: float = 1.0
    escalate_after_probes: int = 5  # failed probes of one batch, store answering, before bisecting

    @classmethod
    def from_settings(cls, s: CollectorSettings) -> WriterOptions:
        return cls(
            batch_max_spans=s.batch_max_spans, flush_interval_s=s.flush_interval_ms / 1000, retries=s.write_retries
        )


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
        quarantine: Quarantine | None = None,
        ping: Callable[[], bool] | None = None,
    ) -> None:
        """`quarantine`: defaults to `quarantine/` beside the spool directory (in the data dir).
        `ping`: True while the store answers (Store.ping); without it a batch is never bisected
        for a retryable error."""
        self._q = queue
        self._log = spool
        self._insert = insert
        self._rebuild = rebuild
        self._m = metrics
        self._opt = options
        self._clock = clock
        self.quarantine = quarantine if quarantine is not None else Quarantine(spool.dir.parent / "quarantine")
        self._force = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.degraded = False  # the store refused writes; spool holds the backlog
        self.stalled = ""  # the loop's last error, while its passes keep failing
        self._next_probe = 0.0
        self._ping = ping
        self._stuck_probes = 0  # probes in a row that moved nothing while the store answered
        self._suspect = False  # bisecting a batch the store keeps refusing with a retryable error
        self._last_exc: Exception | None = None  # the last INSERT's error
        self._stall_logged_at: float | None = None  # when a stalled loop last logged its error
        self._stall_unlogged = 0  # failed passes since then
        self._stall_passes = 0  # failed passes of the current stall
        self.last_error: str = ""
        # Read at scrape time, so they are right whatever the writer is doing.
        metrics.spool_bytes.set_function(lambda: spool.pending_bytes)
        metrics.spool_oldest_age.set_function(self._oldest_age)

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
        """Drain the queue to the store, or let go of it when the store refuses (the spool keeps
        it for the next start); then stop. A degraded or stalled writer does not wait on the store."""
        self._q.close()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
        self._log.close()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def backlog_bytes(self) -> int:
        """Spool bytes the store has not taken and memory does not hold (what max_bytes bounds)."""
        return self._log.backlog_bytes(self._q.held_from())

    # -- the loop ------------------------------------------------------------------------
    def _run(self) -> None:
        while self.guarded_step():
            if self.stalled:
                self._stop.wait(self._opt.retry_backoff_s)

    def guarded_step(self) -> bool:
        """One pass of the writer thread: `step`, with an error recorded in `stalled` and logged
        instead of raised (the thread must never die). False once stopped (and drained)."""
        try:
            if not self.step():
                return False
        except Exception as e:
            self.stalled = f"{type(e).__name__}: {str(e)[:200]}"
            self._log_stall()
            return not self._stop.is_set()  # stopping: the spool holds the rest for the next start
        if self.stalled:
            log.info("writer loop runs again after %d failed passes", self._stall_passes)
        self.stalled = ""
        self._stall_logged_at = None
        return True

    def _log_stall(self) -> None:
        """A stalled loop fails its pass every retry_backoff_s: log the first failure, then at most
        once a minute with how many failed since, so the log shows the error and not a flood."""
        now = self._clock()
        self._stall_passes = 1 if self._stall_logged_at is None else self._stall_passes + 1
        if self._stall_logged_at is None:
            log.exception("writer loop error")
        elif now - self._stall_logged_at >= _STALL_LOG_INTERVAL_S:
            log.exception("writer loop error (%d failed passes since the last report)", self._stall_unlogged + 1)
        else:
            self._stall_unlogged += 1
            return
        self._stall_logged_at = now
        self._stall_unlogged = 0

    def step(self) -> bool:
        """One pass: probe or replay the backlog when due, then write what the queue hands over
        (waiting at most a flush interval). False once stopped and drained."""
        if not self._stop.is_set():
            if self.degraded:
                self._probe()
            elif self._q_is_behind():
                self._replay()
        batches = self._q.take(self._opt.batch_max_spans, self._opt.flush_interval_s, self._force)
        if not batches:
            return not (self._stop.is_set() and not len(self._q))
        try:
            self._handle(batches)
        finally:
            self._q.done(sum(b.spans for b in batches))
        return True

    def _q_is_behind(self) -> bool:
        """True when the log holds records before the queue's oldest batch (a gap to replay)."""
        if not self._log.pending_bytes:
            return False
        oldest = self._q.oldest_position()
        return oldest is None or oldest > self._log.checkpoint

    def _handle(self, batches: list[Batch]) -> None:
        batches = [b for b in batches if b.position >= self._log.checkpoint]  # others: replayed already
        if not batches:
            return
        if not self.degraded and batches[0].position > self._log.checkpoint:
            self._replay(until=batches[0].position)
        n = sum(b.spans for b in batches)
        if self.degraded or batches[0].position > self._log.checkpoint:
            # The store is down, or the gap before these is not replayed (stopping): the spool
            # log holds them, in order; memory must stay bounded.
            self._let_go(n)
            return
        stored = self._store(pa.concat_tables([b.table for b in batches]))
        if stored is None:
            self._let_go(n)
            return
        self._log.advance(batches[-1].next_position)
        self._m.written_spans.inc(stored)

    def _let_go(self, spans: int) -> None:
        """Batches the store refused leave memory: the spool log keeps them for the replay."""
        self._m.write_batches.labels("spooled").inc()
        self._m.spooled_spans.inc(spans)

    # -- storing -------------------------------------------------------------------------
    def _store(self, table: pa.Table) -> int | None:
        """Store `table`, quarantining rows the store refuses for good; the spans stored, or None
        when the store is unavailable (then degraded, and nothing is quarantined: the replay finds
        the same rows again)."""
        refused: list[tuple[pa.Table, Exception]] = []
        stored = 0
        for part in split_by_days(table, MAX_DAYS_PER_INSERT):
            n = self._store_part(part, refused)
            if n is None:
                return None
            stored += n
        if refused:
            self._quarantine_rows(refused)
        return stored

    def _store_part(self, table: pa.Table, refused: list[tuple[pa.Table, Exception]]) -> int | None:
        err = self._insert_retrying(table)
        if err is None:
            return int(table.num_rows)
        if not store_error_is_permanent(err) and not (
            self._suspect and store_error_may_be_the_data(err) and self._store_answers()
        ):
            return None
        if table.num_rows == 1:
            refused.append((table, err))
            return 0
        # Bisect: the spans at fault end up alone; their neighbours are stored.
        mid = table.num_rows // 2
        first = self._store_part(table.slice(0, mid), refused)
        if first is None:
            return None
        second = self._store_part(table.slice(mid), refused)
        return None if second is None else first + second

    def _insert_retrying(self, table: pa.Table) -> Exception | None:
        """INSERT with bounded retries of retryable errors. None when stored; else the last error
        (and degraded, when it was retryable)."""
        attempts = 1 if self.degraded else self._opt.retries + 1  # a probe tries once
        for attempt in range(attempts):
            t0 = time.perf_counter()
            try:
                self._insert(table)
            except Exception as e:
                self._last_exc = e
                self.last_error = f"{type(e).__name__}: {str(e)[:200]}"
                if store_error_is_permanent(e):
                    self._m.write_batches.labels("rejected").inc()
                    return e
                if attempt + 1 < attempts and not self._stop.is_set():
                    self._m.write_retries.inc()
                    self._m.write_batches.labels("retry").inc()
                    self._stop.wait(self._opt.retry_backoff_s * (2**attempt))
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
                return e
            self._m.write_seconds.observe(time.perf_counter() - t0)
            self._m.write_batches.labels("ok").inc()
            if self.last_error:
                log.info("store accepts writes again")
            self.last_error = ""
            self.degraded = False
            return None
        raise AssertionError("unreachable")  # pragma: no cover

    def _quarantine_rows(self, refused: list[tuple[pa.Table, Exception]]) -> None:
        """One entry per tenant for the rows one batch lost; the first error names the cause."""
        table = pa.concat_tables([t for t, _ in refused])
        err = refused[0][1]
        for entry in self.quarantine.put_rows(table, "store_rejected", f"{type(err).__name__}: {err}"):
            log.error(
                "store refused span(s) %s of tenant %s for good (%s); quarantined as %s",
                ",".join(entry.span_ids),
                entry.tenant,
                type(err).__name__,
                entry.id,
            )
        self._m.dropped_spans.labels("store_rejected").inc(table.num_rows)

    # -- the backlog ---------------------------------------------------------------------
    def _probe(self) -> None:
        """While degraded: replay from the checkpoint now and then (one attempt per INSERT); the
        first INSERT the store takes ends the outage."""
        if self._clock() < self._next_probe:
            return
        self._next_probe = self._clock() + self._opt.probe_interval_s
        if not self._log.pending_bytes:
            self.degraded = False
            return
        before = self._log.checkpoint
        self._replay()
        if (
            not self.degraded
            or self._log.checkpoint != before
            or self._last_exc is None
            or not store_error_may_be_the_data(self._last_exc)
            or not self._store_answers()
        ):
            self._stuck_probes = 0
            return
        self._stuck_probes += 1
        if self._stuck_probes < self._opt.escalate_after_probes:
            return
        log.warning(
            "the store answers but refused the batch at %d %d times (%s); isolating the spans it refuses",
            before,
            self._stuck_probes,
            self.last_error,
        )
        self._stuck_probes = 0
        self._suspect = True
        try:
            self._replay()
        finally:
            self._suspect = False

    def _store_answers(self) -> bool:
        if self._ping is None:
            return False
        try:
            return self._ping()
        except Exception:  # a ping that raises is a store that does not answer
            return False

    def _replay(self, until: int | None = None) -> None:
        """Write spooled records from the checkpoint, in order, batch by batch."""
        pending: list[pa.Table] = []
        rows = 0
        start = end = self._log.checkpoint
        try:
            for rec in self._log.read_from(start, until):
                if self._stop.is_set():
                    return  # the next start replays the rest
                table = self._table_of(rec)
                if table is not None and table.num_rows:
                    pending.append(table)
                    rows += table.num_rows
                end = rec.next_position
                if rows >= self._opt.batch_max_spans:
                    if not self._replay_write(pending, end):
                        return
                    pending, rows = [], 0
        except CorruptRecord as bad:
            # Bytes the disk changed: what came before is written, the bad bytes are kept aside,
            # and the replay goes on from the next good record.
            if self._replay_write(pending, end):
                entry = self.quarantine.put_raw("", bad.data, "unreadable", str(bad), kind="spool")
                log.error("%s; %d bytes quarantined as %s", bad, len(bad.data), entry.id)
                self._m.dropped_records.labels("unreadable").inc()
                self._log.advance(bad.resume_at)
            return
        if end > self._log.checkpoint:
            self._replay_write(pending, end)

    def _table_of(self, rec: LogRecord) -> pa.Table | None:
        if rec.table is not None:
            return rec.table
        try:
            return self._rebuild(rec.tenant, rec.body)
        except Exception as e:  # a body no rule can read: keep it aside, never block the spool
            entry = self.quarantine.put_raw(rec.tenant, rec.body, "unreadable", f"{type(e).__name__}: {e}")
            log.error(
                "spool record at %d of tenant %s cannot be read (%s); quarantined as %s",
                rec.position,
                rec.tenant,
                e,
                entry.id,
            )
            self._m.dropped_spans.labels("unreadable").inc(entry.spans)
            return None

    def _replay_write(self, tables: list[pa.Table], end: int) -> bool:
        stored = self._store(pa.concat_tables(tables)) if tables else 0
        if stored is None:
            return False
        self._log.advance(end)
        self._m.replayed_spans.inc(stored)
        self._m.written_spans.inc(stored)
        return True

    def _oldest_age(self) -> float:
        try:
            return self._log.oldest_age_s()
        except OSError:  # a segment deleted under us by a checkpoint move: nothing that old
            return 0.0
