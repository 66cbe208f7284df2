"""Capture spans from the real OpenTelemetry SDK and turn them into real OTLP payloads.

The spans go through the SDK's own OTLP protobuf encoder (the one the OTLP exporters use), so
a test sees byte-for-byte what an application would send to the collector:
https://opentelemetry.io/docs/specs/otlp/#otlphttp-request

Reusable by the collector's HTTP tests: `Capture.otlp_bytes()` is a ready POST body for
/v1/traces with Content-Type application/x-protobuf.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as PbResource
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

__all__ = [
    "Capture",
    "Instrumentor",
    "SpanEvent",
    "capture",
    "instrumented",
    "iter_spans",
    "record_span",
    "to_otlp_request",
]

DEFAULT_RESOURCE = {
    "service.name": "driftline-test-app",
    "service.version": "1.2.3",
    "deployment.environment.name": "test",
}


class Instrumentor(Protocol):
    """What the opentelemetry-instrumentation BaseInstrumentor subclasses share."""

    def instrument(self, **kwargs: Any) -> None: ...

    def uninstrument(self, **kwargs: Any) -> None: ...


def to_otlp_request(spans: list[ReadableSpan]) -> ExportTraceServiceRequest:
    """Encode finished SDK spans exactly as the OTLP exporters do, then parse the bytes back."""
    payload = encode_spans(spans).SerializeToString()
    request = ExportTraceServiceRequest()
    request.ParseFromString(payload)
    return request


def iter_spans(
    request: ExportTraceServiceRequest,
) -> Iterator[tuple[PbResource, InstrumentationScope, PbSpan]]:
    """Walk an export request in wire order: (resource, scope, span)."""
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield resource_spans.resource, scope_spans.scope, span


class Capture:
    """A tracer provider whose finished spans are kept in memory."""

    def __init__(self, resource: dict[str, Any] | None = None) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(resource=Resource.create(resource or DEFAULT_RESOURCE))
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def otlp_request(self) -> ExportTraceServiceRequest:
        return to_otlp_request(self.spans())

    def otlp_bytes(self) -> bytes:
        payload: bytes = encode_spans(self.spans()).SerializeToString()
        return payload

    def clear(self) -> None:
        self.exporter.clear()


@contextmanager
def capture(resource: dict[str, Any] | None = None) -> Iterator[Capture]:
    """A fresh in-memory tracer provider for one test; shut down afterwards."""
    cap = Capture(resource)
    try:
        yield cap
    finally:
        cap.provider.shutdown()


@contextmanager
def instrumented(instrumentor: Instrumentor, cap: Capture) -> Iterator[None]:
    """Instrument for the block only: the instrumentors patch the `openai` module globally.

    Every openai.resources class attribute is also put back as it was afterwards:
    opentelemetry-instrumentation-openai 0.62's uninstrument() calls
    unwrap("openai.resources.chat.completions", "Completions.create"), which the current
    opentelemetry-instrumentation `unwrap` reads as module "openai.resources.chat" + attribute
    "completions" and silently does nothing, so its wrappers would pile up test after test.
    """
    saved = _openai_class_attrs()
    instrumentor.instrument(tracer_provider=cap.provider, skip_dep_check=True)
    try:
        yield
    finally:
        instrumentor.uninstrument()
        for (cls, name), value in saved.items():
            if cls.__dict__.get(name) is not value:
                setattr(cls, name, value)


def _openai_class_attrs() -> dict[tuple[type, str], object]:
    import openai.resources  # noqa: F401 - make sure the resource modules are loaded

    out: dict[tuple[type, str], object] = {}
    for mod_name, module in list(sys.modules.items()):
        if not mod_name.startswith("openai.resources") or module is None:
            continue
        for cls in vars(module).values():
            if isinstance(cls, type) and cls.__module__ == mod_name:
                out.update(((cls, k), v) for k, v in vars(cls).items() if callable(v))
    return out


SpanEvent = tuple[str, dict[str, Any]]  # (name, attributes); timestamped after the span start


def record_span(
    name: str,
    attributes: dict[str, Any],
    *,
    events: list[SpanEvent] | None = None,
    error: str | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    start_ns: int = 1_760_000_000_000_000_000,
    duration_ns: int = 1_500_000_000,
    event_offset_ns: int = 250_000_000,
    resource: dict[str, Any] | None = None,
) -> tuple[PbResource, InstrumentationScope, PbSpan]:
    """Emit one span through the real SDK (attributes may be maps/arrays: the SDK encodes them as
    AnyValue kvlists/arrays) and return it as OTLP protobuf, for conventions that have no Python
    emitter installed here (Vercel AI SDK, Langfuse, OpenLIT, ...) and for older convention forms.
    Events are spaced `event_offset_ns` apart, starting that far after the span start.
    """
    with capture(resource) as cap:
        tracer = cap.provider.get_tracer("driftline.tests")
        span = tracer.start_span(name, kind=kind, attributes=attributes, start_time=start_ns)
        for i, (event_name, event_attrs) in enumerate(events or []):
            span.add_event(event_name, event_attrs, timestamp=start_ns + (i + 1) * event_offset_ns)
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=start_ns + duration_ns)
        return next(iter_spans(cap.otlp_request()))
