"""`llm_call`, `tool_call`, `retrieval`, `agent_step`: each is a decorator (sync, async, generator and
async-generator functions) and a context manager (`with` and `async with`).

Span names, kinds and attributes follow the GenAI semantic conventions:
- inference: `{operation} {model}`, CLIENT
  https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/#inference
- tool: `execute_tool {name}`, INTERNAL
  https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/#execute-tool-span
- retrieval: `retrieval {data_source}`, CLIENT
  https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/#retrievals
- agent: `invoke_agent {name}`, INTERNAL (the agent runs in-process)
  https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-agent-spans/#invoke-agent-internal-span

While the SDK is disabled (or `init()` never ran) a decorated call reads one module attribute and
calls the function directly; the context managers yield a shared no-op helper. Exceptions are
recorded (exception event, status ERROR, error.type) and always re-raised.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from driftline.sdk import attributes as a
from driftline.sdk.llm_spans import AgentStep, LLMCall
from driftline.sdk.operation import Operation, Spec
from driftline.sdk.spans import Retrieval, ToolCall

__all__ = ["agent_step", "llm_call", "retrieval", "tool_call"]

Attrs = dict[str, AttributeValue]


def _attrs(pairs: tuple[tuple[str, Any], ...], extra: Mapping[str, AttributeValue] | None) -> Attrs:
    out: Attrs = {key: value for key, value in pairs if value is not None}
    out.update(extra or {})
    return out


def llm_call(
    model: str | None = None,
    provider: str | None = None,
    operation: str = a.OP_CHAT,
    *,
    conversation_id: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    top_p: float | None = None,
    stream: bool | None = None,
    server_address: str | None = None,
    server_port: int | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Operation[LLMCall]:
    """An inference span `{operation} {model}` (kind CLIENT); yields an `LLMCall`.

    As a decorator it records a `messages`/`prompt`/`input` argument as gen_ai.input.messages and
    the return value as output: a string, an OpenAI ChatCompletion or an Anthropic Message (then
    also response model, id, usage and finish reasons). Generator functions are streams: the
    first item sets gen_ai.response.time_to_first_chunk and string chunks are joined as output.
    `provider` is gen_ai.provider.name: openai, anthropic, aws.bedrock, gcp.gemini, ...
    """
    args = (model, provider, operation, conversation_id, temperature, max_tokens, top_p, stream)
    return Operation(LLMCall, _llm_spec, (*args, server_address, server_port, attributes))


def _llm_spec(args: tuple[Any, ...]) -> Spec[LLMCall]:
    model, provider, operation, conversation, temperature, max_tokens, top_p, stream, host, port, extra = args
    pairs = (
        (a.GEN_AI_OPERATION_NAME, operation),
        (a.GEN_AI_PROVIDER_NAME, provider),
        (a.GEN_AI_REQUEST_MODEL, model),
        (a.GEN_AI_CONVERSATION_ID, conversation),
        (a.GEN_AI_REQUEST_TEMPERATURE, temperature),
        (a.GEN_AI_REQUEST_MAX_TOKENS, max_tokens),
        (a.GEN_AI_REQUEST_TOP_P, top_p),
        (a.GEN_AI_REQUEST_STREAM, stream),
        (a.SERVER_ADDRESS, host),
        (a.SERVER_PORT, port),
    )
    name = f"{operation} {model}" if model else str(operation)
    return Spec(name, SpanKind.CLIENT, _attrs(pairs, extra))


def tool_call(
    name: str | None = None,
    call_id: str | None = None,
    arguments: object = None,
    *,
    description: str | None = None,
    tool_type: str | None = "function",
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Operation[ToolCall]:
    """A tool execution span `execute_tool {name}` (kind INTERNAL); yields a `ToolCall`.

    As a decorator the tool name defaults to the function's name, the call's arguments are
    recorded as gen_ai.tool.call.arguments and the return value as gen_ai.tool.call.result.
    """
    return Operation(ToolCall, _tool_spec, (name, call_id, arguments, description, tool_type, attributes))


def _tool_named(tool: str) -> tuple[str, Attrs]:
    return f"{a.OP_EXECUTE_TOOL} {tool}", {a.GEN_AI_TOOL_NAME: tool}


def _tool_spec(args: tuple[Any, ...]) -> Spec[ToolCall]:
    name, call_id, arguments, description, tool_type, extra = args
    pairs = (
        (a.GEN_AI_OPERATION_NAME, a.OP_EXECUTE_TOOL),
        (a.GEN_AI_TOOL_NAME, name),
        (a.GEN_AI_TOOL_CALL_ID, call_id),
        (a.GEN_AI_TOOL_DESCRIPTION, description),
        (a.GEN_AI_TOOL_TYPE, tool_type),
    )
    init = None if arguments is None else (lambda h: h.set_arguments(arguments))
    span_name = _tool_named(name)[0] if name else a.OP_EXECUTE_TOOL
    named_by_fn = None if name else _tool_named
    return Spec(span_name, SpanKind.INTERNAL, _attrs(pairs, extra), init, named_by_fn)


def retrieval(
    query: str | None = None,
    data_source: str | None = None,
    *,
    top_k: int | None = None,
    provider: str | None = None,
    model: str | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Operation[Retrieval]:
    """A retrieval span `retrieval {data_source}` (kind CLIENT); yields a `Retrieval`.

    As a decorator a `query`/`question` argument is recorded as gen_ai.retrieval.query.text and
    the returned documents as gen_ai.retrieval.documents (JSON [{"id", "score", "content"}]).
    """
    return Operation(Retrieval, _retrieval_spec, (query, data_source, top_k, provider, model, attributes))


def _retrieval_spec(args: tuple[Any, ...]) -> Spec[Retrieval]:
    query, data_source, top_k, provider, model, extra = args
    pairs = (
        (a.GEN_AI_OPERATION_NAME, a.OP_RETRIEVAL),
        (a.GEN_AI_DATA_SOURCE_ID, data_source),
        (a.GEN_AI_RETRIEVAL_TOP_K, top_k),
        (a.GEN_AI_PROVIDER_NAME, provider),
        (a.GEN_AI_REQUEST_MODEL, model),
    )
    init = None if query is None else (lambda h: h.set_query(query))
    name = f"{a.OP_RETRIEVAL} {data_source}" if data_source else a.OP_RETRIEVAL
    return Spec(name, SpanKind.CLIENT, _attrs(pairs, extra), init)


def agent_step(
    name: str | None = None,
    *,
    agent_id: str | None = None,
    description: str | None = None,
    provider: str | None = None,
    model: str | None = None,
    conversation_id: str | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Operation[AgentStep]:
    """An agent invocation span `invoke_agent {name}` (kind INTERNAL); yields an `AgentStep`.

    As a decorator the agent name defaults to the function's name; input and output are
    recorded like `llm_call`'s.
    """
    args = (name, agent_id, description, provider, model, conversation_id, attributes)
    return Operation(AgentStep, _agent_spec, args)


def _agent_named(agent: str) -> tuple[str, Attrs]:
    return f"{a.OP_INVOKE_AGENT} {agent}", {a.GEN_AI_AGENT_NAME: agent}


def _agent_spec(args: tuple[Any, ...]) -> Spec[AgentStep]:
    name, agent_id, description, provider, model, conversation_id, extra = args
    pairs = (
        (a.GEN_AI_OPERATION_NAME, a.OP_INVOKE_AGENT),
        (a.GEN_AI_AGENT_NAME, name),
        (a.GEN_AI_AGENT_ID, agent_id),
        (a.GEN_AI_AGENT_DESCRIPTION, description),
        (a.GEN_AI_PROVIDER_NAME, provider),
        (a.GEN_AI_REQUEST_MODEL, model),
        (a.GEN_AI_CONVERSATION_ID, conversation_id),
    )
    span_name = _agent_named(name)[0] if name else a.OP_INVOKE_AGENT
    named_by_fn = None if name else _agent_named
    return Spec(span_name, SpanKind.INTERNAL, _attrs(pairs, extra), None, named_by_fn)
