"""input_text / output_text are ALIAS columns: the message text is stored once, in the message
lists, and read back by SQL that must agree with the normalizer on every kind of message."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from driftline.collector.batch import rows_to_table
from driftline.collector.normalize import Normalizer
from driftline.store import Store, StoreConfig
from driftline.store.columns import SPAN_COLUMNS, SPAN_READ_COLUMNS, with_texts
from driftline.store.queries.traces import get_trace
from driftline.store.schema import MIGRATIONS
from tests.support.sql import admin_client, admin_rows

T0 = (int(time.time()) - 600) * 1_000_000_000
TRACE = "ab" * 16
LIMIT = 4096


def _genai(i: int, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> Span:
    span = Span(
        trace_id=bytes.fromhex(TRACE),
        span_id=(i + 1).to_bytes(8, "big"),
        name="chat m",
        start_time_unix_nano=T0 + i,
        end_time_unix_nano=T0 + i + 1000,
    )
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.input.messages": json.dumps(inputs),
        "gen_ai.output.messages": json.dumps(outputs),
    }
    span.attributes.extend(KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in attrs.items())
    return span


def _user(text: object) -> dict[str, Any]:
    return {"role": "user", "parts": [{"type": "text", "content": text}]}


def _answer(text: str, role: str = "assistant") -> dict[str, Any]:
    return {"role": role, "parts": [{"type": "text", "content": text}]}


CASES: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]] = [
    ([_user("What is the capital of France?")], [_answer("Paris.")]),
    ([_user('quotes " and \\ backslash\nnew line\ttab')], [_answer("é ü 中文 🚀 \u2028")]),
    ([_user("first question"), _answer("an answer"), _user("the last question")], [_answer("ok")]),
    ([_user("the real question"), _user("")], [_answer("second", role="model")]),
    ([{"role": "system", "parts": [{"type": "text", "content": "be brief"}]}], [_answer("no user message")]),
    ([_user("x" * (LIMIT * 2))], [_answer("y" * (LIMIT // 4 + 10))]),  # cut: the texts are stored
    ([_user("ü" * (LIMIT // 3))], [_answer("fits in characters, not in bytes: " + "é" * (LIMIT // 3))]),
]


@pytest.fixture
def store(store_url: str, database: str) -> Iterator[Store]:
    s = Store(StoreConfig(store_url, database), retention_days=30)
    s.migrate()
    yield s
    s.close()


def test_alias_reads_back_what_the_normalizer_derived(store: Store) -> None:
    norm = Normalizer(max_value_bytes=LIMIT)
    res = norm.resource(Resource())
    rows = [norm.span(_genai(i, ins, outs), res, InstrumentationScope()) for i, (ins, outs) in enumerate(CASES)]
    store.insert_arrow("spans", rows_to_table("acme", rows))
    stored = {r["span_id"]: r for r in get_trace(store, "acme", TRACE)}
    assert len(stored) == len(rows)
    for row in rows:
        got = stored[str(row["span_id"])]
        assert got["input_text"] == row.get("input_text", ""), row["span_id"]
        assert got["output_text"] == row.get("output_text", ""), row["span_id"]
    # The plain case really is stored once: its fallbacks are empty.
    assert rows[0]["input_text_fallback"] == "" and rows[0]["output_text_fallback"] == ""
    fallbacks = admin_rows(
        store,
        "SELECT span_id, input_text_fallback, output_text_fallback FROM {db}.spans "
        "WHERE tenant = {tenant:String} ORDER BY span_id",
        {"tenant": "acme"},
    )
    assert fallbacks[0]["input_text_fallback"] == "" and fallbacks[0]["output_text_fallback"] == ""
    assert fallbacks[5]["input_text_fallback"] != ""  # a cut message list: the text itself is kept


def test_old_layout_migrates_without_changing_what_reads_see(store_url: str, database: str) -> None:
    """A spans table from before migration 3 stored the texts itself: they stay readable."""
    s = Store(StoreConfig(store_url, database), retention_days=30)
    old_columns = []
    for name, ch_type, _ in SPAN_COLUMNS:
        if name in ("input_text", "output_text"):
            continue
        old_columns.append(f"`{name.removesuffix('_fallback')}` {ch_type}")
    s.migrate()
    with admin_client(s) as c:  # back to the spans table and migration record of version 2
        c.command(f"DROP TABLE {database}.spans")
        c.command(f"DROP TABLE {database}.schema_migrations")
        c.command(
            f"CREATE TABLE {database}.spans ({', '.join(old_columns)}) "
            "ENGINE = ReplacingMergeTree(ingested_at) ORDER BY (tenant, start_time, trace_id, span_id)"
        )
        c.command(
            f"INSERT INTO {database}.spans (tenant, trace_id, span_id, start_time, end_time, input_text, "
            f"output_text, input_messages) VALUES ('acme', '{TRACE}', 'old', now64(9), now64(9), 'old question', "
            '\'old answer\', \'[{"role":"user","content":"something else"}]\')'
        )
        c.command(
            f"CREATE TABLE {database}.schema_migrations (version UInt32, name String, applied_at DateTime64(3, 'UTC')) "
            "ENGINE = ReplacingMergeTree ORDER BY version"
        )
        c.command(f"INSERT INTO {database}.schema_migrations VALUES (1, 'old', now64(3)), (2, 'old', now64(3))")
    try:
        assert s.migrate() == [m.version for m in MIGRATIONS if m.version > 2]
        assert s.migrate() == []
        norm = Normalizer()
        row = norm.span(_genai(0, *CASES[0]), norm.resource(Resource()), InstrumentationScope())
        s.insert_arrow("spans", rows_to_table("acme", [row]))
        got = {r["span_id"]: r for r in get_trace(s, "acme", TRACE)}
        assert (got["old"]["input_text"], got["old"]["output_text"]) == ("old question", "old answer")
        new = got[str(row["span_id"])]
        assert (new["input_text"], new["output_text"]) == ("What is the capital of France?", "Paris.")
    finally:
        with admin_client(s) as c:
            c.command(f"DROP DATABASE IF EXISTS {database}")
        s.close()


# Message lists as stored, and what else a message column might hold: any JSON a row could carry.
_TEXT = st.text(max_size=12)
_CONTENT = st.one_of(
    _TEXT, st.just(""), st.none(), st.integers(), st.lists(st.fixed_dictionaries({"text": _TEXT}), max_size=2)
)
_ROLE = st.one_of(
    st.sampled_from(["user", "assistant", "model", "system", "tool", "User", ""]), st.integers(), st.none()
)
_MESSAGE = st.one_of(
    st.fixed_dictionaries({"role": _ROLE, "content": _CONTENT}),
    st.fixed_dictionaries({"role": _ROLE}),
    st.fixed_dictionaries({"content": _CONTENT}),
    _TEXT,
    st.none(),
)
_MESSAGES = st.one_of(
    st.lists(_MESSAGE, max_size=5).map(json.dumps),
    st.lists(_MESSAGE, max_size=3).map(lambda ms: json.dumps(ms, ensure_ascii=False)),
    st.just(""),
    st.sampled_from(['{"role": "user", "content": "not a list"}', '"text"', "[", "[{]", "null"]),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(_MESSAGES, _MESSAGES, st.one_of(st.just(""), _TEXT), st.one_of(st.just(""), _TEXT)),
        min_size=1,
        max_size=12,
    )
)
def test_a_read_computes_the_texts_as_the_alias_columns_do(store: Store, rows: list[tuple[str, str, str, str]]) -> None:
    """with_texts (the trace read's texts, computed in Python) against the ALIAS SQL, on the same stored rows."""
    trace = "%032x" % (hash(tuple(rows)) & (2**128 - 1))
    spans = [
        {"trace_id": trace, "span_id": f"{i + 1:016x}", "start_time": T0 + i, "end_time": T0 + i + 1,
         "input_messages": ins, "output_messages": outs, "input_text_fallback": in_fb, "output_text_fallback": out_fb}
        for i, (ins, outs, in_fb, out_fb) in enumerate(rows)
    ]  # fmt: skip
    store.insert_arrow("spans", rows_to_table("acme", spans))
    by_sql = admin_rows(
        store,
        "SELECT * EXCEPT (tenant) , input_text, output_text FROM {db}.spans FINAL "
        "WHERE tenant = 'acme' AND trace_id = {trace:String} ORDER BY span_id",
        {"trace": trace},
    )
    assert len(by_sql) == len(rows)
    for r in by_sql:
        assert with_texts(r) == {c: r[c] for c in SPAN_READ_COLUMNS}, r["span_id"]
    assert [r["input_text"] for r in get_trace(store, "acme", trace)] == [r["input_text"] for r in by_sql]
