"""The normalized `spans` columns as data: per column, its sources in fallback order.

This is the declarative form of the fallback chains of docs/columns.md and of the convention
modules (collector/conventions/): one list, rendered to ClickHouse SQL by store/ingest_sql.py
(so the engine can parse and normalize OTLP itself) and to the generated part of docs/columns.md
(`render_docs`). tests/test_engine_ingest.py holds the plain-attribute chains here to the
convention modules' own tables, and tests/support/recorded.py checks every golden normalization
test's row against the engine's row for each column this spec renders.

Sources:
- `Attr(family, key, read)`: one span attribute, read only when the family is present (one of
  its marker attributes is on the span, as collector/conventions/__init__.py decides). `read`:
  "text" (the first non-empty text wins), "int" (a count: int, double or numeric text), or
  "op:<table>" / "provider" (the value folded onto a vocabulary, see OPERATION_TABLES).
- `Present(family, keys, value)`: a constant when one of `keys` is present (GenAI retrieval
  attributes make the operation `retrieval`).
- `JsonText(family, keys, member)`: a string member of the first of `keys` holding a JSON object.
- `Other(family, what)`: a source the engine does not read yet (messages, events, documents,
  Langfuse's JSON usage, ...). A column with one is not rendered to SQL; its text is for the docs.
`rendered(column)` tells which columns the SQL renders.

Messages (`SLOTS`): the input and output message lists, in the order the conventions fill them
(the first source giving a message wins), each source one of
- `MessageList(family, key, role)`: an attribute holding a JSON message list (or one message
  object); with `raw`, text that is not a JSON list or object is the slot's raw text instead,
- `Indexed(family, prefix, ...)`: flattened indexed attributes (`llm.input_messages.N.message.role`),
- `RawText(family, key)`: a plain text attribute, the slot's raw text (used when no message gives one),
- `Other` with keys or an event: read by the Python path only (its span is deferred); with
  `when="no_text"` only when no source before it gave the slot's text.
store/ingest_messages.py renders them, and the texts derived from them (docs/columns.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "COLUMNS",
    "DETAILS_EVENT",
    "FAMILIES",
    "FAMILY_NAMES",
    "FINISH_REASONS",
    "MESSAGE_EVENTS",
    "OPERATIONS",
    "OPERATION_TABLES",
    "PROVIDERS",
    "SLOTS",
    "SPAN_COST",
    "SYSTEM_INSTRUCTIONS",
    "UNRENDERED",
    "Attr",
    "Column",
    "Indexed",
    "JsonText",
    "MessageList",
    "Other",
    "Present",
    "RawText",
    "Sets",
    "SlotSource",
    "Source",
    "deferred_sources",
    "render_docs",
    "rendered",
]

# Finish reasons folded onto the GenAI semconv set, by the Python path (collector/conventions/_common.py
# finish_reason) and by the engine's query alike.
FINISH_REASONS: Final[dict[str, str]] = {
    "stop": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "complete": "stop",
    "eos": "stop",
    "finish_reason_stop": "stop",
    "length": "length",
    "max_tokens": "length",
    "max-tokens": "length",
    "model_length": "length",
    "tool_calls": "tool_call",
    "tool_call": "tool_call",
    "tool-calls": "tool_call",
    "tool_use": "tool_call",
    "function_call": "tool_call",
    "content_filter": "content_filter",
    "content-filter": "content_filter",
    "safety": "content_filter",
    "recitation": "content_filter",
    "blocklist": "content_filter",
    "prohibited_content": "content_filter",
    "refusal": "content_filter",
    "error": "error",
}

# Convention families in priority order (collector/conventions/__init__.py FAMILIES) and the
# marker attributes that make each one run. The convention modules read their MARKERS from here.
FAMILIES: Final[dict[str, tuple[str, ...]]] = {
    "GenAI": (
        "gen_ai.operation.name",
        "gen_ai.provider.name",
        "gen_ai.system",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.tool.name",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.prompt_tokens",
        "gen_ai.input.messages",
        "gen_ai.agent.name",
        "gen_ai.conversation.id",
        "gen_ai.retrieval.documents",
        "gen_ai.retrieval.query.text",
    ),
    "OI": (
        "openinference.span.kind",
        "llm.model_name",
        "llm.input_messages.0.message.role",
        "retrieval.documents.0.document.content",
        "retrieval.documents.0.document.id",
        "reranker.output_documents.0.document.content",
        "reranker.output_documents.0.document.id",
    ),
    "TL": (
        "traceloop.span.kind",
        "traceloop.entity.name",
        "traceloop.workflow.name",
        "llm.request.type",
        "llm.usage.total_tokens",
        "gen_ai.prompt.0.role",
        "gen_ai.prompt.0.content",
        "gen_ai.completion.0.role",
        "gen_ai.completion.0.content",
        "traceloop.association.properties.user_id",
        "traceloop.association.properties.session_id",
    ),
    "AI": ("ai.operationId", "ai.model.id", "ai.toolCall.name"),
    "LF": (
        "langfuse.observation.type",
        "langfuse.trace.name",
        "langfuse.observation.model.name",
        "langfuse.user.id",
        "langfuse.session.id",
    ),
    "LFI": (
        "operation.cost",
        "logfire.span_type",
        "agent_name",
        "final_result",
        "tool_arguments",
        "events",
        "all_messages_events",
        "pydantic_ai.all_messages",
    ),
    "OL": ("gen_ai.usage.cost", "gen_ai.server.time_to_first_token", "llm.time_to_first_token"),
}
FAMILY_NAMES: Final[dict[str, str]] = {
    "GenAI": "OpenTelemetry GenAI semantic conventions",
    "OI": "OpenInference",
    "TL": "OpenLLMetry / Traceloop",
    "AI": "Vercel AI SDK",
    "LF": "Langfuse",
    "LFI": "Logfire / pydantic-ai",
    "OL": "OpenLIT",
    "EV": "span events",
    "ALL": "any span (conventions/__init__.py: generic ids)",
}

# Vocabularies a source value is folded onto (docs/columns.md "Operation mapping"). The collector
# folds with these same tables: collector/conventions/providers.py and the families' kind tables.
OPERATIONS: Final = (
    "chat",
    "text_completion",
    "embeddings",
    "execute_tool",
    "invoke_agent",
    "create_agent",
    "retrieval",
    "rerank",
    "workflow",
    "guardrail",
    "other",
)
OPERATION_TABLES: Final[dict[str, tuple[dict[str, str], str, str]]] = {
    # name: (value -> operation, how the value is cleaned first, what an unknown value becomes)
    "genai": (
        {
            **{op: op for op in OPERATIONS},
            "generate_content": "chat",
            "completion": "text_completion",
            "completions": "text_completion",
            "embedding": "embeddings",
            "embed": "embeddings",
            "invoke_workflow": "workflow",
            "chain": "workflow",
            "agent": "invoke_agent",
            "tool": "execute_tool",
            "retrieve": "retrieval",
            "retriever": "retrieval",
            "reranker": "rerank",
        },
        "strip_lower",
        "other",
    ),
    "openinference": (
        {
            "LLM": "chat",
            "EMBEDDING": "embeddings",
            "TOOL": "execute_tool",
            "AGENT": "invoke_agent",
            "RETRIEVER": "retrieval",
            "RERANKER": "rerank",
            "CHAIN": "workflow",
            "GUARDRAIL": "guardrail",
        },
        "upper",
        "other",
    ),
    "traceloop": (
        {"workflow": "workflow", "task": "workflow", "agent": "invoke_agent", "tool": "execute_tool"},
        "none",
        "other",
    ),
    "langfuse": (
        {
            "generation": "chat",
            "embedding": "embeddings",
            "tool": "execute_tool",
            "agent": "invoke_agent",
            "retriever": "retrieval",
            "chain": "workflow",
            "guardrail": "guardrail",
            "span": "other",
            "event": "other",
            "evaluator": "other",
        },
        "lower",
        "other",
    ),
}
PROVIDERS: Final[dict[str, str]] = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "azure_openai": "azure.ai.openai",
    "azure-openai": "azure.ai.openai",
    "azure.ai.openai": "azure.ai.openai",
    "az.ai.openai": "azure.ai.openai",
    "azure.ai.inference": "azure.ai.inference",
    "az.ai.inference": "azure.ai.inference",
    "azure_ai_inference": "azure.ai.inference",
    "anthropic": "anthropic",
    "aws": "aws.bedrock",
    "bedrock": "aws.bedrock",
    "aws.bedrock": "aws.bedrock",
    "aws_bedrock": "aws.bedrock",
    "amazon-bedrock": "aws.bedrock",
    "amazon_bedrock": "aws.bedrock",
    "vertex_ai": "gcp.vertex_ai",
    "vertexai": "gcp.vertex_ai",
    "vertex": "gcp.vertex_ai",
    "google-vertex": "gcp.vertex_ai",
    "google.vertex": "gcp.vertex_ai",
    "gcp.vertex_ai": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
    "gcp.gemini": "gcp.gemini",
    "google": "gcp.gemini",
    "google.generative-ai": "gcp.gemini",
    "google-generative-ai": "gcp.gemini",
    "google_genai": "gcp.gemini",
    "google-genai": "gcp.gemini",
    "google-gla": "gcp.gemini",
    "gcp.gen_ai": "gcp.gen_ai",
    "cohere": "cohere",
    "ibm.watsonx.ai": "ibm.watsonx.ai",
    "watsonx": "ibm.watsonx.ai",
    "perplexity": "perplexity",
    "xai": "x_ai",
    "x_ai": "x_ai",
    "x-ai": "x_ai",
    "deepseek": "deepseek",
    "groq": "groq",
    "mistral": "mistral_ai",
    "mistralai": "mistral_ai",
    "mistral_ai": "mistral_ai",
}


@dataclass(frozen=True)
class Attr:
    family: str
    key: str
    read: str = "text"


@dataclass(frozen=True)
class Present:
    family: str
    keys: tuple[str, ...]
    value: str
    unless: str = ""  # ... and this attribute is absent or empty


@dataclass(frozen=True)
class JsonText:
    family: str
    keys: tuple[str, ...]
    member: str


@dataclass(frozen=True)
class Other:
    """A source the engine does not read. With `keys` (attributes) or `event` (an event name) it
    is deferred: the column is rendered, and a span carrying the source goes through the Python
    path instead. Without either, the column is not rendered yet."""

    family: str
    what: str
    keys: tuple[str, ...] = ()
    event: str = ""
    contains: str = ""  # with keys: deferred only when one of them holds this text
    when: str = ""  # "no_text": (a message source) deferred only when no source before it gave the text


Source = Attr | Present | JsonText | Other


@dataclass(frozen=True)
class MessageList:
    """An attribute holding a JSON list of messages (or one message object): conventions/messages.py."""

    family: str
    key: str
    role: str  # the role of a message that names none
    raw: bool = False  # text that is not a JSON list / object: the slot's raw text (genai.py, gen_ai.prompt)


@dataclass(frozen=True)
class Indexed:
    """Messages flattened into indexed attributes `<prefix>N.<role>` / `<prefix>N.<content>`, read
    from index 0 until an index holds neither. `deferred`: fields under an index that the engine
    does not read (tool calls, content parts); a span carrying one goes through the Python path."""

    family: str
    prefix: str
    role: str
    content: str
    default_role: str
    deferred: tuple[str, ...]
    role_only_kept: bool  # a role without content is a message (Traceloop) or skipped (OpenInference)
    json_content: bool = False  # content may be a JSON part list (Traceloop): such a span is deferred


@dataclass(frozen=True)
class RawText:
    """A plain text attribute: the slot's raw text (input_text / output_text without a message)."""

    family: str
    key: str


