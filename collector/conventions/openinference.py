"""OpenInference (Arize Phoenix) span attributes.

Spec: https://github.com/Arize-ai/openinference/blob/main/spec/semantic_conventions.md
Messages, tool calls and documents are flattened into indexed keys
(llm.input_messages.0.message.role, retrieval.documents.3.document.content, ...); they are read
back by index with dict lookups until an index is missing, so no key scan or regex is needed.
"""

from __future__ import annotations

from typing import Final

from driftline.collector.conventions import frameworks
from driftline.collector.conventions._common import (
    Attrs,
    Fields,
    Message,
    ToolCall,
    as_text,
    copy_int,
    copy_text,
    finish_reason,
    first_text,
    maybe_json,
    put,
    to_float,
)
from driftline.collector.conventions.messages import tool_call
from driftline.collector.conventions.providers import normalize_provider
from driftline.store.ingest_spec import FAMILIES, OPERATION_TABLES

__all__ = ["MARKERS", "OPERATION_BY_KIND", "extract"]

# The indexed document keys are markers too: emitters that speak GenAI semconv for the operation
# (gen_ai.operation.name=retrieval) often list documents the OpenInference way with no
# openinference.span.kind, and those documents must not be lost.
MARKERS: Final = FAMILIES["OI"]

# openinference.span.kind -> operation (docs/columns.md).
OPERATION_BY_KIND: Final = OPERATION_TABLES["openinference"][0]

_TOKENS: Final = (
    ("input_tokens", "llm.token_count.prompt"),
    ("output_tokens", "llm.token_count.completion"),
    ("total_tokens", "llm.token_count.total"),
    ("cache_read_tokens", "llm.token_count.prompt_details.cache_read"),
    ("cache_read_tokens", "llm.token_count.prompt_details.cache_input"),
    ("cache_creation_tokens", "llm.token_count.prompt_details.cache_write"),
    ("reasoning_tokens", "llm.token_count.completion_details.reasoning"),
)
_MODELS: Final = (
    ("request_model", "llm.request.model_name"),
    ("response_model", "llm.response.model_name"),
)
_TEXT: Final = (
    ("response_model", "embedding.model_name"),
    ("response_model", "reranker.model_name"),
    ("session_id", "session.id"),
    ("user_id", "user.id"),
    ("agent_name", "agent.name"),
)

_MAX_ITEMS: Final = 10_000  # an upper bound on indices, never reached by real spans


def extract(a: Attrs, f: Fields) -> None:
    kind = a.get("openinference.span.kind")
    kind = kind.upper() if isinstance(kind, str) else ""
    if kind:
        put(f, "operation", OPERATION_BY_KIND.get(kind, "other"))
    v = first_text(a, ("llm.provider", "llm.system"))
    if v:
        put(f, "provider", normalize_provider(v))
    copy_text(a, f, _MODELS)
    _models(a, f)
    copy_text(a, f, _TEXT)
    copy_int(a, f, _TOKENS)
    if "_span_cost" not in f and ("llm.cost.total" in a or "llm.cost.prompt" in a):
        total = to_float(a.get("llm.cost.total"))
        if total is None:
            costs = (to_float(a.get("llm.cost.prompt")), to_float(a.get("llm.cost.completion")))
            parts = [c for c in costs if c is not None]
            total = sum(parts) if parts else None
        put(f, "_span_cost", total)
    if "_in" not in f:
        put(f, "_in", _messages(a, "llm.input_messages.", "user"))
    if "_in" not in f and kind == "EMBEDDING":
        put(f, "_in", _embedding_inputs(a))
    if "_out" not in f:
        put(f, "_out", _messages(a, "llm.output_messages.", "assistant"))
    reason = a.get("llm.finish_reason")
    if isinstance(reason, str) and reason:
        put(f, "finish_reason", finish_reason(reason))
    _io(a, f, kind)
    if "_docs" not in f and kind in ("RETRIEVER", "RERANKER", ""):
        _take_documents(a, f, kind)
    if kind == "AGENT":
        put(f, "agent_name", f.get("name"))


