"""The labels a score carries into the SLIs: a tool span has no model of its own, so its
tool-failure score takes the model that asked for the tool, not `other`."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

from driftline.collector.batch import rows_to_table
from driftline.scorers.runner import JobOptions, ScorerJob
from driftline.scorers.tool_failure import ToolFailureScorer
from driftline.sli import SLIJob
from driftline.store import Store
from tests.support.sql import admin_rows

T0 = (int(time.time()) - 600) * 1_000_000_000
MS = 1_000_000


def _span(trace: str, span: str, at_ms: int, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "trace_id": trace,
        "span_id": span,
        "start_time": T0 + at_ms * MS,
        "end_time": T0 + (at_ms + 10) * MS,
        "duration_ms": 10.0,
        "service": "agent",
        "release": "1.0",
        "environment": "prod",
    }
    row.update(kw)
    return row


def _agent_trace(trace: str, model: str, call_id: str, failing: bool) -> list[dict[str, Any]]:
    """A chat call asking for a tool, the tool run (no model), and the answer with a later model."""
    calls = json.dumps([{"id": call_id, "name": "get_weather", "arguments": '{"city": "Paris"}'}])
    return [
        _span(trace, trace[:14] + "01", 0, name=f"chat {model}", operation="chat", request_model=model,
              response_model=model, tool_calls=calls),
        _span(trace, trace[:14] + "02", 20, name="execute_tool get_weather", operation="execute_tool",
              tool_name="get_weather", tool_call_id=call_id, tool_arguments='{"city": "Paris"}',
              status_code="error" if failing else "ok", status_message="upstream 500" if failing else ""),
        _span(trace, trace[:14] + "03", 40, name="chat later-model", operation="chat", request_model="later-model"),
    ]  # fmt: skip


def test_a_tool_span_is_labelled_with_the_model_that_called_it(store: Store) -> None:
    rows = _agent_trace("a1" * 16, "gpt-4o", "call_1", failing=True) + _agent_trace(
        "a2" * 16, "claude-sonnet-4", "call_2", failing=False
    )
    store.insert_arrow("spans", rows_to_table("acme", rows))
    ScorerJob(ToolFailureScorer(), store, JobOptions(settle=timedelta(0))).run_once()
    scored = admin_rows(
        store,
        "SELECT span_id, label, model FROM {db}.scores FINAL WHERE tenant = 'acme' AND scorer = 'tool_failure' "
        "ORDER BY span_id",
    )
    tool_spans = {r["span_id"]: (r["label"], r["model"]) for r in scored if r["span_id"].endswith("02")}
    assert tool_spans == {"a1" * 7 + "02": ("error_status", "gpt-4o"), "a2" * 7 + "02": ("ok", "claude-sonnet-4")}

    snap = SLIJob(store).run_once()
    series = {
        (lab["model"], lab["failure_class"]): v
        for lab, v in snap.gauges["driftline_sli_tool_failure_rate"]
        if lab["window"] == "1h" and lab["failure_class"] in ("any", "error_status")
    }
    # per model: gpt-4o's tool failed, claude's did not (both chat calls that asked scored ok)
    assert series[("gpt-4o", "error_status")] == 0.5 and series[("claude-sonnet-4", "any")] == 0.0
    assert not any(model == "other" for model, _ in series)
