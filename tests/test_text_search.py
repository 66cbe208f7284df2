"""The trace list's text filter finds the message text a trace view shows (input_text /
output_text), whether the stored message JSON escapes it or not, and nothing that is only elsewhere
in the stored JSON (a system prompt, a key)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from driftline.collector.batch import rows_to_table
from driftline.store import Store
from driftline.store.queries import traces as trace_queries

TENANT = "tenant-a"
START = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
T1, T2, T3 = "e1" * 16, "e2" * 16, "e3" * 16
FRENCH = [{"role": "system", "content": "Warranty rules apply"}, {"role": "user", "content": "Où est mon café?"}]


def _span(trace: str, **kw: Any) -> dict[str, Any]:
    ns = int(START.timestamp()) * 1_000_000_000
    return {
        "trace_id": trace, "span_id": f"{trace[:14]}00", "parent_span_id": "", "start_time": ns,
        "end_time": ns + 1_000_000, "duration_ms": 1.0, "name": "chat", "service": "shop", "status_code": "unset",
    } | kw  # fmt: skip


@pytest.fixture
def written(store: Store) -> Store:
    spans = [
        # ensure_ascii (json.dumps' default) writes é and ù as \u00e9 and \u00f9
        _span(T1, input_messages=json.dumps(FRENCH)),
        _span(T2, output_messages=json.dumps([{"role": "assistant", "content": 'a "quoted" word / path'}])),
        _span(T3, input_text="plain stored question"),
    ]
    store.insert_arrow("spans", rows_to_table(TENANT, spans))
    return store


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("café", [T1]),  # escaped in the stored JSON
        ("MON CAF", [T1]),  # case-insensitive, next to an escaped character
        ("warranty", []),  # only in the system prompt, which is not the input text
        ("role", []),  # a JSON key
        ('"quoted" word / path', [T2]),  # characters JSON writers escape
        ("quoted", [T2]),
        ("stored question", [T3]),
    ],
)
def test_text_filter(written: Store, text: str, found: list[str]) -> None:
    q = trace_queries.TraceQuery(since=START - timedelta(hours=1), until=START + timedelta(hours=1), text=text)
    rows, _ = trace_queries.search_traces(written, TENANT, q)
    assert [r["trace_id"] for r in rows] == found
