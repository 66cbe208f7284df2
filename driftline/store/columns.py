"""The columns of the `spans` table: one list that the DDL, the Arrow writer and the
normalizer all read, so they cannot drift apart.

Each entry is (name, ClickHouse type, Arrow type). The normalizer returns a dict keyed by
these names (every name except the ones in `PIPELINE_COLUMNS`, which the pipeline adds).
Missing keys are written as the column's empty value (NULL for Nullable columns).

Token accounting (one rule for every convention):
- `input_tokens` counts every prompt token, cached ones included (OpenAI's `prompt_tokens`).
  Where a convention reports cached tokens separately (Anthropic's `input_tokens` excludes
  them), the normalizer adds them back.
- `cache_read_tokens` / `cache_creation_tokens` are the parts of `input_tokens` read from /
  written to the provider's prompt cache.
- `output_tokens` counts every generated token, reasoning ones included;
  `reasoning_tokens` is the part of `output_tokens` spent on reasoning.
"""

from __future__ import annotations

from typing import Any, Final

import orjson
import pyarrow as pa

__all__ = [
    "ARROW_SCHEMA",
    "INPUT_TEXT_EXPR",
    "NORMALIZED_COLUMNS",
    "OUTPUT_TEXT_EXPR",
    "PIPELINE_COLUMNS",
    "SPAN_COLUMNS",
    "SPAN_READ_COLUMNS",
    "SPAN_STORED_READ_COLUMNS",
    "TEXT_FALLBACKS",
    "column_defaults",
    "last_message_text",
    "with_texts",
]

_STR = pa.string()
_I64 = pa.int64()
_F64 = pa.float64()
_TS = pa.timestamp("ns", tz="UTC")
_MAP = pa.map_(pa.string(), pa.string())


def _last_message_text(column: str, roles: str) -> str:
    """SQL for collector/conventions/derive.py `_last_plain` on a stored JSON message list: the last
    message in `roles` whose content is a non-empty string. The content's type is checked apart:
    JSONExtractString renders a number, list or object as text (ClickHouse 24 and later), which
    would pick a message `_last_plain` skips."""
    return (
        f"JSONExtractString(arrayLast(m -> JSONExtractString(m, 'role') IN ({roles}) "
        "AND JSONType(m, 'content') = 'String' "
        f"AND JSONExtractString(m, 'content') != '', JSONExtractArrayRaw({column})), 'content')"
    )


INPUT_TEXT_EXPR: Final = (
    "if(input_text_fallback != '', input_text_fallback, " + _last_message_text("input_messages", "'user'") + ")"
)
OUTPUT_TEXT_EXPR: Final = (
    "if(output_text_fallback != '', output_text_fallback, "
    + _last_message_text("output_messages", "'assistant', 'model'")
    + ")"
)

# (name, ClickHouse type, Arrow type); Arrow type None: an ALIAS column, computed when read.
SPAN_COLUMNS: Final[list[tuple[str, str, pa.DataType | None]]] = [
    ("tenant", "LowCardinality(String)", _STR),
    ("trace_id", "String", _STR),  # 32 lowercase hex chars
    ("span_id", "String", _STR),  # 16 lowercase hex chars
    ("parent_span_id", "String", _STR),  # '' for a root span
    ("start_time", "DateTime64(9, 'UTC')", _TS),
    ("end_time", "DateTime64(9, 'UTC')", _TS),
    ("duration_ms", "Float64", _F64),
    ("name", "String", _STR),
    ("kind", "LowCardinality(String)", _STR),  # internal, server, client, producer, consumer
    ("status_code", "LowCardinality(String)", _STR),  # unset, ok, error
    ("status_message", "String CODEC(ZSTD(3))", _STR),
    ("service", "LowCardinality(String)", _STR),
    ("release", "LowCardinality(String)", _STR),
    ("environment", "LowCardinality(String)", _STR),
    ("scope_name", "LowCardinality(String)", _STR),
    # LLM columns, filled by collector.normalize
    ("operation", "LowCardinality(String)", _STR),
    ("provider", "LowCardinality(String)", _STR),
    ("request_model", "LowCardinality(String)", _STR),
    ("response_model", "LowCardinality(String)", _STR),
    ("input_tokens", "Nullable(Int64)", _I64),
    ("output_tokens", "Nullable(Int64)", _I64),
    ("total_tokens", "Nullable(Int64)", _I64),
    ("cache_read_tokens", "Nullable(Int64)", _I64),
    ("cache_creation_tokens", "Nullable(Int64)", _I64),
    ("reasoning_tokens", "Nullable(Int64)", _I64),
    ("cost_usd", "Nullable(Float64)", _F64),
    ("cost_source", "LowCardinality(String)", _STR),  # span, price_table, override, '' (unknown)
    ("input_messages", "String CODEC(ZSTD(3))", _STR),  # JSON [{"role":..,"content":..}]
    ("output_messages", "String CODEC(ZSTD(3))", _STR),  # JSON [{"role":..,"content":..}]
    # input_text: the last user message / input.value as text; output_text: the assistant's answer.
    # Stored only when the messages above do not hold them verbatim (the fallback columns); the
    # ALIAS columns read them back either way, so message text is not stored twice.
    ("input_text_fallback", "String CODEC(ZSTD(3))", _STR),
    ("output_text_fallback", "String CODEC(ZSTD(3))", _STR),
    ("input_text", "String ALIAS " + INPUT_TEXT_EXPR, None),
    ("output_text", "String ALIAS " + OUTPUT_TEXT_EXPR, None),
    ("system_prompt", "String CODEC(ZSTD(3))", _STR),
    ("tool_calls", "String CODEC(ZSTD(3))", _STR),  # JSON [{"id","name","arguments"}] requested by the model
    ("tool_name", "LowCardinality(String)", _STR),
    ("tool_call_id", "String", _STR),
    ("tool_arguments", "String CODEC(ZSTD(3))", _STR),
    ("tool_result", "String CODEC(ZSTD(3))", _STR),
    ("tool_error", "String CODEC(ZSTD(3))", _STR),
    ("retrieved_documents", "String CODEC(ZSTD(3))", _STR),  # JSON [{"id","content","score"}]
    ("finish_reason", "LowCardinality(String)", _STR),
    ("error_type", "LowCardinality(String)", _STR),
    ("user_id", "String", _STR),
    ("session_id", "String", _STR),
    ("conversation_id", "String", _STR),
    ("agent_name", "LowCardinality(String)", _STR),
    ("ttft_ms", "Nullable(Float64)", _F64),
    ("events", "String CODEC(ZSTD(3))", _STR),  # JSON [{"name","time_unix_nano","attributes"}]
    ("attributes", "Map(String, String) CODEC(ZSTD(3))", _MAP),
    ("resource_attributes", "Map(String, String) CODEC(ZSTD(3))", _MAP),
    ("ingested_at", "DateTime64(3, 'UTC')", pa.timestamp("ms", tz="UTC")),
]

