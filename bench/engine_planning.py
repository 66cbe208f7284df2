"""Where the planning of the engine's ingest query (store/ingest_sql.py) goes, and what the query
costs per span all in (planning included) at the batch sizes a writer would send it:

    python bench/engine_planning.py [--sizes 1000,15000,50000] [--rounds 3] [--baseline COMMIT]

Prints, CPU time of this process (chDB runs in it), the median of `--repeat` runs:
- the query's size: bytes, SELECT layers, lambdas;
- the engine's own phase counters (system.events: parse, analysis, plan build, plan
  optimization, pipeline build) for the query on one request, on an empty input, and for
  EXPLAIN AST / QUERY TREE / PIPELINE of it; and the Protobuf schema load alone (a count over
  the same file with the same schema);
- the planning of the query cut after each of its layers (bench/engine_ablation.py's cuts);
- a Null table holding the raw requests with a materialized view holding the query: CPU of an
  insert of one request, and of ten requests sent as ten blocks (the view's query is planned
  again for every block);
- all-in CPU per span at each of `--sizes` spans per query (requests of 100 spans): the Python
  path's decode + normalize; the whole engine query inserted into a Null table; and the query
  rendered for the keys the batch carries (store/ingest_carried.py), the ask for the keys
  included, as EngineRows runs it. Rounds interleaved so that a change of the machine's load
  falls on each alike. With `--baseline COMMIT` the query
  and settings as that commit renders them run beside the current ones (its `driftline` package
  is unpacked with `git archive` and asked for them in a subprocess).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools/ sits beside bench/, not installed

from clickhouse_connect.driver.client import Client
from engine_ablation import layer_sqls  # bench/, beside this script (sys.path[0])
from engine_bench import bodies_file, primed, python_cpu

from driftline.collector.normalize import Normalizer
from driftline.pricing import Pricer
from driftline.store.connection import StoreConfig, open_client
from driftline.store.ingest_carried import carried, keys_sql
from driftline.store.ingest_sql import file_source, schema_settings, span_rows_sql
from driftline.store.otlp_schema import STRUCTURE
from tools.loadgen import llm_request

_PHASES = (
    "QueryParseMicroseconds",
    "QueryAnalysisMicroseconds",
    "QueryPlanBuildMicroseconds",
    "QueryPlanOptimizeMicroseconds",
    "QueryPipelineBuildMicroseconds",
)
_RENDER = (
    "import json, sys; from driftline.store.ingest_sql import schema_settings, span_rows_sql; "
    "print(json.dumps({'sql': span_rows_sql('{source}', priced=True), 'settings': schema_settings(sys.argv[1])}))"
)


def _baseline(commit: str, tmp: str, schema: str) -> tuple[str, dict[str, str]]:
    """The query and settings as `commit` renders them."""
    tree = os.path.join(tmp, "baseline")
    os.mkdir(tree)
    repo = Path(__file__).resolve().parents[1]
    archive = subprocess.run(["git", "-C", str(repo), "archive", commit, "driftline"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", tree], input=archive.stdout, check=True)
    out = subprocess.run(
        [sys.executable, "-c", _RENDER, schema], cwd=tree, check=True, capture_output=True, text=True
    ).stdout
    got = json.loads(out)
    return str(got["sql"]), dict(got["settings"])


class _Engine:
    def __init__(self, client: Client, tmp: str) -> None:
        self.client = client
        self.tmp = tmp
        self.schema = primed(client, tmp)
        self.settings = schema_settings(self.schema)
        self.one = self.path([llm_request(100).SerializeToString()], "one")

    def path(self, bodies: list[bytes], name: str) -> str:
        return bodies_file(self.tmp, bodies, name)

    def phases(self) -> dict[str, int]:
        rows = self.client.query(f"SELECT name, value FROM system.events WHERE name IN {_PHASES}").result_rows
        return {str(name): int(value) for name, value in rows}

    def cpu(self, run: Callable[[], object], repeat: int) -> tuple[float, dict[str, float]]:
        """Median CPU ms of `repeat` runs, and the phases (ms) of the last."""
        times = []
        phases: dict[str, float] = {}
        for _ in range(repeat):
            before = self.phases()
            t0 = time.process_time()
            run()
            times.append((time.process_time() - t0) * 1e3)
            after = self.phases()
            phases = {k: (after.get(k, 0) - before.get(k, 0)) / 1e3 for k in _PHASES}
        return statistics.median(times), phases

    def keys(self, path: str) -> frozenset[str]:
        return carried(self.client.query(keys_sql(path), settings=self.settings).result_rows[0][0])

    def sink(self, name: str, sql: str, settings: dict[str, str], by_keys: bool = False) -> Callable[[str], float]:
        """INSERT of the query's rows into a Null table: CPU seconds for one file of requests.
        `by_keys`: the query rendered for the keys the file's spans carry, asked first."""
        probe = sql.replace("{source}", file_source(self.one), 1)
        self.client.command(f"CREATE TABLE {name} ENGINE = Null AS SELECT * FROM ({probe}) LIMIT 0", settings=settings)

        def run(path: str) -> float:
            t0 = time.process_time()
            query = span_rows_sql("{source}", priced=True, carried=self.keys(path)) if by_keys else sql
            q = query.replace("{source}", file_source(path), 1)
            self.client.command(f"INSERT INTO {name} SELECT * FROM ({q})", settings=settings)
            return time.process_time() - t0

        return run


