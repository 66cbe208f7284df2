"""One message normalizer for every convention's message shape, and the text of a content value.

Output shape (docs/columns.md): {"role", "content"[, "tool_calls"][, "tool_call_id"]
[, "finish_reason"]}, content being the text parts newline-joined, tool calls as {"id", "name",
"arguments"} with the arguments as JSON text, finish_reason as the message gave it.

`plain` tells when a message list is text messages only, which the normalized form holds
without losing anything: its source attribute then need not be stored again (docs/columns.md).
"""

from __future__ import annotations

from typing import Final

from driftline.collector.conventions._common import Message, ToolCall, as_text, maybe_json

__all__ = ["message", "messages", "plain", "text_of", "tool_call"]


def tool_call(call_id: object, name: object, arguments: object) -> ToolCall:
    """One requested tool call; arguments always as JSON text, whatever the convention sent."""
    return {
        "id": call_id if isinstance(call_id, str) else as_text(call_id),
        "name": name if isinstance(name, str) else as_text(name),
        "arguments": arguments if isinstance(arguments, str) else as_text(arguments),
    }


def text_of(content: object) -> str:
    """Text of a message content: a string, or the text parts of a part list (any convention's)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [t for p in content if (t := _part_text(p))]
        return "\n".join(texts)
    if isinstance(content, dict):
        return _part_text(content) or ""
    return "" if content is None else as_text(content)


def _part_text(part: object) -> str:
    if isinstance(part, str):
        return part
    if not isinstance(part, dict):
        return ""
    kind = part.get("type")
    if kind in (None, "text", "input_text", "output_text"):
        for key in ("content", "text"):
            v = part.get(key)
            if isinstance(v, str):
                return v
    return ""


_CALL_TYPES: Final = frozenset({"tool_call", "tool-call", "tool_use", "function_call", "function"})
_RESULT_TYPES: Final = frozenset({"tool_call_response", "tool-result", "tool_result", "function_call_output"})


def message(raw: object, default_role: str = "user") -> Message | None:
    """Normalize one message of any convention to {"role","content"[,"tool_calls"][,"tool_call_id"]}.

    Understands GenAI semconv parts (text / tool_call / tool_call_response), OpenAI chat messages
    (content string or parts, tool_calls with function.name/arguments, tool_call_id), Anthropic
    blocks (tool_use / tool_result) and Vercel AI SDK parts (tool-call / tool-result).
    """
    if type(raw) is dict:
        fast = _text_only(raw, default_role)
        if fast is not None:
            return fast
    elif isinstance(raw, str):
        return {"role": default_role, "content": raw}
    else:
        return None
    role = raw.get("role")
    out: Message = {"role": role if isinstance(role, str) and role else default_role, "content": ""}
    parts = raw.get("parts")
    content = raw.get("content")
    if not isinstance(parts, list):
        parts = content if isinstance(content, list) else None
    texts: list[str] = []
    calls: list[ToolCall] = []
    if parts is None:
        texts.append(text_of(content))
    else:
        for part in parts:
            if not isinstance(part, dict) or part.get("type") not in _CALL_TYPES | _RESULT_TYPES:
                t = _part_text(part)
                if t:
                    texts.append(t)
            elif part.get("type") in _CALL_TYPES:
                fn = part.get("function")
                fn = fn if isinstance(fn, dict) else {}
                calls.append(
                    tool_call(
                        part.get("id") or part.get("toolCallId") or part.get("call_id") or "",
                        part.get("name") or part.get("toolName") or fn.get("name") or "",
                        _first_present(part, ("arguments", "args", "input")) or fn.get("arguments") or "",
                    )
                )
            else:
                call_id = _first_present(part, ("id", "toolCallId", "tool_use_id", "call_id"))
                if call_id:
                    out["tool_call_id"] = as_text(call_id)
                result = _result_value(_first_present(part, ("response", "result", "output", "content")))
                texts.append(text_of(result) if isinstance(result, list) else as_text(result))
    for tc in raw.get("tool_calls") or ():
        if isinstance(tc, dict):
            fn = tc.get("function")
            fn = fn if isinstance(fn, dict) else tc
            calls.append(tool_call(tc.get("id") or "", fn.get("name") or "", fn.get("arguments") or ""))
    if isinstance(raw.get("tool_call_id"), str):
        out["tool_call_id"] = raw["tool_call_id"]
    out["content"] = "\n".join(t for t in texts if t)
    if calls:
        out["tool_calls"] = calls
    reason = raw.get("finish_reason")
    if type(reason) is str:
        out["finish_reason"] = reason
    return out


# The Vercel AI SDK (v5+) wraps a tool result: {"type": "json" | "text" | "error-json" | "error-text",
# "value": ...}; "content" holds a part list. https://ai-sdk.dev/docs/reference/ai-sdk-core/model-message
_RESULT_WRAPPERS: Final = frozenset({"json", "text", "error-json", "error-text"})


def _result_value(result: object) -> object:
    """A tool result without the SDK's output wrapper."""
    if type(result) is dict and len(result) == 2 and "value" in result:
        kind = result.get("type")
        if kind in _RESULT_WRAPPERS:
            return result["value"]
        if kind == "content":
            return text_of(result["value"])
    return result


