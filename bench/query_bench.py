"""Read API benchmark: fill an embedded store with realistic spans, then time the API in-process.

The spans have the load generator's shapes (tools/loadgen.py: chat spans of 3 models with
300-800 byte messages, ~20 attributes, traces of 5 spans), plus a tool call per trace (some
failing), hallucination and tool-failure scores, and feedback on 1% of traces, spread over the
last `--days` days across 3 services, 4 releases each, 2 environments and 20k sessions. They go
in through the store's Arrow insert in large batches; the API is driven through the real app
(driftline.server.build_app with the API service) over httpx's ASGI transport.

    python bench/query_bench.py --spans 200000            # develop
    python bench/query_bench.py --spans 10000000          # the 10M figures (minutes to fill)
    python bench/query_bench.py --data-dir D --reuse --merge-days   # again, older days merged

A fill's days are left in the parts its inserts wrote and the engine's merge selector leaves them
in (8 a day on the 10M fill). On a running store the engine merges each day (trace_rows: each block
of 6 hours, migration 20) into one part an hour after its last insert (migration 19), which reads
then see: no FINAL work, one granule per trace; the newest stays in parts while spans keep
arriving. `--merge-days` brings those merges forward for every partition but the newest (the same
OPTIMIZE the engine runs), so both states can be timed on one store.

Prints p50/p95 per request and the machine's load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools/ sits beside bench/, not installed

import httpx
import numpy as np
import pyarrow as pa
from prometheus_client import CollectorRegistry

from driftline.api_service import ApiService
from driftline.auth import Authenticator
from driftline.scorers.runner import SCORE_SCHEMA
from driftline.server import build_app
from driftline.store import Store, StoreConfig
from driftline.store.columns import ARROW_SCHEMA
from driftline.store.connection import open_client
from driftline.store.queries.feedback import FEEDBACK_SCHEMA
from driftline.store.schema import FORCE_MERGED_TABLES
from tools.loadgen import filler_text

KEY, TENANT, OTHER = "bench-key", "bench", "other"
SPANS_PER_TRACE = 5
MODELS = [("openai", "gpt-4o-mini", 0.15e-6, 0.6e-6), ("openai", "gpt-4o", 2.5e-6, 10e-6),
          ("anthropic", "claude-3-5-sonnet-20241022", 3e-6, 15e-6)]  # fmt: skip
SERVICES = ["support-bot", "search", "billing"]
RELEASES = ["2.4.0", "2.4.1", "2.5.0", "2.6.0-rc1"]
SESSIONS = 20_000
USERS = 5_000
POOL = 2_000  # distinct message texts: enough for realistic compression, cheap to build


def _pool(rng: random.Random) -> tuple[pa.Array, pa.Array]:
    ins, outs = [], []
    for _ in range(POOL):
        ins.append(json.dumps([{"role": "system", "content": "You are a support agent."},
                               {"role": "user", "content": filler_text(rng, 300, 800)}]))  # fmt: skip
        outs.append(json.dumps([{"role": "assistant", "content": filler_text(rng, 300, 800)}]))
    return pa.array(ins, pa.string()), pa.array(outs, pa.string())


def _hex(values: np.ndarray, width: int) -> list[str]:
    return [f"{int(v):0{width}x}" for v in values]


def _batch(first_trace: int, traces: int, now_ns: int, days: float, pool: tuple[pa.Array, pa.Array],
           seed: int, span: tuple[float, float] = (0.0, 1.0)) -> tuple[pa.Table, pa.Table, pa.Table]:  # fmt: skip
    """`traces` traces of SPANS_PER_TRACE spans: spans, scores and feedback tables. The traces start
    in the `span` fractions of the `days` before `now_ns` (0: the oldest moment, 1: now)."""
    g = np.random.default_rng(seed)
    n = traces * SPANS_PER_TRACE
    t = np.repeat(np.arange(traces), SPANS_PER_TRACE)
    pos = np.tile(np.arange(SPANS_PER_TRACE), traces)
    tenant = np.where(g.random(traces) < 0.9, TENANT, OTHER)[t]
    hi, lo = g.integers(0, 2**63, traces), g.integers(0, 2**63, traces)
    trace_ids = np.array([f"{a:016x}{b:016x}" for a, b in zip(hi, lo, strict=True)], dtype=object)
    span_ids = np.array(_hex(g.integers(1, 2**63, n), 16), dtype=object)
    root_ids = span_ids[t * SPANS_PER_TRACE]
    at = span[0] + g.random(traces) * (span[1] - span[0])
    trace_start = now_ns - ((1.0 - at) * days * 86400e9).astype(np.int64)
    start = trace_start[t] + pos.astype(np.int64) * 1_000_000
    dur = np.where(pos == 0, 4000 + g.integers(0, 4000, n), g.integers(200, 4000, n)).astype(np.float64)
    svc = g.choice(len(SERVICES), traces, p=[0.6, 0.3, 0.1])[t]
    rel = g.choice(len(RELEASES), traces, p=[0.1, 0.5, 0.3, 0.1])[t]
    model = g.integers(0, len(MODELS), n)
    is_tool = pos == 3
    err = np.where(is_tool, g.random(n) < 0.1, g.random(n) < 0.01)
    tin, tout = g.integers(100, 2000, n), g.integers(20, 400, n)
    priced = g.random(n) < 0.9
    cost = np.array([MODELS[m][2] for m in model]) * tin + np.array([MODELS[m][3] for m in model]) * tout
    msg = pa.array(g.integers(0, POOL, n))
    session = g.integers(1, SESSIONS + 1, traces)[t]
    user = g.integers(1, USERS + 1, traces)[t]
    ops = np.where(is_tool, "execute_tool", "chat")
    cols: dict[str, Any] = {
        "tenant": tenant, "trace_id": trace_ids[t], "span_id": span_ids,
        "parent_span_id": np.where(pos == 0, "", root_ids),
        "start_time": pa.array(start, pa.timestamp("ns", tz="UTC")),
        "end_time": pa.array(start + (dur * 1e6).astype(np.int64), pa.timestamp("ns", tz="UTC")),
        "duration_ms": dur,
        "name": np.where(is_tool, "execute_tool lookup_order", np.array([f"chat {m[1]}" for m in MODELS])[model]),
        "kind": "client", "status_code": np.where(err, "error", "unset"),
        "service": np.array(SERVICES)[svc], "release": np.array(RELEASES)[rel],
        "environment": np.where(rel == 3, "staging", "prod"), "scope_name": "opentelemetry.instrumentation.openai_v2",
        "operation": ops,
        "provider": np.where(is_tool, "", np.array([m[0] for m in MODELS])[model]),
        "request_model": np.where(is_tool, "", np.array([m[1] for m in MODELS])[model]),
        "response_model": np.where(is_tool, "", np.array([m[1] for m in MODELS])[model]),
        "input_tokens": pa.array(np.where(is_tool, 0, tin), pa.int64()),
        "output_tokens": pa.array(np.where(is_tool, 0, tout), pa.int64()),
        "cost_usd": pa.array(cost, pa.float64(), mask=~priced | is_tool),
        "cost_source": np.where(priced & ~is_tool, "price_table", ""),
        "input_messages": pool[0].take(msg), "output_messages": pool[1].take(msg),
        "tool_name": np.where(is_tool, "lookup_order", ""),
        "tool_error": np.where(is_tool & err, "timeout after 30s", ""),
        "finish_reason": np.where(is_tool, "", "stop"),
        "user_id": np.array([f"user-{u}" for u in user], dtype=object),
        "session_id": np.array([f"sess-{s}" for s in session], dtype=object),
        "ingested_at": pa.array(np.full(n, now_ns // 1_000_000), pa.timestamp("ms", tz="UTC")),
    }  # fmt: skip
    keys = pa.array(["gen_ai.response.id", "app.feature", "server.address", "app.request_id"] * n, pa.string())
    vals = pa.array(g.choice(["faq", "refunds", "orders", "billing", "api.example.com"], 4 * n), pa.string())
    cols["attributes"] = pa.MapArray.from_arrays(pa.array(np.arange(0, 4 * n + 1, 4), pa.int32()), keys, vals)
    cols["resource_attributes"] = pa.MapArray.from_arrays(pa.array(np.zeros(n + 1), pa.int32()),
                                                          pa.array([], pa.string()), pa.array([], pa.string()))  # fmt: skip
    arrays = []
    for f in ARROW_SCHEMA:
        v = cols.get(f.name)
        if v is None:
            default: Any = None if f.type in (pa.int64(), pa.float64()) else ""
            arrays.append(pa.array([default] * n, f.type) if default is None else pa.array(np.full(n, ""), f.type))
        elif isinstance(v, str):
            arrays.append(pa.array(np.full(n, v), f.type))
        else:
            arrays.append(pa.array(v, f.type) if not isinstance(v, pa.Array) else v.cast(f.type))
    spans = pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA)
    # Scores: hallucination on each trace's last chat span, tool_failure on its tool span.
    last, tool = t[pos == 4], t[pos == 3]
    hv = g.beta(0.6, 3.0, traces)
    label = np.where(hv > 0.5, "hallucinated", "grounded")
    tool_err = err[pos == 3]
    sc_n = 2 * traces
    scored_at = pa.array(np.full(sc_n, now_ns // 1_000_000), pa.timestamp("ms", tz="UTC"))
    scores = pa.table({
        "tenant": np.concatenate([tenant[pos == 4], tenant[pos == 3]]),
        "trace_id": np.concatenate([trace_ids[last], trace_ids[tool]]),
        "span_id": np.concatenate([span_ids[pos == 4], span_ids[pos == 3]]),
        "scorer": np.repeat(["hallucination", "tool_failure"], traces),
        "scorer_version": np.repeat(["offline-1", "1"], traces),
        "value": np.concatenate([hv, tool_err.astype(np.float64)]),
        "label": np.concatenate([label, np.where(tool_err, "timeout", "ok")]),
        "explanation": np.repeat(["unsupported: 'Parcel Express'", ""], traces),
        "service": np.concatenate([cols["service"][pos == 4], cols["service"][pos == 3]]),
        "operation": np.repeat(["chat", "execute_tool"], traces),
        "model": np.concatenate([cols["response_model"][pos == 4], np.full(traces, "")]),
        "release": np.concatenate([cols["release"][pos == 4], cols["release"][pos == 3]]),
        "environment": np.concatenate([cols["environment"][pos == 4], cols["environment"][pos == 3]]),
        "span_start_time": pa.array(np.concatenate([start[pos == 4], start[pos == 3]]), pa.timestamp("ns", tz="UTC")),
        "scored_at": scored_at, "details": np.full(sc_n, '{"confident": true}'),
    }, schema=SCORE_SCHEMA)  # fmt: skip
    fb = np.flatnonzero(g.random(traces) < 0.01)
    neg = g.random(len(fb)) < 0.3
    fb_at = pa.array((trace_start[fb] + 60_000_000_000) // 1_000_000, pa.timestamp("ms", tz="UTC"))
    feedback = pa.table({
        "tenant": tenant[fb * SPANS_PER_TRACE], "id": [f"fb-{first_trace + i}" for i in fb],
        "trace_id": trace_ids[fb], "span_id": np.full(len(fb), ""), "name": np.full(len(fb), "thumbs"),
        "value": np.where(neg, 0.0, 1.0), "label": np.full(len(fb), ""), "comment": np.full(len(fb), "bench"),
        "source": np.full(len(fb), "user"), "author": np.full(len(fb), ""), "version": np.full(len(fb), ""),
        "negative": neg.astype(np.uint8), "created_at": fb_at, "updated_at": fb_at,
    }, schema=FEEDBACK_SCHEMA)  # fmt: skip
    return spans, scores, feedback


def fill(store: Store, spans: int, days: float, batch_traces: int) -> float:
    """Insert about `spans` spans, oldest first, as a collector writes them: each INSERT holds the
    traces of its own slice of the range, so its parts do not overlap the others' in time (an
    INSERT of traces from all over the week writes a part per day, each covering the whole day,
    and a read by time range then opens every one of them). Returns the seconds taken."""
    pool = _pool(random.Random(7))
    now_ns = time.time_ns()
    traces = spans // SPANS_PER_TRACE
    t0 = time.perf_counter()
    done = 0
    while done < traces:
        k = min(batch_traces, traces - done)
        s, sc, fb = _batch(done, k, now_ns, days, pool, seed=done, span=(done / traces, (done + k) / traces))
        store.insert_arrow("spans", s)
        store.insert_arrow("scores", sc)
        store.insert_arrow("feedback", fb)
        done += k
        print(f"  {done * SPANS_PER_TRACE:>11,} spans  {time.perf_counter() - t0:7.1f} s", flush=True)
    return time.perf_counter() - t0


async def _time(client: httpx.AsyncClient, path: str | Callable[[int], str],
                params: dict[str, Any] | Callable[[int], dict[str, Any]], repeat: int,
                ) -> tuple[list[float], list[float], int]:  # fmt: skip
    """Wall times and this process's CPU times (ms) of `repeat` requests: the engine runs in-process,
    so CPU time counts its threads too and says what a request costs on a busy machine."""
    out, cpu = [], []
    rows = 0
    for i in range(repeat + 2):
        p = path(i) if callable(path) else path
        q = params(i) if callable(params) else params
        t0, c0 = time.perf_counter(), time.process_time()
        r = await client.get(p, params=q)
        dt, dc = (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000
        if r.status_code != 200:
            raise SystemExit(f"{p} {q}: {r.status_code} {r.text[:300]}")
        body = r.json()
        rows = len(body.get("traces") or body.get("sessions") or body.get("spans") or [])
        if i >= 2:  # two warm-ups: the first read of a column pays for the page cache
            out.append(dt)
            cpu.append(dc)
    return out, cpu, rows


def merge_days(store: Store) -> float:
    """Merge each day before the newest one of the tables the engine merges by age into one part,
    as it does an hour after a day's last insert (migration 19); prints the seconds per table,
    returns the total."""
    client = open_client(store.cfg)
    t0 = time.perf_counter()
    try:
        for table in FORCE_MERGED_TABLES:
            t1 = time.perf_counter()
            days = [r[0] for r in client.query(
                "SELECT DISTINCT partition_id FROM system.parts WHERE database = {db:String} AND table = {t:String} "
                "AND active ORDER BY partition_id", parameters={"db": store.cfg.database, "t": table},
            ).result_rows][:-1]  # fmt: skip
            for day in days:  # ids the engine made (digits: 20261201, or a block's 1796601600), never outside input
                assert day.isalnum(), day
                client.command(f"OPTIMIZE TABLE {store.cfg.database}.{table} PARTITION ID '{day}' FINAL")
            print(f"  merged {len(days)} partitions of {table} in {time.perf_counter() - t1:.1f} s", flush=True)
    finally:
        client.close()
    return time.perf_counter() - t0


def wait_for_mutations(store: Store) -> float:
    """Block until the migrations' MATERIALIZE mutations are done, so the timing sees the indexes."""
    client = open_client(store.cfg)
    t0 = time.perf_counter()
    try:
        while int(client.command(  # type: ignore[arg-type]
            "SELECT count() FROM system.mutations WHERE database = {db:String} AND NOT is_done",
            parameters={"db": store.cfg.database},
        )):  # fmt: skip
            time.sleep(1)
    finally:
        client.close()
    return time.perf_counter() - t0


