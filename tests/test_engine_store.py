"""Export requests stored by the engine (store/ingest.py `EngineRows.store`: INSERT ... SELECT) hold
the same rows as the Python path stores, field by field, on the real embedded store.

Each case stores its requests twice into one migrated `spans` table: under tenant `e-<t>` through
the engine, with the requests it leaves over stored by the Python path as a writer would, and under
`p-<t>` through the Python path alone (Preparer -> Arrow -> Store.insert_arrow). Every stored
column but the tenant must be equal, span by span.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from driftline.collector.workers import PrepareOptions, build_preparer
from driftline.pricing import Pricer
from driftline.store import Store, StoreConfig
from driftline.store.connection import open_client
from driftline.store.ingest import EngineRows
from driftline.store.partitions import MAX_DAYS_PER_INSERT
from tests.support.engine_check import body_of
from tests.support.otel_capture import record_span
from tests.support.sql import admin_client
from tools.loadgen import llm_request

_CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "OpenAI",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.response.model": "gpt-4o-2024-08-06",
    "gen_ai.usage.input_tokens": 100,
    "gen_ai.usage.output_tokens": 20,
    "gen_ai.input.messages": '[{"role": "user", "content": "hi"}]',
    "gen_ai.output.messages": '[{"role": "assistant", "parts": [{"type": "text", "content": "hello"}]}]',
    "gen_ai.conversation.id": "conv-1",
}
_NOW_NS = (int(time.time()) - 3600) * 1_000_000_000  # inside the retention window
_INGESTED_MS = 1_765_000_000_123


class _Paths:
    def __init__(self, store: Store, engine: EngineRows, database: str) -> None:
        self.store = store
        self.engine = engine
        self.table = f"{database}.spans"
        self.preparer = build_preparer(PrepareOptions(max_request_bytes=1 << 26, max_value_bytes=65536))

    def python(self, tenant: str, body: bytes) -> int:
        table = self.preparer.prepare(tenant, ExportTraceServiceRequest.FromString(body), _INGESTED_MS).table
        if table is None:
            return 0
        self.store.insert_arrow("spans", table)
        return int(table.num_rows)

    def both(self, requests: list[tuple[str, bytes]]) -> list[int]:
        """Store `requests` both ways; the indices the engine left to the Python path."""
        done = self.engine.store(self.table, [(f"e-{t}", b) for t, b in requests], _INGESTED_MS)
        for i in done.python:
            self.python(f"e-{requests[i][0]}", requests[i][1])
        stored_by_python = sum(self.python(f"p-{t}", b) for t, b in requests)
        engine_part = sum(self.python("count-only", requests[i][1]) for i in done.python)
        assert done.spans == stored_by_python - engine_part
        return done.python

    def rows(self, tenant: str) -> list[bytes]:
        """The tenant's stored rows as the engine writes them out (TabSeparated: every value exact,
        nanoseconds and doubles included, which Python's datetime and float conversions are not)."""
        with admin_client(self.store) as c:
            text = c.raw_query(
                f"SELECT * EXCEPT (tenant) FROM {self.table} FINAL WHERE tenant = {{t:String}} "
                "ORDER BY trace_id, span_id",
                parameters={"t": tenant},
                fmt="TabSeparated",
            )
        return text.splitlines()


@pytest.fixture
def paths(chdb_path: Path, database: str, tmp_path: Path) -> Iterator[_Paths]:
    store = Store(StoreConfig(f"chdb://{chdb_path}", database), retention_days=30)
    store.migrate()
    client = open_client(StoreConfig(f"chdb://{chdb_path}", database))
    engine = EngineRows(client, pricer=Pricer(), tmp_dir=str(tmp_path))
    yield _Paths(store, engine, database)
    engine.close()
    client.close()
    with admin_client(store) as c:
        c.command(f"DROP DATABASE IF EXISTS {database}")
    store.close()


def _same(paths: _Paths, tenant: str) -> int:
    engine, python = paths.rows(f"e-{tenant}"), paths.rows(f"p-{tenant}")
    assert engine == python
    return len(engine)


def test_requests_stored_by_the_engine_equal_the_python_paths_rows(paths: _Paths) -> None:
    chats = [body_of(*record_span(f"chat {i}", _CHAT, start_ns=_NOW_NS + i)) for i in range(3)]
    # the benchmark's chat spans, without finish reasons and with
    load = llm_request(20, seed=7, start_ns=_NOW_NS, finish_reasons=False).SerializeToString()
    finishing = llm_request(5, seed=8, start_ns=_NOW_NS).SerializeToString()  # with finish reasons
    # a span with a bad id beside a good one: the engine stores the good one and leaves the other out
    bad = ExportTraceServiceRequest.FromString(body_of(*record_span("good", _CHAT, start_ns=_NOW_NS)))
    span = bad.resource_spans[0].scope_spans[0].spans.add()
    span.CopyFrom(bad.resource_spans[0].scope_spans[0].spans[0])
    span.span_id = b"\x00" * 8
    tool = body_of(
        *record_span("tool", {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "f"}, start_ns=_NOW_NS)
    )
    requests = [
        ("a", chats[0]),
        ("b", chats[1]),
        ("a", load),
        ("a", finishing),
        ("b", bad.SerializeToString()),
        ("a", tool),
        ("b", chats[2]),
    ]
    assert paths.both(requests) == [5]  # the tool span's: the engine does not render the tool columns
    assert _same(paths, "a") == 1 + 20 + 5 + 1
    assert _same(paths, "b") == 1 + 1 + 1


def test_a_batch_over_the_days_per_insert_goes_to_the_python_path(paths: _Paths) -> None:
    day = 86_400 * 10**9
    requests = [
        ("a", body_of(*record_span("chat", _CHAT, start_ns=_NOW_NS - d * day))) for d in range(MAX_DAYS_PER_INSERT + 1)
    ]
    done = paths.engine.store(paths.table, requests, _INGESTED_MS)
    assert (done.spans, done.python) == (0, list(range(len(requests))))
    with admin_client(paths.store) as c:
        assert c.query(f"SELECT count() FROM {paths.table}").result_rows[0][0] == 0


def test_nothing_is_left_behind(paths: _Paths, tmp_path: Path) -> None:
    before = set(tmp_path.iterdir())
    paths.both([(uuid.uuid4().hex[:6], body_of(*record_span("chat", _CHAT, start_ns=_NOW_NS)))])
    assert set(tmp_path.iterdir()) == before
    with admin_client(paths.store) as c:
        assert c.query("SELECT count() FROM system.tables WHERE name LIKE '\\_ingest\\_stage\\_%'").result_rows == [
            (0,)
        ]
