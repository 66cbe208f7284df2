"""Chaos: poison spans, store outages and SIGKILLs of a real `driftline up`, many tenants at once.

The collector runs as its own process over the ClickHouse HTTP interface (tests/support), so the
test can take the store away and SIGKILL the collector at awkward moments: inside the flush window,
with the store down and a backlog spooled, and while the replay runs. At the end every span a
collector accepted (200, minus what partial_success rejected) is stored exactly once or in the
quarantine, for every tenant.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import clickhouse_connect
import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from driftline.collector.quarantine import Quarantine
from tests.support.clickhouse_http import ClickHouseHTTPServer
from tests.support.spans import chat_request, ids_of, set_attr

TENANTS = {f"chaos-key-{i}": f"chaos-{i}" for i in range(8)}
_DAY_NS = 86_400 * 10**9


def _poisoned(rng: random.Random, seed: int) -> tuple[ExportTraceServiceRequest, set[str]]:
    """A request with, now and then, spans the live path must reject (their ids returned): a token
    count past Int64 (it broke the replay), a start 1 ns after the epoch, a span in 2262. Some
    requests spread over 120 days (ClickHouse's partitions-per-INSERT limit is 100)."""
    if rng.random() < 0.1:
        return chat_request(120, seed, start_ns=time.time_ns() - 2 * _DAY_NS, day_step=1), set()
    req = chat_request(rng.randint(5, 30), seed)
    spans = req.resource_spans[0].scope_spans[0].spans
    planted: set[str] = set()
    for span in rng.sample(list(spans), k=min(len(spans), rng.choice([0, 0, 1, 2]))):
        kind = rng.choice(["overflow", "epoch", "2262"])
        if kind == "overflow":
            set_attr(span, "gen_ai.usage.input_tokens", "99999999999999999999")
        elif kind == "epoch":
            span.start_time_unix_nano, span.end_time_unix_nano = 1, 2
        else:
            span.start_time_unix_nano = 9_200_000_000 * 10**9
            span.end_time_unix_nano = span.start_time_unix_nano + 1
        planted.add(span.span_id.hex())
    return req, planted


class Collector:
    def __init__(self, env: dict[str, str]) -> None:
        self.p = subprocess.Popen(
            [sys.executable, "-m", "driftline.cli", "up"], env=env, stderr=subprocess.PIPE, text=True
        )
        assert self.p.stderr is not None
        for line in self.p.stderr:
            m = re.search(r"OTLP/HTTP (http://\S+)/v1/traces", line)
            if m:
                self.url = m.group(1)
                threading.Thread(target=self.p.stderr.read, daemon=True).start()  # never block its log
                return
        raise AssertionError("collector did not start")

    def end(self, sig: signal.Signals) -> None:
        self.p.send_signal(sig)
        self.p.wait(60)
        assert self.p.stderr is not None
        self.p.stderr.close()


def test_chaos_every_accepted_span_is_stored_or_quarantined(
    tmp_path: Path, ch_http: ClickHouseHTTPServer, database: str
) -> None:
    rng = random.Random(11)
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
    env.update(
        DRIFTLINE_DATA_DIR=str(data),
        DRIFTLINE_CLICKHOUSE_URL=ch_http.url,
        DRIFTLINE_DATABASE=database,
        DRIFTLINE_HTTP_PORT="0",
        DRIFTLINE_GRPC_PORT="0",
        DRIFTLINE_METRICS_PORT="0",
        DRIFTLINE_DECODE_WORKERS="0",
        DRIFTLINE_FLUSH_INTERVAL_MS="300",
        DRIFTLINE_WRITE_RETRIES="0",
        DRIFTLINE_API_KEYS=",".join(f"{k}={t}" for k, t in TENANTS.items()),
    )
    accepted: dict[str, set[str]] = defaultdict(set)
    seed = 0

    def send(c: Collector, n: int) -> None:
        nonlocal seed
        for _ in range(n):
            key = rng.choice(list(TENANTS))
            req, planted = _poisoned(rng, seed := seed + 1)
            r = httpx.post(
                f"{c.url}/v1/traces",
                content=req.SerializeToString(),
                headers={"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {key}"},
                timeout=30,
            )
            if r.status_code != 200:  # retry-later: the client keeps those spans
                assert r.status_code in (429, 503), r.text
                continue
            assert ExportTraceServiceResponse.FromString(r.content).partial_success.rejected_spans == len(planted)
            accepted[TENANTS[key]] |= ids_of(req) - planted

    try:
        c = Collector(env)  # 1) killed inside the flush window
        send(c, 15)
        c.end(signal.SIGKILL)

        c = Collector(env)  # 2) killed with the store down and a backlog in the spool
        send(c, 8)
        ch_http.stop()
        send(c, 12)
        c.end(signal.SIGKILL)

        ch_http.start()
        c = Collector(env)  # 3) killed while it replays that backlog
        send(c, 4)
        c.end(signal.SIGKILL)

        c = Collector(env)  # 4) an outage, then it runs on: the writer drains all on its own timer
        send(c, 6)
        ch_http.stop()
        send(c, 6)
        ch_http.start()
        send(c, 6)
        client = clickhouse_connect.get_client(dsn=ch_http.url)
        want = sum(len(ids) for ids in accepted.values())
        quarantined: dict[str, set[str]] = defaultdict(set)
        rows: list[tuple[str, str]] = []
        waited = threading.Event()
        for _ in range(600):  # bounded: the replay finishes within seconds
            for e in Quarantine(data / "quarantine").entries():
                quarantined[e.tenant] |= set(e.span_ids)
            rows = [
                (str(t), str(s))
                for t, s in client.query(f"SELECT tenant, span_id FROM {database}.spans FINAL").result_rows
            ]
            if len(rows) + sum(len(q) for q in quarantined.values()) >= want:
                break
            waited.wait(0.1)
        c.end(signal.SIGTERM)
        client.close()
    finally:
        if not ch_http.running:
            ch_http.start()
    stored: dict[str, set[str]] = defaultdict(set)
    for tenant, span in rows:
        stored[tenant].add(span)
    assert len(rows) == sum(len(s) for s in stored.values()), "a span was stored twice"
    assert len(accepted) >= 6 and want > 500
    for tenant in TENANTS.values():
        assert not stored[tenant] & quarantined[tenant], tenant
        assert stored[tenant] | quarantined[tenant] == accepted[tenant], tenant
