"""Convert what apps have at hand (OpenAI/Anthropic-style messages, LangChain/LlamaIndex documents)
into the JSON shapes of the GenAI semantic conventions.

Schemas (all allow extra properties):
- gen_ai.input.messages: [{"role", "parts": [part, ...], "name"?}]
  https://github.com/open-telemetry/semantic-conventions-genai/blob/main/docs/gen-ai/gen-ai-input-messages.json
- gen_ai.output.messages: the same plus a required "finish_reason" per message (one per choice).
- gen_ai.system_instructions: [part, ...]
- parts: {"type": "text", "content"}, {"type": "tool_call", "id", "name", "arguments"},
  {"type": "tool_call_response", "id", "response"}, {"type": "reasoning", "content"},
  {"type": "uri" | "blob", "modality", ...}; unknown typed dicts pass through as generic parts.
- gen_ai.retrieval.documents: [{"id", "score", ...}]; Driftline adds "content" and "metadata".

Everything here is best effort and never raises on odd input: telemetry must not break the app.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

__all__ = [
    "documents",
    "finish_reasons",
    "input_messages",
    "output_messages",
    "system_instructions",
    "text_output",
    "to_json",
    "to_json_value",
]

Json = dict[str, Any]


def _default(value: object) -> object:
    dump = getattr(value, "model_dump", None)  # pydantic v2 (OpenAI, Anthropic response objects)
    if callable(dump):
        return dump()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")  # the spec's encoding for blob content
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def to_json(value: object) -> str:
    """Compact JSON that never fails: unknown objects fall back to dicts or `str()`."""
    return json.dumps(value, default=_default, ensure_ascii=False, separators=(",", ":"))


def to_json_value(value: object) -> str:
    """An attribute value for "any"-typed fields (tool arguments/results): strings stay as they are."""
    return value if isinstance(value, str) else to_json(value)


def _as_mapping(value: object) -> Mapping[str, Any] | None:
    if isinstance(value, Mapping):
        return value
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        dumped = dump()
        return dumped if isinstance(dumped, Mapping) else None
    return None


def _loads_lenient(value: object) -> object:
    # The spec expects tool arguments as an object and asks to deserialize strings "best effort".
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _part(block: object) -> Json | None:
    if isinstance(block, str):
        return {"type": "text", "content": block}
    m = _as_mapping(block)
    if m is None:
        return {"type": "text", "content": str(block)} if block is not None else None
    kind = m.get("type")
    if kind in ("text", "input_text", "output_text"):
        return {"type": "text", "content": m.get("text", m.get("content", ""))}
    if kind == "image_url":  # OpenAI chat content block
        url = m.get("image_url")
        url = url.get("url") if isinstance(url, Mapping) else url
        return _uri_or_blob(str(url or ""), "image")
    if kind == "tool_use":  # Anthropic
        return {"type": "tool_call", "id": m.get("id"), "name": m.get("name"), "arguments": m.get("input")}
    if kind == "tool_result":  # Anthropic
        return {"type": "tool_call_response", "id": m.get("tool_use_id"), "response": m.get("content")}
    if kind in ("thinking", "reasoning"):
        return {"type": "reasoning", "content": m.get("thinking", m.get("content", m.get("text", "")))}
    if isinstance(kind, str):
        return dict(m)  # already a semconv part, or a generic part the spec lets through
    return {"type": "text", "content": to_json(m)}


def _uri_or_blob(url: str, modality: str) -> Json:
    if url.startswith("data:") and ";base64," in url:  # the spec wants data URLs as blob parts
        header, _, payload = url[5:].partition(",")
        return {"type": "blob", "modality": modality, "mime_type": header.split(";")[0], "content": payload}
    return {"type": "uri", "modality": modality, "uri": url}


def _single(value: object) -> bool:
    # Strings, mappings and pydantic models are iterable too, but each is one item here.
    return isinstance(value, str | Mapping) or hasattr(value, "model_dump") or not isinstance(value, Iterable)


def _parts(content: object) -> list[Json]:
    if content is None:
        return []
    blocks = [content] if _single(content) else list(cast(Iterable[object], content))
    return [p for p in (_part(b) for b in blocks) if p is not None]


def _message(raw: object, default_role: str) -> Json:
    if isinstance(raw, str):
        return {"role": default_role, "parts": [{"type": "text", "content": raw}]}
    m = _as_mapping(raw)
    if m is None:
        return {"role": default_role, "parts": _parts(raw)}
    if "parts" in m:
        return dict(m)
    role = str(m.get("role") or default_role)
    if role == "tool" or m.get("tool_call_id") is not None:  # OpenAI tool result message
        parts: list[Json] = [{"type": "tool_call_response", "id": m.get("tool_call_id"), "response": m.get("content")}]
    else:
        parts = _parts(m.get("content"))
    for call in m.get("tool_calls") or ():  # OpenAI assistant tool calls
        c = _as_mapping(call) or {}
        fn = _as_mapping(c.get("function")) or c
        parts.append(
            {
                "type": "tool_call",
                "id": c.get("id"),
                "name": fn.get("name"),
                "arguments": _loads_lenient(fn.get("arguments")),
            }
        )
    out: Json = {"role": role, "parts": parts}
    if m.get("name"):
        out["name"] = m["name"]
    return out


def _as_list(value: object) -> Sequence[object]:
    return [value] if _single(value) else list(cast(Iterable[object], value))


def input_messages(messages: object) -> list[Json]:
    """A prompt string, or a list of chat messages in OpenAI, Anthropic or semconv form."""
    return [_message(m, "user") for m in _as_list(messages)]


def output_messages(messages: object, finish_reason: str = "stop") -> list[Json]:
    """Model outputs: a string, messages, or OpenAI `choices` ({"message", "finish_reason"})."""
    out: list[Json] = []
    for item in _as_list(messages):
        m = _as_mapping(item)
        raw, reason = item, finish_reason
        if m is not None and "message" in m:  # an OpenAI choice
            raw, reason = m["message"], str(m.get("finish_reason") or finish_reason)
        elif m is not None and m.get("finish_reason"):
            reason = str(m["finish_reason"])
        msg = _message(raw, "assistant")
        msg.setdefault("finish_reason", reason)
        out.append(msg)
    return out


def text_output(text: str, finish_reason: str = "stop", role: str = "assistant") -> list[Json]:
    return [{"role": role, "parts": [{"type": "text", "content": text}], "finish_reason": finish_reason}]


def system_instructions(instructions: object) -> list[Json]:
    return _parts(instructions)


def finish_reasons(messages: Sequence[Json]) -> list[str]:
    return [str(m["finish_reason"]) for m in messages if m.get("finish_reason")]


def _first(m: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if m.get(key) is not None:
            return m[key]
    return None


def _document(raw: object, with_content: bool) -> Json:
    score: object = None
    if isinstance(raw, tuple) and len(raw) == 2 and isinstance(raw[1], int | float):
        raw, score = raw  # LangChain similarity_search_with_score -> (Document, score)
    if isinstance(raw, str):
        doc: Json = {"content": raw}
    else:
        # LlamaIndex NodeWithScore (a pydantic model whose dump would bury the node) and
        # attribute-only objects are read by attribute; dicts and other models as mappings.
        m = None if hasattr(raw, "node") else _as_mapping(raw)
        if m is None:
            node = getattr(raw, "node", raw)
            m = {
                "id": getattr(node, "node_id", None) or getattr(node, "id", None),
                "content": getattr(node, "page_content", None) or getattr(node, "text", None),
                "score": getattr(raw, "score", None),
                "metadata": getattr(node, "metadata", None),
            }
        doc = {
            "id": _first(m, "id", "doc_id", "document_id", "node_id"),
            "score": _first(m, "score", "relevance_score", "similarity"),
            "content": _first(m, "content", "text", "page_content", "document"),
            "metadata": m.get("metadata") or None,
        }
    if score is not None:
        doc["score"] = score
    if doc.get("id") is not None:
        doc["id"] = str(doc["id"])
    if not with_content:
        doc.pop("content", None)
        doc.pop("metadata", None)
    return {k: v for k, v in doc.items() if v is not None}


def documents(docs: object, with_content: bool = True) -> list[Json]:
    """Retrieved documents as [{"id", "score", "content", "metadata"}], keys present when known."""
    return [_document(d, with_content) for d in _as_list(docs)]
