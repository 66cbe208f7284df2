"""Normalized rows -> one Arrow table in the `spans` layout (column by column: it is the fast way)."""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa

from driftline.store.columns import ARROW_SCHEMA, SPAN_COLUMNS, column_defaults

__all__ = ["rows_to_table"]

_DEFAULTS = column_defaults()
_NORMALIZED = [(name, t) for name, _, t in SPAN_COLUMNS if name not in ("tenant", "ingested_at")]


def rows_to_table(tenant: str, rows: list[dict[str, Any]], ingested_at_ms: int | None = None) -> pa.Table:
    n = len(rows)
    now_ms = int(time.time() * 1000) if ingested_at_ms is None else ingested_at_ms
    arrays: list[pa.Array] = []
    for name, _, typ in SPAN_COLUMNS:
        if name == "tenant":
            arrays.append(pa.array([tenant] * n, type=typ))
        elif name == "ingested_at":
            arrays.append(pa.array([now_ms] * n, type=typ))
        else:
            d = _DEFAULTS[name]
            arrays.append(pa.array([r.get(name, d) for r in rows], type=typ))
    return pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA)
