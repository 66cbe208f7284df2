"""CPU per span of the engine's OTLP parse + normalize query (store/ingest_sql.py) on embedded chDB,
beside the Python path's decode + normalize of the same bodies.

The bodies are ingest_bench.py's own requests (tools/loadgen.py: 100 GenAI chat spans each,
300-800 byte message contents). CPU time of this process (chDB runs in it), not wall time:

    python bench/engine_bench.py [--requests 200] [--rounds 5] [--threads 2]

Prints, per path: us of CPU per span (the median of the rounds), and for the engine the fixed
cost of planning the query (one request) apart from the per-span cost (the slope between one
request and all of them). The engine computes the columns store/ingest_spec.py renders (the
message and text columns among them, store/ingest_messages.py, and the cost from the price
table, store/ingest_cost.py) plus the span's own columns and attribute maps; the Python path
computes every column (finish reason, ids and tool columns too). The
figures are therefore not a like-for-like comparison of the whole row: they bound what the
engine path costs for the part it covers. `--no-messages` drops the spans' message attributes
from both paths' bodies.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools/ sits beside bench/, not installed

from clickhouse_connect.driver.client import Client
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from driftline.collector.normalize import Normalizer
from driftline.pricing import Pricer
from driftline.store.connection import StoreConfig, open_client
from driftline.store.ingest import EngineRows, delimited
from driftline.store.ingest_sql import RENDERED_COLUMNS, file_source, schema_settings, span_rows_sql
from driftline.store.otlp_schema import PROTO
from tools.loadgen import llm_request


def python_cpu(bodies: list[bytes], norm: Normalizer) -> tuple[float, int]:
    """CPU seconds of the Python path's decode + normalize of every span of `bodies`, and the spans."""
    spans = 0
    t0 = time.process_time()
    for body in bodies:
        req = ExportTraceServiceRequest()
        req.ParseFromString(body)
        for rs in req.resource_spans:
            res = norm.resource(rs.resource)
            for ss in rs.scope_spans:
                for span in ss.spans:
                    norm.span(span, res, ss.scope)
                    spans += 1
    return time.process_time() - t0, spans


def primed(client: Client, tmp: str) -> str:
    """The OTLP schema written into `tmp` (its path, for schema_settings), the price table taught
    the load's models (EngineRows: a model's first sight)."""
    schema = os.path.join(tmp, "otlp.proto")
    Path(schema).write_text(PROTO)
    EngineRows(client, pricer=Pricer(), tmp_dir=tmp).rows(
        [llm_request(100, seed=i).SerializeToString() for i in range(3)]
    )
    return schema


def bodies_file(tmp: str, bodies: list[bytes], name: str) -> str:
    """`bodies` written length-delimited to `name`.otlp in `tmp` (for file_source); its path."""
    path = os.path.join(tmp, f"{name}.otlp")
    Path(path).write_bytes(delimited(bodies))
    return path


_MESSAGE_KEYS = frozenset({"gen_ai.input.messages", "gen_ai.output.messages"})


class _NullSink:
    """The engine's rows computed and dropped inside the engine (a Null table): what an
    INSERT ... SELECT costs before the MergeTree write, without shipping rows to Python."""

    def __init__(self, client: Client, tmp: str) -> None:
        self.client = client
        self.tmp = tmp
        self.schema = primed(client, tmp)
        self.sql = span_rows_sql("{source}", priced=True)
        probe = self.sql.replace("{source}", file_source(self._write([llm_request(1).SerializeToString()])), 1)
        client.command(f"CREATE TABLE sink ENGINE = Null AS SELECT * FROM ({probe}) LIMIT 0", settings=self._settings())

    def _settings(self) -> dict[str, str]:
        return schema_settings(self.schema)

    def _write(self, bodies: list[bytes]) -> str:
        return bodies_file(self.tmp, bodies, "bodies")

    def run(self, bodies: list[bytes]) -> tuple[float, int, int]:
        sql = self.sql.replace("{source}", file_source(self._write(bodies)), 1)
        t0 = time.process_time()
        self.client.command(f"INSERT INTO sink SELECT * FROM ({sql})", settings=self._settings())
        cpu = time.process_time() - t0
        counts = self.client.query(
            f"SELECT count(), countIf(notEmpty(deferred)) FROM ({sql})", settings=self._settings()
        ).result_rows[0]
        return cpu, int(counts[0]), int(counts[1])


def _drop_messages(req: ExportTraceServiceRequest) -> None:
    for rs in req.resource_spans:
        for ss in rs.scope_spans:
            for span in ss.spans:
                keep = [kv for kv in span.attributes if kv.key not in _MESSAGE_KEYS]
                del span.attributes[:]
                span.attributes.extend(keep)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--spans", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2, help="max_threads of the engine's query")
    ap.add_argument("--no-messages", action="store_true", help="drop gen_ai.input/output.messages from the spans")
    args = ap.parse_args()
    requests = [llm_request(args.spans, seed=i) for i in range(args.requests)]
    if args.no_messages:
        for req in requests:
            _drop_messages(req)
    bodies = [r.SerializeToString() for r in requests]
    print(f"load average before: {os.getloadavg()}")
    what = " without message attributes" if args.no_messages else ""
    print(f"{args.requests} requests x {args.spans} spans{what}, {sum(map(len, bodies)) / 1e6:.1f} MB")

    norm = Normalizer(pricer=Pricer())
    python_cpu(bodies[:5], norm)  # warm the pricer's caches
    py: list[float] = []
    one: list[float] = []
    runs: list[tuple[float, int, int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        client = open_client(StoreConfig(f"chdb://{tmp}/db", "default"), settings={"max_threads": args.threads})
        sink = _NullSink(client, tmp)
        sink.run(bodies[:1])  # the first query loads the engine's functions
        # Rounds interleaved (Python, engine on one request, engine on all), so a change in the
        # machine's load falls on both paths alike.
        for _ in range(args.rounds):
            secs, spans = python_cpu(bodies, norm)
            py.append(secs / spans * 1e6)
            one.append(sink.run(bodies[:1])[0])
            runs.append(sink.run(bodies))
        client.close()
    print(f"python  decode + normalize (every column):  {statistics.median(py):6.1f} us CPU/span (rounds {py})")
    fixed = statistics.median(one)
    total = statistics.median(r[0] for r in runs)
    spans, deferred = runs[0][1], runs[0][2]
    per_span = (total - fixed) / (spans - args.spans) * 1e6
    print(
        f"engine  parse + normalize ({len(RENDERED_COLUMNS)} spec columns, envelope, attribute maps): "
        f"{total / spans * 1e6:6.1f} us CPU/span all in; planning {fixed * 1e3:.0f} ms per query, "
        f"then {per_span:.1f} us/span; {deferred} of {spans} spans deferred to Python"
    )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
