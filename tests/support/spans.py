"""Small OTLP export requests built field by field, for the write-path tests (protobuf as a real
exporter sends it)."""

from __future__ import annotations

import random
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

__all__ = ["chat_request", "ids_of", "set_attr"]


def chat_request(spans: int, seed: int, start_ns: int | None = None, day_step: int = 0) -> ExportTraceServiceRequest:
    """`spans` chat spans (one trace each) from one service; span i starts `i * day_step` days
    after `start_ns` (default: a minute ago)."""
    rng = random.Random(seed)
    t0 = start_ns if start_ns is not None else time.time_ns() - 60 * 10**9
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "write-path-test"
    ss = rs.scope_spans.add()
    for i in range(spans):
        s = ss.spans.add()
        s.trace_id = rng.randbytes(15) + b"\x01"
        s.span_id = rng.randbytes(7) + b"\x01"
        s.name = "chat gpt-4o-mini"
        s.kind = Span.SpanKind.SPAN_KIND_CLIENT
        s.start_time_unix_nano = t0 + i * day_step * 86_400 * 10**9 + i
        s.end_time_unix_nano = s.start_time_unix_nano + 250_000_000
        set_attr(s, "gen_ai.operation.name", "chat")
        set_attr(s, "gen_ai.request.model", "gpt-4o-mini")
        set_attr(s, "gen_ai.usage.input_tokens", rng.randint(10, 500))
    return req


def set_attr(span: Span, key: str, value: str | int) -> None:
    kv = span.attributes.add()
    kv.key = key
    if isinstance(value, int):
        kv.value.int_value = value
    else:
        kv.value.string_value = value


def ids_of(req: ExportTraceServiceRequest) -> set[str]:
    """Span ids (hex) of a request."""
    return {s.span_id.hex() for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans}
