"""Realistic OTLP trace requests for load tests and benchmarks.

Each span looks like what the GenAI instrumentations emit for a chat call: about 20 attributes,
with input and output message contents of 300-800 bytes. Built directly as protobuf so a
benchmark's client costs little next to the collector it drives.
"""

from __future__ import annotations

import json
import random
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

__all__ = ["filler_text", "llm_request", "span_ids"]

_WORDS = tuple(
    (
        "the model answered with a summary of the quarterly revenue figures and noted that the customer "
        "asked about shipping delays refunds and the warranty policy for the premium plan while the "
        "retrieved passage described order status tracking numbers and carrier handoffs"
    ).split()
)
_MODELS = [("openai", "gpt-4o-mini"), ("openai", "gpt-4o"), ("anthropic", "claude-3-5-sonnet-20241022")]


def filler_text(rng: random.Random, lo: int, hi: int) -> str:
    """Between `lo` and `hi` characters of plausible support-chat words."""
    target = rng.randint(lo, hi)
    out: list[str] = []
    size = 0
    while size < target:
        w = rng.choice(_WORDS)
        out.append(w)
        size += len(w) + 1
    return " ".join(out)[:target]


def _kv(key: str, value: str | int | float) -> KeyValue:
    if isinstance(value, str):
        return KeyValue(key=key, value=AnyValue(string_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(double_value=value))


def llm_request(
    spans: int = 100, seed: int = 0, start_ns: int | None = None, *, finish_reasons: bool = True
) -> ExportTraceServiceRequest:
    """One export request: `spans` chat spans in traces of 5, from one service. Without
    `finish_reasons` the spans carry none (neither the attribute nor the output message's)."""
    rng = random.Random(seed)
    t0 = start_ns if start_ns is not None else time.time_ns() - 60_000_000_000
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(
        [
            _kv("service.name", "support-bot"),
            _kv("service.version", "2.4.1"),
            _kv("deployment.environment.name", "prod"),
        ]
    )
    ss = rs.scope_spans.add()
    ss.scope.name = "opentelemetry.instrumentation.openai_v2"
    trace_id = b""
    for i in range(spans):
        if i % 5 == 0:
            trace_id = rng.randbytes(16)
        provider, model = rng.choice(_MODELS)
        start = t0 + i * 1_000_000
        user = filler_text(rng, 300, 800)
        answer = filler_text(rng, 300, 800)
        span = Span(
            trace_id=trace_id,
            span_id=rng.randbytes(8),
            parent_span_id=b"" if i % 5 == 0 else rng.randbytes(8),
            name=f"chat {model}",
            kind=Span.SPAN_KIND_CLIENT,
            start_time_unix_nano=start,
            end_time_unix_nano=start + rng.randint(200, 4000) * 1_000_000,
        )
        span.attributes.extend(
            [
                _kv("gen_ai.operation.name", "chat"),
                _kv("gen_ai.provider.name", provider),
                _kv("gen_ai.request.model", model),
                _kv("gen_ai.response.model", model),
                _kv("gen_ai.response.id", f"chatcmpl-{rng.getrandbits(64):x}"),
                _kv("gen_ai.request.temperature", 0.2),
                _kv("gen_ai.request.max_tokens", 1024),
                _kv("gen_ai.usage.input_tokens", rng.randint(100, 2000)),
                _kv("gen_ai.usage.output_tokens", rng.randint(20, 400)),
                _kv("gen_ai.usage.cache_read.input_tokens", rng.choice([0, 0, 64, 128])),
                _kv("gen_ai.conversation.id", f"conv-{rng.randint(1, 10_000)}"),
                _kv("server.address", "api.example.com"),
                _kv("server.port", 443),
                _kv("user.id", f"user-{rng.randint(1, 5000)}"),
                _kv("session.id", f"sess-{rng.randint(1, 20_000)}"),
                _kv(
                    "gen_ai.input.messages",
                    json.dumps(
                        [
                            {
                                "role": "system",
                                "parts": [{"type": "text", "content": "You are a support agent."}],
                            },
                            {"role": "user", "parts": [{"type": "text", "content": user}]},
                        ]
                    ),
                ),
                _kv(
                    "gen_ai.output.messages",
                    json.dumps(
                        [
                            {
                                "role": "assistant",
                                "parts": [{"type": "text", "content": answer}],
                                **({"finish_reason": "stop"} if finish_reasons else {}),
                            }
                        ]
                    ),
                ),
                _kv("app.feature", rng.choice(["faq", "refunds", "orders", "billing"])),
                _kv("app.request_id", f"req-{rng.getrandbits(48):x}"),
            ]
        )
        if finish_reasons:
            span.attributes.append(
                KeyValue(
                    key="gen_ai.response.finish_reasons",
                    value=AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="stop")])),
                )
            )
        ss.spans.append(span)
    return req


def span_ids(req: ExportTraceServiceRequest) -> list[tuple[str, str]]:
    """(trace id, span id) in hex, for every span of a request."""
    return [(s.trace_id.hex(), s.span_id.hex()) for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]
