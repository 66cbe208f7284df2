"""OpenLLMetry / Traceloop span attributes, old and new.

New OpenLLMetry instrumentations (opentelemetry-instrumentation-openai >= 0.50) speak GenAI
semconv and are covered by `genai.py`; what is Traceloop-only is handled here:
- the indexed legacy content keys gen_ai.prompt.N.role/content/tool_call_id/tool_calls.M.* and
  gen_ai.completion.N.role/content/finish_reason/tool_calls.M.*,
- llm.usage.total_tokens, llm.request.type,
- the Traceloop SDK's traceloop.span.kind / entity.name / entity.input / entity.output and
  traceloop.association.properties.* (user_id, session_id, ...).
Source: https://github.com/traceloop/openllmetry (semconv-ai SpanAttributes).
"""

from __future__ import annotations

from typing import Final

from driftline.collector.conventions._common import (
    Attrs,
    Fields,
    Message,
    ToolCall,
    finish_reason,
    first_int,
    first_text,
    maybe_json,
    put,
)
from driftline.collector.conventions.messages import text_of, tool_call
from driftline.collector.conventions.providers import normalize_operation
from driftline.store.ingest_spec import FAMILIES, OPERATION_TABLES

__all__ = ["MARKERS", "OPERATION_BY_KIND", "extract"]

MARKERS: Final = FAMILIES["TL"]

# traceloop.span.kind -> operation (docs/columns.md); llm.request.type goes through normalize_operation.
OPERATION_BY_KIND: Final = OPERATION_TABLES["traceloop"][0]

_PROPS: Final = "traceloop.association.properties."
_MAX_ITEMS: Final = 10_000


def extract(a: Attrs, f: Fields) -> None:
    kind = a.get("traceloop.span.kind")
    kind = kind if isinstance(kind, str) else ""
    req = a.get("llm.request.type")
    if isinstance(req, str) and req:
        put(f, "operation", normalize_operation(req))
    if kind:
        put(f, "operation", OPERATION_BY_KIND.get(kind, "other"))
    if "total_tokens" not in f:
        put(f, "total_tokens", first_int(a, ("llm.usage.total_tokens",)))
    if "reasoning_tokens" not in f:
        put(f, "reasoning_tokens", first_int(a, ("llm.usage.reasoning_tokens",)))
    if "_in" not in f:
        put(f, "_in", _indexed(a, "gen_ai.prompt.", "user", f))
    if "_out" not in f:
        put(f, "_out", _indexed(a, "gen_ai.completion.", "assistant", f))
    name = first_text(a, ("traceloop.entity.name",))
    inp = _entity_text(a.get("traceloop.entity.input"))
    out = _entity_text(a.get("traceloop.entity.output"))
    if kind == "tool":
        put(f, "tool_name", name)
        put(f, "tool_arguments", first_text(a, ("traceloop.entity.input",)))
        put(f, "tool_result", first_text(a, ("traceloop.entity.output",)))
    elif kind == "agent":
        put(f, "agent_name", name)
    put(f, "_input_raw", inp)
    put(f, "_output_raw", out)
    put(f, "user_id", first_text(a, (_PROPS + "user_id", _PROPS + "userId")))
    put(f, "session_id", first_text(a, (_PROPS + "session_id", _PROPS + "sessionId", _PROPS + "thread_id")))
    put(f, "conversation_id", first_text(a, (_PROPS + "conversation_id", _PROPS + "conversationId")))


def _entity_text(raw: object) -> str | None:
    """entity.input is {"args": [...], "kwargs": {...}}; a single string argument is the text."""
    if raw is None:
        return None
    parsed = maybe_json(raw)
    if isinstance(parsed, dict):
        args = parsed.get("args")
        kwargs = parsed.get("kwargs")
        if isinstance(args, list) and len(args) == 1 and isinstance(args[0], str) and not kwargs:
            return args[0]
    return text_of(raw) if isinstance(raw, str) else None


def _indexed(a: Attrs, prefix: str, default_role: str, f: Fields) -> list[Message] | None:
    out: list[Message] = []
    for i in range(_MAX_ITEMS):
        base = f"{prefix}{i}."
        role = a.get(base + "role")
        content = a.get(base + "content")
        calls = _tool_calls(a, base + "tool_calls.")
        if role is None and content is None and not calls:
            break
        # Multimodal content is a JSON list of parts.
        msg: Message = {
            "role": role if isinstance(role, str) and role else default_role,
            "content": text_of(maybe_json(content)) if content is not None else "",
        }
        if calls:
            msg["tool_calls"] = calls
        call_id = a.get(base + "tool_call_id")
        if isinstance(call_id, str) and call_id:
            msg["tool_call_id"] = call_id
        reason = a.get(base + "finish_reason")
        if isinstance(reason, str) and reason:
            put(f, "_finish_fallback", finish_reason(reason))
        out.append(msg)
    return out or None


def _tool_calls(a: Attrs, prefix: str) -> list[ToolCall]:
    calls: list[ToolCall] = []
    for j in range(_MAX_ITEMS):
        base = f"{prefix}{j}."
        name = a.get(base + "name")
        if name is None:
            break
        calls.append(tool_call(a.get(base + "id") or "", name, a.get(base + "arguments") or ""))
    return calls
