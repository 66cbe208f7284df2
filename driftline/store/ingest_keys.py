"""Attribute keys as small numbers in the engine's ingest query (store/ingest_sql.py).

Whether a span carries a key (a family's markers, a deferred source's keys, a message attribute)
is asked some 30 times per span. Asked of the attribute keys as strings (`hasAny(a_keys, [...])`)
each question compares every key of the span with every key asked: ~5 us of CPU per span of
the benchmark's chat spans (bench/engine_ablation.py). Each key the spec names has a number here;
the query maps a span's keys to their numbers once (`key_ids_sql`, a hash lookup per key, 0 for
a key the spec does not name) and asks of those numbers (`has_key`, `has_any`): ~1.3 us. The
answers are the same: a number stands for one key, and no key asked has the number 0.
"""

from __future__ import annotations

from typing import Final

from driftline.store.ingest_bool import literal
from driftline.store.ingest_spec import COLUMNS, FAMILIES, SLOTS, SPAN_COST, SYSTEM_INSTRUCTIONS, UNRENDERED

__all__ = ["KEYS", "has_any", "has_key", "key_ids_sql"]


def _spec_keys() -> list[str]:
    """Every attribute key the spec names, in a fixed order."""
    out: list[str] = [k for markers in FAMILIES.values() for k in markers]
    sources = [
        *(s for c in COLUMNS for s in c.sources),
        *SPAN_COST,
        *(s for sources in SLOTS.values() for s in sources),
        SYSTEM_INSTRUCTIONS,
        *UNRENDERED,
    ]
    for s in sources:
        key = getattr(s, "key", "")
        if key:
            out.append(key)
        out.extend(getattr(s, "keys", ()))
    return out


KEYS: Final = tuple(dict.fromkeys(_spec_keys()))
_IDS: Final = {k: i + 1 for i, k in enumerate(KEYS)}


def key_ids_sql(keys: str) -> str:
    """The number of each key of array `keys` (0 for a key the spec does not name)."""
    names = "[" + ", ".join(literal(k) for k in KEYS) + "]"
    ids = "[" + ", ".join(str(_IDS[k]) for k in KEYS) + "]"
    return f"arrayMap(k -> transform(k, {names}, {ids}, 0), {keys})"


def has_key(key: str, ids: str = "a_kid") -> str:
    """Whether the span (its key numbers `ids`) carries `key`; KeyError for a key the spec does not name."""
    return f"has({ids}, {_IDS[key]})"


def has_any(keys: tuple[str, ...] | list[str], ids: str = "a_kid") -> str:
    """Whether the span carries one of `keys`."""
    return f"hasAny({ids}, [{', '.join(str(_IDS[k]) for k in keys)}])"
