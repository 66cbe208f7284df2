"""OpenTelemetry GenAI semantic conventions as span attributes: current names and older ones.

Spec: https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/ (now maintained in
https://github.com/open-telemetry/semantic-conventions-genai). Content attributes
(gen_ai.input.messages, gen_ai.output.messages, gen_ai.system_instructions) arrive either as
JSON strings or as structured AnyValue arrays; both go through the same message normalizer.
Older names handled here: gen_ai.system, gen_ai.usage.prompt_tokens / completion_tokens,
gen_ai.prompt / gen_ai.completion, and the cache/reasoning spellings used before the current
ones (Traceloop's gen_ai.usage.cache_read_input_tokens, Sentry's gen_ai.usage.input_tokens.cached,
util-genai's gen_ai.usage.cache_write.input_tokens).
Span events (gen_ai.user.message, ...) are in `events.py`.
"""

from __future__ import annotations

from typing import Final

from driftline.collector.conventions._common import (
    Attrs,
    Fields,
    copy_int,
    copy_text,
    finish_reason,
    first_text,
    maybe_json,
    put,
    to_float,
)
from driftline.collector.conventions.messages import messages, plain, text_of
from driftline.collector.conventions.providers import normalize_operation, normalize_provider
from driftline.store.ingest_spec import FAMILIES

__all__ = ["MARKERS", "TEXT_KEYS", "TOKEN_KEYS", "TOOL_KEYS", "clean_error_type", "extract"]

# Any of these present means the span speaks GenAI semconv (checked with dict lookups, not a scan).
MARKERS: Final = FAMILIES["GenAI"]

# (column, attribute) in fallback order, current name first.
TOKEN_KEYS: Final = (
    ("input_tokens", "gen_ai.usage.input_tokens"),
    ("input_tokens", "gen_ai.usage.prompt_tokens"),
    ("output_tokens", "gen_ai.usage.output_tokens"),
    ("output_tokens", "gen_ai.usage.completion_tokens"),
    ("total_tokens", "gen_ai.usage.total_tokens"),
    ("cache_read_tokens", "gen_ai.usage.cache_read.input_tokens"),
    ("cache_read_tokens", "gen_ai.usage.cache_read_input_tokens"),
    ("cache_read_tokens", "gen_ai.usage.input_tokens.cached"),
    ("cache_read_tokens", "gen_ai.usage.cached_input_tokens"),
    ("cache_creation_tokens", "gen_ai.usage.cache_creation.input_tokens"),
    ("cache_creation_tokens", "gen_ai.usage.cache_write.input_tokens"),
    ("cache_creation_tokens", "gen_ai.usage.cache_creation_input_tokens"),
    ("cache_creation_tokens", "gen_ai.usage.input_tokens.cache_write"),
    ("reasoning_tokens", "gen_ai.usage.reasoning.output_tokens"),
    ("reasoning_tokens", "gen_ai.usage.reasoning_tokens"),
    ("reasoning_tokens", "gen_ai.usage.output_tokens.reasoning"),
)
TEXT_KEYS: Final = (
    ("request_model", "gen_ai.request.model"),
    ("response_model", "gen_ai.response.model"),
    ("conversation_id", "gen_ai.conversation.id"),
    ("agent_name", "gen_ai.agent.name"),
)
TOOL_KEYS: Final = (
    ("tool_name", "gen_ai.tool.name"),
    ("tool_call_id", "gen_ai.tool.call.id"),
    ("tool_arguments", "gen_ai.tool.call.arguments"),
    ("tool_result", "gen_ai.tool.call.result"),
)


def clean_error_type(raw: str) -> str:
    """Some instrumentations write str(type(exc)): "<class 'openai.RateLimitError'>" -> the name."""
    if raw.startswith("<class '") and raw.endswith("'>"):
        return raw[8:-2]
    return raw


