"""Columns derived after every convention has run: texts, tool fields, token accounting, JSON.

The rules here are the convention-independent ones of docs/columns.md:
- input_text: the last user message, else the convention's input text (input.value, ...).
- output_text: the last assistant message's text, else the convention's output text.
- system_prompt: system instructions, else the system / developer messages joined.
- tool_calls: tool calls the model asked for in its output messages.
- tokens: the accounting rule of driftline/store/columns.py (cached tokens inside input_tokens,
  reasoning tokens inside output_tokens).
- input_text_fallback / output_text_fallback: the text again, unless it is exactly the last
  user / assistant message's content inside input_messages / output_messages, which the
  `input_text` / `output_text` ALIAS columns read back (so message text is not stored twice).
- attributes: a message attribute that input_messages / output_messages hold whole (plain text
  messages, nothing cut: `_in_key` / `_out_key`) is left out, for the same reason.
"""

from __future__ import annotations

from typing import Final

from driftline.collector.conventions._common import (
    Fields,
    Message,
    ToolCall,
    maybe_json,
)
from driftline.collector.otlp_values import dumps, truncate

__all__ = ["JSON_BUDGET_FACTOR", "TEXT_COLUMNS", "finish", "fix_tokens"]

# Text columns truncated to max_value_bytes with a visible marker.
TEXT_COLUMNS: Final = (
    "input_text",
    "output_text",
    "system_prompt",
    "tool_arguments",
    "tool_result",
    "tool_error",
    "status_message",
)
_SYSTEM_ROLES: Final = ("system", "developer")
_USER: Final = ("user",)
_ASSISTANT: Final = ("assistant", "model")
# A JSON list column may hold this many times max_value_bytes; past that its oldest items go.
JSON_BUDGET_FACTOR: Final = 4


def finish(f: Fields, limit: int, small: bool = False) -> None:
    in_msgs = f.pop("_in", None)
    out_msgs = f.pop("_out", None)
    in_key = f.pop("_in_key", None)
    out_key = f.pop("_out_key", None)
    ins: list[Message] = in_msgs if isinstance(in_msgs, list) else []
    outs: list[Message] = out_msgs if isinstance(out_msgs, list) else []
    input_raw = f.pop("_input_raw", None)
    output_raw = f.pop("_output_raw", None)

    tool = _is_tool(f)
    in_from_messages = out_from_messages = False
    if f.get("operation") == "embeddings" and ins:
        # Every input of an embeddings call is a "user" message; the text is all of them.
        text: object = "\n".join(str(m["content"]) for m in ins if m["content"]) or input_raw
    else:
        text, in_from_messages = _last_plain(ins, _USER)
        text = text or input_raw or (f.get("tool_arguments") if tool else None)
    if text:
        f["input_text"] = text
    text, out_from_messages = _last_plain(outs, _ASSISTANT)
    text = text or output_raw or (f.get("tool_result") if tool else None)
    if text:
        f["output_text"] = text
    if "system_prompt" not in f:
        system = "\n".join(str(m["content"]) for m in ins if m["role"] in _SYSTEM_ROLES and m["content"])
        if system:
            f["system_prompt"] = system

    given = f.pop("_tool_calls", None)
    calls: list[ToolCall] = given if isinstance(given, list) else [c for m in outs for c in _calls(m)]
    if calls:
        f["tool_calls"] = _dump_list(calls, limit)
    # The ALIAS reads the message back only from a list stored whole (nothing cut or dropped).
    if ins:
        in_from_messages = _store_messages(f, "input_messages", ins, in_key, limit) and in_from_messages
    if outs:
        out_from_messages = _store_messages(f, "output_messages", outs, out_key, limit) and out_from_messages
    docs = f.pop("_docs", None)
    if isinstance(docs, list) and docs:
        f["retrieved_documents"] = _dump_list(docs, limit)

    fallback = f.pop("_finish_fallback", None)
    if "finish_reason" not in f and fallback:
        f["finish_reason"] = fallback
    _errors(f)
    fix_tokens(f)
    if not small:
        for column in TEXT_COLUMNS:
            value = f.get(column)
            if isinstance(value, str) and len(value) * 4 > limit:
                f[column] = truncate(value, limit)
                in_from_messages = in_from_messages and column != "input_text"
                out_from_messages = out_from_messages and column != "output_text"
    # '' says "read it from the messages"; a row without the key stores its text (batch.py).
    if "input_text" in f:
        f["input_text_fallback"] = "" if in_from_messages else f["input_text"]
    if "output_text" in f:
        f["output_text_fallback"] = "" if out_from_messages else f["output_text"]


