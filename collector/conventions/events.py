"""Content and signals carried in span events rather than span attributes.

- GenAI semconv event forms when recorded as span events: the older per-message events
  (gen_ai.system.message, gen_ai.user.message, gen_ai.assistant.message, gen_ai.tool.message,
  gen_ai.choice) and the newer gen_ai.client.inference.operation.details, whose attributes are
  read like span attributes: https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-events/
  (Instrumentations that emit these as OTel *log records* instead reach us only through logs,
  which are not ingested yet.)
- OpenLIT's gen_ai.content.prompt / gen_ai.content.completion events.
- exception events (https://opentelemetry.io/docs/specs/semconv/exceptions/exceptions-spans/).
- first-chunk events that give time to first token: OpenInference "First Token Stream Event",
  Vercel AI SDK ai.stream.firstChunk, OpenLLMetry's per-chunk completion events (first one).
pydantic-ai's `events` span attribute (a JSON list of the same per-message events) goes through
`message_events` too.
"""

from __future__ import annotations

from typing import Final

from driftline.collector.conventions import genai
from driftline.collector.conventions._common import (
    Attrs,
    Fields,
    Message,
    finish_reason,
    maybe_json,
    put,
)
from driftline.collector.conventions.messages import message, messages, text_of

__all__ = ["Event", "apply", "message_events"]

Event = tuple[str, int, Attrs]  # (name, time_unix_nano, attributes)

_ROLE_BY_EVENT: Final[dict[str, str]] = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
_FIRST_CHUNK: Final = frozenset(
    {
        "First Token Stream Event",
        "ai.stream.firstChunk",
        "gen_ai.content.completion.chunk",
        "llm.content.completion.chunk",
    }
)


def apply(events: list[Event], f: Fields, start_ns: int) -> None:
    details: Attrs | None = None
    per_message: list[tuple[str, Attrs]] = []
    for name, at, attrs in events:
        if name == "exception":
            _exception(attrs, f)
        elif name == "gen_ai.client.inference.operation.details":
            details = attrs
        elif name in _ROLE_BY_EVENT or name == "gen_ai.choice":
            per_message.append((name, attrs))
        elif name == "gen_ai.content.prompt":
            _whole(attrs.get("gen_ai.prompt"), f, "_in", "_input_raw", "user")
        elif name == "gen_ai.content.completion":
            _whole(attrs.get("gen_ai.completion"), f, "_out", "_output_raw", "assistant")
        elif name in _FIRST_CHUNK and "ttft_ms" not in f and at >= start_ns:
            f["ttft_ms"] = (at - start_ns) / 1e6
    if details is not None:
        genai.extract(details, f)
    if per_message:
        message_events(per_message, f)


def message_events(items: list[tuple[str, Attrs]], f: Fields) -> None:
    """Per-message events, in order: inputs become `_in`, gen_ai.choice events `_out`."""
    inputs: list[Message] = []
    outputs: list[Message] = []
    for name, attrs in items:
        if name == "gen_ai.choice":
            body = maybe_json(attrs.get("message"))
            msg = message(body if isinstance(body, dict) else {"content": attrs.get("content")}, "assistant")
            if msg is not None:
                outputs.append(msg)
            reason = attrs.get("finish_reason")
            if isinstance(reason, str) and reason:
                put(f, "_finish_fallback", finish_reason(reason))
            continue
        role = _ROLE_BY_EVENT.get(name)
        if role is None:
            continue
        body = {
            "role": attrs.get("role") or role,
            "content": maybe_json(attrs.get("content")),
            "tool_calls": maybe_json(attrs.get("tool_calls")),
        }
        msg = message(body, role)
        if msg is not None:
            call_id = attrs.get("id") or attrs.get("tool_call_id")
            if role == "tool" and isinstance(call_id, str) and call_id:
                msg["tool_call_id"] = call_id
            inputs.append(msg)
    if inputs:
        put(f, "_in", inputs)
    if outputs:
        put(f, "_out", outputs)


def _whole(raw: object, f: Fields, msg_key: str, raw_key: str, role: str) -> None:
    if raw is None or msg_key in f:
        return
    parsed = maybe_json(raw)
    if isinstance(parsed, list | dict):
        put(f, msg_key, messages(parsed, role))
    else:
        put(f, raw_key, text_of(parsed))


def _exception(attrs: Attrs, f: Fields) -> None:
    # The last exception wins: an instrumentation may record retried attempts first.
    kind = attrs.get("exception.type")
    text = attrs.get("exception.message")
    if isinstance(kind, str) and kind:
        f["_exception_type"] = genai.clean_error_type(kind)
    if isinstance(text, str) and text:
        f["_exception_message"] = text
