"""The engine ingest query rendered for the attribute keys a batch carries (store/ingest_sql.py).

Planning the whole query costs ~400 ms of CPU per query whatever the batch holds
(bench/engine_planning.py), and most of it is spent on sources a batch never carries: the
conventions a deployment does not use. A source none of whose attribute keys is on any span of
the batch gives every span what an absent attribute gives (NULL, '', no message, no deferral
reason), so the query left without it computes the same rows. Hence:
- `keys_sql(source)`: the distinct span attribute keys of a batch, asked of the engine over the
  same bodies with a schema of the keys alone (~2 ms of planning, ~1.5 us of CPU per span);
- `carried(keys)`: those keys reduced to what the spec reads (its keys, and the prefix of each
  indexed message source some key starts with), the key of the rendered query's cache;
- `reads(source, carried)`: whether the query for `carried` keeps a spec source.
A source reading a span event is always kept (events are not probed); `carried` None keeps every
source (the whole query).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from driftline.store.ingest_bool import literal
from driftline.store.ingest_keys import KEYS
from driftline.store.ingest_spec import SLOTS, UNRENDERED, Indexed, Other, Sets, SlotSource, Source

__all__ = ["KEY_STRUCTURE", "carried", "keys_sql", "reads"]

# store/otlp_schema.py's STRUCTURE cut to the span attributes' keys: the Protobuf format skips
# the fields a structure leaves out.
KEY_STRUCTURE: Final = (
    "resource_spans Array(Tuple(scope_spans Array(Tuple(spans Array(Tuple(attributes Array(Tuple(key String))))))))"
)
_PREFIXES: Final = tuple(
    dict.fromkeys(
        [
            *(s.prefix for sources in SLOTS.values() for s in sources if isinstance(s, Indexed)),
            *(u.prefix for u in UNRENDERED if u.prefix),
        ]
    )
)
_SPEC_KEYS: Final = frozenset(KEYS)


def keys_sql(path: str) -> str:
    """The distinct attribute keys of the spans of a `Protobuf` stream of export requests at `path`."""
    keys = "arrayMap(rs -> arrayMap(ss -> arrayMap(sp -> arrayMap(kv -> kv.key, sp.attributes), ss.spans), "
    return (
        f"SELECT groupUniqArrayArray(arrayFlatten({keys}rs.scope_spans), resource_spans))) "
        f"FROM file({literal(path)}, 'Protobuf', {literal(KEY_STRUCTURE)})"
    )


def carried(keys: Iterable[str]) -> frozenset[str]:
    """What of `keys` (a batch's attribute keys) the spec reads: spec keys and indexed prefixes."""
    out: set[str] = set()
    for key in keys:
        if key in _SPEC_KEYS:
            out.add(key)
        out.update(p for p in _PREFIXES if key.startswith(p))
    return frozenset(out)


def reads(source: Source | SlotSource | Sets, carried: frozenset[str] | None) -> bool:
    """Whether a batch carrying `carried` (None: anything) can get something from `source`."""
    if carried is None:
        return True
    if isinstance(source, Indexed):
        return source.prefix in carried
    if isinstance(source, Sets) and not source.keys:
        return source.prefix in carried if source.prefix else True  # an event, an operation
    if isinstance(source, Other) and not source.keys:
        return True  # an event, or a source the query does not render
    key: str = getattr(source, "key", "")
    keys: tuple[str, ...] = (key,) if key else getattr(source, "keys", ())
    return any(k in carried for k in keys)