def _store_messages(f: Fields, column: str, msgs: list[Message], source_key: object, limit: int) -> bool:
    """Store `msgs` as JSON in `column`; True when the list is stored whole. Then the attribute the
    messages came from (`source_key`, set only when they hold all of it) leaves `attributes`."""
    stored = f[column] = _dump_list(msgs, limit)
    whole = len(stored) <= limit
    attrs = f.get("attributes")
    if whole and isinstance(source_key, str) and isinstance(attrs, dict):
        attrs.pop(source_key, None)
    return whole


def fix_tokens(f: Fields) -> None:
    """Apply the token accounting rule of driftline/store/columns.py.

    Conventions disagree on whether input_tokens includes cached tokens (GenAI semconv and
    OpenInference say it does; Anthropic's raw input_tokens and some emitters built on it do
    not). When the cached parts exceed the reported input, the report cannot have included
    them, so they are added back. Likewise reasoning tokens are added to output_tokens when
    they exceed it (Gemini's candidates count excludes thoughts). Equal or smaller cached
    counts are taken as already included: that is what the spec says.
    """
    inp = f.get("input_tokens")
    out = f.get("output_tokens")
    read = f.get("cache_read_tokens")
    write = f.get("cache_creation_tokens")
    reasoning = f.get("reasoning_tokens")
    if isinstance(inp, int):
        cached = (read if isinstance(read, int) else 0) + (write if isinstance(write, int) else 0)
        if cached > inp:
            inp = f["input_tokens"] = inp + cached
    if isinstance(out, int) and isinstance(reasoning, int) and reasoning > out:
        out = f["output_tokens"] = out + reasoning
    if "total_tokens" not in f and isinstance(inp, int) and isinstance(out, int):
        f["total_tokens"] = inp + out
    elif "total_tokens" not in f and isinstance(inp, int) and f.get("operation") == "embeddings":
        f["total_tokens"] = inp


def _is_tool(f: Fields) -> bool:
    return f.get("operation") == "execute_tool"


def _last_plain(msgs: list[Message], roles: tuple[str, ...]) -> tuple[str | None, bool]:
    """The last message in `roles` with content, and whether that content is a plain string (what
    the ALIAS expressions of driftline/store/columns.py read back from the stored JSON: keep the
    two in step)."""
    for m in reversed(msgs):
        if m["role"] in roles and m["content"]:
            content = m["content"]
            return str(content), isinstance(content, str)
    return None, False


def _calls(m: Message) -> list[ToolCall]:
    calls = m.get("tool_calls")
    return calls if isinstance(calls, list) else []


def _errors(f: Fields) -> None:
    error = f.get("status_code") == "error"
    exc_type = f.pop("_exception_type", None)
    exc_msg = f.pop("_exception_message", None)
    level_msg = f.pop("_error_message", None)
    if error and "error_type" not in f and exc_type:
        f["error_type"] = exc_type
    if not _is_tool(f) or "tool_error" in f:
        return
    if error:
        f["tool_error"] = f.get("status_message") or exc_msg or exc_type or "error"
    elif level_msg:
        f["tool_error"] = level_msg
    else:
        marked = _marked_error(f.get("tool_result"))
        if marked:
            f["tool_error"] = marked


def _marked_error(result: object) -> str | None:
    """A tool result that says it failed: MCP's isError, Anthropic's is_error, or {"error": ...}."""
    if not isinstance(result, str) or not result.startswith("{"):
        return None
    parsed = maybe_json(result)
    if not isinstance(parsed, dict):
        return None
    if parsed.get("isError") is True or parsed.get("is_error") is True:
        return result
    err = parsed.get("error")
    if err:
        return err if isinstance(err, str) else dumps(err)
    return None


def _dump_list(items: list[Message] | list[ToolCall] | list[dict[str, object]], limit: int) -> str:
    """JSON list with each long string cut to `limit`; oldest items dropped past the budget."""
    text = dumps(items)
    if len(text) <= limit:  # then no string inside can be longer than `limit` either
        return text
    rows: list[dict[str, object]] = []
    for item in items:
        row: dict[str, object] = dict(item)
        for key, value in row.items():
            if isinstance(value, str) and len(value) * 4 > limit:
                row[key] = truncate(value, limit)
        rows.append(row)
    text = dumps(rows)
    budget = limit * JSON_BUDGET_FACTOR
    dropped = 0
    while len(text) > budget and len(rows) > 1:
        cut = max(1, len(rows) // 4)
        rows = rows[cut:]
        dropped += cut
        # A visible first item says how many were dropped (nothing goes silently).
        text = dumps([{"truncated_items": dropped}, *rows])
    return text