def _models(a: Attrs, f: Fields) -> None:
    """request_model from the invocation parameters, and what `llm.model_name` means.

    LangChain's and OpenAI's instrumentors put the provider's answer in `llm.model_name` (the dated
    id) and the request in the parameters' "model". LlamaIndex's parameters are its LLMMetadata
    ("model_name", "context_window", "is_chat_model", ...): there `llm.model_name` is the model the
    app configured, a request, and the span has no response model at all.
    """
    model_name = a.get("llm.model_name")
    configured = False
    if "request_model" not in f:
        for key in ("llm.invocation_parameters", "embedding.invocation_parameters"):
            params = maybe_json(a.get(key))
            if not isinstance(params, dict):
                continue
            model = params.get("model")
            if not isinstance(model, str) and "context_window" in params:
                model = params.get("model_name")
                configured = True
            if isinstance(model, str) and model:
                put(f, "request_model", model)
                break
    if model_name is None or model_name == "":
        return
    if configured:
        put(f, "request_model", model_name if isinstance(model_name, str) else str(model_name))
    elif "response_model" not in f:
        f["response_model"] = model_name if isinstance(model_name, str) else str(model_name)


def _io(a: Attrs, f: Fields, kind: str) -> None:
    inp = first_text(a, ("input.value",))
    out = first_text(a, ("output.value",))
    if kind == "TOOL":
        _tool(a, f, inp, out)
        return
    if kind not in ("LLM", "EMBEDDING") and _chain_io(a, f, inp, out):
        out = None
    # The messages say it all: an LLM span's input.value / output.value is then the framework's
    # rendering of them ("assistant: " for a message that only asks for a tool).
    if "_in" not in f and not (
        # For LLM / embedding spans a JSON input.value / output.value is the raw provider request /
        # response, not text a person wrote or read: it stays in `attributes` but is not used as text.
        kind in ("LLM", "EMBEDDING") and a.get("input.mime_type") == "application/json"
    ):
        put(f, "_input_raw", inp)
    if "_out" not in f and not (kind in ("LLM", "EMBEDDING") and a.get("output.mime_type") == "application/json"):
        put(f, "_output_raw", out)


def _tool(a: Attrs, f: Fields, inp: str | None, out: str | None) -> None:
    """A TOOL span: the call's arguments object, the tool's content and call id, unwrapped from
    the framework objects the instrumentors record (frameworks.py)."""
    put(f, "tool_name", first_text(a, ("tool.name", "tool_call.function.name")))
    put(f, "tool_call_id", first_text(a, ("tool_call.id", "tool.id")))
    args = first_text(a, ("tool_call.function.arguments",))
    if args is None and inp is not None:
        unwrapped = frameworks.tool_arguments(maybe_json(inp)) if inp[:1] == "{" else None
        if unwrapped is None:
            args = inp
        else:
            args = as_text(unwrapped[0])
            put(f, "tool_call_id", unwrapped[1])
    put(f, "tool_arguments", args)
    if out is not None:
        outcome = frameworks.tool_outcome(maybe_json(out)) if out[:1] == "{" else None
        if outcome is None:
            put(f, "tool_result", out)
        else:
            text, call_id, error = outcome
            put(f, "tool_result", text)
            put(f, "tool_call_id", call_id)
            put(f, "_error_message", error)


