"""Langfuse SDK (v3+, OpenTelemetry based) span attributes.

Source: Langfuse's LangfuseOtelSpanAttributes (langfuse.observation.*, langfuse.trace.*,
user.id / session.id on the trace root, langfuse.release / langfuse.environment).
Langfuse's own usage_details split input into disjoint parts ("input" excludes the cached
"input_cached_tokens"; "output" excludes "output_reasoning_tokens" in its OpenAI integration),
so parts are summed back per the token accounting rule in driftline/store/columns.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from driftline.collector.conventions._common import (
    Attrs,
    Fields,
    first_text,
    maybe_json,
    put,
    to_float,
    to_int,
)
from driftline.collector.conventions.messages import messages, text_of
from driftline.store.ingest_spec import FAMILIES, OPERATION_TABLES

__all__ = ["MARKERS", "OPERATION_BY_TYPE", "extract"]

MARKERS: Final = FAMILIES["LF"]

# langfuse.observation.type -> operation (docs/columns.md).
OPERATION_BY_TYPE: Final = OPERATION_TABLES["langfuse"][0]

_CACHE_READ: Final = ("input_cached_tokens", "input_cache_read", "cache_read_input_tokens", "cached_tokens")
_CACHE_WRITE: Final = ("input_cache_creation", "input_cache_write", "cache_creation_input_tokens")
_REASONING: Final = ("output_reasoning_tokens", "output_reasoning", "reasoning_tokens")


def extract(a: Attrs, f: Fields) -> None:
    kind = a.get("langfuse.observation.type")
    kind = kind.lower() if isinstance(kind, str) else ""
    if kind:
        put(f, "operation", OPERATION_BY_TYPE.get(kind, "other"))
    put(f, "request_model", first_text(a, ("langfuse.observation.model.name",)))
    _usage(a, f)
    if "_span_cost" not in f:
        costs = maybe_json(a.get("langfuse.observation.cost_details"))
        if isinstance(costs, dict):
            total = to_float(costs.get("total"))
            if total is None:
                parts = [c for v in costs.values() if (c := to_float(v)) is not None]
                total = sum(parts) if parts else None
            put(f, "_span_cost", total)
    raw_in = a.get("langfuse.observation.input")
    raw_out = a.get("langfuse.observation.output")
    if kind == "tool":
        put(f, "tool_name", f.get("name"))
        put(f, "tool_arguments", first_text(a, ("langfuse.observation.input",)))
        put(f, "tool_result", first_text(a, ("langfuse.observation.output",)))
    elif kind == "agent":
        put(f, "agent_name", f.get("name"))
    if raw_in is not None:
        _content(f, raw_in, "_in", "_input_raw", "user")
    if raw_out is not None:
        _content(f, raw_out, "_out", "_output_raw", "assistant")
    put(f, "_input_raw", first_text(a, ("langfuse.trace.input",)))
    put(f, "_output_raw", first_text(a, ("langfuse.trace.output",)))
    if a.get("langfuse.observation.level") == "ERROR":
        put(f, "_error_message", first_text(a, ("langfuse.observation.status_message",)) or "error")
    put(f, "user_id", first_text(a, ("user.id", "langfuse.user.id")))
    put(f, "session_id", first_text(a, ("session.id", "langfuse.session.id")))
    _ttft(a, f)


def _content(f: Fields, raw: object, msg_key: str, raw_key: str, role: str) -> None:
    """Generation input/output is usually a message list (or {"messages": [...]}); else plain text."""
    parsed = maybe_json(raw)
    if isinstance(parsed, dict) and isinstance(parsed.get("messages"), list):
        parsed = parsed["messages"]
    if isinstance(parsed, list) and parsed and all(isinstance(m, dict) and "role" in m for m in parsed):
        put(f, msg_key, messages(parsed, role))
    elif isinstance(parsed, dict) and "role" in parsed and "content" in parsed:
        put(f, msg_key, messages([parsed], role))
    else:
        put(f, raw_key, raw if isinstance(raw, str) else text_of(parsed))


def _usage(a: Attrs, f: Fields) -> None:
    usage = maybe_json(a.get("langfuse.observation.usage_details"))
    if not isinstance(usage, dict):
        return
    u = {k: n for k, v in usage.items() if (n := to_int(v)) is not None}
    read = _first(u, _CACHE_READ)
    write = _first(u, _CACHE_WRITE)
    reasoning = _first(u, _REASONING)
    if "input" in u:  # Langfuse's own split: parts are disjoint
        put(f, "input_tokens", u["input"] + (read or 0) + (write or 0))
    else:
        put(f, "input_tokens", _first(u, ("prompt_tokens", "input_tokens")))
    if "output" in u:
        put(f, "output_tokens", u["output"] + (reasoning or 0))
    else:
        put(f, "output_tokens", _first(u, ("completion_tokens", "output_tokens")))
    put(f, "total_tokens", _first(u, ("total", "total_tokens")))
    put(f, "cache_read_tokens", read)
    put(f, "cache_creation_tokens", write)
    put(f, "reasoning_tokens", reasoning)


def _first(u: dict[str, int], keys: tuple[str, ...]) -> int | None:
    for k in keys:
        if k in u:
            return u[k]
    return None


def _ttft(a: Attrs, f: Fields) -> None:
    """completion_start_time is an ISO timestamp (often JSON-quoted); TTFT = it minus span start."""
    raw = a.get("langfuse.observation.completion_start_time")
    start = f.get("start_time")
    if not isinstance(raw, str) or not isinstance(start, int) or "ttft_ms" in f:
        return
    stamp = raw.strip('"')
    try:
        at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return
    if at.tzinfo is None:
        return
    ms = at.timestamp() * 1000.0 - start / 1e6
    if ms >= 0:
        f["ttft_ms"] = ms
