"""The writer against the real store with an injected insert and a fake clock: poison spans on
replay, requests over many days, permanent refusals, its own probe timer, shutdown, the spool's
backlog bound. The loop is stepped by hand (writer.step) unless a test is about its thread."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from clickhouse_connect.driver.exceptions import OperationalError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from driftline.collector.errors import Refused
from driftline.collector.writer import MAX_DAYS_PER_INSERT, WriterOptions
from driftline.config import CollectorSettings, load_settings
from driftline.store import Store
from tests.support.spans import chat_request, ids_of, set_attr
from tests.write_path import WritePath, stored_ids

A, B = "tenant-a", "tenant-b"


def _poisoned(seed: int) -> tuple[ExportTraceServiceRequest, set[str], str]:
    """A request whose 3rd span passes the normalizer but overflows Int64 when stored."""
    req = chat_request(6, seed)
    bad = req.resource_spans[0].scope_spans[0].spans[2]
    set_attr(bad, "gen_ai.usage.input_tokens", "99999999999999999999")
    return req, ids_of(req) - {bad.span_id.hex()}, bad.span_id.hex()


def test_poison_span_on_replay_never_wedges_the_writer(new_path: Callable[..., WritePath], store: Store) -> None:
    wp = new_path()
    req, good, bad = _poisoned(1)
    other = chat_request(40, 2)
    wp.gate.down = True  # an outage: everything accepted goes through the spool's replay
    result = wp.send(A, req)
    assert (result.accepted, result.rejected) == (5, 1)  # the live path rejects the poison span alone
    assert wp.send(B, other).accepted == 40
    wp.steps(2)
    assert wp.writer.degraded and wp.spool.pending_bytes
    wp.gate.down = False
    wp.clock.t += 10  # the probe is due
    wp.steps(2)
    assert not wp.writer.degraded and wp.writer.stalled == ""
    assert wp.spool.pending_bytes == 0  # the spool advanced past the poisoned record
    assert set(stored_ids(store, A)) == good and bad not in stored_ids(store, A)
    assert sorted(stored_ids(store, B)) == sorted(ids_of(other))


def test_a_request_over_100_days_is_stored(new_path: Callable[..., WritePath], store: Store) -> None:
    """Real chDB refuses an INSERT touching more than 100 partitions (days)."""
    wp = new_path()
    start = time.time_ns() - 5 * 86_400 * 10**9  # into the future: within retention (TTL) throughout
    req = chat_request(240, 3, start_ns=start, day_step=1)  # 240 spans on 240 days
    assert wp.send(A, req).accepted == 240
    wp.steps(2)
    assert not wp.writer.degraded, wp.writer.last_error
    assert sorted(stored_ids(store, A)) == sorted(ids_of(req))
    assert wp.gate.inserts == -(-240 // MAX_DAYS_PER_INSERT)
    assert wp.spool.pending_bytes == 0


def test_a_permanent_refusal_is_bisected_and_quarantined(new_path: Callable[..., WritePath], store: Store) -> None:
    wp = new_path()
    reqs = [chat_request(30, 10 + i) for i in range(3)]
    poison = sorted(ids_of(reqs[1]))[:2]
    wp.gate.refuse = set(poison)
    for r in reqs[:2]:
        wp.send(A, r)
    wp.send(B, reqs[2])
    wp.steps(2)
    assert not wp.writer.degraded and wp.spool.pending_bytes == 0  # the spool advanced
    everyone = ids_of(reqs[0]) | ids_of(reqs[1])
    assert sorted(stored_ids(store, A)) == sorted(everyone - set(poison))
    assert sorted(stored_ids(store, B)) == sorted(ids_of(reqs[2]))
    entries = wp.writer.quarantine.entries()
    assert sorted(s for e in entries for s in e.span_ids) == poison
    assert [(e.tenant, e.reason, e.spans) for e in entries] == [(A, "store_rejected", 2)]  # one per batch
    assert all("DatabaseError" in e.error for e in entries)
    rows = wp.writer.quarantine.rows(entries[0])
    assert rows is not None and set(rows.column("span_id").to_pylist()) <= set(poison)
    assert wp.metric("driftline_collector_dropped_spans_total", reason="store_rejected") == 2


def test_a_retryable_error_spools_and_quarantines_nothing(new_path: Callable[..., WritePath], store: Store) -> None:
    wp = new_path()
    req = chat_request(20, 4)
    wp.gate.down = True
    wp.send(A, req)
    wp.steps(2)
    assert wp.writer.degraded and wp.writer.quarantine.entries() == []
    assert wp.metric("driftline_collector_dropped_spans_total", reason="store_rejected") == 0
    wp.gate.down = False
    wp.steps(2)  # the probe is not due yet: nothing moves
    assert wp.writer.degraded and stored_ids(store, A) == []
    wp.clock.t += 5
    wp.steps(1)
    assert sorted(stored_ids(store, A)) == sorted(ids_of(req))


def test_the_writer_probes_and_replays_on_its_own_timer(new_path: Callable[..., WritePath], store: Store) -> None:
    """The spool is full and the store comes back: no span arrives, nobody calls flush."""
    wp = new_path(spool_bytes=12_000, flush_interval_s=0.01)
    wp.writer.start()
    try:
        wp.gate.down = True
        sent: set[str] = set()
        with pytest.raises(Refused) as full:
            for seed in range(50):
                req = chat_request(20, 100 + seed)
                wp.send(A, req)
                sent |= ids_of(req)
                assert wp.gate.failed.wait(10)
        assert full.value.reason == "spool_full" and sent
        assert wp.writer.backlog_bytes() > 0
        wp.gate.down = False
        wp.clock.t += 10  # the probe is due; the writer's loop must notice by itself
        assert wp.gate.stored.wait(10), "the writer never retried the store"
        for _ in range(100):  # the replay finishes on the writer's thread
            if wp.spool.pending_bytes == 0:
                break
            wp.gate.stored.clear()
            assert wp.gate.stored.wait(10)
        assert wp.spool.pending_bytes == 0
        assert sorted(stored_ids(store, A)) == sorted(sent)
        wp.send(A, chat_request(5, 999))  # accepted again
    finally:
        wp.writer.stop(5)


def test_stop_does_not_wait_on_a_failing_store(new_path: Callable[..., WritePath], store: Store) -> None:
    wp = new_path(retries=8, retry_backoff_s=30.0, flush_interval_s=0.01)
    wp.gate.down = True
    wp.writer.start()
    wp.send(A, chat_request(10, 5))
    assert wp.gate.failed.wait(10)
    wp.writer.stop(timeout_s=5)  # the retries alone would take hours
    assert not wp.writer.alive
    assert wp.spool.pending_bytes > 0  # let go of, for the next start to replay


def test_a_small_spool_keeps_accepting_while_the_store_takes_everything(
    new_path: Callable[..., WritePath], store: Store
) -> None:
    wp = new_path(spool_bytes=12_000)
    sent: set[str] = set()
    for seed in range(20):  # far more than 12 kB in all, and never flushed yet
        req = chat_request(20, 200 + seed)
        assert wp.send(A, req).accepted == 20
        sent |= ids_of(req)
    assert wp.spool.pending_bytes > 12_000 and wp.writer.backlog_bytes() == 0
    wp.steps(2)
    assert sorted(stored_ids(store, A)) == sorted(sent)
    # With the store down the batches leave memory: that backlog is what the limit bounds.
    wp.gate.down = True
    with pytest.raises(Refused):
        for seed in range(20):
            wp.send(A, chat_request(20, 300 + seed))
            wp.steps(1)
    assert 0 < wp.writer.backlog_bytes() <= 12_000


def test_spool_gauge_is_right_before_the_first_write(new_path: Callable[..., WritePath], store: Store) -> None:
    wp = new_path()
    wp.gate.down = True
    wp.send(A, chat_request(20, 6))
    wp.steps(1)
    pending = wp.spool.pending_bytes
    assert pending and wp.metric("driftline_collector_spool_bytes") == pending
    wp.writer.stop(1)
    again = new_path()  # a restart with a spool to replay
    assert again.metric("driftline_collector_spool_bytes") == pending
    again.steps(1)
    assert again.metric("driftline_collector_spool_bytes") == 0


def test_spans_at_the_epoch_or_in_2262_are_rejected_with_a_reason(
    new_path: Callable[..., WritePath], store: Store
) -> None:
    """Stored, their TTL (start + retention) lies in the past or wraps: they would vanish."""
    wp = new_path()
    req = chat_request(4, 7)
    spans = req.resource_spans[0].scope_spans[0].spans
    spans[0].start_time_unix_nano, spans[0].end_time_unix_nano = 1, 2
    spans[1].start_time_unix_nano = 9_200_000_000 * 10**9  # 2261
    spans[1].end_time_unix_nano = spans[1].start_time_unix_nano + 10
    result = wp.send(A, req)
    assert (result.accepted, result.rejected) == (2, 2)
    assert "start_time" in result.error_message
    assert wp.metric("driftline_collector_rejected_spans_total", reason="bad_timestamp") == 2
    wp.steps(1)
    assert sorted(stored_ids(store, A)) == sorted(ids_of(req) - {spans[0].span_id.hex(), spans[1].span_id.hex()})


def test_writer_options_defaults_are_the_settings_defaults(tmp_path: Path) -> None:
    s = load_settings(CollectorSettings, environ={}, data_dir=tmp_path)
    assert WriterOptions() == WriterOptions.from_settings(s)


def test_a_corrupt_spool_record_is_quarantined_and_the_replay_goes_on(
    new_path: Callable[..., WritePath], store: Store
) -> None:
    wp = new_path()
    reqs = [chat_request(5, 30 + i) for i in range(3)]
    wp.gate.down = True
    for r in reqs:
        wp.send(A, r)
    wp.steps(1)
    middle = list(wp.spool.read_from(0))[1]
    seg = next(wp.spool.dir.glob("*.wal"))
    data = bytearray(seg.read_bytes())
    data[middle.position + 20] ^= 0xFF  # inside its payload: its CRC no longer matches
    seg.write_bytes(bytes(data))
    wp.gate.down = False
    wp.clock.t += 10
    wp.steps(2)
    assert wp.writer.stalled == "" and wp.spool.pending_bytes == 0
    assert sorted(stored_ids(store, A)) == sorted(ids_of(reqs[0]) | ids_of(reqs[2]))
    [entry] = wp.writer.quarantine.entries()
    assert (entry.reason, entry.kind) == ("unreadable", "spool")
    assert len(wp.writer.quarantine.body(entry)) == middle.next_position - middle.position
    # Counted, in records: the bad bytes' span count cannot be read (DriftlineSpansDropped sees it).
    assert wp.metric("driftline_collector_dropped_records_total", reason="unreadable") == 1


def test_a_failing_pass_is_reported_on_readyz_and_the_thread_survives(
    tmp_path: Path, chdb_path: Path, database: str
) -> None:
    """A pass that raises (here: the spool's segment file deleted under the collector) makes the
    collector not ready, naming the error; the writer thread stays up and stop() ends it."""
    import httpx

    from driftline.collector.service import CollectorService
    from tests.conftest import make_settings, serve

    rt = CollectorService(make_settings(tmp_path / "data", f"chdb://{chdb_path}", database, write_retries=0))
    real = rt._insert
    down = threading.Event()
    down.set()

    def insert(table: object) -> None:
        if down.is_set():
            raise OperationalError("connection refused (test: store down)")
        real(table)

    rt._insert = insert
    rt.start()
    server, thread, url = serve(rt)
    try:
        assert rt.consumer is not None and rt.writer is not None
        body = chat_request(5, 40).SerializeToString()
        rt.consumer.keep(A, rt.preparer.prepare_body(A, body, "", "application/x-protobuf", 0), "http", body)
        assert not rt.flush(0.5) and rt.writer.degraded
        for seg in (tmp_path / "data" / "spool").glob("*.wal"):
            seg.unlink()
        down.clear()
        ready = httpx.get(f"{url}/readyz")
        for _ in range(300):  # the next probe (1 s) fails its pass
            if ready.status_code == 503:
                break
            threading.Event().wait(0.05)
            ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 503, ready.text
        assert any("writer stalled: FileNotFoundError" in p for p in ready.json()["problems"])
        assert rt.writer.alive
    finally:
        server.should_exit = True
        thread.join(10)
        rt.stop()
    assert not rt.writer.alive


def test_data_dir_spool_and_quarantine_are_private(tmp_path: Path, chdb_path: Path, database: str) -> None:
    from driftline.collector.service import CollectorService
    from tests.conftest import make_settings

    (tmp_path / "data").mkdir(mode=0o755)
    rt = CollectorService(make_settings(tmp_path / "data", f"chdb://{chdb_path}", database))
    rt.start()
    try:
        assert rt.consumer is not None and rt.writer is not None
        prepared = rt.preparer.prepare_body(A, chat_request(3, 11).SerializeToString(), "", "application/x-protobuf", 0)
        rt.consumer.keep(A, prepared, "http", chat_request(3, 11).SerializeToString())
        assert rt.flush(10)
        rt.writer.quarantine.put_rows(prepared.table, "store_rejected", "test")
    finally:
        rt.stop()
    files = [p for p in (tmp_path / "data" / "spool").iterdir()] + list((tmp_path / "data" / "quarantine").iterdir())
    assert {p.suffix for p in files} >= {".wal", ".arrow", ".json", ""}  # "": the checkpoint
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {"0o600"}
    for d in ("", "spool", "quarantine"):
        assert oct((tmp_path / "data" / d).stat().st_mode & 0o777) == "0o700", d


def test_stopping_never_writes_past_a_gap_it_did_not_replay(new_path: Callable[..., WritePath], store: Store) -> None:
    """Spooled records before the queued ones must be stored first: a stop in between leaves
    both to the next start, in order, rather than moving the checkpoint past the gap."""
    first, second = chat_request(5, 50), chat_request(5, 51)
    crashed = new_path()
    crashed.gate.down = True
    crashed.send(A, first)
    crashed.steps(1)  # let go of: only the spool holds it
    crashed.writer.stop(1)
    restarted = new_path()  # not degraded, `first` still to replay
    restarted.send(A, second)  # queued behind the gap
    restarted.writer.stop(1)  # no thread here: run the drain pass that stop() asks for by hand
    restarted.steps(1)
    assert stored_ids(store, A) == [] and restarted.spool.checkpoint == 0
    again = new_path()  # the next start
    again.steps(2)
    assert sorted(stored_ids(store, A)) == sorted(ids_of(first) | ids_of(second))


def test_a_stalled_loop_logs_its_error_once_a_minute_with_a_count(
    new_path: Callable[..., WritePath], caplog: pytest.LogCaptureFixture
) -> None:
    """A pass that keeps failing (the spool's segment deleted under the writer) is logged when it
    first fails, then at most once a minute with how many failed since, not on every retry."""
    wp = new_path(probe_interval_s=0.0)
    wp.gate.down = True
    wp.send(A, chat_request(3, 41))
    wp.steps(1)
    assert wp.writer.degraded
    for seg in wp.spool.dir.glob("*.wal"):
        seg.unlink()
    wp.gate.down = False
    caplog.set_level(logging.ERROR, logger="driftline.collector.writer")
    for _ in range(300):  # 300 failing passes over 59.8 s of the fake clock
        assert wp.writer.guarded_step()
        assert wp.writer.stalled.startswith("FileNotFoundError")
        wp.clock.t += 0.2
    reports = [r for r in caplog.records if r.getMessage().startswith("writer loop error")]
    assert [r.getMessage() for r in reports] == ["writer loop error"]
    wp.clock.t += 0.2  # a minute after the first report
    assert wp.writer.guarded_step()
    reports = [r for r in caplog.records if r.getMessage().startswith("writer loop error")]
    assert [r.getMessage() for r in reports][1:] == ["writer loop error (300 failed passes since the last report)"]
    assert all(r.exc_info for r in reports)  # each report keeps the traceback
