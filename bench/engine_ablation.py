"""Where the engine's per-span CPU goes: store/ingest_sql.py's query cut after each layer.

Each variant is `INSERT INTO <Null table> SELECT * FROM (<the query up to a layer>)`, run on one
request and on all of them (the slope between the two is the per-span cost, planning apart), in
rounds that interleave the variants so that a change of the machine's load falls on each alike:

    python bench/engine_ablation.py [--requests 200] [--rounds 3]

The layers, cumulative (each row's "adds" is its slope minus the row above's):
- parse: the Protobuf rows alone (every field of the schema read),
- unnest: ARRAY JOIN over resources / scopes / spans, the resource's attribute map,
- inner: ids, kind, status, attribute texts and keys, value deferrals, event names,
- maps: the attribute map, the count map and the count-format check,
- families: the convention families' flags,
- messages: store/ingest_messages.py message_layers (JSON message lists, indexed attributes),
- chains: the spec's columns (ingest_spec.COLUMNS) and the envelope,
- tokens: the token accounting,
- texts: ingest_messages.text_columns (message JSON, text fallbacks, attributes),
- cost: store/ingest_cost.py (the whole query, as EngineRows runs it with a Pricer),
- mergetree: the whole query inserted into a MergeTree table instead of a Null one.
The layers' SQL is the query's own, taken from the functions span_rows_sql composes it with.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools/ sits beside bench/, not installed

from clickhouse_connect.driver.client import Client
from engine_bench import bodies_file, primed  # bench/, beside this script (sys.path[0])

from driftline.store import ingest_sql
from driftline.store.connection import StoreConfig, open_client
from tools.loadgen import llm_request


@contextmanager
def _captured(layers: dict[str, str]) -> Iterator[None]:
    """The SQL each of span_rows_sql's composing functions is handed (the layer below it)."""
    originals: dict[str, Callable[..., str]] = {}

    def wrap(name: str, arg_names: tuple[str, ...]) -> None:
        fn: Callable[..., str] = getattr(ingest_sql, name)
        originals[name] = fn

        def spy(below: str, *args: object, **kwargs: object) -> str:
            out = fn(below, *args, **kwargs)
            layers[arg_names[0]] = below
            if len(arg_names) > 1:
                layers[arg_names[1]] = out
            return out

        setattr(ingest_sql, name, spy)

    wrap("_unnest", ("_source", "unnest"))
    wrap("message_layers", ("families", "messages"))
    wrap("_tokens_sql", ("chains", "tokens"))
    wrap("cost_layer", ("texts", "cost"))
    try:
        yield
    finally:
        for name, fn in originals.items():
            setattr(ingest_sql, name, fn)