def _pct(xs: list[float], q: float) -> float:
    return statistics.quantiles(xs, n=100, method="inclusive")[int(q) - 1] if len(xs) > 1 else xs[0]


async def _samples(c: httpx.AsyncClient, until: dict[str, str]) -> tuple[list[str], list[str], list[str]]:
    """Trace ids spread over the week (the highest-scored ones: 40 to time, 40 more to warm up on)
    and session ids, read through the API."""
    traces = (await c.get("/api/v1/traces", params={"sort": "score", "limit": "80", **until})).json()["traces"]
    sessions = (await c.get("/api/v1/sessions", params={"limit": "40", **until})).json()["sessions"]
    ids = [t["trace_id"] for t in traces]
    return ids[:40], ids[40:], [s["session_id"] for s in sessions]


def anchor(store: Store) -> datetime:
    """The fill's "now": just after the newest span. A later --reuse asks for the ranges the fill
    meant (the last 7 days before it), so its figures compare with the fill's own."""
    client = open_client(store.cfg)
    try:
        ns = int(client.command(  # type: ignore[arg-type]
            "SELECT toUnixTimestamp64Nano(max(start_time)) FROM spans WHERE tenant = {t:String}", parameters={"t": TENANT}
        ))  # fmt: skip
    finally:
        client.close()
    return datetime.fromtimestamp(ns // 1_000_000_000 + 1, UTC)


async def bench(store: Store, repeat: int, only: str = "") -> list[tuple[str, float, float, float, int]]:
    auth = Authenticator({})
    auth.add_key(KEY, TENANT)
    registry = CollectorRegistry()
    app = build_app([ApiService(store, auth, registry)], registry)
    now = anchor(store)
    until = {"until": now.isoformat()}
    since = (now - timedelta(days=1)).isoformat()
    traces: list[str] = []
    sessions: list[str] = []
    # A filter that picks few traces asks another value in each request: the engine's query condition
    # cache remembers which granules a condition ruled out, so the same condition again reads less
    # than a user's first search does.
    phrases = ["warranty policy", "shipping delays", "order status", "tracking numbers", "carrier handoffs",
               "premium plan", "quarterly revenue", "revenue figures", "customer asked", "passage described"]  # fmt: skip
    cases: list[tuple[str, str | Callable[[int], str], dict[str, Any] | Callable[[int], dict[str, Any]]]] = [
        ("trace by id", lambda i: f"/api/v1/traces/{traces[i % len(traces)]}", {}),  # no range
        ("list: first page", "/api/v1/traces", until),
        ("list: since 1 day", "/api/v1/traces", {"since": since} | until),
        ("list: service", "/api/v1/traces", {"service": "billing"} | until),
        ("list: model", "/api/v1/traces", {"model": "gpt-4o"} | until),
        ("list: release", "/api/v1/traces", {"release": "2.6.0-rc1"} | until),
        ("list: environment", "/api/v1/traces", {"environment": "staging"} | until),
        ("list: operation", "/api/v1/traces", {"operation": "execute_tool"} | until),
        ("list: status=error", "/api/v1/traces", {"status": "error"} | until),
        ("list: session", "/api/v1/traces", lambda i: {"session_id": f"sess-{77 + i}"} | until),
        ("list: user", "/api/v1/traces", lambda i: {"user_id": f"user-{42 + i}"} | until),
        ("list: scorer+label", "/api/v1/traces", {"scorer": "hallucination", "label": "hallucinated"} | until),
        ("list: score range", "/api/v1/traces", lambda i: {"min_score": 0.9 + i / 1000} | until),
        ("list: feedback=negative", "/api/v1/traces", {"feedback": "negative"} | until),
        ("list: text", "/api/v1/traces", lambda i: {"q": phrases[i % len(phrases)]} | until),
        ("list: sort=cost", "/api/v1/traces", {"sort": "cost"} | until),
        ("list: sort=duration", "/api/v1/traces", {"sort": "duration"} | until),
        ("list: sort=score", "/api/v1/traces", {"sort": "score"} | until),
        ("sessions: first page", "/api/v1/sessions", until),
        ("session by id", lambda i: f"/api/v1/sessions/{sessions[i % len(sessions)]}", until),
    ]
    out = []
    transport = httpx.ASGITransport(app=app)
    headers = {"authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://bench", headers=headers, timeout=120) as c:
        got_traces, warm, got_sessions = await _samples(c, until)
        traces += got_traces
        sessions += got_sessions
        for name, path, params in cases:
            if only not in name:
                continue
            if name == "trace by id":
                # A running API has read other traces of the same days: the engine has their parts'
                # marks and indexes cached. The timed traces are read for the first time here.
                for trace_id in warm:
                    await c.get(f"/api/v1/traces/{trace_id}")
            times, cpu, rows = await _time(c, path, params, repeat)
            out.append((name, _pct(times, 50), _pct(times, 95), _pct(cpu, 50), rows))
            print(
                f"  {name:<24} p50 {out[-1][1]:8.1f} ms   p95 {out[-1][2]:8.1f} ms   cpu p50 {out[-1][3]:8.1f} ms"
                f"   rows {rows}",
                flush=True,
            )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, default=10_000_000, help="spans to fill (default 10M)")
    ap.add_argument("--days", type=float, default=7.0, help="spread the spans over this many days")
    ap.add_argument("--batch-traces", type=int, default=40_000, help="traces per INSERT (x5 spans)")
    ap.add_argument("--repeat", type=int, default=20, help="timed requests per case (after 2 warm-ups)")
    ap.add_argument("--data-dir", type=Path, default=None, help="default: a new directory under /tmp")
    ap.add_argument(
        "--keep-data", action="store_true", help="keep the data directory (default: removed, unless --reuse)"
    )
    ap.add_argument("--reuse", action="store_true", help="skip the fill: time an existing --data-dir")
    ap.add_argument(
        "--merge-days",
        action="store_true",
        help="merge the days before the newest first (a store that has run a while)",
    )
    ap.add_argument("--only", default="", help="time only the requests whose name contains this")
    a = ap.parse_args()
    data = a.data_dir or Path(tempfile.mkdtemp(prefix="driftline-query-bench-", dir="/tmp"))
    store = Store(StoreConfig(f"chdb://{data}", "driftline"), retention_days=max(30, int(a.days) + 2))
    try:
        store.migrate()
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cpus)")
        if not a.reuse:
            print(f"filling {a.spans:,} spans into {data}")
            secs = fill(store, a.spans, a.days, a.batch_traces)
            print(f"filled in {secs:.0f} s ({a.spans / secs:,.0f} spans/s)")
        print(f"waited {wait_for_mutations(store):.0f} s for index and projection builds")
        if a.merge_days:
            print(f"merged the days before the newest in {merge_days(store):.0f} s")
        print(f"timing {a.repeat} requests per case (tenant {TENANT}: ~90% of the spans)")
        results = asyncio.run(bench(store, a.repeat, a.only))
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print("\n| request | p50 ms | p95 ms | CPU p50 ms | rows |\n|---|---:|---:|---:|---:|")
        for name, p50, p95, cpu50, rows in results:
            print(f"| {name} | {p50:.1f} | {p95:.1f} | {cpu50:.1f} | {rows} |")
    finally:
        store.close()
        if not (a.keep_data or a.reuse):  # a store it did not fill is not its to remove
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
