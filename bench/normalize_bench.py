"""Micro-benchmark: how many spans/s `Normalizer.span` turns into rows on one core.

The batch mixes what a collector sees from LLM apps: GenAI-semconv chat spans with JSON
messages, OpenInference chat spans (flattened messages), legacy OpenLLMetry spans, Vercel AI
SDK spans, tool spans, and plain HTTP/DB spans from the same services. Message contents are
300-800 bytes; LLM spans carry ~20 attributes. The spans are protobuf-decoded once up front
(decoding is the decode stage's cost, not the normalizer's), then normalized in a loop.

    .venv/bin/python bench/normalize_bench.py [--spans 20000] [--rounds 5] [--no-pricer]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools/ sits beside bench/, not installed

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from driftline.collector.normalize import Normalizer
from driftline.pricing import Pricer
from tools.loadgen import filler_text

_rng = random.Random(7)


def _text(lo: int = 300, hi: int = 800) -> str:
    return filler_text(_rng, lo, hi)


def _value(v: object) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, list):
        out = AnyValue()
        out.array_value.values.extend(_value(x) for x in v)
        return out
    return AnyValue(string_value=str(v))


def _span(i: int, name: str, attrs: dict[str, object], kind: int = 3) -> Span:
    s = Span(
        trace_id=(i + 1).to_bytes(16, "big"),
        span_id=(i + 1).to_bytes(8, "big"),
        parent_span_id=(i + 7).to_bytes(8, "big"),
        name=name,
        kind=kind,  # type: ignore[arg-type]
        start_time_unix_nano=1_760_000_000_000_000_000 + i * 1000,
        end_time_unix_nano=1_760_000_000_900_000_000 + i * 1000,
        status=Status(code=Status.STATUS_CODE_OK),
    )
    s.attributes.extend(KeyValue(key=k, value=_value(v)) for k, v in attrs.items())
    return s


def genai_chat(i: int) -> Span:
    msgs_in = [
        {"role": "system", "parts": [{"type": "text", "content": _text(200, 400)}]},
        {"role": "user", "parts": [{"type": "text", "content": _text()}]},
    ]
    msgs_out = [{"role": "assistant", "parts": [{"type": "text", "content": _text()}], "finish_reason": "stop"}]
    return _span(
        i,
        "chat gpt-4o-mini",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
            "gen_ai.response.id": f"chatcmpl-{i}",
            "gen_ai.response.finish_reasons": ["stop"],
            "gen_ai.usage.input_tokens": 812,
            "gen_ai.usage.output_tokens": 143,
            "gen_ai.usage.cache_read.input_tokens": 512,
            "gen_ai.input.messages": json.dumps(msgs_in),
            "gen_ai.output.messages": json.dumps(msgs_out),
            "gen_ai.request.temperature": 0.2,
            "gen_ai.request.max_tokens": 512,
            "gen_ai.conversation.id": f"conv-{i % 50}",
            "server.address": "api.openai.com",
            "server.port": 443,
            "openai.response.system_fingerprint": "fp_1",
            "user.id": f"u{i % 97}",
            "session.id": f"s{i % 31}",
        },
    )


def openinference_chat(i: int) -> Span:
    return _span(
        i,
        "ChatCompletion",
        {
            "openinference.span.kind": "LLM",
            "llm.system": "openai",
            "llm.provider": "openai",
            "llm.model_name": "gpt-4o-2024-08-06",
            "llm.invocation_parameters": '{"model": "gpt-4o", "temperature": 0}',
            "input.value": '{"messages": "..."}',
            "input.mime_type": "application/json",
            "output.value": '{"choices": "..."}',
            "output.mime_type": "application/json",
            "llm.input_messages.0.message.role": "system",
            "llm.input_messages.0.message.content": _text(200, 400),
            "llm.input_messages.1.message.role": "user",
            "llm.input_messages.1.message.content": _text(),
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": _text(),
            "llm.token_count.prompt": 700,
            "llm.token_count.completion": 120,
            "llm.token_count.total": 820,
            "llm.token_count.prompt_details.cache_read": 0,
            "session.id": f"s{i % 31}",
            "user.id": f"u{i % 97}",
        },
        kind=1,
    )


def traceloop_legacy(i: int) -> Span:
    return _span(
        i,
        "openai.chat",
        {
            "llm.request.type": "chat",
            "gen_ai.system": "OpenAI",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
            "llm.usage.total_tokens": 900,
            "gen_ai.usage.prompt_tokens": 780,
            "gen_ai.usage.completion_tokens": 120,
            "gen_ai.prompt.0.role": "system",
            "gen_ai.prompt.0.content": _text(200, 400),
            "gen_ai.prompt.1.role": "user",
            "gen_ai.prompt.1.content": _text(),
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.content": _text(),
            "gen_ai.completion.0.finish_reason": "stop",
            "llm.is_streaming": False,
            "gen_ai.openai.api_base": "https://api.openai.com/v1/",
            "traceloop.workflow.name": "support_bot",
            "traceloop.association.properties.user_id": f"u{i % 97}",
        },
    )


def vercel_generate(i: int) -> Span:
    prompt = json.dumps([{"role": "user", "content": [{"type": "text", "text": _text()}]}])
    return _span(
        i,
        "ai.generateText.doGenerate",
        {
            "operation.name": "ai.generateText.doGenerate",
            "ai.operationId": "ai.generateText.doGenerate",
            "ai.model.provider": "anthropic.messages",
            "ai.model.id": "claude-3-5-haiku-latest",
            "ai.prompt.messages": prompt,
            "ai.response.text": _text(),
            "ai.response.finishReason": "stop",
            "ai.usage.promptTokens": 640,
            "ai.usage.completionTokens": 90,
            "ai.settings.maxRetries": 2,
            "gen_ai.system": "anthropic.messages",
            "gen_ai.request.model": "claude-3-5-haiku-latest",
            "gen_ai.response.model": "claude-3-5-haiku-20241022",
            "gen_ai.usage.input_tokens": 640,
            "gen_ai.usage.output_tokens": 90,
            "gen_ai.response.finish_reasons": ["stop"],
            "ai.telemetry.metadata.userId": f"u{i % 97}",
            "ai.telemetry.functionId": "answer",
        },
    )


def tool_span(i: int) -> Span:
    return _span(
        i,
        "execute_tool get_weather",
        {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "get_weather",
            "gen_ai.tool.call.id": f"call_{i}",
            "gen_ai.tool.call.arguments": '{"city": "Paris"}',
            "gen_ai.tool.call.result": json.dumps({"forecast": _text(100, 300)}),
            "gen_ai.tool.type": "function",
        },
        kind=1,
    )


def http_span(i: int) -> Span:
    return _span(
        i,
        "GET /v1/answers",
        {
            "http.request.method": "GET",
            "url.path": "/v1/answers",
            "http.response.status_code": 200,
            "server.address": "api.example.com",
            "network.protocol.version": "1.1",
            "user_agent.original": "curl/8",
        },
        kind=2,
    )


MIX: list[tuple[Callable[[int], Span], int]] = [
    (genai_chat, 30),
    (openinference_chat, 20),
    (traceloop_legacy, 15),
    (vercel_generate, 10),
    (tool_span, 10),
    (http_span, 15),
]


def build(n: int) -> list[Span]:
    makers = [m for m, w in MIX for _ in range(w)]
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name", value=AnyValue(string_value="bench"))
    ss = rs.scope_spans.add()
    ss.spans.extend(makers[i % len(makers)](i) for i in range(n))
    parsed = ExportTraceServiceRequest()
    parsed.ParseFromString(req.SerializeToString())  # spans as the decode stage hands them over
    return list(parsed.resource_spans[0].scope_spans[0].spans)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spans", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-pricer", action="store_true")
    ap.add_argument("--batch", type=int, default=5000, help="rows kept alive before being dropped, as a writer batch")
    ap.add_argument(
        "--gc-tuned",
        action="store_true",
        help="gc.freeze() after setup and a gen-0 threshold of 50k, as a long-running collector can do",
    )
    args = ap.parse_args()
    spans = build(args.spans)
    norm = Normalizer(pricer=None if args.no_pricer else Pricer())
    resource = norm.resource(ExportTraceServiceRequest().resource_spans.add().resource)
    scope = InstrumentationScope(name="bench")
    for s in spans[:500]:  # warm caches (pricing lookups) as a running collector would have them
        norm.span(s, resource, scope)
    if args.gc_tuned:
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)
    # CPU time, not wall time: the number should not depend on what else shares the machine.
    rates: list[float] = []
    for _ in range(args.rounds):
        rows: list[dict[str, object]] = []  # rows stay alive until their batch is "written"
        t0 = time.process_time()
        for s in spans:
            rows.append(norm.span(s, resource, scope))
            if len(rows) >= args.batch:
                rows = []
        rates.append(len(spans) / (time.process_time() - t0))
    best, median = max(rates), statistics.median(rates)
    print(
        f"normalize: {len(spans)} spans x {args.rounds} rounds, pricer={'off' if args.no_pricer else 'on'}, "
        f"gc={'tuned' if args.gc_tuned else 'default'}"
    )
    print(f"  median {median:,.0f} spans/s ({1e6 / median:.1f} us/span), best {best:,.0f} spans/s")
    by_kind: dict[str, list[Span]] = {}
    for s in spans:
        by_kind.setdefault(s.name.split(" ")[0], []).append(s)
    for kind, sample in by_kind.items():
        best_us = min(_cpu_us(norm, sample, resource, scope) for _ in range(3))
        print(f"  {kind:<28} {best_us:6.1f} us/span")


def _cpu_us(norm: Normalizer, sample: list[Span], resource: object, scope: InstrumentationScope) -> float:
    t0 = time.process_time()
    for s in sample:
        norm.span(s, resource, scope)  # type: ignore[arg-type]
    return (time.process_time() - t0) / len(sample) * 1e6


if __name__ == "__main__":
    main()
