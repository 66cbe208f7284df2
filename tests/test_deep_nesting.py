"""Deeply nested requests are bad data: a permanent 400, never a retryable 503 with a traceback.

An OTLP body nested deeper than its decoder allows (protobuf's 100 message levels, the JSON parser's
recursion limit) cannot be decoded at all, so there are no spans to keep: the OTLP spec's answer is
400 Bad Request for the request (https://opentelemetry.io/docs/specs/otlp/#failures-1), without
Retry-After, and the collector goes on serving. Nesting that does decode (a structured AnyValue a
few dozen levels deep, a string attribute holding JSON nested 10,000 levels) is stored with its
span and its neighbours. Everything runs over the real app on loopback.
"""

from __future__ import annotations

import gzip
import json
import logging
import time

import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.conftest import KEY_A, LiveServer

DEPTH = 10_000
NOW_NS = (int(time.time()) - 60) * 1_000_000_000
TRACE = "7a" * 16
_PB = {"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {KEY_A}"}
_JSON = {"Content-Type": "application/json", "Authorization": f"Bearer {KEY_A}"}


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field, encoded by hand: building 10,000 nested messages with
    the protobuf API would itself hit the library's nesting limit."""
    out = bytearray([number << 3 | 2])
    n = len(payload)
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out) + payload


def _nested_any_value(depth: int) -> bytes:
    value: bytes = AnyValue(string_value="bottom").SerializeToString()
    for _ in range(depth):  # AnyValue.array_value (5) -> ArrayValue.values (1) -> AnyValue
        value = _field(5, _field(1, value))
    return value


def _span(span_id: str) -> Span:
    return Span(
        trace_id=bytes.fromhex(TRACE),
        span_id=bytes.fromhex(span_id),
        name="deep",
        start_time_unix_nano=NOW_NS,
        end_time_unix_nano=NOW_NS + 1_000_000,
    )


def _protobuf_body(depth: int) -> bytes:
    """Two spans; the second carries attribute `deep` holding an array nested `depth` levels."""
    plain = _span("00000000000000a1").SerializeToString()
    key_value = _field(1, b"deep") + _field(2, _nested_any_value(depth))
    deep = _span("00000000000000a2").SerializeToString() + _field(9, key_value)  # Span.attributes (9)
    scope_spans = _field(2, plain) + _field(2, deep)  # ScopeSpans.spans (2)
    return _field(1, _field(2, scope_spans))  # request.resource_spans (1) -> scope_spans (2)


def _json_span(span_id: str, attributes: list[dict[str, object]]) -> dict[str, object]:
    return {
        "traceId": TRACE,
        "spanId": span_id,
        "name": "deep",
        "startTimeUnixNano": str(NOW_NS),
        "endTimeUnixNano": str(NOW_NS + 1_000_000),
        "attributes": attributes,
    }


def _json_body(depth: int) -> bytes:
    """The same two spans as OTLP/JSON; the nesting is written as text (json.dumps would recurse)."""
    value = '{"arrayValue": {"values": [' * depth + '{"stringValue": "bottom"}' + "]}}" * depth
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [_json_span("00000000000000a1", []), "DEEP"]}]}]}
    deep = _json_span("00000000000000a2", [{"key": "deep", "value": "VALUE"}])
    return json.dumps(doc).replace('"DEEP"', json.dumps(deep).replace('"VALUE"', value)).encode()


def _stored(live: LiveServer) -> list[str]:
    assert live.runtime.flush(10)
    r = httpx.get(f"{live.url}/api/v1/traces/{TRACE}", headers={"Authorization": f"Bearer {KEY_A}"})
    return [] if r.status_code == 404 else [s["span_id"] for s in r.json()["spans"]]


@pytest.mark.parametrize("encoding", ["protobuf", "json", "json-gzip"])
def test_request_nested_10000_levels_is_a_permanent_400(
    live: LiveServer, encoding: str, caplog: pytest.LogCaptureFixture
) -> None:
    body, headers = (_protobuf_body(DEPTH), _PB) if encoding == "protobuf" else (_json_body(DEPTH), dict(_JSON))
    if encoding == "json-gzip":
        body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
    with caplog.at_level(logging.ERROR):
        r = httpx.post(f"{live.url}/v1/traces", content=body, headers=headers, timeout=30)
    assert r.status_code == 400, r.text
    assert "retry-after" not in r.headers
    message = status_pb2.Status.FromString(r.content).message if encoding == "protobuf" else r.json()["message"]
    assert "nest" in message
    assert not [rec for rec in caplog.records if rec.exc_info], "a bad request is not logged as a failure"
    assert _stored(live) == []  # nothing of the request was kept
    # The collector goes on: the same spans without the deep attribute are stored.
    ok = httpx.post(f"{live.url}/v1/traces", content=_protobuf_body(0), headers=_PB)
    assert ok.status_code == 200, ok.text
    assert _stored(live) == ["00000000000000a1", "00000000000000a2"]


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
def test_nesting_that_decodes_is_stored_with_its_neighbours(live: LiveServer, encoding: str) -> None:
    depth = 40  # 2 message levels per array level, under protobuf's 100 with the request's own levels
    body, headers = (_protobuf_body(depth), _PB) if encoding == "protobuf" else (_json_body(depth), _JSON)
    r = httpx.post(f"{live.url}/v1/traces", content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert live.runtime.flush(10)
    spans = httpx.get(f"{live.url}/api/v1/traces/{TRACE}", headers={"Authorization": f"Bearer {KEY_A}"}).json()
    deep = next(s for s in spans["spans"] if s["span_id"] == "00000000000000a2")
    assert deep["attributes"]["deep"] == "[" * depth + '"bottom"' + "]" * depth


def test_string_attribute_holding_json_nested_10000_levels_is_kept(live: LiveServer) -> None:
    text = "[" * DEPTH + "]" * DEPTH  # conventions parse message attributes as JSON
    req = ExportTraceServiceRequest()
    spans = req.resource_spans.add().scope_spans.add().spans
    spans.add().CopyFrom(_span("00000000000000b1"))
    deep = spans.add()
    deep.CopyFrom(_span("00000000000000b2"))
    for key in ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.retrieval.documents"):
        deep.attributes.add(key=key).value.string_value = text
    deep.attributes.add(key="gen_ai.operation.name").value.string_value = "chat"
    r = httpx.post(f"{live.url}/v1/traces", content=req.SerializeToString(), headers=_PB)
    assert r.status_code == 200, r.text
    assert _stored(live) == ["00000000000000b1", "00000000000000b2"]