SlotSource = MessageList | Indexed | RawText | Other


@dataclass(frozen=True)
class Column:
    name: str
    sources: tuple[Source, ...]
    # After the chain: "other_if_recognised" (a span some family recognised gets 'other'),
    # "tokens" (the token accounting rule of store/columns.py), or "".
    then: str = ""


def _int(family: str, *keys: str) -> tuple[Attr, ...]:
    return tuple(Attr(family, k, "int") for k in keys)


def _text(family: str, *keys: str) -> tuple[Attr, ...]:
    return tuple(Attr(family, k) for k in keys)


_TLP: Final = "traceloop.association.properties."
_AIM: Final = "ai.telemetry.metadata."
DETAILS_EVENT: Final = "gen_ai.client.inference.operation.details"
_DETAILS: Final = Other("EV", f"the `{DETAILS_EVENT}` event, read like GenAI attributes", event=DETAILS_EVENT)
_LF_USAGE_KEYS: Final = ("langfuse.observation.usage_details",)
_OI_PARAMS: Final = ("llm.invocation_parameters", "embedding.invocation_parameters")
# LlamaIndex's invocation parameters are its LLMMetadata ({"model_name", "context_window", ...}):
# there `llm.model_name` is the configured (request) model, not the response model.
_LLAMAINDEX: Final = Other(
    "OI",
    'LlamaIndex: parameters holding `"context_window"` make `"model_name"` in them, else `llm.model_name`, '
    "the request model (and no response model)",
    keys=_OI_PARAMS,
    contains='"context_window"',
)
_LF_USAGE: Final = "Langfuse `langfuse.observation.usage_details` (JSON)"

