"""GET /api/v1/traces: the service filter and the per-trace summary, against hand-computed rows."""

from __future__ import annotations

import time
from typing import Any

import httpx

from driftline.collector.batch import rows_to_table
from tests.conftest import KEY_A, TENANT_A, TENANT_B, LiveServer

NOW_NS = (int(time.time()) - 600) * 1_000_000_000
MS = 1_000_000
T1, T2, T3, TB = "a1" * 16, "a2" * 16, "a3" * 16, "b1" * 16


def _span(trace: str, span: str, start_ms: int, dur_ms: int, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "trace_id": trace,
        "span_id": span,
        "start_time": NOW_NS + start_ms * MS,
        "end_time": NOW_NS + (start_ms + dur_ms) * MS,
        "duration_ms": float(dur_ms),
        "name": "span",
    }
    row.update(kw)
    return row


def _fill(live: LiveServer) -> None:
    a = [
        # T1: service x only; one span names only its request model, one both
        _span(T1, "11" * 8, 300, 50, name="agent x", service="x", request_model="gpt-4o", cost_usd=0.25),
        _span(T1, "12" * 8, 310, 20, service="x", request_model="gpt-4o", response_model="gpt-4o-2024-08-06",
              parent_span_id="11" * 8, status_code="error", cost_usd=0.5),
        # T2: rooted in service y, one span in service x (a tool call, no model)
        _span(T2, "21" * 8, 200, 30, name="agent y", service="y"),
        _span(T2, "22" * 8, 205, 40, service="x", operation="execute_tool", parent_span_id="21" * 8),
        # T3: service y only, a request model only
        _span(T3, "31" * 8, 100, 10, name="chat", service="y", request_model="claude-sonnet-4"),
    ]  # fmt: skip
    live.runtime.store.insert_arrow("spans", rows_to_table(TENANT_A, a))
    b = [_span(TB, "41" * 8, 400, 10, service="x", request_model="gpt-4o")]
    live.runtime.store.insert_arrow("spans", rows_to_table(TENANT_B, b))


def _list(live: LiveServer, **params: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{live.url}/api/v1/traces", params=params, headers={"Authorization": f"Bearer {KEY_A}"})
    assert r.status_code == 200, r.text
    traces: list[dict[str, Any]] = r.json()["traces"]
    return traces


def test_service_filter_keeps_traces_touching_the_service_whole(live: LiveServer) -> None:
    _fill(live)
    got = _list(live, service="x")
    assert [t["trace_id"] for t in got] == [T1, T2]  # newest first; tenant B's trace in x is not here
    t1, t2 = got
    assert (t1["spans"], t1["errors"], t1["duration_ms"], t1["service"], t1["root_name"]) == (2, 1, 50, "x", "agent x")
    assert t1["cost_usd"] == 0.75
    # the whole trace is summarized, not only its spans in service x; service and duration are the root's
    assert (t2["spans"], t2["errors"], t2["duration_ms"], t2["service"], t2["root_name"]) == (2, 0, 30, "y", "agent y")
    assert [t["trace_id"] for t in _list(live, service="y")] == [T2, T3]
    assert _list(live, service="nowhere") == []
    assert [t["trace_id"] for t in _list(live)] == [T1, T2, T3]


def test_models_are_response_or_request_models(live: LiveServer) -> None:
    _fill(live)
    by_id = {t["trace_id"]: t["models"] for t in _list(live)}
    # request and response models of every span: T1's first span names only its request model
    assert by_id == {T1: ["gpt-4o", "gpt-4o-2024-08-06"], T2: [], T3: ["claude-sonnet-4"]}
