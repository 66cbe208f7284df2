"""The typed span record matches the columns the store reads, key by key and type by type."""

from __future__ import annotations

import typing
from datetime import datetime

from driftline.store.columns import SPAN_COLUMNS, SPAN_READ_COLUMNS
from driftline.store.records import SpanRecord


def _python_type(ch_type: str) -> object:
    if ch_type.startswith("Nullable(Int64"):
        return int | None
    if ch_type.startswith("Nullable(Float64"):
        return float | None
    if ch_type.startswith("DateTime64"):
        return datetime
    if ch_type.startswith("Float64"):
        return float
    if ch_type.startswith("Map(String, String)"):
        return dict[str, str]
    assert "String" in ch_type, ch_type
    return str


def test_span_record_has_every_read_column_with_its_type() -> None:
    hints = typing.get_type_hints(SpanRecord)
    assert set(hints) == {*SPAN_READ_COLUMNS, "tenant"}
    types = {name: _python_type(ch_type) for name, ch_type, _ in SPAN_COLUMNS}
    assert {name: hints[name] for name in hints} == {name: types[name] for name in hints}
