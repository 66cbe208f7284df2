"""The engine's INSERT ... SELECT (store/ingest.py `EngineRows.store`) against the Python path's
write of the same requests (Preparer.prepare -> Arrow -> one Store.insert_arrow), in one process
on the embedded store, rounds alternated. CPU seconds of this process (the engine runs in it),
per stored span; the engine's query runs on `--threads` threads.

The load is tools/loadgen.py's chat requests (bench/ingest_bench.py's), all written by the engine.

    taskset -c 1 python bench/engine_store_bench.py [--requests 400] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools/ sits beside bench/, not installed

from driftline.collector.workers import PrepareOptions, build_preparer
from driftline.pricing import Pricer
from driftline.store import Store, StoreConfig
from driftline.store.connection import open_client
from driftline.store.ingest import EngineRows
from tools.loadgen import llm_request


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--spans", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="max_threads of the engine's query")
    args = ap.parse_args()
    t0 = time.time_ns() - 3600 * 10**9
    bodies = [llm_request(args.spans, seed=i, start_ns=t0).SerializeToString() for i in range(args.requests)]
    n = args.requests * args.spans
    print(f"load average before: {os.getloadavg()}")
    print(f"{args.requests} requests x {args.spans} spans, {sum(map(len, bodies)) / 1e6:.1f} MB, one batch")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = StoreConfig(f"chdb://{tmp}/db", "bench")
        store = Store(cfg, retention_days=30)
        store.migrate()
        client = open_client(cfg, settings={"max_threads": args.threads})
        engine = EngineRows(client, pricer=Pricer(), tmp_dir=tmp)
        preparer = build_preparer(PrepareOptions(max_request_bytes=1 << 26, max_value_bytes=65536))
        engine.store("bench.spans", [("warm", b) for b in bodies[:3]], 0)  # the price table, the functions

        def python() -> float:
            c0 = time.process_time()
            tables = [preparer.prepare("p", ExportTraceServiceRequest.FromString(b), 1).table for b in bodies]
            store.insert_arrow("spans", pa.concat_tables([t for t in tables if t is not None]))
            return time.process_time() - c0

        def engine_store() -> float:
            c0 = time.process_time()
            done = engine.store("bench.spans", [("e", b) for b in bodies], 1)
            cpu = time.process_time() - c0
            assert (done.spans, done.python) == (n, []), (done.spans, done.python[:5])
            return cpu

        py: list[float] = []
        eng: list[float] = []
        for _ in range(args.rounds):
            py.append(python())
            eng.append(engine_store())
        engine.close()
        client.close()
        store.close()
    for name, runs in (("python", py), ("engine", eng)):
        cpu = statistics.median(runs)
        print(
            f"{name}: {cpu / n * 1e6:6.1f} us CPU/span, {n / cpu:,.0f} spans per CPU-second "
            f"(rounds {[round(r, 2) for r in runs]} s)"
        )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
