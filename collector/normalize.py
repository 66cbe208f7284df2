"""decode -> **normalize** -> buffer: one OTLP span in, one `spans` row (a dict) out.

Whatever convention produced the span (GenAI semconv, OpenInference, OpenLLMetry, Vercel AI
SDK, Langfuse, Logfire, OpenLIT), the row has the same LLM columns, each filled by the fallback
chain documented in docs/columns.md. The original attributes are kept in `attributes`, but a
message attribute that input_messages / output_messages hold whole (docs/columns.md).
Row shape: driftline/store/columns.py (NORMALIZED_COLUMNS); OTLP: opentelemetry-proto trace.proto.

Cost matters here (the collector must store >= 25k spans/s on 2 cores): each attribute is read
from protobuf once (otlp_values.read_attributes) and the conventions are dict lookups on that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from driftline.collector import conventions
from driftline.collector.conventions.events import Event
from driftline.collector.otlp_values import any_value, dumps, loads, read_attributes, truncate
from driftline.pricing import Pricer
from driftline.vocabulary import PRICED_OPERATIONS

__all__ = [
    "INVALID_REASONS",
    "PRICED_OPERATIONS",
    "InvalidSpan",
    "Normalizer",
    "ResourceContext",
    "arguments_pending",
    "fill_arguments",
    "unpriced",
]

INVALID_REASONS: Final = frozenset({"missing_trace_id", "missing_span_id", "bad_parent_span_id", "bad_timestamp"})

# Span.SpanKind / Status.StatusCode numbers (trace.proto). UNSPECIFIED kind is read as INTERNAL,
# as the OTLP spec allows.
_KINDS: Final = ("internal", "internal", "server", "client", "producer", "consumer")
_STATUS: Final = ("unset", "ok", "error")
_ZERO_TRACE: Final = bytes(16)
# Span times the store keeps: its TTL (toDateTime(start) + retention) lies in the past for a span
# from the 1970s (deleted on arrival) and wraps past 2106 (DateTime's end). 2000-01-01 .. 2100-01-01.
_MIN_NS: Final = 946_684_800 * 10**9
_MAX_NS: Final = 4_102_444_800 * 10**9
_ZERO_SPAN: Final = bytes(8)


class InvalidSpan(ValueError):
    """A span that cannot be stored. `reason` is one of INVALID_REASONS (a metrics label)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ResourceContext:
    """A ResourceSpans' resource, digested once for all of its spans.

    Every row of the ResourceSpans gets this same `attributes` dict as `resource_attributes`
    (no copy per span): a later stage that edits a row must copy it before changing it.
    """

    attributes: dict[str, str] = field(default_factory=dict)
    service: str = ""
    release: str = ""
    environment: str = ""


class Normalizer:
    """Turns OTLP spans into `spans` rows. Stateless apart from the pricer's caches; thread-safe."""

    def __init__(self, *, pricer: Pricer | None = None, max_value_bytes: int = 65536) -> None:
        if max_value_bytes < 64:
            raise ValueError("max_value_bytes must be at least 64")
        self.pricer = pricer
        self.max_value_bytes = max_value_bytes

    def resource(self, resource: Resource) -> ResourceContext:
        _, text, _ = read_attributes(resource.attributes, self.max_value_bytes)
        env = text.get("deployment.environment.name") or text.get("deployment.environment") or ""
        return ResourceContext(
            attributes=text,
            service=text.get("service.name", ""),
            release=text.get("service.version", ""),
            environment=env,
        )

    def span(self, span: Span, resource: ResourceContext, scope: InstrumentationScope) -> dict[str, object]:
        trace_id = span.trace_id
        if len(trace_id) != 16 or trace_id == _ZERO_TRACE:
            raise InvalidSpan("missing_trace_id", f"trace_id is not 16 non-zero bytes: {trace_id.hex()!r}")
        span_id = span.span_id
        if len(span_id) != 8 or span_id == _ZERO_SPAN:
            raise InvalidSpan("missing_span_id", f"span_id must be 8 non-zero bytes, got {span_id.hex()!r}")
        parent = span.parent_span_id
        if parent and (len(parent) != 8 or parent == _ZERO_SPAN):
            raise InvalidSpan(
                "bad_parent_span_id", f"parent_span_id is not empty or 8 non-zero bytes: {parent.hex()!r}"
            )
        start = span.start_time_unix_nano
        end = span.end_time_unix_nano
        if start < _MIN_NS or end < start or end >= _MAX_NS:
            raise InvalidSpan(
                "bad_timestamp",
                f"need 2000-01-01 <= start_time <= end_time < 2100-01-01 (unix ns), got {start}, {end}",
            )
        limit = self.max_value_bytes
        flat, text, total = read_attributes(span.attributes, limit)
        status = span.status
        kind = span.kind
        code = status.code
        f: dict[str, object] = {
            "trace_id": trace_id.hex(),
            "span_id": span_id.hex(),
            "parent_span_id": parent.hex(),
            "start_time": start,
            "end_time": end,
            "duration_ms": (end - start) / 1e6,
            "name": span.name,
            "kind": _KINDS[kind] if 0 <= kind < 6 else "internal",
            "status_code": _STATUS[code] if 0 <= code < 3 else "unset",
            "status_message": status.message,
            "service": resource.service,
            "release": resource.release or text.get("langfuse.release", ""),
            "environment": resource.environment or text.get("langfuse.environment", ""),
            "scope_name": scope.name,
            "attributes": text,
            "resource_attributes": resource.attributes,
        }
        events: list[Event] = []
        if len(span.events):
            events, event_chars = _read_events(span, limit)
            total += event_chars
        conventions.extract(flat, events, f, start, limit, total * 4 <= limit)
        if events:
            f["events"] = dumps([{"name": n, "time_unix_nano": t, "attributes": a} for n, t, a in events])
        if "input_tokens" in f or "output_tokens" in f or "_span_cost" in f:
            self._cost(f, start)
        else:
            f.pop("_span_cost", None)
        return f

    def _cost(self, f: dict[str, object], start: int) -> None:
        """Cost precedence: an operator override, then the cost the span carried, then the price table."""
        span_cost = f.pop("_span_cost", None)
        pricer = self.pricer
        provider = f.get("provider") or ""
        model = f.get("response_model") or f.get("request_model") or ""
        if not isinstance(provider, str) or not isinstance(model, str):
            return
        override = pricer is not None and pricer.override_for(provider, model) is not None
        if not override and isinstance(span_cost, float):
            f["cost_usd"], f["cost_source"] = span_cost, "span"
            return
        if pricer is None or (not override and f.get("operation", "") not in PRICED_OPERATIONS):
            return
        get = f.get
        counts = (
            _n(get("input_tokens")),
            _n(get("output_tokens")),
            _n(get("cache_read_tokens")),
            _n(get("cache_creation_tokens")),
            _n(get("reasoning_tokens")),
        )
        cost, source = pricer.price_counts(provider, model, counts, start)
        request_model = get("request_model")
        if cost is None and isinstance(request_model, str) and request_model and request_model != model:
            # A dated response model the table does not list yet: the requested alias may be listed.
            cost, source = pricer.price_counts(provider, request_model, counts, start)
        if cost is not None:
            f["cost_usd"], f["cost_source"] = cost, source