COLUMNS: Final[tuple[Column, ...]] = (
    Column(
        "operation",
        (
            Attr("GenAI", "gen_ai.operation.name", "op:genai"),
            Present("GenAI", ("gen_ai.retrieval.documents", "gen_ai.retrieval.query.text"), "retrieval"),
            Attr("OI", "openinference.span.kind", "op:openinference"),
            Present(
                "OI",
                ("retrieval.documents.0.document.content", "retrieval.documents.0.document.id"),
                "retrieval",
                unless="openinference.span.kind",
            ),
            Present(
                "OI",
                ("reranker.output_documents.0.document.content", "reranker.output_documents.0.document.id"),
                "rerank",
                unless="openinference.span.kind",
            ),
            Attr("TL", "llm.request.type", "op:genai"),
            Attr("TL", "traceloop.span.kind", "op:traceloop"),
            Attr("AI", "ai.operationId", "op:vercel"),
            Present("AI", ("ai.toolCall.name",), "execute_tool"),
            Attr("LF", "langfuse.observation.type", "op:langfuse"),
            _DETAILS,
        ),
        then="other_if_recognised",
    ),
    Column(
        "provider",
        (
            Attr("GenAI", "gen_ai.provider.name", "provider"),
            Attr("GenAI", "gen_ai.system", "provider_present"),
            Attr("OI", "llm.provider", "provider"),
            Attr("OI", "llm.system", "provider"),
            Attr("AI", "ai.model.provider", "provider"),
            _DETAILS,
        ),
    ),
    Column(
        "request_model",
        (
            *_text("GenAI", "gen_ai.request.model"),
            *_text("OI", "llm.request.model_name"),
            JsonText("OI", _OI_PARAMS, "model"),
            _LLAMAINDEX,
            *_text("AI", "ai.model.id"),
            *_text("LF", "langfuse.observation.model.name"),
            _DETAILS,
        ),
    ),
    Column(
        "response_model",
        (
            *_text("GenAI", "gen_ai.response.model"),
            *_text("OI", "llm.response.model_name"),
            Attr("OI", "llm.model_name", "model_name"),
            _LLAMAINDEX,
            *_text("OI", "embedding.model_name", "reranker.model_name"),
            *_text("AI", "ai.response.model"),
            _DETAILS,
        ),
    ),
    Column(
        "input_tokens",
        (
            *_int("GenAI", "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"),
            *_int("OI", "llm.token_count.prompt"),
            *_int("AI", "ai.usage.inputTokens", "ai.usage.promptTokens", "ai.usage.tokens"),
            Other(
                "LF",
                _LF_USAGE + ": `input` + the cache parts, or `prompt_tokens` / `input_tokens`",
                keys=_LF_USAGE_KEYS,
            ),
            _DETAILS,
        ),
        then="tokens",
    ),
    Column(
        "output_tokens",
        (
            *_int("GenAI", "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"),
            *_int("OI", "llm.token_count.completion"),
            *_int("AI", "ai.usage.outputTokens", "ai.usage.completionTokens"),
            Other(
                "LF",
                _LF_USAGE + ": `output` + reasoning, or `completion_tokens` / `output_tokens`",
                keys=_LF_USAGE_KEYS,
            ),
            _DETAILS,
        ),
        then="tokens",
    ),
    Column(
        "total_tokens",
        (
            *_int("GenAI", "gen_ai.usage.total_tokens"),
            *_int("OI", "llm.token_count.total"),
            *_int("TL", "llm.usage.total_tokens"),
            *_int("AI", "ai.usage.totalTokens"),
            Other("LF", _LF_USAGE + ": `total` / `total_tokens`", keys=_LF_USAGE_KEYS),
            _DETAILS,
        ),
        then="tokens",
    ),
    Column(
        "cache_read_tokens",
        (
            *_int(
                "GenAI",
                "gen_ai.usage.cache_read.input_tokens",
                "gen_ai.usage.cache_read_input_tokens",
                "gen_ai.usage.input_tokens.cached",
                "gen_ai.usage.cached_input_tokens",
            ),
            *_int("OI", "llm.token_count.prompt_details.cache_read", "llm.token_count.prompt_details.cache_input"),
            *_int("AI", "ai.usage.cachedInputTokens", "ai.usage.inputTokenDetails.cacheReadTokens"),
            Other(
                "LF",
                _LF_USAGE
                + ": `input_cached_tokens` / `input_cache_read` / `cache_read_input_tokens` / `cached_tokens`",
                keys=_LF_USAGE_KEYS,
            ),
            _DETAILS,
        ),
    ),
    Column(
        "cache_creation_tokens",
        (
            *_int(
                "GenAI",
                "gen_ai.usage.cache_creation.input_tokens",
                "gen_ai.usage.cache_write.input_tokens",
                "gen_ai.usage.cache_creation_input_tokens",
                "gen_ai.usage.input_tokens.cache_write",
            ),
            *_int("OI", "llm.token_count.prompt_details.cache_write"),
            *_int("AI", "ai.usage.inputTokenDetails.cacheWriteTokens"),
            Other(
                "LF",
                _LF_USAGE + ": `input_cache_creation` / `input_cache_write` / `cache_creation_input_tokens`",
                keys=_LF_USAGE_KEYS,
            ),
            _DETAILS,
        ),
    ),
    Column(
        "reasoning_tokens",
        (
            *_int(
                "GenAI",
                "gen_ai.usage.reasoning.output_tokens",
                "gen_ai.usage.reasoning_tokens",
                "gen_ai.usage.output_tokens.reasoning",
            ),
            *_int("OI", "llm.token_count.completion_details.reasoning"),
            *_int("TL", "llm.usage.reasoning_tokens"),
            *_int("AI", "ai.usage.reasoningTokens", "ai.usage.outputTokenDetails.reasoningTokens"),
            Other(
                "LF",
                _LF_USAGE + ": `output_reasoning_tokens` / `output_reasoning` / `reasoning_tokens`",
                keys=_LF_USAGE_KEYS,
            ),
            _DETAILS,
        ),
    ),
    Column(
        "user_id",
        (
            *_text("OI", "user.id"),
            *_text("TL", _TLP + "user_id", _TLP + "userId"),
            *_text("AI", _AIM + "userId", _AIM + "user_id"),
            *_text("LF", "user.id", "langfuse.user.id"),
            *_text("ALL", "user.id", "enduser.id"),
        ),
    ),
    Column(
        "session_id",
        (
            *_text("OI", "session.id"),
            *_text("TL", _TLP + "session_id", _TLP + "sessionId", _TLP + "thread_id"),
            *_text("AI", _AIM + "sessionId", _AIM + "session_id"),
            *_text("LF", "session.id", "langfuse.session.id"),
            *_text("ALL", "session.id"),
        ),
    ),
    Column(
        "conversation_id",
        (
            *_text("GenAI", "gen_ai.conversation.id"),
            *_text("TL", _TLP + "conversation_id", _TLP + "conversationId"),
            *_text("AI", _AIM + "conversationId", _AIM + "conversation_id"),
            _DETAILS,
        ),
    ),
    # conventions/_common.finish_reason folds each; the first family giving one wins; else the
    # last GenAI output message's `finish_reason` (genai._content, derive.py `_finish_fallback`).
    # Its other sources (Traceloop's indexed completions, span events) are UNRENDERED's: deferred.
    Column(
        "finish_reason",
        (
            Attr("GenAI", "gen_ai.response.finish_reasons", "finish_list"),
            Attr("OI", "llm.finish_reason", "finish"),
            Attr("AI", "ai.response.finishReason", "finish"),
        ),
        then="finish_fallback",
    ),
)

