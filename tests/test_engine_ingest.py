"""The engine-side ingest pieces: the OTLP schema, the column spec, the rendered SQL, on real chDB.

The golden normalization tests compare the engine's rows with the Python path's on every span
they normalize (tests/support/engine_check.py); this file holds the pieces to their sources:
the .proto schema to opentelemetry-proto's descriptors, the spec's chains to the convention
modules' tables, docs/columns.md to the spec, and the query to the Python path on OTLP bodies
made by the real SDK (several requests in one stream, bad spans, values the engine defers).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from driftline.collector import conventions
from driftline.collector.conventions import genai, openinference, providers, vercel
from driftline.collector.normalize import InvalidSpan, Normalizer
from driftline.pricing import ModelPrice, Pricer
from driftline.store import ingest_carried, ingest_keys, ingest_spec
from driftline.store.ingest import EngineRows, delimited
from driftline.store.ingest_spec import COLUMNS, FAMILIES, OPERATION_TABLES, Attr, render_docs
from driftline.store.ingest_sql import schema_settings, span_rows_sql
from driftline.store.otlp_schema import PROTO, REQUEST_FIELD
from tests.support import engine_check
from tests.support.engine_check import body_of, normalize_span
from tests.support.otel_capture import record_span

ROOT = Path(__file__).resolve().parent.parent

# -- the schema -------------------------------------------------------------------------------

_UPSTREAM: dict[str, Any] = {
    "ExportTraceServiceRequest": trace_service_pb2.ExportTraceServiceRequest,
    "ResourceSpans": trace_pb2.ResourceSpans,
    "Resource": resource_pb2.Resource,
    "ScopeSpans": trace_pb2.ScopeSpans,
    "InstrumentationScope": common_pb2.InstrumentationScope,
    "Span": trace_pb2.Span,
    "Event": trace_pb2.Span.Event,
    "Status": trace_pb2.Status,
    "KeyValue": common_pb2.KeyValue,
    "AnyValue": common_pb2.AnyValue,
    "ArrayValue": common_pb2.ArrayValue,
    "KeyValueList": common_pb2.KeyValueList,
    "InnerKeyValue": common_pb2.KeyValue,
    "InnerValue": common_pb2.AnyValue,
}
# protobuf wire type of each descriptor type / .proto scalar (0 varint, 1 fixed64, 2 length-delimited)
_WIRE_BY_DESCRIPTOR = {1: 1, 3: 0, 5: 0, 6: 1, 7: 5, 8: 0, 9: 2, 11: 2, 12: 2, 13: 0, 14: 0}
_WIRE_BY_NAME = {"string": 2, "bytes": 2, "bool": 0, "int64": 0, "int32": 0, "double": 1, "fixed64": 1}


def _proto_fields() -> dict[str, dict[str, tuple[int, str]]]:
    out: dict[str, dict[str, tuple[int, str]]] = {}
    for name, body in re.findall(r"message (\w+) \{(.*?)\}", PROTO, re.S):
        fields = re.findall(r"(?:repeated )?(\w+) (\w+) = (\d+);", body)
        out[name] = {field: (int(number), kind) for kind, field, number in fields}
    return out


def test_the_schema_matches_the_otlp_protos_field_by_field() -> None:
    ours = _proto_fields()
    assert set(ours) == set(_UPSTREAM)
    for message, fields in ours.items():
        upstream = {f.name: f for f in _UPSTREAM[message].DESCRIPTOR.fields}
        if message == "ExportTraceServiceRequest":  # ours: the request's number (otlp_schema.py)
            assert fields.pop("driftline_request") == (REQUEST_FIELD, "uint32")
            assert REQUEST_FIELD not in {f.number for f in upstream.values()}
        for field, (number, kind) in fields.items():
            assert field in upstream, f"{message}.{field} is not in OTLP"
            assert upstream[field].number == number, f"{message}.{field}"
            wire = _WIRE_BY_NAME.get(kind, 2)  # a message type: length-delimited
            assert _WIRE_BY_DESCRIPTOR[upstream[field].type] == wire, f"{message}.{field}: wire type"


# -- the spec against the convention modules ---------------------------------------------------

_MODULE_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "GenAI": (*genai.TOKEN_KEYS, *genai.TEXT_KEYS),
    # openinference._models reads llm.model_name (the response model unless the invocation parameters
    # are LlamaIndex's LLMMetadata: such spans are deferred) between the two tables
    "OI": (*openinference._TOKENS, *openinference._MODELS, ("response_model", "llm.model_name"), *openinference._TEXT),
    "AI": (*vercel._TOKENS, *vercel._TEXT),
}


def test_spec_chains_are_the_convention_modules_tables() -> None:
    """Each family's plain attributes for a column, in order, are that module's own table."""
    for family, table in _MODULE_TABLES.items():
        for column in COLUMNS:
            spec = [
                s.key
                for s in column.sources
                if isinstance(s, Attr) and s.family == family and s.read in ("text", "int", "model_name")
            ]
            module = [key for col, key in table if col == column.name]
            assert spec == module, (family, column.name)


def test_the_collector_runs_the_spec_families_in_the_spec_order() -> None:
    # Markers, operation and provider tables are the spec's own objects (the convention modules
    # read them); what the collector still says itself is which extractor runs for which family,
    # and in what priority.
    names = ("genai", "openinference", "traceloop", "vercel", "langfuse", "logfire", "openlit")
    assert [(name, markers) for name, markers, _ in conventions.FAMILIES] == list(
        zip(names, FAMILIES.values(), strict=True)
    )
    assert providers.normalize_operation(" Generate_Content ") == "chat"
    assert providers.normalize_operation("retriever") == "retrieval"
    assert providers.normalize_operation("rerank") == "rerank"
    assert providers.normalize_operation("unheard_of") == "other"
    assert set(OPERATION_TABLES["genai"][0].values()) == providers.OPERATIONS


def test_docs_hold_the_rendered_spec() -> None:
    docs = (ROOT / "docs" / "columns.md").read_text()
    start, end = "<!-- ingest_spec: begin -->\n", "<!-- ingest_spec: end -->"
    assert start in docs and end in docs
    assert docs.split(start, 1)[1].split(end, 1)[0] == render_docs(), (
        "docs/columns.md is stale: paste driftline.store.ingest_spec.render_docs() between its markers"
    )


def test_every_spec_column_is_rendered() -> None:
    assert all(ingest_spec.rendered(c) for c in COLUMNS)


# -- the query on real bodies --------------------------------------------------------------------

_CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "OpenAI",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.usage.input_tokens": 100,
    "gen_ai.usage.output_tokens": 20,
    "gen_ai.usage.cache_read.input_tokens": 150,
    "gen_ai.conversation.id": "conv-1",
}


def _rows(bodies: list[bytes]) -> list[dict[str, Any]]:
    return engine_check._engine(65536).rows(bodies)


def test_many_requests_in_one_stream_keep_each_spans_resource() -> None:
    bodies = []
    expected = []
    norm = Normalizer(pricer=Pricer())
    for i in range(3):
        res, scope, span = record_span(
            f"chat {i}", _CHAT, resource={"service.name": f"svc-{i}", "service.version": str(i)}
        )
        bodies.append(body_of(res, scope, span))
        expected.append(norm.span(span, norm.resource(res), scope))
    rows = _rows(bodies)
    assert [(r["name"], r["service"], r["release"]) for r in rows] == [
        (f"chat {i}", f"svc-{i}", str(i)) for i in range(3)
    ]
    for row, py in zip(rows, expected, strict=True):
        assert row["deferred"] == [] and row["invalid"] == ""
        assert (row["input_tokens"], row["total_tokens"]) == (py["input_tokens"], py["total_tokens"]) == (250, 270)
        assert (row["provider"], row["conversation_id"]) == ("openai", "conv-1")


def test_a_bad_span_is_rejected_alone_with_the_python_reason() -> None:
    res, scope, good = record_span("ok", _CHAT)
    body = trace_service_pb2.ExportTraceServiceRequest()
    body.ParseFromString(body_of(res, scope, good))
    spans = body.resource_spans[0].scope_spans[0].spans
    bad = spans.add()
    bad.CopyFrom(good)
    bad.end_time_unix_nano = bad.start_time_unix_nano - 1
    rows = _rows([body.SerializeToString()])
    assert [r["invalid"] for r in rows] == ["", "bad_timestamp"]
    with pytest.raises(InvalidSpan):
        Normalizer().span(bad, Normalizer().resource(res), scope)


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "",
        'quote " backslash \\ slash / tab \t nl \n ctrl \x01\x0b\x1f del \x7f é \u2028 😀',
        -17,
        0,
        2**62,
        0.5,
        -0.0,
        3.0,
        1234567.125,
        0.0001,
        True,
        False,
        b"\x00\x01\xff",
        ["stop", "x"],
        [1, 2.5, True, 'a"b'],
        {"k": "v", "n": 1, "f": 0.25},
    ],
)
def test_attribute_text_is_the_python_paths(value: object) -> None:
    res, scope, span = record_span("x", {"v": value, "gen_ai.operation.name": "chat"})
    row = normalize_span(Normalizer(), res, scope, span)  # asserts the engine's equal
    eng = engine_check.engine_row(res, scope, span)
    full, stored = eng["attributes_all"], row["attributes"]
    assert isinstance(full, dict) and isinstance(stored, dict)
    assert eng["deferred"] == [] and full["v"] == stored["v"]


@pytest.mark.parametrize(
    ("attrs", "events", "reason"),
    [
        ({"v": 1e20}, None, "double_format"),
        ({"v": 1e-7}, None, "double_format"),
        ({"v": "x" * 2000}, None, "long_value"),
        (
            {"gen_ai.operation.name": "chat"},
            [("gen_ai.client.inference.operation.details", {"gen_ai.request.model": "m"})],
            "event:gen_ai.client.inference.operation.details",
        ),
        (
            {"langfuse.observation.type": "generation", "langfuse.observation.usage_details": '{"input": 3}'},
            None,
            "source:langfuse.observation.usage_details",
        ),
    ],
)
def test_values_the_engine_cannot_write_exactly_are_deferred(
    attrs: dict[str, Any], events: list[Any] | None, reason: str
) -> None:
    res, scope, span = record_span("x", attrs, events=events)
    (row,) = engine_check._engine(1024).rows([body_of(res, scope, span)])
    deferred = row["deferred"]
    assert isinstance(deferred, list) and reason in deferred


@pytest.mark.parametrize("count", ["inf", "-inf", "nan", "NaN", "12.7", " 7", "\t8\n", "+9", "1e3", "x"])
def test_a_count_that_is_not_a_finite_number_is_read_as_python_reads_it(count: str) -> None:
    """Every branch of the engine's count conversion runs on every span (no short-circuit):
    a non-finite count must neither fail the query nor differ from the Python path."""
    res, scope, span = record_span("x", {**_CHAT, "gen_ai.usage.input_tokens": count})
    row = normalize_span(Normalizer(), res, scope, span)  # asserts the engine's row equal
    assert engine_check.engine_row(res, scope, span)["input_tokens"] == row.get("input_tokens")


def test_what_a_resource_defers_stays_with_that_resources_spans() -> None:
    """The resource's attribute map and deferral reasons are computed once per resource: each
    span carries its own resource's, in a body holding several resources."""
    bodies = []
    extras: tuple[dict[str, Any], ...] = ({"v": 1e20}, {}, {"dup": "a"})
    for i, extra in enumerate(extras):
        res, scope, span = record_span(f"chat {i}", _CHAT, resource={"service.name": f"svc-{i}", **extra})
        if "dup" in extra:  # the SDK keeps keys unique: add the duplicate on the wire
            dup = common_pb2.KeyValue()
            dup.CopyFrom(res.attributes[-1])
            res.attributes.append(dup)
        bodies.append(body_of(res, scope, span))
    merged = trace_service_pb2.ExportTraceServiceRequest()
    for body in bodies:
        part = trace_service_pb2.ExportTraceServiceRequest()
        part.ParseFromString(body)
        merged.resource_spans.extend(part.resource_spans)
    rows = _rows([merged.SerializeToString()])
    assert [(r["service"], r["deferred"]) for r in rows] == [
        ("svc-0", ["double_format"]),
        ("svc-1", []),
        ("svc-2", ["duplicate_key"]),
    ]
    assert rows[1]["resource_attributes"]["service.name"] == "svc-1"


