"""Making real OTLP: spans from the real OpenTelemetry SDK, sent by its real exporters."""

from __future__ import annotations

import json
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


def provider_for(
    exporter: SpanExporter, service: str = "checkout-bot", release: str = "1.2.3"
) -> TracerProvider:
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
