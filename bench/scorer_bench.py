"""Scorer throughput: every scorer's scored spans/s on stored data (query, score, write), and its
pure scoring speed (score() alone, one core).

    python bench/scorer_bench.py [--traces 2000] [--doc-chars 3000] [--profile hallucination]

Traces are RAG agent runs stored through the collector's consume path on the embedded store:
a retrieval span with a passage of about `--doc-chars` characters (3,000 by default: the issue's
3 KB documents), a tool call (1 in 5 failing) and a chat span whose answer is grounded or not.
"score() spans/s" is one scorer scoring on one thread, no I/O: the single-core figure.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import re
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from prometheus_client import CollectorRegistry

from driftline.collector.service import CollectorService
from driftline.config import UpSettings, load_settings
from driftline.scorers.base import TraceContext
from driftline.scorers.metrics import ScorerMetrics
from driftline.scorers.registry import build_scorers
from driftline.scorers.runner import JobOptions, ScorerJob
from driftline.store import Store
from driftline.store.connection import open_client

SENTENCES = [
    "The warehouse in Leeds ships orders placed before 2 pm on the same day.",
    "Refunds are issued within 14 days of the returned item arriving.",
    "Premium members get free shipping on orders above 40 pounds.",
    "The support line is open from 8 am to 6 pm on weekdays.",
    "Tracking numbers are emailed once the carrier collects the parcel.",
    "International orders can take up to 10 working days to arrive.",
]


def _kv(k: str, v: str | int) -> KeyValue:
    return KeyValue(key=k, value=AnyValue(string_value=v) if isinstance(v, str) else AnyValue(int_value=v))


def passage_of(rng: random.Random, chars: int) -> str:
    """About `chars` characters of policy sentences, their numbers varied so no passage repeats."""
    out: list[str] = []
    while sum(len(x) + 1 for x in out) < chars:
        s = rng.choice(SENTENCES)
        out.append(re.sub(r"\d+", lambda m: str(int(m.group()) + rng.randint(0, 9)), s))
    return " ".join(out)


def rag_request(n_traces: int, seed: int, doc_chars: int = 3000) -> ExportTraceServiceRequest:
    rng = random.Random(seed)
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend([_kv("service.name", "support-bot"), _kv("service.version", "3.1.0")])
    ss = rs.scope_spans.add()
    t0 = time.time_ns() - 120_000_000_000
    for i in range(n_traces):
        tid, root = rng.randbytes(16), rng.randbytes(8)
        start = t0 + i * 10_000_000
        passage = passage_of(rng, doc_chars)
        grounded = rng.random() < 0.8
        answer = (
            passage.split(".")[0] + "." if grounded else "Refunds are issued within 3 days and shipping is always free."
        )
        spans = [
            Span(trace_id=tid, span_id=root, name="invoke_agent bot", start_time_unix_nano=start,
                 end_time_unix_nano=start + 900_000_000, attributes=[_kv("gen_ai.operation.name", "invoke_agent")]),
            Span(trace_id=tid, span_id=rng.randbytes(8), parent_span_id=root, name="retrieve",
                 start_time_unix_nano=start + 1_000_000, end_time_unix_nano=start + 50_000_000,
                 attributes=[_kv("openinference.span.kind", "RETRIEVER"),
                             _kv("retrieval.documents.0.document.content", passage)]),
            Span(trace_id=tid, span_id=rng.randbytes(8), parent_span_id=root, name="execute_tool track",
                 start_time_unix_nano=start + 60_000_000, end_time_unix_nano=start + 200_000_000,
                 attributes=[_kv("gen_ai.operation.name", "execute_tool"), _kv("gen_ai.tool.name", "track"),
                             _kv("gen_ai.tool.call.arguments", json.dumps({"order": i})),
                             _kv("gen_ai.tool.call.result", json.dumps({"status": "shipped"}))],
                 status=Status(code=Status.STATUS_CODE_ERROR, message="timeout") if i % 5 == 0 else None),
            Span(trace_id=tid, span_id=rng.randbytes(8), parent_span_id=root, name="chat gpt-4o-mini", kind=Span.SPAN_KIND_CLIENT,
                 start_time_unix_nano=start + 210_000_000, end_time_unix_nano=start + 880_000_000,
                 attributes=[_kv("gen_ai.operation.name", "chat"), _kv("gen_ai.provider.name", "openai"),
                             _kv("gen_ai.request.model", "gpt-4o-mini"), _kv("gen_ai.usage.input_tokens", 700),
                             _kv("gen_ai.usage.output_tokens", 40),
                             _kv("gen_ai.input.messages", json.dumps([{"role": "user", "parts": [
                                 {"type": "text", "content": "When do refunds arrive?"}]}])),
                             _kv("gen_ai.output.messages", json.dumps([{"role": "assistant", "parts": [
                                 {"type": "text", "content": answer}]}]))]),
        ]  # fmt: skip
        ss.spans.extend(spans)
    return req


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--traces", type=int, default=2000)
    ap.add_argument("--doc-chars", type=int, default=3000, help="characters of each retrieved passage")
    ap.add_argument("--profile", default="", metavar="SCORER", help="profile this scorer's score() (cProfile, top 25)")
    args = ap.parse_args()
    data = Path(tempfile.mkdtemp(prefix="driftline-scorer-bench-"))
    s = load_settings(UpSettings, environ={}, data_dir=data, api_keys="k=bench", grpc_enabled=False)
    rt = CollectorService(s)
    rt.start()
    for chunk in range(0, args.traces, 100):
        req = rag_request(min(100, args.traces - chunk), seed=chunk, doc_chars=args.doc_chars)
        rt.ingest("bench", req.SerializeToString(), "", "application/x-protobuf", "bench")
    rt.flush(120)
    print(f"stored {args.traces} traces ({args.traces * 4} spans), passages of ~{args.doc_chars} characters")
    metrics = ScorerMetrics(CollectorRegistry())
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    # CPU-seconds (this process's threads, the embedded engine's included) beside wall time: on a
    # shared machine spans per CPU-second is the figure that says how many cores a scorer needs.
    # score() alone runs on this thread: its spans per thread-CPU-second is the one-core figure, the
    # same whatever else the machine runs; its wall-clock rate is shown beside it.
    print(
        f"{'scorer':<22}{'scored':>8}{'job spans/s':>13}{'job spans/CPU-s':>17}{'score() spans/s':>17}"
        f"{'score() spans/CPU-s':>21}"
    )
    profiles: list[tuple[str, cProfile.Profile]] = []
    for scorer in build_scorers(s, metrics):
        job = ScorerJob(scorer, rt.store, JobOptions(settle=timedelta(0), max_spans_per_run=10**7))
        t, cpu = time.perf_counter(), time.process_time()
        r = job.run_once()
        dt, dcpu = time.perf_counter() - t, time.process_time() - cpu
        # pure scoring: the same candidates, no I/O
        rows = job._candidates("bench", job.clock() - timedelta(days=1), job.clock(), skip_scored=False)
        rows = [x for x in rows if scorer.applies(x)]
        traces = (
            rt.store.scoring.trace_spans("bench", sorted({x["trace_id"] for x in rows})) if scorer.needs_trace else {}
        )
        t, tcpu = time.perf_counter(), time.thread_time()
        for x in rows:
            scorer.score(x, TraceContext(traces.get(x["trace_id"], ())))
        pure = len(rows) / max(1e-9, time.perf_counter() - t)
        pure_cpu = len(rows) / max(1e-9, time.thread_time() - tcpu)
        if scorer.name == args.profile:
            prof = cProfile.Profile()
            prof.enable()
            for x in rows:
                scorer.score(x, TraceContext(traces.get(x["trace_id"], ())))
            prof.disable()
            profiles.append((scorer.name, prof))
        print(
            f"{scorer.name:<22}{r.scored:>8}{r.scored / dt:>13,.0f}{r.scored / max(dcpu, 1e-9):>17,.0f}{pure:>17,.0f}"
            f"{pure_cpu:>21,.0f}"
        )
    print(f"load average: {os.getloadavg()[0]:.1f} at the end")
    for name, prof in profiles:
        print(f"\nprofile of {name}.score(), by cumulative time:")
        pstats.Stats(prof, stream=sys.stdout).sort_stats("cumulative").print_stats(25)
    _print_disk(rt.store)
    rt.stop()
    return 0


def _print_disk(store: Store) -> None:
    """Bytes per score on disk once merged: every scorer's scores of the run, in one table."""
    c = open_client(store.cfg)
    c.command(f"OPTIMIZE TABLE {store.cfg.database}.scores FINAL")
    rows, disk = c.query(
        "SELECT sum(rows), sum(bytes_on_disk) FROM system.parts "
        f"WHERE database = '{store.cfg.database}' AND table = 'scores' AND active"
    ).result_rows[0]
    c.close()
    print(f"scores on disk: {rows:,} rows, {disk / max(rows, 1):,.0f} bytes/score")


if __name__ == "__main__":
    sys.exit(main())
