"""Build the OTLP span exporter that sends to Driftline's collector.

Precedence for every setting: the explicit `init()` argument, then the standard OpenTelemetry
environment variables (which the OTel exporters read themselves when we pass nothing), then the
OTLP defaults (http://localhost:4318/v1/traces for http/protobuf, localhost:4317 for gRPC).
https://opentelemetry.io/docs/specs/otel/protocol/exporter/

The API key travels as `authorization: Bearer <key>` and is never logged or kept elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from opentelemetry.util.re import parse_env_headers

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = [
    "PROTOCOLS",
    "api_base_url",
    "build_exporter",
    "grpc_endpoint",
    "http_traces_url",
    "resolve_headers",
    "resolve_protocol",
]

PROTOCOLS: Final = ("http/protobuf", "grpc")
_TRACES_PATH: Final = "/v1/traces"
_GRPC_PORT: Final = 4317


def resolve_protocol(protocol: str | None, environ: Mapping[str, str]) -> str:
    chosen = (
        protocol
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if chosen not in PROTOCOLS:
        # http/json is valid OTLP, but the Python OTel SDK ships no exporter for it.
        raise ValueError(f"unsupported OTLP protocol {chosen!r}: use one of {', '.join(PROTOCOLS)}")
    return chosen


def http_traces_url(endpoint: str) -> str:
    """A base URL (as OTEL_EXPORTER_OTLP_ENDPOINT) gets the signal path /v1/traces appended."""
    base = endpoint.rstrip("/")
    return base if base.endswith(_TRACES_PATH) else base + _TRACES_PATH


def api_base_url(endpoint: str | None, protocol: str, environ: Mapping[str, str]) -> str:
    """The collector's HTTP base URL, where its API (feedback) listens: the OTLP/HTTP endpoint
    without the signal path; with gRPC, the same host on the OTLP/HTTP port 4318."""
    if protocol == "grpc":
        host = urlsplit(grpc_endpoint(endpoint)).hostname if endpoint else None
        return f"http://{host or 'localhost'}:4318"
    chosen = endpoint or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    base = (chosen or "http://localhost:4318").rstrip("/")
    return base.removesuffix(_TRACES_PATH)


def grpc_endpoint(endpoint: str) -> str:
    """`scheme://host:port` for the gRPC exporter: http:// (plaintext) when no scheme, port 4317."""
    url = endpoint if "://" in endpoint else f"http://{endpoint}"
    parts = urlsplit(url)
    if parts.port is None:
        url = f"{parts.scheme}://{parts.hostname}:{_GRPC_PORT}"
        if ":" in (parts.hostname or ""):  # IPv6 literal
            url = f"{parts.scheme}://[{parts.hostname}]:{_GRPC_PORT}"
    return url.rstrip("/")


def resolve_headers(
    api_key: str | None, headers: Mapping[str, str] | None, environ: Mapping[str, str]
) -> dict[str, str]:
    """Env headers, then explicit ones, then the API key; keys lowercased (gRPC metadata needs it).

    Merged here because older exporters use either the passed headers or the env ones, not both.
    """
    env = environ.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS") or environ.get("OTEL_EXPORTER_OTLP_HEADERS", "")
    out = {k.lower(): v for k, v in parse_env_headers(env, liberal=True).items()}
    out.update({k.lower(): v for k, v in (headers or {}).items()})
    if api_key:
        out["authorization"] = f"Bearer {api_key}"
    return out


def build_exporter(
    *,
    endpoint: str | None,
    protocol: str,
    api_key: str | None,
    headers: Mapping[str, str] | None,
    timeout_s: float | None,
    environ: Mapping[str, str],
) -> SpanExporter:
    merged = resolve_headers(api_key, headers, environ) or None
    if protocol == "grpc":
        # Imported here: grpcio is heavy and only this protocol needs it.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        target = grpc_endpoint(endpoint) if endpoint else None
        return GrpcExporter(endpoint=target, headers=merged, timeout=timeout_s)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    url = http_traces_url(endpoint) if endpoint else None
    return HttpExporter(endpoint=url, headers=merged, timeout=timeout_s)