_OI_IN: Final = "llm.input_messages."
_OI_EMBED: Final = "embedding.embeddings.0.embedding.text"
_OI_OUT: Final = "llm.output_messages."
_OI_DEFERRED: Final = ("message.tool_calls.0.tool_call.function.name", "message.contents.0.message_content.type")
_TL_DEFERRED: Final = ("tool_calls.0.name", "tool_call_id")
_OI_MSG: Final = ("message.role", "message.content")
_OI_ONLY: Final = (*_OI_DEFERRED, "message.tool_call_id")
_LFI_IN: Final = ("pydantic_ai.all_messages", "events", "all_messages_events")
_VERCEL_IN: Final = ("ai.prompt", "ai.prompt.messages", "ai.value", "ai.values")
_VERCEL_OUT: Final = ("ai.response.text", "ai.response.toolCalls", "ai.response.object")
# Per-message events (events.py) and OpenLIT's whole-content events: read by the Python path.
MESSAGE_EVENTS: Final = (
    "gen_ai.system.message",
    "gen_ai.user.message",
    "gen_ai.assistant.message",
    "gen_ai.tool.message",
    "gen_ai.choice",
    "gen_ai.content.prompt",
    "gen_ai.content.completion",
)
SLOTS: Final[dict[str, tuple[SlotSource, ...]]] = {
    "in": (
        MessageList("GenAI", "gen_ai.input.messages", "user"),
        MessageList("GenAI", "gen_ai.prompt", "user", raw=True),
        RawText("GenAI", "gen_ai.retrieval.query.text"),
        Indexed(
            "OI", _OI_IN, "message.role", "message.content", "user", (*_OI_DEFERRED, "message.tool_call_id"), False
        ),
        Other(
            "OI",
            "embedding inputs `embedding.embeddings.N.embedding.text`",
            keys=("embedding.embeddings.0.embedding.text",),
        ),
        Other("OI", "`input.value` (tool arguments, framework objects, text)", keys=("input.value",), when="no_text"),
        Indexed("TL", "gen_ai.prompt.", "role", "content", "user", _TL_DEFERRED, True, json_content=True),
        Other("TL", "`traceloop.entity.input`", keys=("traceloop.entity.input",), when="no_text"),
        Other("AI", "Vercel AI SDK prompt attributes", keys=(*_VERCEL_IN, "ai.prompt.system")),
        Other("LF", "Langfuse input", keys=("langfuse.observation.input", "langfuse.trace.input")),
        Other(
            "LFI", "pydantic-ai messages and events", keys=("pydantic_ai.all_messages", "events", "all_messages_events")
        ),
        *(Other("EV", f"the `{e}` event", event=e) for e in MESSAGE_EVENTS),
    ),
    "out": (
        MessageList("GenAI", "gen_ai.output.messages", "assistant"),
        MessageList("GenAI", "gen_ai.completion", "assistant", raw=True),
        Indexed(
            "OI",
            _OI_OUT,
            "message.role",
            "message.content",
            "assistant",
            (*_OI_DEFERRED, "message.tool_call_id"),
            False,
        ),
        Other("OI", "`output.value` (tool results, framework objects, text)", keys=("output.value",), when="no_text"),
        Indexed("TL", "gen_ai.completion.", "role", "content", "assistant", _TL_DEFERRED, True, json_content=True),
        Other("TL", "`traceloop.entity.output`", keys=("traceloop.entity.output",), when="no_text"),
        Other("AI", "Vercel AI SDK response attributes", keys=_VERCEL_OUT),
        Other("LF", "Langfuse output", keys=("langfuse.observation.output", "langfuse.trace.output")),
        Other("LFI", "pydantic-ai final result", keys=("final_result",)),
        *(Other("EV", f"the `{e}` event", event=e) for e in MESSAGE_EVENTS),
    ),
}
# system_prompt: this attribute (plain text; a JSON part list is left to the Python path), else the
# system / developer messages of the input slot.
SYSTEM_INSTRUCTIONS: Final = Attr("GenAI", "gen_ai.system_instructions")