# Filled by the pipeline, not by the normalizer.
PIPELINE_COLUMNS: Final[frozenset[str]] = frozenset({"tenant", "ingested_at"})
NORMALIZED_COLUMNS: Final[list[str]] = [c for c, _, _ in SPAN_COLUMNS if c not in PIPELINE_COLUMNS]
ARROW_SCHEMA: Final[pa.Schema] = pa.schema([pa.field(n, t, nullable=True) for n, _, t in SPAN_COLUMNS if t is not None])
# Stored only to be read through an ALIAS column: fallback column -> the text column it serves.
TEXT_FALLBACKS: Final = {"input_text_fallback": "input_text", "output_text_fallback": "output_text"}
# What a span read returns: every column but the tenant (the caller's own) and the fallbacks.
SPAN_READ_COLUMNS: Final[list[str]] = [
    name for name, _, _ in SPAN_COLUMNS if name != "tenant" and name not in TEXT_FALLBACKS
]


# The ALIAS text columns' arguments: column -> (its fallback column, the message list it reads, roles).
_TEXT_SOURCES: Final = {
    "input_text": ("input_text_fallback", "input_messages", ("user",)),
    "output_text": ("output_text_fallback", "output_messages", ("assistant", "model")),
}
# SPAN_READ_COLUMNS with the stored fallback in each ALIAS text column's place: a read of a few
# spans selects these and computes the texts with `with_texts`. The ALIAS expressions' JSON
# functions and lambdas cost the engine ~3 ms to plan in every query that names them, more than
# reading one trace's spans takes.
SPAN_STORED_READ_COLUMNS: Final[list[str]] = [
    _TEXT_SOURCES[c][0] if c in _TEXT_SOURCES else c for c in SPAN_READ_COLUMNS
]


def last_message_text(messages: str, roles: tuple[str, ...]) -> str:
    """What `_last_message_text`'s SQL returns for a stored JSON message list: the content of the
    last message in `roles` whose content is a non-empty string; '' when there is none or the JSON
    is not a list (tests/test_text_alias.py checks the two agree)."""
    try:
        items = orjson.loads(messages)
    except orjson.JSONDecodeError:
        return ""
    if not isinstance(items, list):
        return ""
    for m in reversed(items):
        if isinstance(m, dict) and m.get("role") in roles:
            content = m.get("content")
            if isinstance(content, str) and content:
                return content
    return ""


def with_texts(row: dict[str, Any]) -> dict[str, Any]:
    """A row read with SPAN_STORED_READ_COLUMNS as SPAN_READ_COLUMNS reads it: `input_text` and
    `output_text` as INPUT_TEXT_EXPR / OUTPUT_TEXT_EXPR compute them, the fallbacks left out."""
    out: dict[str, Any] = {}
    for name in SPAN_READ_COLUMNS:
        if name in _TEXT_SOURCES:
            fallback, messages, roles = _TEXT_SOURCES[name]
            out[name] = row[fallback] or last_message_text(row[messages], roles)
        else:
            out[name] = row[name]
    return out


def column_defaults() -> dict[str, object]:
    """The value written for a column the normalizer left out."""
    out: dict[str, object] = {}
    for name, ch_type, _ in SPAN_COLUMNS:
        if ch_type.startswith("Nullable"):
            out[name] = None
        elif ch_type.startswith("Map"):
            out[name] = {}
        elif name in ("start_time", "end_time", "ingested_at"):
            out[name] = 0
        elif ch_type == "Float64":
            out[name] = 0.0
        else:
            out[name] = ""
    return out