def unpriced(row: dict[str, object]) -> bool:
    """A model call whose cost is unknown: no price for its model, or no token counts to price.

    A span without tokens counts only when it says what went in or out (messages): LlamaIndex
    also records its wrappers (`OpenAI.predict`, `_prepare_chat_with_tools`) as LLM spans with
    the model and nothing else, and their call is the child span, priced on its own.
    """
    if row.get("cost_usd") is not None or row.get("operation", "") not in PRICED_OPERATIONS:
        return False
    if "input_tokens" in row or "output_tokens" in row:
        return True
    return ("request_model" in row or "response_model" in row) and ("input_messages" in row or "output_messages" in row)


def arguments_pending(row: dict[str, object]) -> bool:
    """A tool span whose call id is known but whose arguments are not an object: LangChain's
    instrumentor records a one-argument tool's input as the bare value ("Paris")."""
    if row.get("operation") != "execute_tool" or not row.get("tool_call_id"):
        return False
    args = row.get("tool_arguments")
    return not (isinstance(args, str) and args[:1] == "{")


def fill_arguments(rows: list[dict[str, object]], pending: list[dict[str, object]]) -> None:
    """Give each pending tool span (arguments_pending) the arguments of the model's tool call with
    its id, when the span that asked for it is among `rows` (one export request: with a batching
    span processor the model call and its tool call travel together)."""
    wanted = {row["tool_call_id"] for row in pending}
    found: dict[object, str] = {}
    for row in rows:
        calls = row.get("tool_calls")
        if isinstance(calls, str) and calls:
            parsed = loads(calls)
            for call in parsed if isinstance(parsed, list) else ():
                if isinstance(call, dict) and call.get("id") in wanted and isinstance(call.get("arguments"), str):
                    found[call["id"]] = call["arguments"]
    for row in pending:
        args = found.get(row["tool_call_id"])
        if args is not None:
            row["tool_arguments"] = args
            if row.get("input_text") is not None:
                row["input_text"] = row["input_text_fallback"] = args


def _n(v: object) -> int:
    return v if type(v) is int else 0


def _read_events(span: Span, limit: int) -> tuple[list[Event], int]:
    """Events with native attribute values (long strings cut), and their total text length.

    Structured values (arrays, kvlists) are counted at their JSON length, an upper bound on any
    text later taken from them.
    """
    out: list[Event] = []
    total = 0
    for ev in span.events:
        attrs: dict[str, object] = {}
        for kv in ev.attributes:
            value = any_value(kv.value)
            if isinstance(value, str):
                total += len(value)
                if len(value) * 4 > limit:
                    value = truncate(value, limit)
            elif isinstance(value, list | dict):
                total += len(dumps(value))
            attrs[kv.key] = value
        out.append((ev.name, ev.time_unix_nano, attrs))
    return out, total
