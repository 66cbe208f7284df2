"""Spans that cannot be stored, oversized values, and the non-LLM span fields."""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.trace import SpanKind

from driftline.collector.normalize import INVALID_REASONS, InvalidSpan, Normalizer
from driftline.collector.otlp_values import truncate
from driftline.store.columns import NORMALIZED_COLUMNS
from tests.support.engine_check import normalize_span
from tests.support.otel_capture import record_span


def _span(**attrs: Any) -> tuple[Resource, InstrumentationScope, Span]:
    return record_span("op", attrs or {"k": "v"}, kind=SpanKind.SERVER)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("trace_id", b"", "missing_trace_id"),
        ("trace_id", bytes(16), "missing_trace_id"),
        ("trace_id", b"\x01" * 8, "missing_trace_id"),
        ("span_id", b"", "missing_span_id"),
        ("span_id", bytes(8), "missing_span_id"),
        ("parent_span_id", b"\x01" * 3, "bad_parent_span_id"),
        ("start_time_unix_nano", 0, "bad_timestamp"),
        ("end_time_unix_nano", 1, "bad_timestamp"),
        ("end_time_unix_nano", 2**63, "bad_timestamp"),  # past what DateTime64(9) holds
    ],
)
def test_invalid_spans(field: str, value: object, reason: str) -> None:
    res, scope, span = _span()
    setattr(span, field, value)
    norm = Normalizer()
    with pytest.raises(InvalidSpan) as info:
        normalize_span(norm, res, scope, span)  # the engine gives the same reason
    assert info.value.reason == reason and reason in INVALID_REASONS
    assert str(info.value)  # says what is wrong


def test_span_fields_and_types() -> None:
    res, scope, span = record_span(
        "GET /x",
        {
            "http.response.status_code": 200,
            "ok": True,
            "ratio": 0.5,
            "tags": ["a", "b"],
            "blob": b"\x00\x01",
            "empty": "",
        },
        kind=SpanKind.SERVER,
        error="boom",
    )
    norm = Normalizer()
    row: dict[str, Any] = normalize_span(norm, res, scope, span)
    assert set(row) <= set(NORMALIZED_COLUMNS)
    assert row["trace_id"] == span.trace_id.hex() and len(row["trace_id"]) == 32
    assert row["span_id"] == span.span_id.hex() and row["parent_span_id"] == ""
    assert (row["kind"], row["status_code"], row["status_message"]) == ("server", "error", "boom")
    assert row["start_time"] == span.start_time_unix_nano and row["duration_ms"] == 1500.0
    assert row["scope_name"] == "driftline.tests"
    assert row["attributes"] == {
        "http.response.status_code": "200",
        "ok": "true",
        "ratio": "0.5",
        "tags": '["a","b"]',
        "blob": "AAE=",
        "empty": "",
    }
    assert row["resource_attributes"]["service.name"] == "driftline-test-app"
    assert "operation" not in row  # not an LLM span


def test_unspecified_kind_reads_as_internal() -> None:
    res, scope, span = _span()
    span.kind = Span.SPAN_KIND_UNSPECIFIED
    norm = Normalizer()
    assert normalize_span(norm, res, scope, span)["kind"] == "internal"


def test_resource_environment_fallbacks() -> None:
    norm = Normalizer()
    res, _, _ = record_span("x", {"k": 1}, resource={"service.name": "a", "deployment.environment": "old-key"})
    ctx = norm.resource(res)
    assert (ctx.service, ctx.release, ctx.environment) == ("a", "", "old-key")
    res, _, _ = record_span(
        "x",
        {"k": 1},
        resource={
            "service.name": "a",
            "deployment.environment": "old",
            "deployment.environment.name": "new",
            "service.version": "9",
        },
    )
    ctx = norm.resource(res)
    assert (ctx.release, ctx.environment) == ("9", "new")


def test_oversized_values_are_truncated_with_a_marker() -> None:
    limit = 1024
    big = "é" * 2000  # 4000 UTF-8 bytes
    messages = json.dumps([{"role": "user", "parts": [{"type": "text", "content": big}]}])
    res, scope, span = record_span(
        "chat", {"gen_ai.operation.name": "chat", "note": big, "gen_ai.input.messages": messages}
    )
    norm = Normalizer(max_value_bytes=limit)
    row: dict[str, Any] = norm.span(span, norm.resource(res), scope)
    stored = row["attributes"]["note"]
    assert stored.endswith("...[truncated 2976 bytes]")
    assert len(stored.split("...[")[0].encode()) <= limit
    # The message attribute was still parsed whole; the derived text is cut the same way.
    assert row["input_text"].startswith("éé") and "...[truncated" in row["input_text"]
    msgs = json.loads(row["input_messages"])  # still valid JSON
    assert msgs[0]["content"].endswith("bytes]")


def test_long_message_lists_drop_oldest_items_visibly() -> None:
    limit = 256
    turns = [{"role": "user", "parts": [{"type": "text", "content": f"turn {i} " + "x" * 200}]} for i in range(40)]
    res, scope, span = record_span(
        "chat", {"gen_ai.operation.name": "chat", "gen_ai.input.messages": json.dumps(turns)}
    )
    norm = Normalizer(max_value_bytes=limit)
    row: dict[str, Any] = norm.span(span, norm.resource(res), scope)
    msgs = json.loads(row["input_messages"])
    assert "truncated_items" in msgs[0] and msgs[-1]["content"].startswith("turn 39")
    assert msgs[0]["truncated_items"] + len(msgs) - 1 == 40


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("abc", 10, "abc"),
        ("abcdef", 4, "abcd...[truncated 2 bytes]"),
        ("ééé", 3, "é...[truncated 4 bytes]"),  # never cuts inside a character
    ],
)
def test_truncate(text: str, limit: int, expected: str) -> None:
    assert truncate(text, limit) == expected


def test_events_column() -> None:
    res, scope, span = record_span("x", {"k": "v"}, events=[("retry", {"attempt": 2, "why": "timeout"})])
    norm = Normalizer()
    row: dict[str, Any] = norm.span(span, norm.resource(res), scope)
    assert json.loads(row["events"]) == [
        {
            "name": "retry",
            "time_unix_nano": span.events[0].time_unix_nano,
            "attributes": {"attempt": 2, "why": "timeout"},
        }
    ]


def test_max_value_bytes_must_be_sane() -> None:
    with pytest.raises(ValueError, match="max_value_bytes"):
        Normalizer(max_value_bytes=8)
