"""Vercel AI SDK telemetry (ai.* span attributes), v4 and v5+ names.

Spec: https://ai-sdk.dev/docs/ai-sdk-core/telemetry#collected-data
The SDK also writes a few gen_ai.* attributes on provider-call spans (handled by `genai.py`,
which runs first); everything under ai.* is read here.
"""

from __future__ import annotations

from typing import Final

from driftline.collector.conventions._common import (
    Attrs,
    Fields,
    Message,
    ToolCall,
    copy_int,
    copy_text,
    finish_reason,
    first_text,
    maybe_json,
    put,
    to_float,
)
from driftline.collector.conventions.messages import messages, text_of, tool_call
from driftline.collector.conventions.providers import normalize_provider
from driftline.store.ingest_spec import FAMILIES

__all__ = ["MARKERS", "extract", "operation_for"]

MARKERS: Final = FAMILIES["AI"]

_TOKENS: Final = (
    ("input_tokens", "ai.usage.inputTokens"),
    ("input_tokens", "ai.usage.promptTokens"),
    ("input_tokens", "ai.usage.tokens"),
    ("output_tokens", "ai.usage.outputTokens"),
    ("output_tokens", "ai.usage.completionTokens"),
    ("total_tokens", "ai.usage.totalTokens"),
    ("cache_read_tokens", "ai.usage.cachedInputTokens"),
    ("cache_read_tokens", "ai.usage.inputTokenDetails.cacheReadTokens"),
    ("cache_creation_tokens", "ai.usage.inputTokenDetails.cacheWriteTokens"),
    ("reasoning_tokens", "ai.usage.reasoningTokens"),
    ("reasoning_tokens", "ai.usage.outputTokenDetails.reasoningTokens"),
)
_META: Final = "ai.telemetry.metadata."
_TEXT: Final = (
    ("request_model", "ai.model.id"),
    ("response_model", "ai.response.model"),
    ("user_id", _META + "userId"),
    ("user_id", _META + "user_id"),
    ("session_id", _META + "sessionId"),
    ("session_id", _META + "session_id"),
    ("conversation_id", _META + "conversationId"),
    ("conversation_id", _META + "conversation_id"),
    # The app's name for the function it traces (experimental_telemetry.functionId), on every span
    # of the call: what an SLI is grouped by when the app names no agent.
    ("agent_name", "ai.telemetry.functionId"),
    ("_input_raw", "ai.value"),  # embed / embedMany input
    ("_input_raw", "ai.values"),
)
_TOOL: Final = (
    ("tool_name", "ai.toolCall.name"),
    ("tool_call_id", "ai.toolCall.id"),
    ("tool_arguments", "ai.toolCall.args"),
    ("tool_arguments", "ai.toolCall.input"),
    ("tool_result", "ai.toolCall.result"),
    ("tool_result", "ai.toolCall.output"),
)


def operation_for(op_id: str) -> str:
    """ai.operationId -> operation (docs/columns.md).

    Provider calls (*.doGenerate / *.doStream) are `chat`; the outer ai.generateText /
    ai.streamText / ai.generateObject / ai.streamObject spans wrap a whole multi-step run
    (tool loop included), so they are `workflow`, not a second model call.
    """
    if op_id.endswith((".doGenerate", ".doStream")):
        return "chat"
    if op_id.startswith("ai.embed"):
        return "embeddings"
    if op_id == "ai.toolCall":
        return "execute_tool"
    if op_id.startswith(("ai.generate", "ai.stream")):
        return "workflow"
    return "other"


def extract(a: Attrs, f: Fields) -> None:
    op_id = a.get("ai.operationId")
    if isinstance(op_id, str) and op_id:
        put(f, "operation", operation_for(op_id))
    elif "ai.toolCall.name" in a:
        put(f, "operation", "execute_tool")
    v = first_text(a, ("ai.model.provider",))
    if v:
        put(f, "provider", normalize_provider(v))
    copy_text(a, f, _TEXT)
    copy_int(a, f, _TOKENS)
    _prompt(a, f)
    _response(a, f)
    reason = a.get("ai.response.finishReason")
    if isinstance(reason, str) and reason:
        put(f, "finish_reason", finish_reason(reason))
    ttft = to_float(a.get("ai.response.msToFirstChunk"))
    if ttft is None:
        ttft = to_float(a.get("ai.stream.msToFirstChunk"))
    put(f, "ttft_ms", ttft)
    if "ai.toolCall.name" in a or "ai.toolCall.id" in a:
        copy_text(a, f, _TOOL)


def _prompt(a: Attrs, f: Fields) -> None:
    if "_in" not in f:
        raw = a.get("ai.prompt.messages")
        if raw is not None:
            put(f, "_in", messages(raw))
    prompt = maybe_json(a.get("ai.prompt"))
    if isinstance(prompt, dict):
        # ai.prompt = {"system"?: str, "prompt"?: str | parts, "messages"?: [...]}
        system = prompt.get("system")
        if isinstance(system, str):
            put(f, "system_prompt", system)
        if "_in" not in f:
            msgs = prompt.get("messages")
            if isinstance(msgs, list):
                put(f, "_in", messages(msgs))
            elif prompt.get("prompt") is not None:
                put(f, "_in", [{"role": "user", "content": text_of(prompt.get("prompt"))}])
    elif isinstance(prompt, str) and prompt:
        put(f, "_input_raw", prompt)
    put(f, "system_prompt", first_text(a, ("ai.prompt.system",)))


def _response(a: Attrs, f: Fields) -> None:
    calls = _tool_calls(a.get("ai.response.toolCalls"))
    if calls:
        put(f, "_tool_calls", calls)
    text = a.get("ai.response.text")
    if "_out" not in f and (isinstance(text, str) or calls):
        msg: Message = {"role": "assistant", "content": text if isinstance(text, str) else ""}
        if calls:
            msg["tool_calls"] = calls
        put(f, "_out", [msg])
    put(f, "_output_raw", first_text(a, ("ai.response.object",)))


def _tool_calls(raw: object) -> list[ToolCall]:
    """v4 items: {toolCallType, toolCallId, toolName, args}; v5+: {type, toolCallId, toolName, input}."""
    parsed = maybe_json(raw)
    if not isinstance(parsed, list):
        return []
    calls: list[ToolCall] = []
    for c in parsed:
        if isinstance(c, dict) and c.get("toolName"):
            args = c.get("args") if c.get("args") is not None else c.get("input")
            calls.append(tool_call(c.get("toolCallId") or "", c["toolName"], "" if args is None else args))
    return calls