# A cost the span reports itself wins over the price table (normalize.py `_cost`): read by the Python path.
SPAN_COST: Final = (
    Other("OI", "`llm.cost.total` / `llm.cost.prompt`", keys=("llm.cost.total", "llm.cost.prompt")),
    Other("OL", "`gen_ai.usage.cost`", keys=("gen_ai.usage.cost",)),
    Other("LFI", "`operation.cost`", keys=("operation.cost",)),
    Other("LF", "`langfuse.observation.cost_details`", keys=("langfuse.observation.cost_details",)),
)


@dataclass(frozen=True)
class Sets:
    """A source of a `spans` column the engine does not render (UNRENDERED): a span carrying it
    is deferred, so an engine row holds that column's default exactly when the Python path's does.
    Carried when one of `keys` is on the span (with `contains`: one of them holding that text, in
    any case), or a key starting with `prefix` and ending with `suffix`, while `family` is present
    ("" = always); `event`: any span event; `operation`: the rendered operation is this one."""

    column: str
    family: str
    what: str
    keys: tuple[str, ...] = ()
    contains: str = ""
    prefix: str = ""
    suffix: str = ""
    event: bool = False
    operation: str = ""


def _sets(columns: tuple[str, ...], family: str, what: str, **how: object) -> tuple[Sets, ...]:
    return tuple(Sets(c, family, what, **how) for c in columns)  # type: ignore[arg-type]


