"""What agent frameworks put inside OpenInference's `input.value` / `output.value`, unwrapped.

openinference-instrumentation-langchain and -llama-index record a framework's own objects as
JSON: a LangGraph state `{"messages": [...]}` of serialized LangChain messages, a LangChain
`ToolMessage`, a LangChain `ToolCall`, LlamaIndex's `{"kwargs": {...}}` tool input and its
`ToolOutput`. The columns want the plain values inside (docs/columns.md): the arguments object,
the tool's content, the call id, the messages.

LangChain message forms (langchain_core.messages / load.dump):
  {"role": "user", "content": ...}                                 OpenAI-style dict
  {"type": "human", "data": {"content": ..., ...}}                 messages_to_dict
  {"lc": 1, "type": "constructor", "id": [..., "HumanMessage"], "kwargs": {...}}   dumpd
LlamaIndex ToolOutput (llama_index.core.tools.types): {"blocks": [{"text": ...}] | "content": ...,
"tool_name", "raw_input", "raw_output", "is_error"}; a query's input {"query_bundle": {"query_str"}}
or {"query_str", ...}; its Response {"response", "source_nodes", "metadata"} and StreamingResponse
{"response_gen": "<generator object>", ..., "response_txt"} (llama_index.core.base.response.schema).
"""

from __future__ import annotations

from typing import Final

from driftline.collector.conventions._common import Message, ToolCall, as_text
from driftline.collector.conventions.messages import text_of, tool_call

__all__ = ["ToolOutcome", "chain_messages", "last_text", "llamaindex_io", "tool_arguments", "tool_outcome"]

# LangChain message type -> role
_ROLES: Final[dict[str, str]] = {
    "human": "user",
    "humanmessage": "user",
    "user": "user",
    "ai": "assistant",
    "aimessage": "assistant",
    "aimessagechunk": "assistant",
    "assistant": "assistant",
    "system": "system",
    "systemmessage": "system",
    "tool": "tool",
    "toolmessage": "tool",
    "function": "tool",
    "functionmessage": "tool",
}

# (text, tool_call_id, error text) of a tool's result
ToolOutcome = tuple[str, str, str]


def _body(raw: dict[str, object]) -> tuple[str, dict[str, object]] | None:
    """(LangChain type, fields) of a serialized message, or None when `raw` is not one."""
    if raw.get("lc") == 1 and raw.get("type") == "constructor":
        ids = raw.get("id")
        kwargs = raw.get("kwargs")
        if isinstance(ids, list) and ids and isinstance(kwargs, dict):
            return str(ids[-1]).lower(), kwargs
        return None
    data = raw.get("data")
    kind = raw.get("type")
    if isinstance(kind, str) and isinstance(data, dict) and "content" in data:
        return kind.lower(), data
    return None


def _message(raw: object) -> Message | None:
    if not isinstance(raw, dict):
        return None
    body = _body(raw)
    if body is None:
        role = raw.get("role")
        if not isinstance(role, str) or "content" not in raw:
            return None
        kind, fields = role.lower(), raw
    else:
        kind, fields = body
    role = _ROLES.get(kind) or (fields.get("role") if isinstance(fields.get("role"), str) else None)
    if not isinstance(role, str):
        return None
    msg: Message = {"role": role, "content": text_of(fields.get("content"))}
    calls = _calls(fields.get("tool_calls"))
    if calls:
        msg["tool_calls"] = calls
    call_id = fields.get("tool_call_id")
    if isinstance(call_id, str) and call_id:
        msg["tool_call_id"] = call_id
    return msg


def _calls(raw: object) -> list[ToolCall]:
    """LangChain ToolCall dicts {"name","args","id"} or OpenAI {"id","function":{"name","arguments"}}."""
    if not isinstance(raw, list):
        return []
    calls: list[ToolCall] = []
    for c in raw:
        if not isinstance(c, dict):
            continue
        fn = c.get("function")
        if isinstance(fn, dict):
            calls.append(tool_call(c.get("id") or "", fn.get("name") or "", fn.get("arguments") or ""))
        elif c.get("name"):
            args = c.get("args")
            calls.append(tool_call(c.get("id") or "", c["name"], {} if args is None else args))
    return calls


def chain_messages(value: object) -> list[Message] | None:
    """The messages of a LangGraph state / chain input `{"messages": [...]}`; None for anything else.

    LangChain also batches: `{"messages": [[...]]}` (a list of message lists) takes the first list.
    """
    if type(value) is list and len(value) == 1 and type(value[0]) is dict:
        update = value[0].get("update")  # a LangGraph node's Command([{"graph", "update", ...}])
        value = update if isinstance(update, dict) else None
    if not isinstance(value, dict):
        return None
    items = value.get("messages")
    if not isinstance(items, list) or not items:
        return None
    if isinstance(items[0], list):
        items = items[0]
    out = [m for m in map(_message, items) if m is not None]
    return out if out and len(out) == len(items) else None


def last_text(msgs: list[Message]) -> str | None:
    """The last assistant message's text, else the last message's text (a tool node's result)."""
    for m in reversed(msgs):
        if m["role"] == "assistant" and m["content"]:
            return str(m["content"])
    for m in reversed(msgs):
        if m["content"]:
            return str(m["content"])
    return None


def tool_arguments(value: object) -> tuple[object, str] | None:
    """(arguments, call id) from a tool span's input: LlamaIndex `{"kwargs": {...}}` (with no
    positional `args`), a LangChain ToolCall `{"name","args","id","type":"tool_call"}`. None when
    the input is neither (a plain arguments object is already what it should be)."""
    if not isinstance(value, dict):
        return None
    if value.get("type") == "tool_call" and isinstance(value.get("args"), dict):
        call_id = value.get("id")
        return value["args"], call_id if isinstance(call_id, str) else ""
    kwargs = value.get("kwargs")
    if isinstance(kwargs, dict) and set(value) <= {"args", "kwargs"} and not value.get("args"):
        return kwargs, ""
    return None


def tool_outcome(value: object) -> ToolOutcome | None:
    """(result text, call id, error text) from a LangChain ToolMessage or a LlamaIndex ToolOutput;
    None when the output is neither."""
    if not isinstance(value, dict):
        return None
    body = _body(value)
    if body is not None and body[0] in ("tool", "toolmessage"):
        fields = body[1]
        text = text_of(fields.get("content"))
        call_id = fields.get("tool_call_id")
        error = (text or "error") if fields.get("status") == "error" else ""
        return text, call_id if isinstance(call_id, str) else "", error
    if "tool_name" in value and "raw_output" in value and ("blocks" in value or "content" in value):
        blocks = value.get("blocks")
        text = text_of(blocks) if isinstance(blocks, list) else as_text(value.get("content"))
        error = (text or "error") if value.get("is_error") is True else ""
        return text, "", error
    return None


def llamaindex_io(value: object) -> str | None:
    """The text inside a LlamaIndex query input or response: the query string, the response text;
    "" for a StreamingResponse not yet drained (its text is the streamed call's); None for
    anything else."""
    if not isinstance(value, dict):
        return None
    bundle = value.get("query_bundle")
    query = bundle.get("query_str") if isinstance(bundle, dict) else value.get("query_str")
    if isinstance(query, str):
        return query
    if "source_nodes" in value:
        text = value.get("response") if "response" in value else value.get("response_txt")
        if isinstance(text, str):
            return text
        if text is None and "response_gen" in value:
            return ""
    return None
