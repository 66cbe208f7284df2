"""The store's own ceiling: how many spans/s the embedded store takes when the rows cost nothing.

The rows are the ingest benchmark's chat spans (tools/loadgen.py), built once by the collector's own
Preparer before the clock starts. Each batch is that table again with fresh trace and span ids (two
columns replaced; the others shared, so memory stays flat and ReplacingMergeTree keeps every row).
One thread then INSERTs the batches back to back for `--seconds`, as the collector's writer does,
through Store.insert_arrow on a migrated store: the spans table, its skip indexes, the views that
feed trace_rows and trace_index, and the merges all that causes run in this process on every core.

Prints spans/s and CPU per span, by thread role (the INSERT pipelines with their views, the
merges). Whatever parses and normalizes OTLP (Python or the engine) comes on top of these figures.
`--no-views` drops the views first: the spans table alone.

    python bench/write_floor.py [--seconds 20] [--batch 10000] [--no-views]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools/ sits beside bench/, not installed

from ingest_bench import cpu_by_thread_role

from driftline.collector.workers import PrepareOptions, build_preparer
from driftline.store import Store, StoreConfig
from driftline.store.connection import open_client
from tools.loadgen import llm_request


def _batch(rows: pa.Table, n: int) -> pa.Table:
    """`rows` with trace and span ids of their own: the batch number over each id's first 8 hex digits."""
    tag = f"{n:08x}"
    for name in ("trace_id", "span_id", "parent_span_id"):
        i = rows.schema.get_field_index(name)
        col = rows.column(i)
        fresh = pc.if_else(pc.equal(col, ""), col, pc.utf8_replace_slice(col, 0, 8, tag))
        rows = rows.set_column(i, name, fresh.cast(col.type))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--batch", type=int, default=10_000, help="spans per INSERT (a multiple of 100)")
    ap.add_argument("--no-views", action="store_true", help="drop the materialized views first: the spans table alone")
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    start_ns = time.time_ns() - 3600 * 10**9
    preparer = build_preparer(PrepareOptions(max_request_bytes=1 << 26, max_value_bytes=65536))
    tables = []
    for i in range(args.batch // 100):
        body = llm_request(100, seed=i, start_ns=start_ns).SerializeToString()
        table = preparer.prepare("bench", ExportTraceServiceRequest.FromString(body), 1).table
        assert table is not None
        tables.append(table)
    rows = pa.concat_tables(tables).combine_chunks()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = StoreConfig(f"chdb://{tmp}/db", "bench")
        store = Store(cfg, retention_days=30)
        store.migrate()
        client = open_client(cfg)
        views = [
            r[0]
            for r in client.query(
                "SELECT name FROM system.tables WHERE database = 'bench' AND engine = 'MaterializedView'"
            ).result_rows
        ]
        if args.no_views:
            for view in views:
                client.command(f"DROP VIEW bench.{view}")
        print(f"{rows.num_rows:,} spans per INSERT; views: {'none' if args.no_views else ', '.join(sorted(views))}")
        store.insert_arrow("spans", _batch(rows, 0))  # warm: first parts, first plans
        n = 1
        cpu0 = cpu_by_thread_role("self", "Python")
        t0 = time.monotonic()
        while time.monotonic() - t0 < args.seconds:
            store.insert_arrow("spans", _batch(rows, n))
            n += 1
        wall = time.monotonic() - t0
        cpu_end = cpu_by_thread_role("self", "Python")
        cpu = {role: cpu_end[role] - cpu0.get(role, 0.0) for role in cpu_end}
        spans = (n - 1) * rows.num_rows
        parts = client.query(
            "SELECT table, count() FROM system.parts WHERE database = 'bench' AND active GROUP BY table ORDER BY table"
        ).result_rows
        client.close()
        store.close()
    total = sum(cpu.values())
    print(f"{spans:,} spans in {wall:.1f} s: {spans / wall:,.0f} spans/s stored")
    print(f"CPU: {total / spans * 1e6:.1f} us per span, {spans / total:,.0f} spans per CPU-second")
    print(
        "  per span: "
        + ", ".join(f"{k} {v / spans * 1e6:.1f} us" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]) if v > 0)
    )
    print("active parts at the end: " + ", ".join(f"{t} {c}" for t, c in parts))
    print(f"load average after: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