def _chain_io(a: Attrs, f: Fields, inp: str | None, out: str | None) -> bool:
    """A chain / agent / retriever span whose input or output is a framework object: a LangGraph
    state {"messages": [...]} (or a node's update [{"update": {"messages": [...]}}]) gives the input
    messages, and as output text the last assistant message's (else the last message's) text; a
    LlamaIndex query gives its query string, a LlamaIndex response its text. True when the output
    was such an object (output.value is then not the output text)."""
    if "_in" not in f and inp is not None:
        if inp.startswith('{"messages"'):
            put(f, "_in", frameworks.chain_messages(maybe_json(inp)))
        elif inp.startswith(('{"query_bundle"', '{"query_str"')):
            put(f, "_input_raw", frameworks.llamaindex_io(maybe_json(inp)))
    if out is None:
        return False
    if out.startswith('{"response'):
        text = frameworks.llamaindex_io(maybe_json(out))
        put(f, "_output_raw", text)
        return text is not None
    if not out.startswith(('{"messages"', '[{"graph"')):
        return False
    msgs = frameworks.chain_messages(maybe_json(out))
    if msgs is None:
        return False
    put(f, "_output_raw", frameworks.last_text(msgs))
    return True


def _messages(a: Attrs, prefix: str, default_role: str) -> list[Message] | None:
    out: list[Message] = []
    for i in range(_MAX_ITEMS):
        base = f"{prefix}{i}.message."
        role = a.get(base + "role")
        content = a.get(base + "content")
        calls = _tool_calls(a, base + "tool_calls.")
        has_parts = f"{base}contents.0.message_content.type" in a
        if role is None and content is None and not calls and not has_parts:
            break
        call_id = a.get(base + "tool_call_id")
        if content is None:
            if not calls and not has_parts and not call_id:
                # A role alone (LangChain's instrumentor on a LangGraph state): no message to keep.
                continue
            content = _contents(a, base + "contents.")
        msg: Message = {
            "role": role if isinstance(role, str) and role else default_role,
            "content": content if isinstance(content, str) else "",
        }
        if calls:
            msg["tool_calls"] = calls
        if isinstance(call_id, str) and call_id:
            msg["tool_call_id"] = call_id
        out.append(msg)
    return out or None


def _embedding_inputs(a: Attrs) -> list[Message] | None:
    texts: list[Message] = []
    for i in range(_MAX_ITEMS):
        text = a.get(f"embedding.embeddings.{i}.embedding.text")
        if text is None:
            break
        texts.append({"role": "user", "content": text if isinstance(text, str) else ""})
    return texts or None


def _contents(a: Attrs, prefix: str) -> str:
    texts: list[str] = []
    for j in range(_MAX_ITEMS):
        base = f"{prefix}{j}.message_content."
        kind = a.get(base + "type")
        if kind is None:
            break
        text = a.get(base + "text")
        if kind == "text" and isinstance(text, str):
            texts.append(text)
    return "\n".join(texts)


def _tool_calls(a: Attrs, prefix: str) -> list[ToolCall]:
    calls: list[ToolCall] = []
    for j in range(_MAX_ITEMS):
        base = f"{prefix}{j}.tool_call."
        name = a.get(base + "function.name")
        if name is None:
            break
        calls.append(tool_call(a.get(base + "id") or "", name, a.get(base + "function.arguments") or ""))
    return calls


def _take_documents(a: Attrs, f: Fields, kind: str) -> None:
    """Retrieved (or reranked) documents; without a span kind, they also say what the span did."""
    docs = _documents(a, "retrieval.documents.")
    operation = "retrieval"
    if docs is None:
        docs = _documents(a, "reranker.output_documents.")
        operation = "rerank"
    put(f, "_docs", docs)
    if docs and not kind:
        put(f, "operation", operation)


def _documents(a: Attrs, prefix: str) -> list[dict[str, object]] | None:
    docs: list[dict[str, object]] = []
    for i in range(_MAX_ITEMS):
        base = f"{prefix}{i}.document."
        content = a.get(base + "content")
        doc_id = a.get(base + "id")
        if content is None and doc_id is None:
            break
        docs.append(
            {
                "id": "" if doc_id is None else str(doc_id),
                "content": content if isinstance(content, str) else "",
                "score": to_float(a.get(base + "score")),
            }
        )
    return docs or None
