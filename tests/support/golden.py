"""Golden rows: what the collector stored for a framework's trace, held against expectations
written by hand.

A trace's expectation is its spans in start order, each `Row(name, parent, columns)`: `parent` is
the parent span's name (None for the root) and `columns` the stored values that matter for that
span. Every span is also held to `LLM_COLUMNS`: a column of that set that the row does not name
must be stored empty, so a value that appears where none belongs fails too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
import pytest

from driftline.store.columns import column_defaults
from tests.conftest import KEY_A, LiveServer

__all__ = ["GPT_4O_MINI_CALL_USD", "LLM_COLUMNS", "Json", "Row", "assert_trace", "stored_traces"]

# gpt-4o-mini (genai-prices): $0.15 / M input, $0.075 / M cached input, $0.60 / M output, for the
# fake provider's usage: 57 prompt tokens of which 20 cached, 17 completion tokens.
GPT_4O_MINI_CALL_USD: Final = (37 * 0.15 + 20 * 0.075 + 17 * 0.60) / 1e6

LLM_COLUMNS: Final = (
    "operation", "provider", "request_model", "response_model", "input_tokens", "output_tokens",
    "cache_read_tokens", "reasoning_tokens", "cost_usd", "cost_source", "input_messages", "output_messages",
    "tool_calls", "tool_name", "tool_call_id", "tool_arguments", "tool_result", "tool_error",
    "retrieved_documents", "finish_reason", "user_id", "session_id", "agent_name",
)  # fmt: skip
_DEFAULTS: Final = column_defaults()


@dataclass(frozen=True)
class Json:
    """Equal to a stored JSON text that parses to `value` (messages, tool calls, documents)."""

    value: Any

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and other != "" and json.loads(other) == self.value

    def __hash__(self) -> int:
        return hash(json.dumps(self.value, sort_keys=True))


@dataclass(frozen=True)
class Row:
    name: str
    parent: str | None
    columns: dict[str, Any] = field(default_factory=dict)


def stored_traces(live: LiveServer, trace_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Each trace's spans as the trace API returns them (in start order), after a flush."""
    assert live.runtime.flush(30)
    out: dict[str, list[dict[str, Any]]] = {}
    for trace_id in trace_ids:
        r = httpx.get(f"{live.url}/api/v1/traces/{trace_id}", headers={"Authorization": f"Bearer {KEY_A}"})
        assert r.status_code == 200, r.text
        out[trace_id] = r.json()["spans"]
    return out


def assert_trace(spans: list[dict[str, Any]], expected: list[Row]) -> None:
    assert [s["name"] for s in spans] == [e.name for e in expected]
    names = {s["span_id"]: s["name"] for s in spans}
    trace_ids = {s["trace_id"] for s in spans}
    assert len(trace_ids) == 1
    for span, row in zip(spans, expected, strict=True):
        parent = names.get(span["parent_span_id"]) if span["parent_span_id"] else None
        assert parent == row.parent, (row.name, "parent")
        for col in (*LLM_COLUMNS, *row.columns):
            want = row.columns.get(col, _DEFAULTS[col])
            got = span[col]
            if isinstance(want, float) and col == "cost_usd":
                want = pytest.approx(want, rel=1e-9)
            assert got == want, (row.name, col, got)
