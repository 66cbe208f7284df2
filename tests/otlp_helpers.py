"""Making real OTLP: spans from the real OpenTelemetry SDK, sent by its real exporters."""

from __future__ import annotations

import json
import time
from typing import Any

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind

__all__ = ["grpc_exporter", "http_exporter", "provider_for", "send_chat_trace"]


def http_exporter(base_url: str, key: str, gzip: bool = False) -> HttpExporter:
    return HttpExporter(
        endpoint=f"{base_url}/v1/traces",
        headers={"Authorization": f"Bearer {key}"},
        compression=HttpCompression.Gzip if gzip else HttpCompression.NoCompression,
    )


def grpc_exporter(port: int, key: str, gzip: bool = False) -> GrpcExporter:
    import grpc

    return GrpcExporter(
        endpoint=f"127.0.0.1:{port}",
        insecure=True,
        headers={"authorization": f"Bearer {key}"},
        compression=grpc.Compression.Gzip if gzip else grpc.Compression.NoCompression,
    )


def provider_for(exporter: SpanExporter, service: str = "checkout-bot", release: str = "1.2.3") -> TracerProvider:
    tp = TracerProvider(
        resource=Resource.create(
            {"service.name": service, "service.version": release, "deployment.environment.name": "test"}
        )
    )
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    return tp


def send_chat_trace(tp: TracerProvider, answer: str = "Paris is the capital of France.") -> dict[str, Any]:
    """One agent trace with a chat child span in current GenAI semantic conventions."""
    tracer = tp.get_tracer("tests")
    with tracer.start_as_current_span("invoke_agent helper") as root:
        root.set_attribute("gen_ai.operation.name", "invoke_agent")
        with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT) as chat:
            chat.set_attribute("gen_ai.operation.name", "chat")
            chat.set_attribute("gen_ai.provider.name", "openai")
            chat.set_attribute("gen_ai.request.model", "gpt-4o-mini")
            chat.set_attribute("gen_ai.usage.input_tokens", 120)
            chat.set_attribute("gen_ai.usage.output_tokens", 12)
            chat.set_attribute("custom.attr", "kept")
            chat.set_attribute(
                "gen_ai.output.messages",
                json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": answer}]}]),
            )
            ctx = chat.get_span_context()
    return {"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x")}


def send_rag_trace(
    tp: TracerProvider,
    passage: str,
    question: str,
    answer: str,
    error: bool = False,
    model: str = "gpt-4o-mini",
    at_ns: int | None = None,
    duration_ms: float = 800.0,
) -> dict[str, str]:
    """A retrieval span (OpenInference document attributes) then a chat span answering from it.
    `at_ns` places the trace in time (the SDK's explicit start/end times); default: now."""
    from opentelemetry import trace
    from opentelemetry.trace import Status, StatusCode

    tracer = tp.get_tracer("tests")
    t0 = at_ns if at_ns is not None else time.time_ns()
    d = int(duration_ms * 1_000_000)
    root = tracer.start_span("rag", start_time=t0, attributes={"gen_ai.operation.name": "invoke_agent"})
    with trace.use_span(root, end_on_exit=False):
        r = tracer.start_span("retrieve", start_time=t0 + 1_000_000)
        r.set_attribute("openinference.span.kind", "RETRIEVER")
        r.set_attribute("retrieval.documents.0.document.content", passage)
        r.end(end_time=t0 + 2_000_000)
        chat = tracer.start_span(f"chat {model}", kind=SpanKind.CLIENT, start_time=t0 + 3_000_000)
        chat.set_attribute("gen_ai.operation.name", "chat")
        chat.set_attribute("gen_ai.provider.name", "openai")
        chat.set_attribute("gen_ai.request.model", model)
        chat.set_attribute("gen_ai.usage.input_tokens", 100)
        chat.set_attribute("gen_ai.usage.output_tokens", 20)
        chat.set_attribute(
            "gen_ai.input.messages",
            json.dumps([{"role": "user", "parts": [{"type": "text", "content": question}]}]),
        )
        chat.set_attribute(
            "gen_ai.output.messages",
            json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": answer}]}]),
        )
        if error:
            chat.set_status(Status(StatusCode.ERROR, "upstream 500"))
        ctx = chat.get_span_context()
        chat.end(end_time=t0 + 3_000_000 + d)
    root.end(end_time=t0 + 4_000_000 + d)
    return {"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x")}
