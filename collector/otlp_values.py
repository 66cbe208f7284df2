"""OTLP `AnyValue` / `KeyValue` -> plain Python, read once per attribute.

Reading protobuf fields from Python is the normalizer's single largest cost (each field access
builds a wrapper object), so every attribute is read exactly once into two dicts: `flat` with
native Python values for the fallback chains, and `text` with the string form stored in the
`attributes` map column. Spec: https://opentelemetry.io/docs/specs/otlp/ (common.proto AnyValue).

Non-string values are stored as JSON text (ints and doubles as JSON numbers, booleans as
true/false, arrays and kvlists as JSON, bytes as base64), so a consumer can always json-parse
a map value that is not a plain string.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable
from typing import Final

import orjson
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

__all__ = ["TRUNCATION_MARKER", "any_value", "dumps", "loads", "read_attributes", "to_text", "truncate"]

# Visible marker appended to a truncated string; the count is of UTF-8 bytes removed.
TRUNCATION_MARKER: Final = "...[truncated {} bytes]"

_OPT: Final = orjson.OPT_NON_STR_KEYS


def dumps(value: object) -> str:
    """Compact JSON text (orjson: ~10x faster than the stdlib on message lists)."""
    return orjson.dumps(value, option=_OPT, default=_json_default).decode()


def _json_default(value: object) -> object:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return str(value)


def loads(text: str) -> object:
    """Parse JSON text; None when it is not valid JSON (conventions are not trusted to be valid)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def truncate(text: str, limit: int) -> str:
    """Cut `text` to at most `limit` UTF-8 bytes and say how much was cut, so nothing is lost silently."""
    # Fast path: a str of n code points is at most 4n bytes.
    if len(text) * 4 <= limit:
        return text
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) <= limit:
        return text
    kept = raw[:limit].decode("utf-8", "ignore")
    return kept + TRUNCATION_MARKER.format(len(raw) - len(kept.encode("utf-8", "surrogatepass")))


def any_value(value: AnyValue) -> object:
    """One AnyValue as a Python value: str, bool, int, float, bytes, list, dict or None."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return value.double_value
    if which == "bool_value":
        return value.bool_value
    if which == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return value.bytes_value
    return None


def to_text(value: object) -> str:
    """The string stored in a Map(String, String) column for a Python attribute value."""
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)  # same text as JSON for finite doubles, without a JSON encoder call
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if value is None:
        return ""
    return dumps(value)


def read_attributes(kvs: Iterable[KeyValue], limit: int) -> tuple[dict[str, str], dict[str, str], int]:
    """Read attributes once: (values for lookups, values for storage, total length in characters).

    Both dicts hold text: strings as they are, everything else as JSON (to_text). The lookup
    dict keeps oversized strings whole, so a large JSON message attribute still parses; the
    storage dict is the same object unless something had to be truncated (the common case
    costs no copy). The total length lets later stages skip truncation checks on values
    derived from these (none can be longer than all of them together).
    """
    values: dict[str, str] = {}
    big: list[str] | None = None
    total = 0
    quarter = limit // 4
    for kv in kvs:
        v = kv.value
        s = v.string_value
        if not s:  # most attributes are non-empty strings: one field read instead of WhichOneof
            which = v.WhichOneof("value")
            if which == "int_value":
                s = str(v.int_value)
            elif which == "string_value" or which is None:
                s = ""
            else:
                s = to_text(any_value(v))
        values[kv.key] = s
        n = len(s)
        total += n
        if n > quarter:
            if big is None:
                big = []
            big.append(kv.key)
    if big is None:
        return values, values, total
    stored = values.copy()
    for key in big:
        stored[key] = truncate(stored[key], limit)
    return values, stored, total
