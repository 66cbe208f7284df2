"""`init()`, `flush()`, `shutdown()`: set up OpenTelemetry tracing towards Driftline's collector.

The global tracer provider: `init()` installs its provider as the OpenTelemetry global one when
the app has not set one (the usual choice, so every instrumentation library reports to Driftline
with no extra wiring). When the app already set its own, that one is left alone (OpenTelemetry
allows setting it once per process anyway); Driftline then keeps a private provider that its
decorators and the instrumentors it turns on use, while traces still nest with the app's spans
because the active context is shared. `set_global=False` always keeps the provider private.

OpenTelemetry SDK imports happen inside `init()`, so `import driftline.sdk` stays cheap and an
app that never calls `init()` pays only for the OpenTelemetry API.
"""

from __future__ import annotations

import atexit
import logging
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from opentelemetry import trace

from driftline.sdk import _state, exporters, instrumentors

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.util.types import AttributeValue

__all__ = ["Driftline", "flush", "init", "shutdown"]

_log = logging.getLogger(__name__)
_TRUE = ("true", "1", "yes", "on")


class Driftline:
    """The handle `init()` returns. Holds no secret: the API key lives only in the exporter."""

    def __init__(
        self,
        provider: TracerProvider | None,
        activated: Sequence[instrumentors.Activated] = (),
        is_global: bool = False,
        capture_content: bool = False,
    ) -> None:
        self.tracer_provider = provider
        self.is_global_provider = is_global
        self.capture_content = capture_content
        self._activated = list(activated)
        self._closed = provider is None

    @property
    def enabled(self) -> bool:
        return not self._closed

    @property
    def instrumented(self) -> list[str]:
        """The instrumentors turned on, as `target:distribution` (e.g. `openai:opentelemetry-...-v2`)."""
        return [act.candidate.label for act in self._activated]

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Export every finished span now; False if the deadline passed first."""
        if self.tracer_provider is None or self._closed:
            return True
        return self.tracer_provider.force_flush(int(timeout_s * 1000))

    def shutdown(self, timeout_s: float = 30.0) -> None:
        """Stop recording, turn instrumentors off, flush, then close the exporter. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if _state.handle is self:
            _state.enabled = False  # first, so no span starts on a closing provider
            _state.tracer = None
            _state.handle = None
        instrumentors.deactivate(self._activated)
        self._activated = []
        if self.tracer_provider is not None:
            self.tracer_provider.force_flush(int(timeout_s * 1000))
            self.tracer_provider.shutdown()

    def __enter__(self) -> Driftline:
        return self

    def __exit__(self, *_: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return f"Driftline(enabled={self.enabled}, global={self.is_global_provider}, instrumented={self.instrumented})"


def _capture_from_env(environ: Mapping[str, str]) -> bool | None:
    value = environ.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "").strip().lower()
    if value in ("true", "span_only", "span_and_event"):
        return True
    if value in ("false", "no_content", "event_only"):  # event_only: content not wanted on spans
        return False
    return None


def _sdk_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("driftline")
    except PackageNotFoundError:
        return "0.0.0"


def _resource_attributes(
    service: str | None,
    release: str | None,
    environment: str | None,
    extra: Mapping[str, AttributeValue] | None,
) -> dict[str, AttributeValue]:
    # Explicit values win over OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES, which
    # Resource.create() merges underneath; telemetry.sdk.* come from it too.
    attrs: dict[str, AttributeValue] = {"telemetry.distro.name": "driftline"}
    attrs["telemetry.distro.version"] = _sdk_version()
    attrs.update(extra or {})
    for key, value in (
        ("service.name", service),
        ("service.version", release),
        ("deployment.environment.name", environment),
    ):
        if value is not None:
            attrs[key] = value
    return attrs