_TOOL_COLUMNS: Final = ("tool_name", "tool_call_id", "tool_arguments", "tool_result", "tool_error")
# Where the convention modules (and derive.py's rules over their fields) set the columns the SQL
# does not render. A conservative reading: a source here may set nothing for a given span (the
# span is deferred all the same); every way the Python path sets one of these columns is here.
# tests/support/engine_check.py holds every golden span the engine does not defer to it.
UNRENDERED: Final[tuple[Sets, ...]] = (
    # events.py reads span events (time to first chunk, finish reasons, exceptions), normalize.py stores them
    *_sets(("events", "ttft_ms", "finish_reason", "error_type", "tool_error"), "", "any span event", event=True),
    Sets(
        "finish_reason",
        "TL",
        "`gen_ai.completion.N.finish_reason`",
        prefix="gen_ai.completion.",
        suffix="finish_reason",
    ),
    Sets("error_type", "GenAI", "`error.type`", keys=("error.type",)),
    Sets("ttft_ms", "GenAI", "`gen_ai.response.time_to_first_chunk`", keys=("gen_ai.response.time_to_first_chunk",)),
    Sets(
        "ttft_ms",
        "OL",
        "OpenLIT's time to first token",
        keys=("gen_ai.server.time_to_first_token", "llm.time_to_first_token"),
    ),
    Sets(
        "ttft_ms",
        "AI",
        "Vercel's ms to first chunk",
        keys=("ai.response.msToFirstChunk", "ai.stream.msToFirstChunk"),
    ),
    Sets(
        "ttft_ms",
        "LF",
        "`langfuse.observation.completion_start_time`",
        keys=("langfuse.observation.completion_start_time",),
    ),
    Sets("agent_name", "GenAI", "`gen_ai.agent.name`", keys=("gen_ai.agent.name",)),
    Sets("agent_name", "OI", "`agent.name`", keys=("agent.name",)),
    Sets("agent_name", "OI", "an AGENT span's name", keys=("openinference.span.kind",), contains="agent"),
    Sets("agent_name", "TL", "an agent span's name", keys=("traceloop.span.kind",), contains="agent"),
    Sets("agent_name", "LF", "an agent observation's name", keys=("langfuse.observation.type",), contains="agent"),
    Sets("agent_name", "LFI", "`agent_name`", keys=("agent_name",)),
    *_sets(_TOOL_COLUMNS, "", "an `execute_tool` span (derive.py: its error)", operation="execute_tool"),
    *_sets(_TOOL_COLUMNS, "GenAI", "`gen_ai.tool.*`", keys=("gen_ai.tool.name", "gen_ai.tool.call.id")),
    *_sets(_TOOL_COLUMNS, "OI", "a TOOL span", keys=("openinference.span.kind",), contains="tool"),
    *_sets(_TOOL_COLUMNS, "TL", "a tool span", keys=("traceloop.span.kind",), contains="tool"),
    *_sets(_TOOL_COLUMNS, "LF", "a tool observation", keys=("langfuse.observation.type",), contains="tool"),
    *_sets(_TOOL_COLUMNS, "LFI", "`tool_arguments` / `tool_response`", keys=("tool_arguments", "tool_response")),
    *_sets(_TOOL_COLUMNS, "AI", "`ai.toolCall.*`", keys=("ai.toolCall.name", "ai.toolCall.id")),
    Sets("retrieved_documents", "GenAI", "`gen_ai.retrieval.documents`", keys=("gen_ai.retrieval.documents",)),
    Sets("retrieved_documents", "OI", "`retrieval.documents.N.*`", prefix="retrieval.documents."),
    Sets("retrieved_documents", "OI", "`reranker.output_documents.N.*`", prefix="reranker.output_documents."),
)