def _text_only(raw: dict[str, object], default_role: str) -> Message | None:
    """Fast path for the common shapes: one text part (GenAI semconv) or a plain string content."""
    role = raw.get("role")
    if type(role) is not str or not role:
        role = default_role
    parts = raw.get("parts")
    out: Message | None = None
    if parts is None:
        content = raw.get("content")
        if type(content) is str and "tool_calls" not in raw and "tool_call_id" not in raw:
            out = {"role": role, "content": content}
    elif type(parts) is list and len(parts) == 1:
        part = parts[0]
        if type(part) is dict and part.get("type") == "text":
            content = part.get("content")
            if type(content) is str:
                out = {"role": role, "content": content}
    if out is not None:
        reason = raw.get("finish_reason")
        if type(reason) is str:
            out["finish_reason"] = reason
    return out


def _first_present(d: dict[str, object], keys: tuple[str, ...]) -> object:
    for key in keys:
        if key in d and d[key] is not None:
            return d[key]
    return None


def messages(raw: object, default_role: str = "user") -> list[Message] | None:
    """A JSON string or structured array of messages, normalized; None when it is not a list."""
    value = maybe_json(raw)
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return None
    out: list[Message] = []
    for item in value:
        # _text_only first: the common one-text-part message without a second function call.
        m = _text_only(item, default_role) if type(item) is dict else None
        if m is None:
            m = message(item, default_role)
        if m is not None:
            out.append(m)
    return out or None


def plain(value: object) -> bool:
    """Whether `messages(value)` keeps everything in `value`: a non-empty list of messages that are
    each exactly {"role", "content": text} or {"role", "parts": [{"type": "text", "content": text}]},
    optionally with a text "finish_reason", the role a non-empty string.

    Anything else (other part types, tool calls, names, missing roles, a lone message object)
    loses something in the normalized form, so its source attribute stays stored as it came.
    """
    if type(value) is not list or not value:
        return False
    for item in value:
        if type(item) is not dict:
            return False
        role = item.get("role")
        if type(role) is not str or not role:
            return False
        keys = 2
        if "finish_reason" in item:
            if type(item["finish_reason"]) is not str:
                return False
            keys = 3
        if len(item) != keys:
            return False
        if "content" in item:
            if type(item["content"]) is not str:
                return False
            continue
        parts = item.get("parts")
        if type(parts) is not list or len(parts) != 1:
            return False
        part = parts[0]
        if type(part) is not dict or len(part) != 2 or part.get("type") != "text":
            return False
        if type(part.get("content")) is not str:
            return False
    return True