@pytest.mark.parametrize("count", ["1_000", "\u0661\u0662", "1\xa0", "\x1c1", "9223372036854775808", "1e19"])
def test_a_count_python_reads_otherwise_defers_its_span(count: str) -> None:
    """Python's int() / float() accept underscores, Unicode digits and spaces and any size: such a
    count's span goes through the Python path."""
    res, scope, span = record_span("x", {**_CHAT, "gen_ai.usage.input_tokens": count})
    deferred = engine_check.engine_row(res, scope, span)["deferred"]
    assert isinstance(deferred, list) and "count_format" in deferred


# -- messages and texts -------------------------------------------------------------------------

_J = json.dumps
_OI = "llm.input_messages."
_TLP = "gen_ai.prompt."


@pytest.mark.parametrize(
    "attrs",
    [
        # GenAI: parts, plain content, a lone message object, a string item, items that are no message
        {
            **_CHAT,
            "gen_ai.input.messages": _J(
                [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
            ),
        },
        {**_CHAT, "gen_ai.input.messages": _J({"role": "user", "content": "one object"})},
        # the shapes read in one pass (ingest_messages._fast), escapes included, and the same
        # messages in another key order, with spaces or compact
        {
            **_CHAT,
            "gen_ai.input.messages": _J(
                [
                    {"role": "system", "parts": [{"type": "text", "content": 'a/b \u00e9 "q"\n\t\\ \x01'}]},
                    {"role": "user", "content": "caf\u00e9 \U0001f600"},
                ]
            ),
            "gen_ai.output.messages": _J(
                [{"role": "assistant", "parts": [{"type": "text", "content": "ok"}], "finish_reason": "stop"}],
                separators=(",", ":"),
            ),
        },
        {
            **_CHAT,
            "gen_ai.input.messages": _J([{"content": "c", "role": "user"}, {"role": "user", "content": "d"}]),
            "gen_ai.output.messages": '[{"role":"assistant","finish_reason":"stop","parts":[{"content":"x","type":"text"}]}]',
        },
        {**_CHAT, "gen_ai.input.messages": _J(["a bare string", 3, None, {"content": "no role"}])},
        {**_CHAT, "gen_ai.input.messages": _J([{"role": "user", "name": "x", "content": "named"}])},
        {**_CHAT, "gen_ai.input.messages": "[not json", "gen_ai.prompt": "plain prompt text"},
        {**_CHAT, "gen_ai.completion": "plain answer", "gen_ai.system_instructions": "Sys."},
        {
            **_CHAT,
            "gen_ai.output.messages": _J(
                [
                    {
                        "role": "assistant",
                        "parts": [{"type": "text", "content": 'é \u00e9 / \\ " \n\t'}],
                        "finish_reason": "stop",
                    }
                ]
            ),
        },
        {"gen_ai.operation.name": "embeddings", "gen_ai.input.messages": _J(["first", "", "second"])},
        {"gen_ai.operation.name": "retrieval", "gen_ai.retrieval.query.text": "what is up"},
        # OpenInference: indexed, out of order, a gap ends the list, a role alone is no message,
        # a non-canonical index is not read
        {
            "openinference.span.kind": "LLM",
            _OI + "1.message.role": "user",
            _OI + "1.message.content": "second",
            _OI + "0.message.role": "system",
            _OI + "0.message.content": "first",
            _OI + "2.message.role": "assistant",
            _OI + "4.message.content": "after a gap",
            _OI + "03.message.content": "not canonical",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": "answer",
        },
        # Traceloop: a role alone is a message with empty content
        {
            "llm.request.type": "chat",
            _TLP + "0.role": "user",
            _TLP + "0.content": "q",
            _TLP + "1.role": "assistant",
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.content": "a",
        },
    ],
)
def test_messages_and_texts_are_the_python_paths(attrs: dict[str, Any]) -> None:
    res, scope, span = record_span("x", attrs)
    normalize_span(Normalizer(), res, scope, span)  # asserts the engine's row equal, column by column
    assert engine_check.engine_row(res, scope, span)["deferred"] == []


@pytest.mark.parametrize(
    ("attrs", "reason"),
    [
        (
            {**_CHAT, "gen_ai.input.messages": _J([{"role": "user", "parts": [{"type": "image", "uri": "x"}]}])},
            "message_shape:gen_ai.input.messages",
        ),
        (
            {**_CHAT, "gen_ai.output.messages": _J([{"role": "assistant", "content": "a", "tool_calls": []}])},
            "message_shape:gen_ai.output.messages",
        ),
        (
            {**_CHAT, "gen_ai.input.messages": '[{"role": "user", "role": "x", "content": "a"}]'},
            "message_shape:gen_ai.input.messages",
        ),
        (
            {**_CHAT, "gen_ai.input.messages": '[{"role":"user","content":5}]'},
            "message_shape:gen_ai.input.messages",
        ),
        (
            {**_CHAT, "gen_ai.input.messages": '[{"role":"user","content":"a","content":"b"}]'},
            "message_shape:gen_ai.input.messages",
        ),
        ({**_CHAT, "gen_ai.input.messages": _J([{"role": "user", "content": "a\x1fb"}])}, "json_escape"),
        (
            {**_CHAT, "gen_ai.system_instructions": _J([{"type": "text", "content": "s"}])},
            "source:gen_ai.system_instructions",
        ),
        (
            {"openinference.span.kind": "LLM", _OI + "0.message.tool_calls.0.tool_call.function.name": "f"},
            "message_shape:llm.input_messages.",
        ),
        ({"openinference.span.kind": "CHAIN", "input.value": "text"}, "source:input.value"),
        ({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.call.arguments": "{}"}, "tool_text"),
        (
            {**_CHAT, "gen_ai.input.messages": "[]", "gen_ai.prompt": _J([{"role": "user", "content": "p"}])},
            "source:gen_ai.prompt (JSON messages)",
        ),
        ({**_CHAT, "gen_ai.input.messages": _J([{"role": "user", "content": "x" * 700}] * 2)}, "long_messages"),
    ],
)
def test_messages_the_engine_does_not_read_defer_their_span(attrs: dict[str, Any], reason: str) -> None:
    res, scope, span = record_span("x", attrs)
    normalize_span(Normalizer(max_value_bytes=1024), res, scope, span)
    deferred = engine_check.engine_row(res, scope, span, 1024)["deferred"]
    assert isinstance(deferred, list) and reason in deferred


# -- cost -------------------------------------------------------------------------------------------


def _priced(**attrs: Any) -> dict[str, Any]:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 1200,
        "gen_ai.usage.output_tokens": 300,
        **attrs,
    }


@pytest.mark.parametrize(
    "attrs",
    [
        _priced(),
        _priced(**{"gen_ai.usage.cache_read.input_tokens": 1000, "gen_ai.usage.reasoning.output_tokens": 50}),
        # a large total (above 2^53 scaled units): the division is still Python's
        _priced(**{"gen_ai.usage.input_tokens": 987_654_321_987, "gen_ai.usage.output_tokens": 123_456_789}),
        # a dated response model the table lacks: the request model prices it
        _priced(**{"gen_ai.response.model": "gpt-4o-no-such-date"}),
        # no price for the model; a negative count (pricing refuses it: no cost)
        _priced(**{"gen_ai.request.model": "no-such-model"}),
        _priced(**{"gen_ai.usage.input_tokens": -5}),
        # not a priced operation, and no provider
        _priced(**{"gen_ai.operation.name": "invoke_agent"}),
        {"gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 10},
    ],
)
def test_cost_is_the_python_paths(attrs: dict[str, Any]) -> None:
    res, scope, span = record_span("x", attrs)
    pricer = Pricer()
    row = normalize_span(Normalizer(pricer=pricer), res, scope, span)  # asserts the engine's row equal
    eng = engine_check.engine_row(res, scope, span, 65536, pricer)
    assert eng["deferred"] == [] and eng["cost_usd"] == row.get("cost_usd")


@pytest.mark.parametrize(
    ("attrs", "reason"),
    [
        (_priced(**{"gen_ai.provider.name": "anthropic", "gen_ai.request.model": "claude-opus-4-6"}), "price_shape"),
        (_priced(**{"gen_ai.usage.cost": 0.5}), "source:gen_ai.usage.cost"),
    ],
)
def test_a_price_the_engine_does_not_compute_defers_its_span(attrs: dict[str, Any], reason: str) -> None:
    res, scope, span = record_span("x", attrs)
    pricer = Pricer()
    normalize_span(Normalizer(pricer=pricer), res, scope, span)
    deferred = engine_check.engine_row(res, scope, span, 65536, pricer)["deferred"]
    assert isinstance(deferred, list) and reason in deferred


def test_overrides_keep_priced_spans_on_the_python_path() -> None:
    res, scope, span = record_span("x", _priced())
    pricer = Pricer({"gpt-4o": ModelPrice(1.0, 2.0)})
    normalize_span(Normalizer(pricer=pricer), res, scope, span)
    deferred = engine_check.engine_row(res, scope, span, 65536, pricer)["deferred"]
    assert isinstance(deferred, list) and "price_override" in deferred


def test_span_keys_as_numbers_name_one_key_each() -> None:
    """store/ingest_keys.py: each key the spec names has its own number and any other key 0, so
    `has` / `hasAny` on the numbers answer as on the key strings; a key the spec does not name
    cannot be asked."""
    client = engine_check._engine(65536)._client
    keys = [*ingest_keys.KEYS, "not.a.spec.key", ""]
    literal = "[" + ", ".join("'" + k.replace("\\", "\\\\").replace("'", "\\'") + "'" for k in keys) + "]"
    (ids,) = client.query(f"SELECT {ingest_keys.key_ids_sql(literal)}").result_rows[0]
    assert ids == [*range(1, len(ingest_keys.KEYS) + 1), 0, 0]
    assert "gen_ai.input.messages" in ingest_keys.KEYS and "llm.cost.total" in ingest_keys.KEYS
    with pytest.raises(KeyError):
        ingest_keys.has_key("not.a.spec.key")


# -- the query for the keys a batch carries (store/ingest_carried.py) ------------------------------

_MIXED: list[dict[str, Any]] = [
    _CHAT,
    {**_CHAT, "gen_ai.input.messages": _J([{"role": "system", "content": "s"}, {"role": "user", "content": "q"}])},
    {**_CHAT, "gen_ai.completion": "plain answer", "gen_ai.system_instructions": "Sys."},
    {**_CHAT, "gen_ai.input.messages": "[]", "gen_ai.prompt": _J([{"role": "user", "content": "p"}])},
    {"gen_ai.operation.name": "embeddings", "gen_ai.input.messages": _J(["first", "", "second"])},
    {"gen_ai.operation.name": "retrieval", "gen_ai.retrieval.query.text": "what is up"},
    {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.call.arguments": "{}"},
    _priced(**{"gen_ai.usage.cache_read.input_tokens": 1000, "gen_ai.response.model": "gpt-4o-no-such-date"}),
    _priced(**{"gen_ai.usage.cost": 0.5}),
    {
        "openinference.span.kind": "LLM",
        "llm.model_name": "gpt-4o",
        "llm.token_count.prompt": 7,
        _OI + "0.message.role": "user",
        _OI + "0.message.content": "first",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": "answer",
        "session.id": "s-1",
    },
    {"openinference.span.kind": "CHAIN", "input.value": "text"},
    {"llm.request.type": "chat", _TLP + "0.role": "user", _TLP + "0.content": "q", "llm.usage.total_tokens": "12"},
    {"ai.operationId": "ai.generateText.doGenerate", "ai.model.id": "gpt-4o-mini", "ai.usage.promptTokens": 3},
    {"langfuse.observation.type": "generation", "langfuse.user.id": "u-1", "langfuse.observation.model.name": "m"},
    {"user.id": "u-2", "enduser.id": "u-3", "app.feature": "none of the conventions"},
]


def test_the_query_for_a_batchs_keys_gives_the_whole_querys_rows() -> None:
    """The rows of a batch of spans of every convention, by the whole query, equal the rows of each
    span alone by the query rendered for its keys, and of the batch by the query for its keys."""
    bodies = [body_of(*record_span(f"span {i}", attrs)) for i, attrs in enumerate(_MIXED)]
    engine = engine_check._engine(65536, Pricer())
    whole = EngineRows(engine._client, pricer=Pricer(), carried_keys=False)
    try:
        expected = whole.rows(bodies)
    finally:
        whole.close()
    assert len(expected) == len(_MIXED) and {r["invalid"] for r in expected} == {""}
    assert [row for body in bodies for row in engine.rows([body])] == expected
    assert engine.rows(bodies) == expected


def test_a_batch_is_asked_for_its_span_keys_and_the_spec_reads_some() -> None:
    res, scope, span = record_span(
        "x", {"gen_ai.request.model": "m", "llm.input_messages.3.message.role": "user", "not.in.the.spec": 1}
    )
    engine = engine_check._engine(65536)
    path = ROOT / "build" / "carried-keys.otlp"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(delimited([body_of(res, scope, span)]))
    try:
        settings = schema_settings(engine._schema)
        (keys,) = engine._client.query(ingest_carried.keys_sql(str(path)), settings=settings).result_rows[0]
    finally:
        path.unlink()
    assert sorted(keys) == ["gen_ai.request.model", "llm.input_messages.3.message.role", "not.in.the.spec"]
    assert ingest_carried.carried(keys) == {"gen_ai.request.model", "llm.input_messages."}
    whole = span_rows_sql("{source}", priced=True)
    assert len(span_rows_sql("{source}", priced=True, carried=ingest_carried.carried(keys))) < len(whole) * 0.85
    assert span_rows_sql("{source}", priced=True, carried=None) == whole


_OUT = "gen_ai.output.messages"


def _out(*members: dict[str, Any]) -> str:
    return _J([{"role": "assistant", "content": "a", **m} for m in members])


@pytest.mark.parametrize(
    ("attrs", "finish", "deferred"),
    [
        ({"gen_ai.response.finish_reasons": ["END_TURN", "stop"]}, "stop", False),
        ({"gen_ai.response.finish_reasons": [" Max_Tokens "]}, "length", False),
        ({"gen_ai.response.finish_reasons": "tool_use"}, "tool_call", False),
        ({"gen_ai.response.finish_reasons": "Something Else"}, "something else", False),
        ({"gen_ai.response.finish_reasons": '["stop"'}, '["stop"', False),  # not JSON: the text itself
        ({"gen_ai.response.finish_reasons": '{"a": "stop"}'}, "", False),
        ({"gen_ai.response.finish_reasons": "[1, 2]", _OUT: _out({"finish_reason": "length"})}, "length", False),
        # an empty first reason is a reason: the output message's is not read
        ({"gen_ai.response.finish_reasons": ["", "stop"], _OUT: _out({"finish_reason": "length"})}, "", False),
        ({_OUT: _out({"finish_reason": "content-filter"})}, "content_filter", False),
        ({_OUT: _out({"finish_reason": "stop"}, {})}, "", False),  # only the last message counts
        ({_OUT: _out({"finish_reason": ""})}, "", False),
        ({_OUT: _out({"finish_reason": 3})}, "", False),
        ({_OUT: " " + _out({"finish_reason": "stop"})}, "", False),  # not read as JSON by Python
        ({_OUT: _out({"finish_reason": "st\u00f6p"})}, None, True),
        ({_OUT: '[{"role": "assistant", "finish_reason": "stop", "finish_reason": "length"}]'}, None, True),
        ({"gen_ai.response.finish_reasons": ["STOP\u00a0"]}, None, True),
    ],
)
def test_the_finish_reason_is_the_python_paths(attrs: dict[str, Any], finish: str | None, deferred: bool) -> None:
    res, scope, span = record_span("x", {**_CHAT, **attrs})
    row = normalize_span(Normalizer(), res, scope, span)  # asserts the engine's row equal, column by column
    eng = engine_check.engine_row(res, scope, span)
    assert isinstance(eng["deferred"], list)
    assert ("finish_text" in eng["deferred"]) == deferred
    if not deferred:
        assert eng["deferred"] == []
        assert eng["finish_reason"] == row.get("finish_reason", "") == finish


@pytest.mark.parametrize(
    ("attrs", "finish"),
    [
        ({"openinference.span.kind": "LLM", "llm.finish_reason": "MAX_TOKENS"}, "length"),
        ({"ai.operationId": "ai.generateText.doGenerate", "ai.response.finishReason": "tool-calls"}, "tool_call"),
        # the first family giving one wins
        (
            {"gen_ai.operation.name": "chat", "gen_ai.response.finish_reasons": ["stop"], "llm.finish_reason": "error"},
            "stop",
        ),
    ],
)
def test_each_familys_finish_reason_is_the_python_paths(attrs: dict[str, Any], finish: str) -> None:
    res, scope, span = record_span("x", attrs)
    row = normalize_span(Normalizer(), res, scope, span)
    eng = engine_check.engine_row(res, scope, span)
    assert eng["deferred"] == []
    assert eng["finish_reason"] == row.get("finish_reason", "") == finish


@pytest.mark.parametrize(
    "attrs",
    [
        {"openinference.span.kind": "Agent"},
        {"traceloop.span.kind": "agent", "traceloop.entity.name": "planner"},
        {"langfuse.observation.type": "AGENT"},
    ],
)
def test_an_agent_span_whose_name_python_takes_is_deferred(attrs: dict[str, Any]) -> None:
    """The Python path takes an agent span's name (or entity name) as agent_name, read from a kind
    attribute's text in any case (ingest_spec.UNRENDERED `contains`): the engine defers it."""
    res, scope, span = record_span("planner", attrs)
    row = normalize_span(Normalizer(), res, scope, span)
    assert row["agent_name"] == "planner"
    deferred = engine_check.engine_row(res, scope, span)["deferred"]
    assert isinstance(deferred, list) and "unrendered:agent_name" in deferred