_BY_NAME: Final = {c.name: c for c in COLUMNS}


def rendered(column: Column) -> bool:
    """Whether the SQL renderer reads (or defers) every source of `column`."""
    return not any(isinstance(s, Other) and not (s.keys or s.event) for s in column.sources)


def deferred_sources() -> list[Other]:
    """The deferred sources of every column, once each."""
    out: dict[tuple[str, tuple[str, ...], str, str], Other] = {}
    for s in (*(s for c in COLUMNS for s in c.sources), *SPAN_COST):
        if isinstance(s, Other) and (s.keys or s.event):
            out.setdefault((s.family, s.keys, s.event, s.contains), s)
    return list(out.values())


def _source_doc(s: Source) -> str:
    if isinstance(s, Attr):
        how = {
            "int": " (count)",
            "provider": " (folded)",
            "provider_present": " (folded, even if empty)",
            "model_name": "",
            "text": "",
        }
        how_s = how.get(s.read, f" ({s.read[3:]} mapping)")
        return f"{s.family} `{s.key}`{how_s}"
    if isinstance(s, Present):
        unless = f" and `{s.unless}` is not" if s.unless else ""
        return f"{s.family} `{s.value}` when " + " / ".join(f"`{k}`" for k in s.keys) + f" is present{unless}"
    if isinstance(s, JsonText):
        return f'{s.family} `"{s.member}"` in ' + " / ".join(f"`{k}`" for k in s.keys)
    deferred = " (spans carrying it: Python path)" if s.keys or s.event else ""
    return f"{s.family} {s.what}{deferred}"


