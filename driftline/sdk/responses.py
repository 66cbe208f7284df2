"""Read model, usage, finish reasons and output out of provider response objects.

Used when an `llm_call`-decorated function returns the provider's raw response (OpenAI chat
completion or Anthropic message), so a hand-instrumented call records the same fields an
instrumentation library would. Token fields follow the GenAI conventions: input_tokens includes
cached tokens and output_tokens includes reasoning tokens
(https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/#inference).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from driftline.sdk import messages

__all__ = ["ResponseSummary", "chunk_summary", "chunk_text", "summarize"]


@dataclass
class ResponseSummary:
    model: str | None = None
    response_id: str | None = None
    finish_reasons: list[str] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    output_messages: list[dict[str, Any]] = field(default_factory=list)


def _get(obj: object, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _usage(usage: object) -> dict[str, int]:
    if usage is None:
        return {}
    out: dict[str, int | None] = {}
    if _get(usage, "prompt_tokens") is not None:  # OpenAI: prompt_tokens already counts cached ones
        out["input_tokens"] = _int(_get(usage, "prompt_tokens"))
        out["output_tokens"] = _int(_get(usage, "completion_tokens"))
        out["cache_read_input_tokens"] = _int(_get(_get(usage, "prompt_tokens_details"), "cached_tokens"))
        details = _get(usage, "completion_tokens_details")
        out["reasoning_output_tokens"] = _int(_get(details, "reasoning_tokens"))
    else:  # Anthropic: input_tokens excludes cache reads and writes, so add them back
        read = _int(_get(usage, "cache_read_input_tokens"))
        created = _int(_get(usage, "cache_creation_input_tokens"))
        base = _int(_get(usage, "input_tokens"))
        out["input_tokens"] = None if base is None else base + (read or 0) + (created or 0)
        out["output_tokens"] = _int(_get(usage, "output_tokens"))
        out["cache_read_input_tokens"] = read
        out["cache_creation_input_tokens"] = created
    return {k: v for k, v in out.items() if v is not None}


def summarize(result: object) -> ResponseSummary | None:
    """A summary of an OpenAI ChatCompletion or Anthropic Message, else None."""
    choices = _get(result, "choices")
    if isinstance(choices, list | tuple):  # OpenAI chat completion
        outputs = messages.output_messages(list(choices))
        return ResponseSummary(
            model=_get(result, "model"),
            response_id=_get(result, "id"),
            finish_reasons=messages.finish_reasons(outputs),
            usage=_usage(_get(result, "usage")),
            output_messages=outputs,
        )
    if _get(result, "stop_reason") is not None and _get(result, "content") is not None:  # Anthropic
        reason = str(_get(result, "stop_reason"))
        msg = {"role": _get(result, "role") or "assistant", "content": _get(result, "content")}
        return ResponseSummary(
            model=_get(result, "model"),
            response_id=_get(result, "id"),
            finish_reasons=[reason],
            usage=_usage(_get(result, "usage")),
            output_messages=messages.output_messages([msg], finish_reason=reason),
        )
    return None


def chunk_text(chunk: object) -> str | None:
    """The text of one streamed chunk: a str, or an OpenAI ChatCompletionChunk's first delta."""
    if isinstance(chunk, str):
        return chunk
    choices = _get(chunk, "choices")
    if isinstance(choices, list | tuple) and choices:
        content = _get(_get(choices[0], "delta"), "content")
        return content if isinstance(content, str) else None
    return None


def chunk_summary(chunk: object) -> ResponseSummary | None:
    """Model, id, finish reason and usage carried by an OpenAI ChatCompletionChunk, else None.

    OpenAI sends usage in a last, choice-less chunk when `stream_options.include_usage` is set.
    """
    if isinstance(chunk, str) or _get(chunk, "choices") is None:
        return None
    choices = _get(chunk, "choices") or []
    reason = _get(choices[0], "finish_reason") if choices else None
    return ResponseSummary(
        model=_get(chunk, "model"),
        response_id=_get(chunk, "id"),
        finish_reasons=[str(reason)] if reason else [],
        usage=_usage(_get(chunk, "usage")),
    )