def extract(a: Attrs, f: Fields) -> None:
    """Fill columns from gen_ai.* span attributes (the highest-priority convention)."""
    get = a.get
    v = get("gen_ai.operation.name")
    if type(v) is str and v and "operation" not in f:
        f["operation"] = normalize_operation(v)
    v = get("gen_ai.provider.name") or get("gen_ai.system")
    if type(v) is str and "provider" not in f:
        f["provider"] = normalize_provider(v)
    copy_text(a, f, TEXT_KEYS)
    copy_int(a, f, TOKEN_KEYS)
    _content(a, f)
    if "gen_ai.tool.name" in a or "gen_ai.tool.call.id" in a:
        copy_text(a, f, TOOL_KEYS)
    v = get("gen_ai.response.finish_reasons")
    if v is not None and "finish_reason" not in f:
        reasons = maybe_json(v)
        if isinstance(reasons, list) and reasons and isinstance(reasons[0], str):
            f["finish_reason"] = finish_reason(reasons[0])
        elif isinstance(reasons, str) and reasons:
            f["finish_reason"] = finish_reason(reasons)
    v = get("error.type")
    if type(v) is str and v and "error_type" not in f:
        f["error_type"] = clean_error_type(v)
    v = get("gen_ai.response.time_to_first_chunk")
    if v is not None:
        ttft = to_float(v)  # seconds
        if ttft is not None:
            put(f, "ttft_ms", ttft * 1000.0)
    if "gen_ai.retrieval.documents" in a or "gen_ai.retrieval.query.text" in a:
        docs = maybe_json(get("gen_ai.retrieval.documents"))
        if isinstance(docs, list):
            put(f, "_docs", [_document(d) for d in docs if isinstance(d, dict)])
        put(f, "operation", "retrieval")  # these attributes belong to retrieval spans only
        put(f, "_input_raw", first_text(a, ("gen_ai.retrieval.query.text",)))


def _content(a: Attrs, f: Fields) -> None:
    raw_in = a.get("gen_ai.input.messages")
    if raw_in is not None and "_in" not in f:
        _take(f, "_in", "gen_ai.input.messages", maybe_json(raw_in), "user")
    raw_out = a.get("gen_ai.output.messages")
    if raw_out is not None and "_out" not in f:
        parsed = maybe_json(raw_out)
        _take(f, "_out", "gen_ai.output.messages", parsed, "assistant")
        # Older semconv drafts carried the finish reason on each output message.
        if isinstance(parsed, list) and parsed and isinstance(parsed[-1], dict):
            reason = parsed[-1].get("finish_reason")
            if isinstance(reason, str) and reason:
                put(f, "_finish_fallback", finish_reason(reason))
    sysi = a.get("gen_ai.system_instructions")
    if sysi is not None and "system_prompt" not in f:
        put(f, "system_prompt", text_of(maybe_json(sysi)))
    # Pre-1.28 drafts (and OpenLIT): whole prompt / completion in one attribute, JSON or plain text.
    prompt = a.get("gen_ai.prompt")
    if prompt is not None and "_in" not in f:
        parsed = maybe_json(prompt)
        if isinstance(parsed, list | dict):
            _take(f, "_in", "gen_ai.prompt", parsed, "user")
        else:
            put(f, "_input_raw", text_of(parsed))
    completion = a.get("gen_ai.completion")
    if completion is not None and "_out" not in f:
        parsed = maybe_json(completion)
        if isinstance(parsed, list | dict):
            _take(f, "_out", "gen_ai.completion", parsed, "assistant")
        else:
            put(f, "_output_raw", text_of(parsed))


def _take(f: Fields, slot: str, key: str, parsed: object, role: str) -> None:
    """Messages of attribute `key` into `slot` (_in / _out, still unset). When they hold all of
    the attribute, `<slot>_key` names it so `derive.finish` can leave it out of `attributes`."""
    msgs = messages(parsed, role)
    if msgs:
        f[slot] = msgs
        if plain(parsed):
            f[slot + "_key"] = key


def _document(d: dict[str, object]) -> dict[str, object]:
    doc_id = d.get("id")
    return {
        "id": "" if doc_id is None else str(doc_id),
        "content": text_of(d.get("content")),
        "score": to_float(d.get("score")),
    }
