"""Helpers shared by the convention modules: typed lookups and the Fields conventions.

Every convention writes into one `Fields` dict keyed by `spans` column names, plus a few
private keys (leading underscore) that `derive.finish` turns into columns:
  _in, _out        list[Message]: normalized input / output messages
  _in_key, _out_key str: the attribute _in / _out came from, when they hold all of it
  _input_raw       str: input text when a convention has no messages (input.value, ...)
  _output_raw      str: output text when a convention has no messages
  _tool_calls      list[ToolCall]: tool calls the model asked for, when given outside messages
  _docs            list[dict]: retrieved documents {"id","content","score"}
  _span_cost       float: cost the span itself reported (USD)
  _finish_fallback str: a finish reason found inside the output messages, used only when no
                   attribute gave `finish_reason`
  _exception_type  str: the last `exception` event's type (becomes error_type on an error span)
  _exception_message str: the last `exception` event's message (a failed tool's tool_error)
  _error_message   str: a convention's own error text for a span not marked error (Langfuse's
                   ERROR level): the tool_error of a tool span
Conventions run in priority order and only fill keys that are still missing (`put`).
derive.finish pops every private key (normalize.py pops _span_cost); tests/test_fields_keys.py
holds this list to the code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from driftline.collector.otlp_values import dumps, loads
from driftline.store.ingest_spec import FINISH_REASONS

__all__ = [
    "Attrs",
    "Fields",
    "Message",
    "ToolCall",
    "as_text",
    "copy_int",
    "copy_text",
    "finish_reason",
    "first_int",
    "first_text",
    "maybe_json",
    "put",
    "to_float",
    "to_int",
]

# Span attributes as read by otlp_values.read_attributes (text values), or event attributes
# (native values): every helper here accepts both.
Attrs = Mapping[str, object]
Fields = dict[str, object]
Message = dict[str, object]
ToolCall = dict[str, str]


def put(f: Fields, key: str, value: object) -> None:
    """Set `key` unless a higher-priority convention already did, or the value is empty."""
    if value is not None and value not in ("", []) and key not in f:
        f[key] = value


def copy_text(a: Attrs, f: Fields, pairs: tuple[tuple[str, str], ...]) -> None:
    """For each (column, attribute) in order: copy the attribute as text unless the column is set.

    A column listed several times is a fallback chain (the first present attribute wins). This
    is the hot path of every convention, so it is one tight loop of dict lookups.
    """
    for column, key in pairs:
        v = a.get(key)
        if v is not None and v != "" and column not in f:
            f[column] = v if type(v) is str else as_text(v)


def copy_int(a: Attrs, f: Fields, pairs: tuple[tuple[str, str], ...]) -> None:
    """`copy_text` for token counts."""
    for column, key in pairs:
        v = a.get(key)
        if v is not None and column not in f:
            n = v if type(v) is int else to_int(v)
            if n is not None:
                f[column] = n


def first_text(a: Attrs, keys: tuple[str, ...]) -> str | None:
    for key in keys:
        v = a.get(key)
        if v is not None and v != "":
            return v if isinstance(v, str) else as_text(v)
    return None


def first_int(a: Attrs, keys: tuple[str, ...]) -> int | None:
    for key in keys:
        v = a.get(key)
        if v is not None:
            n = to_int(v)
            if n is not None:
                return n
    return None


def to_int(v: object) -> int | None:
    """Token counts arrive as int, as double (JS SDKs) or as numeric strings."""
    if type(v) is int:
        return v
    if isinstance(v, float) and math.isfinite(v):
        return int(v)
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            pass
        try:
            return int(float(v))
        except (ValueError, OverflowError):
            return None
    return None


def to_float(v: object) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None


def as_text(v: object) -> str:
    """A value as text: strings as-is, everything else as JSON."""
    if isinstance(v, str):
        return v
    if v is None:
        return ""
    return dumps(v)


def maybe_json(v: object) -> object:
    """Parse a string that looks like JSON; leave anything else alone (structured AnyValues too)."""
    if isinstance(v, str) and v[:1] in ("[", "{"):
        parsed = loads(v)
        return v if parsed is None else parsed
    return v


def finish_reason(raw: str) -> str:
    """A finish reason folded onto the GenAI semconv set (content_filter, error, length, stop,
    tool_call), so one dashboard filter works for every provider: gen_ai.response.finish_reasons
    https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/ . The table is the column
    spec's (store/ingest_spec.py), which the engine's ingest query renders too."""
    low = raw.strip().lower()
    return FINISH_REASONS.get(low, low)