def _below(sql: str) -> str:
    """The subquery of a layer `SELECT ... FROM (<subquery>)` (the first FROM outside brackets
    and quotes)."""
    depth, quoted, i = 0, False, 0
    while i < len(sql):
        c = sql[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == "'":
                quoted = False
        elif c == "'":
            quoted = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif depth == 0 and sql.startswith(" FROM (", i):
            return sql[i + len(" FROM (") : -1]
        i += 1
    raise ValueError("no subquery")


def layer_sqls(source: str) -> dict[str, str]:
    layers: dict[str, str] = {}
    with _captured(layers):
        full = ingest_sql.span_rows_sql(source, priced=True)
    if layers["cost"] != full:
        raise RuntimeError("cost_layer is not the query's top layer")
    families = layers["families"]
    maps = _below(families)
    inner = maps
    while not inner.startswith("SELECT lower(hex(sp.trace_id))"):
        inner = _below(inner)
    return {
        "parse": f"SELECT resource_spans FROM {source}",
        "unnest": layers["unnest"],
        "inner": inner,
        "maps": maps,
        "families": families,
        "messages": layers["messages"],
        "chains": layers["chains"],
        "tokens": layers["tokens"],
        "texts": layers["texts"],
        "cost": full,
    }


class _Runner:
    def __init__(self, client: Client, tmp: str) -> None:
        self.client = client
        self.tmp = tmp
        self.schema = primed(client, tmp)
        self.settings = ingest_sql.schema_settings(self.schema)
        # An INSERT squashes the SELECT's blocks into bigger ones (a copy of every column): on a
        # wide intermediate layer that copy, not the layer's work, would be measured.
        self.no_squash = {**self.settings, "min_insert_block_size_rows": "0", "min_insert_block_size_bytes": "0"}
        self.layers = layer_sqls("{source}")
        probe = self._path([llm_request(1).SerializeToString()], "probe")
        for name, sql in self.layers.items():
            q = sql.replace("{source}", ingest_sql.file_source(probe))
            client.command(
                f"CREATE TABLE sink_{name} ENGINE = Null AS SELECT * FROM ({q}) LIMIT 0", settings=self.settings
            )
        q = self.layers["cost"].replace("{source}", ingest_sql.file_source(probe))
        client.command(
            f"CREATE TABLE sink_mergetree ENGINE = MergeTree ORDER BY (trace_id, start_time) "
            f"AS SELECT * FROM ({q}) LIMIT 0",
            settings=self.settings,
        )

    def _path(self, bodies: list[bytes], name: str) -> str:
        return bodies_file(self.tmp, bodies, name)

    def run(self, variant: str, path: str) -> float:
        layer = "cost" if variant == "mergetree" else variant
        sql = self.layers[layer].replace("{source}", ingest_sql.file_source(path))
        t0 = time.process_time()
        settings = self.settings if variant == "mergetree" else self.no_squash
        self.client.command(f"INSERT INTO sink_{variant} SELECT * FROM ({sql})", settings=settings)
        return time.process_time() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--spans", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="max_threads of the engine's query")
    ap.add_argument("--block", type=int, default=0, help="max_block_size (requests per block; 0: the default)")
    ap.add_argument("--only", default="", help="comma-separated variants (default: all)")
    args = ap.parse_args()
    bodies = [llm_request(args.spans, seed=i).SerializeToString() for i in range(args.requests)]
    print(f"load average before: {os.getloadavg()}")
    print(f"{args.requests} requests x {args.spans} spans, {sum(map(len, bodies)) / 1e6:.1f} MB")
    with tempfile.TemporaryDirectory() as tmp:
        client = open_client(StoreConfig(f"chdb://{tmp}/db", "default"), settings={"max_threads": args.threads})
        runner = _Runner(client, tmp)
        if args.block:
            runner.settings["max_block_size"] = runner.no_squash["max_block_size"] = str(args.block)
        variants = [*runner.layers, "mergetree"]
        if args.only:
            variants = [v for v in variants if v in args.only.split(",")]
        one = runner._path(bodies[:1], "one")
        all_ = runner._path(bodies, "all")
        for v in variants:
            runner.run(v, one)
        fixed: dict[str, list[float]] = {v: [] for v in variants}
        total: dict[str, list[float]] = {v: [] for v in variants}
        for _ in range(args.rounds):
            for v in variants:
                fixed[v].append(runner.run(v, one))
                total[v].append(runner.run(v, all_))
        client.close()
    spans = (args.requests - 1) * args.spans
    print(f"{'layer':10} {'planning ms':>11} {'us/span':>8} {'adds':>6}   (rounds' slopes)")
    slopes = {v: [(t - f) / spans * 1e6 for t, f in zip(total[v], fixed[v], strict=True)] for v in variants}
    prev = 0.0
    for v in variants:
        slope = statistics.median(slopes[v])
        below = statistics.median(slopes["cost"]) if v == "mergetree" and "cost" in slopes else prev
        print(
            f"{v:10} {statistics.median(fixed[v]) * 1e3:11.0f} {slope:8.1f} {slope - below:6.1f}   "
            f"({', '.join(f'{s:.1f}' for s in slopes[v])})"
        )
        if v != "mergetree":
            prev = slope
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