def init(
    endpoint: str | None = None,
    api_key: str | None = None,
    *,
    service: str | None = None,
    release: str | None = None,
    environment: str | None = None,
    protocol: str | None = None,
    instrument: bool = True,
    capture_content: bool | None = None,
    resource_attributes: Mapping[str, AttributeValue] | None = None,
    disabled: bool | None = None,
    span_exporter: SpanExporter | None = None,
    batch: bool = True,
    headers: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
    set_global: bool = True,
    instrument_preference: Sequence[str] = instrumentors.DEFAULT_PREFERENCE,
) -> Driftline:
    """Start sending traces to Driftline. Calling it again replaces the previous setup.

    endpoint: collector base URL (http/protobuf: `{endpoint}/v1/traces`; grpc: port 4317 by
        default). Unset: OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, then http://localhost:4318.
    api_key: sent as `authorization: Bearer <key>`; never logged.
    service, release, environment: resource service.name, service.version,
        deployment.environment.name (unset: OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES).
    protocol: "http/protobuf" or "grpc" (unset: OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL).
    instrument: turn on installed GenAI instrumentors, one per provider (see `instrumentors`).
    capture_content: record prompts, outputs, tool arguments/results and document text. Unset:
        OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT if set, else True.
    disabled: no tracing at all, decorators become plain calls (unset: OTEL_SDK_DISABLED).
    span_exporter: export elsewhere (tests: InMemorySpanExporter); batch=False exports inline.

    Meant to be called once per process. A second call shuts the first setup down and starts a
    new one, but if the first became the OpenTelemetry global provider, the global stays on
    it (OpenTelemetry cannot replace it), so only Driftline's own spans and instrumentors
    follow the new setup.
    """
    if _state.handle is not None:
        _state.handle.shutdown()
    environ = os.environ  # read here, at the configuration boundary, and nowhere deeper
    if disabled is None:
        disabled = environ.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE
    if disabled:
        return Driftline(None)

    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    capture = capture_content if capture_content is not None else _capture_from_env(environ)
    capture = True if capture is None else capture
    chosen_protocol = exporters.resolve_protocol(protocol, environ)
    _state.api_target = (
        exporters.api_base_url(endpoint, chosen_protocol, environ),
        exporters.resolve_headers(api_key, headers, environ),
    )
    exporter = span_exporter or exporters.build_exporter(
        endpoint=endpoint,
        protocol=chosen_protocol,
        api_key=api_key,
        headers=headers,
        timeout_s=timeout_s,
        environ=environ,
    )
    resource = Resource.create(_resource_attributes(service, release, environment, resource_attributes))
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)  # our atexit hook flushes
    provider.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))

    is_global = False
    if set_global and isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)
        is_global = trace.get_tracer_provider() is provider
    elif set_global:
        _log.info("driftline: the app set its own tracer provider; keeping a private one")

    activated: list[instrumentors.Activated] = []
    found = instrumentors.discover(environ) if instrument else []
    if found:
        instrumentors.configure_content_capture(capture, environ)  # before they read it
        activated = instrumentors.activate(instrumentors.plan(found, instrument_preference), provider, found)

    handle = Driftline(provider, activated, is_global, capture)
    _state.tracer = provider.get_tracer("driftline.sdk", _sdk_version())
    _state.capture_content = capture
    _state.enabled = True
    _state.handle = handle
    if not _state.atexit_registered:
        atexit.register(_shutdown_at_exit)
        _state.atexit_registered = True
    return handle


def flush(timeout_s: float = 30.0) -> bool:
    """Export finished spans now (e.g. before a serverless function freezes)."""
    return _state.handle.flush(timeout_s) if _state.handle is not None else True


def shutdown(timeout_s: float = 30.0) -> None:
    """Flush and stop; safe to call more than once. `init()` also arranges it at interpreter exit."""
    if _state.handle is not None:
        _state.handle.shutdown(timeout_s)


def _shutdown_at_exit() -> None:
    # A short deadline: an unreachable collector must not hold the app's exit for long.
    shutdown(timeout_s=5.0)