def _line(label: str, ms: float, phases: dict[str, float]) -> str:
    split = " ".join(f"{k.removeprefix('Query').removesuffix('Microseconds')} {v:.0f}" for k, v in phases.items())
    return f"  {label:44} {ms:7.0f} ms   ({split})"


def _planning(engine: _Engine, sql: str, repeat: int) -> None:
    client, st = engine.client, engine.settings
    q1 = sql.replace("{source}", file_source(engine.one), 1)
    empty = engine.path([], "empty")
    print(f"query: {len(sql):,} bytes, {sql.count('SELECT')} SELECT layers, {sql.count('->')} lambdas")
    keyed = span_rows_sql("{source}", priced=True, carried=engine.keys(engine.one))
    print(
        f"query for the benchmark's keys (store/ingest_carried.py): {len(keyed):,} bytes, "
        f"{keyed.count('SELECT')} SELECT layers, {keyed.count('->')} lambdas"
    )
    print("planning, one query (CPU ms, median; the phases of one run, ms):")
    for label, q in (
        ("query, one request (100 spans)", q1),
        ("query, empty input", sql.replace("{source}", file_source(empty), 1)),
        ("query for the batch's keys, one request", keyed.replace("{source}", file_source(engine.one), 1)),
        ("the keys asked, one request", keys_sql(engine.one)),
        ("EXPLAIN AST (parse)", f"EXPLAIN AST {q1}"),
        ("EXPLAIN QUERY TREE (parse + analysis)", f"EXPLAIN QUERY TREE {q1}"),
        ("EXPLAIN PIPELINE (+ plan, pipeline)", f"EXPLAIN PIPELINE {q1}"),
        ("schema load: count() over the same file", f"SELECT count() FROM {file_source(engine.one)}"),
    ):
        print(_line(label, *engine.cpu(lambda q=q: client.query(q, settings=st), repeat)))  # type: ignore[misc]
    print("planning of the query cut after each layer (one request):")
    for layer, cut in layer_sqls("{source}").items():
        q = cut.replace("{source}", file_source(engine.one), 1)
        print(_line(layer, *engine.cpu(lambda q=q: client.query(q, settings=st), repeat)))  # type: ignore[misc]
    client.command(f"CREATE TABLE raw_requests ({STRUCTURE}) ENGINE = Null")
    client.command(f"CREATE TABLE mv_rows ENGINE = Null AS SELECT * FROM ({q1}) LIMIT 0", settings=st)
    client.command(
        f"CREATE MATERIALIZED VIEW mv TO mv_rows AS {sql.replace('{source}', 'raw_requests', 1)}", settings=st
    )
    ten = engine.path([llm_request(10, seed=i).SerializeToString() for i in range(10)], "ten")
    blocks = {**st, "max_block_size": "1", "min_insert_block_size_rows": "1", "min_insert_block_size_bytes": "0"}
    print("a Null table of raw requests with the query as its materialized view:")
    for label, path, s in (
        ("insert of one request", engine.one, st),
        ("insert of ten requests as ten blocks", ten, blocks),
    ):
        q = f"INSERT INTO raw_requests SELECT * FROM {file_source(path)}"
        print(_line(label, *engine.cpu(lambda q=q, s=s: client.command(q, settings=s), repeat)))  # type: ignore[misc]
    client.command("DROP TABLE mv")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,15000,50000", help="spans per query (requests of 100 spans)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3, help="runs per planning figure")
    ap.add_argument("--threads", type=int, default=2, help="max_threads of the engine's query")
    ap.add_argument("--baseline", default="", help="a commit whose query runs beside the current one")
    ap.add_argument("--no-planning", action="store_true", help="only the per-span figures")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"load average before: {os.getloadavg()}")
    sql = span_rows_sql("{source}", priced=True)
    with tempfile.TemporaryDirectory() as tmp:
        client = open_client(StoreConfig(f"chdb://{tmp}/db", "default"), settings={"max_threads": args.threads})
        engine = _Engine(client, tmp)
        client.query(sql.replace("{source}", file_source(engine.one), 1), settings=engine.settings)  # warm-up
        if not args.no_planning:
            _planning(engine, sql, args.repeat)
        variants = {
            "engine": engine.sink("sink_now", sql, engine.settings),
            "engine, batch's keys": engine.sink("sink_keys", sql, engine.settings, by_keys=True),
        }
        if args.baseline:
            old_sql, old_settings = _baseline(args.baseline, tmp, engine.schema)
            variants = {f"engine@{args.baseline}": engine.sink("sink_old", old_sql, old_settings), **variants}
        bodies = {n: [llm_request(100, seed=i).SerializeToString() for i in range(n // 100)] for n in sizes}
        paths = {n: engine.path(b, f"size{n}") for n, b in bodies.items()}
        norm = Normalizer(pricer=Pricer())
        python_cpu(bodies[sizes[0]][:5], norm)  # warm the pricer's caches
        for run in variants.values():
            run(paths[sizes[0]])
        cpu: dict[tuple[str, int], list[float]] = {}
        for _ in range(args.rounds):
            for n in sizes:
                cpu.setdefault(("python", n), []).append(python_cpu(bodies[n], norm)[0])
                for name, run in variants.items():
                    cpu.setdefault((name, n), []).append(run(paths[n]))
        client.close()
    print(f"all in, us of CPU per span (median of {args.rounds} interleaved rounds):")
    print(f"  {'spans per query':24}" + "".join(f"{n:>10,}" for n in sizes))
    for name in ("python", *variants):
        print(f"  {name:24}" + "".join(f"{statistics.median(cpu[(name, n)]) / n * 1e6:10.1f}" for n in sizes))
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