def render_docs() -> str:
    """The generated table of docs/columns.md: each column's sources in order, and whether the
    engine renders it (docs/columns.md says where the table starts and ends)."""
    lines = ["| column | sources in order | engine SQL |", "|---|---|---|"]
    for c in COLUMNS:
        chain = " → ".join(_source_doc(s) for s in c.sources)
        if c.then == "tokens":
            chain += "; then the token accounting rule"
        elif c.then == "finish_fallback":
            chain += " (folded) → GenAI the last `gen_ai.output.messages` item's `finish_reason` (folded)"
        elif c.then == "other_if_recognised":
            chain += " → `other` on a recognised span"
        chain += "".join(f" → {u.family or 'any'} {u.what} (Python path)" for u in UNRENDERED if u.column == c.name)
        lines.append(f"| `{c.name}` | {chain} | {'yes' if rendered(c) else 'not yet'} |")
    for slot, column in (("in", "input_messages"), ("out", "output_messages")):
        chain = " → ".join(_slot_doc(s) for s in SLOTS[slot])
        lines.append(f"| `{column}` (and the text derived from it) | {chain} | yes |")
    for name in dict.fromkeys(u.column for u in UNRENDERED if u.column not in _BY_NAME):
        chain = " / ".join(f"{u.family or 'any'} {u.what}" for u in UNRENDERED if u.column == name)
        lines.append(f"| `{name}` | {chain} (spans carrying one: Python path) | deferred |")
    return "\n".join(lines) + "\n"


def _slot_doc(s: SlotSource) -> str:
    if isinstance(s, MessageList):
        raw = ", else its text as the raw text" if s.raw else ""
        return f"{s.family} `{s.key}` (JSON messages, default role {s.role}{raw})"
    if isinstance(s, Indexed):
        return f"{s.family} `{s.prefix}N.{s.role}` / `{s.prefix}N.{s.content}` (indexed)"
    if isinstance(s, RawText):
        return f"{s.family} `{s.key}` (raw text)"
    when = " when no earlier source gave the text" if s.when else ""
    return f"{s.family} {s.what} (spans carrying it{when}: Python path)"
