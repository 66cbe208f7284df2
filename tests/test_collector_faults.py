"""The collector never loses an accepted span: store outages, a SIGKILL, overload."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest

from driftline.collector.service import CollectorService
from driftline.collector.wal import SpanLog
from driftline.store.queries.traces import get_trace
from tests.conftest import KEY_A, TENANT_A, make_settings, serve
from tests.support.clickhouse_http import ClickHouseHTTPServer
from tests.support.sql import admin_client, admin_rows
from tools.loadgen import llm_request, span_ids

PB = {"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {KEY_A}"}


def _post(url: str, seed: int, n: int = 20) -> tuple[httpx.Response, list[tuple[str, str]]]:
    req = llm_request(n, seed=seed)
    return httpx.post(f"{url}/v1/traces", content=req.SerializeToString(), headers=PB, timeout=30), span_ids(req)


def _stored(rt: CollectorService) -> tuple[set[tuple[str, str]], int]:
    rows = admin_rows(
        rt.store, "SELECT trace_id, span_id FROM {db}.spans FINAL WHERE tenant = {tenant:String}", {"tenant": TENANT_A}
    )
    ids = {(r["trace_id"], r["span_id"]) for r in rows}
    return ids, len(rows)


@pytest.fixture
def fast_retry_settings(tmp_path: Path, chdb_path: Path, database: str) -> dict[str, Any]:
    return {"data_dir": tmp_path / "data", "database": database, "write_retries": 1}


def _run_outage(rt: CollectorService, url: str, break_store: Any, heal_store: Any) -> None:
    accepted: set[tuple[str, str]] = set()
    seed = 0
    for _ in range(5):  # before the outage
        r, ids = _post(url, seed := seed + 1)
        assert r.status_code == 200
        accepted |= set(ids)
    assert rt.flush(20)
    break_store()
    for _ in range(10):  # during: still accepted, into the spool
        r, ids = _post(url, seed := seed + 1)
        assert r.status_code == 200, r.text
        accepted |= set(ids)
    assert not rt.flush(2)  # cannot finish while the store is down ...
    assert rt.writer is not None and rt.writer.degraded
    assert rt.spool is not None and rt.spool.pending_bytes > 0
    ready = httpx.get(f"{url}/readyz")  # still ready: the spool takes the spans
    assert ready.status_code == 200 and ready.json()["problems"] == ["store refuses writes; spooling"]
    heal_store()
    for _ in range(5):  # after
        r, ids = _post(url, seed := seed + 1)
        assert r.status_code == 200
        accepted |= set(ids)
    assert rt.flush(30)  # ... and drains once it is back
    stored, n = _stored(rt)
    assert stored == accepted and n == len(accepted)  # every accepted span, exactly once
    assert rt.spool.pending_bytes == 0
    text = httpx.get(f"{url}/metrics").text
    assert re.search(r"driftline_collector_replayed_spans_total [1-9]", text)


def test_chdb_store_fails_mid_stream(fast_retry_settings: dict[str, Any], chdb_path: Path) -> None:
    s = make_settings(clickhouse_url=f"chdb://{chdb_path}", **fast_retry_settings)
    rt = CollectorService(s)
    rt.start()
    server, thread, url = serve(rt)
    db = s.database
    try:
        with admin_client(rt.store) as admin:
            # A real engine failure: the table is gone for writes until attached again.
            _run_outage(
                rt,
                url,
                lambda: admin.command(f"DETACH TABLE {db}.spans"),
                lambda: admin.command(f"ATTACH TABLE {db}.spans"),
            )
    finally:
        server.should_exit = True
        thread.join(10)
        rt.stop()


def test_http_store_goes_away_mid_stream(fast_retry_settings: dict[str, Any], ch_http: ClickHouseHTTPServer) -> None:
    s = make_settings(clickhouse_url=ch_http.url, **fast_retry_settings)
    rt = CollectorService(s)
    rt.start()
    server, thread, url = serve(rt)

    def go_away() -> None:
        ch_http.stop()
        # reads need the store: retry-later, not a 500
        r = httpx.get(f"{url}/api/v1/traces", headers={"Authorization": f"Bearer {KEY_A}"})
        assert r.status_code == 503 and r.headers["Retry-After"]

    try:
        _run_outage(rt, url, go_away, ch_http.start)
    finally:
        if not ch_http.running:
            ch_http.start()
        server.should_exit = True
        thread.join(10)
        rt.stop()


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def test_sigkill_with_data_in_spool_loses_nothing(tmp_path: Path) -> None:
    """Spans accepted while the writer holds them (a long flush interval) survive a SIGKILL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
    env.update(
        DRIFTLINE_DATA_DIR=str(tmp_path / "data"),
        DRIFTLINE_HTTP_PORT="0",
        DRIFTLINE_GRPC_PORT="0",
        DRIFTLINE_METRICS_PORT="0",
        DRIFTLINE_API_KEYS=f"{KEY_A}={TENANT_A}",
    )

    def start(extra: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
        p = subprocess.Popen(
            [sys.executable, "-m", "driftline.cli", "up"],
            env={**env, **extra},
            stderr=subprocess.PIPE,
            text=True,
        )
        assert p.stderr is not None
        for line in p.stderr:
            m = re.search(r"OTLP/HTTP (http://\S+)/v1/traces", line)
            if m:
                # keep reading its log so the child never blocks on a full pipe
                threading.Thread(target=p.stderr.read, daemon=True).start()
                return p, m.group(1)
        raise AssertionError("collector did not start")

    # 1) accept spans that the writer will not flush for an hour
    p, url = start({"DRIFTLINE_FLUSH_INTERVAL_MS": "3600000", "DRIFTLINE_BATCH_MAX_SPANS": "100000"})
    accepted: set[tuple[str, str]] = set()
    for seed in range(8):
        r, ids = _post(url, seed)
        assert r.status_code == 200
        accepted |= set(ids)
    workers = _children(p.pid)
    assert workers, "the collector runs its decode workers as child processes"
    p.send_signal(signal.SIGKILL)
    p.wait(30)
    # Its decode workers notice and leave (they would otherwise hold the log pipe open forever).
    for _ in range(100):
        if not any(Path(f"/proc/{w}").exists() for w in workers):
            break
        time.sleep(0.1)
    assert not [w for w in workers if Path(f"/proc/{w}").exists()], "decode workers outlived a SIGKILLed collector"
    assert p.stderr is not None
    p.stderr.close()
    assert list((tmp_path / "data" / "spool").glob("*.wal"))

    # 2) restart: the spool replays; the API shows every accepted span
    p, url = start({})
    try:
        rows: list[dict[str, Any]] = []
        deadline = threading.Event()
        for _ in range(300):  # bounded wait for the replay, on the API itself
            rows = []
            for trace in {t for t, _ in accepted}:
                r = httpx.get(f"{url}/api/v1/traces/{trace}", headers={"Authorization": f"Bearer {KEY_A}"})
                if r.status_code == 200:
                    rows.extend(r.json()["spans"])
            if len(rows) >= len(accepted):
                break
            deadline.wait(0.1)
        assert {(s["trace_id"], s["span_id"]) for s in rows} == accepted
        assert len(rows) == len(accepted)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(60)
        assert p.stderr is not None
        p.stderr.close()


class _Gate:
    """A slow store: inserts wait until the test opens the gate (then go to the real store)."""

    def __init__(self, insert: Any) -> None:
        self.insert = insert
        self.open = threading.Event()

    def __call__(self, table: pa.Table) -> None:
        self.open.wait(60)
        self.insert(table)


def test_overload_answers_retry_later_and_memory_stays_bounded(tmp_path: Path, chdb_path: Path, database: str) -> None:
    s = make_settings(
        tmp_path / "data",
        f"chdb://{chdb_path}",
        database,
        queue_capacity_spans=200,
        batch_max_spans=100,
        flush_interval_ms=10,
    )
    rt = CollectorService(s)
    gate = _Gate(lambda t: rt.store.insert_arrow("spans", t))
    rt._insert = gate
    rt.start()
    server, thread, url = serve(rt)
    try:
        accepted: set[tuple[str, str]] = set()
        statuses: list[int] = []
        for seed in range(30):
            r, ids = _post(url, seed, n=50)
            statuses.append(r.status_code)
            if r.status_code == 200:
                accepted |= set(ids)
            else:
                assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
            assert len(rt.queue) <= s.queue_capacity_spans
        assert 429 in statuses and 200 in statuses
        text = httpx.get(f"{url}/metrics").text
        assert re.search(r'driftline_collector_refused_spans_total\{reason="queue_full"\} [1-9]', text)
        gate.open.set()
        assert rt.flush(30)
        stored, n = _stored(rt)
        assert stored == accepted and n == len(accepted)
    finally:
        gate.open.set()
        server.should_exit = True
        thread.join(10)
        rt.stop()


def test_spool_full_answers_503(tmp_path: Path, chdb_path: Path, database: str) -> None:
    s = make_settings(tmp_path / "data", f"chdb://{chdb_path}", database, spool_max_bytes=60_000, write_retries=0)
    rt = CollectorService(s)
    rt.start()
    server, thread, url = serve(rt)
    try:
        with admin_client(rt.store) as admin:
            admin.command(f"DETACH TABLE {database}.spans")
            # The spool bounds only what the store has not taken: a request the writer has not yet
            # tried to store waits in the queue, not in the backlog. So each request is posted once
            # the writer has handled the one before (met the refusal, let go of its copy), however
            # slow the machine is.
            assert _post(url, 100)[0].status_code == 200
            assert rt.queue.wait_empty(30)
            assert rt.writer is not None and rt.writer.degraded
            codes = []
            for seed in range(12):
                codes.append(_post(url, seed)[0])
                assert rt.queue.wait_empty(30)
            admin.command(f"ATTACH TABLE {database}.spans")
        refused = [r for r in codes if r.status_code != 200]
        assert refused and all(r.status_code == 503 and r.headers["Retry-After"] for r in refused)
        assert rt.spool is not None and rt.spool.pending_bytes <= 60_000
        assert rt.flush(30)
    finally:
        server.should_exit = True
        thread.join(10)
        rt.stop()


def test_a_request_larger_than_the_spool_is_413_and_its_neighbours_are_stored(
    tmp_path: Path, chdb_path: Path, database: str
) -> None:
    """A request the spool could never hold, even empty, is refused for good (413, no Retry-After),
    not told to retry forever (503); requests that fit go on being stored."""
    small, small_ids = llm_request(2, seed=1), None
    big = llm_request(200, seed=2)
    limit = len(small.SerializeToString()) * 5
    assert len(big.SerializeToString()) > limit
    s = make_settings(tmp_path / "data", f"chdb://{chdb_path}", database, spool_max_bytes=limit)
    rt = CollectorService(s)
    rt.start()
    server, thread, url = serve(rt)
    try:
        r = httpx.post(f"{url}/v1/traces", content=big.SerializeToString(), headers=PB, timeout=30)
        assert r.status_code == 413, r.text
        assert "spool_max_bytes" in r.text and "Retry-After" not in r.headers
        small_ids = span_ids(small)
        r = httpx.post(f"{url}/v1/traces", content=small.SerializeToString(), headers=PB, timeout=30)
        assert r.status_code == 200, r.text
        assert rt.flush(30)
        stored, _ = _stored(rt)
        assert stored == set(small_ids)
    finally:
        server.should_exit = True
        thread.join(10)
        rt.stop()


def test_rate_limit_per_tenant(tmp_path: Path, chdb_path: Path, database: str) -> None:
    s = make_settings(tmp_path / "d", f"chdb://{chdb_path}", database, tenant_rate_limit_spans_per_s=20)
    rt = CollectorService(s)
    rt.start()
    server, thread, url = serve(rt)
    try:
        first, _ = _post(url, 1, n=40)  # the 2 s burst
        second, _ = _post(url, 2, n=40)
        assert first.status_code == 200
        assert second.status_code == 429 and int(second.headers["Retry-After"]) >= 1
    finally:
        server.should_exit = True
        thread.join(10)
        rt.stop()


def test_redaction_before_storage(tmp_path: Path, chdb_path: Path, database: str) -> None:
    s = make_settings(tmp_path / "d", f"chdb://{chdb_path}", database, redact=["email", "api_key"])
    rt = CollectorService(s)
    rt.start()
    server, thread, url = serve(rt)
    try:
        req = llm_request(1, seed=3)
        span = req.resource_spans[0].scope_spans[0].spans[0]
        kv = span.attributes.add()
        kv.key = "app.contact"
        kv.value.string_value = "write to jane.doe@example.com"
        kv = span.attributes.add()
        kv.key = "gen_ai.input.messages"
        kv.value.string_value = '[{"role":"user","parts":[{"type":"text","content":"my key sk-abcdefghijklmnop1234"}]}]'
        r = httpx.post(f"{url}/v1/traces", content=req.SerializeToString(), headers=PB)
        assert r.status_code == 200
        assert rt.flush(10)
        row = get_trace(rt.store, TENANT_A, span.trace_id.hex())[0]
        assert row["attributes"]["app.contact"] == "write to [REDACTED:email]"
        assert "sk-abcdefghijklmnop1234" not in str(row) and "[REDACTED:api_key]" in row["input_text"]
    finally:
        server.should_exit = True
        thread.join(10)
        rt.stop()
    # nothing unredacted reached the spool either (its records are compressed: decode them)
    spool = SpanLog(s.data_dir / "spool", 10**9)
    tables = [rec.table for rec in spool.read_from(0) if rec.table is not None]
    spool.close()
    assert tables
    assert all("jane.doe@example.com" not in str(t.to_pylist()) for t in tables)
