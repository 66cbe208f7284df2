"""A small, hand-made data set for the read API tests: two tenants, traces with known scores,
feedback and sessions, written straight into the store (the API reads it through the real app)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from driftline.collector.batch import rows_to_table
from driftline.scorers.runner import SCORE_SCHEMA
from driftline.store import Store

__all__ = ["NOW", "T", "load"]

NOW = datetime.now(UTC).replace(microsecond=0)
# trace ids by name; tenant B reuses T["t1"] on purpose (ids are only unique within a tenant)
T = {name: f"{i:02x}" * 16 for i, name in enumerate(["t1", "t2", "t3", "t4", "t5", "t6"], start=1)}


def _ns(dt: datetime) -> int:
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


def _span(trace: str, n: int, start: datetime, ms: float, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "trace_id": trace,
        "span_id": f"{trace[:14]}{n:02x}",
        "parent_span_id": "" if n == 0 else f"{trace[:14]}00",
        "start_time": _ns(start),
        "end_time": _ns(start + timedelta(milliseconds=ms)),
        "duration_ms": ms,
        "name": "agent" if n == 0 else "chat",
        "status_code": "unset",
    }
    row.update(kw)
    return row


def _trace(
    name: str, start: datetime, ms: float, root: dict[str, Any], children: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    common = {k: root[k] for k in ("service", "release", "environment") if k in root}
    out = [_span(T[name], 0, start, ms, **root)]
    for i, c in enumerate(children, start=1):
        child_ms = c.pop("ms", 10.0)
        out.append(_span(T[name], i, start + timedelta(milliseconds=i), child_ms, **(common | c)))
    return out


def _scores(tenant: str, rows: list[tuple[str, int, str, float, str]], starts: dict[str, datetime]) -> pa.Table:
    cols: dict[str, list[Any]] = {f.name: [] for f in SCORE_SCHEMA}
    for trace, span_n, scorer, value, label in rows:
        tid = T[trace]
        vals = {
            "tenant": tenant, "trace_id": tid, "span_id": f"{tid[:14]}{span_n:02x}", "scorer": scorer,
            "scorer_version": "v1", "value": value, "label": label, "explanation": f"{scorer} says {label}",
            "service": "shop", "operation": "chat", "model": "gpt-4o", "release": "1.0", "environment": "prod",
            "span_start_time": starts[trace], "scored_at": NOW, "details": json.dumps({"why": label}),
        }  # fmt: skip
        for k, v in vals.items():
            cols[k].append(v)
    return pa.table(cols, schema=SCORE_SCHEMA)


def load(store: Store, tenant_a: str, tenant_b: str) -> None:
    """Tenant A: t1..t4 (t4 eight days old), t6 (no root span); tenant B: its own t1 and t5."""
    h1, h2, h3 = NOW - timedelta(hours=3), NOW - timedelta(hours=2), NOW - timedelta(hours=1)
    shop1 = {"service": "shop", "release": "1.0", "environment": "prod", "session_id": "s1", "user_id": "u1"}
    a = [
        *_trace("t1", h1, 900.0, shop1, [
            {"operation": "chat", "request_model": "gpt-4o", "response_model": "gpt-4o-2024-08-06",
             "cost_usd": 0.01, "input_tokens": 100, "output_tokens": 20, "session_id": "s1", "user_id": "u1",
             "input_text": "Where is my order 1234?", "output_text": "It shipped yesterday by Parcel Express."},
        ]),
        *_trace("t2", h2, 2500.0, shop1 | {"release": "2.0"}, [
            {"operation": "chat", "request_model": "claude-3-5-sonnet", "cost_usd": 0.03, "input_tokens": 300,
             "output_tokens": 50, "input_text": "Can I get a refund?", "output_text": "Yes, within 30 days."},
            {"operation": "execute_tool", "tool_name": "refund", "status_code": "error", "name": "tool refund"},
        ]),
        *_trace("t3", h3, 400.0, {"service": "search", "release": "2.0", "environment": "staging"}, [
            {"operation": "chat", "request_model": "gpt-4o", "session_id": "s2", "user_id": "u2",
             "input_text": "What is the REFUND policy?", "output_text": "Thirty days, no questions."},
        ]),
        *_trace("t4", NOW - timedelta(days=8), 100.0, shop1, [{"operation": "embeddings", "request_model": "emb"}]),
    ]  # fmt: skip
    orphan = _span(T["t6"], 1, h3, 5.0, service="shop", parent_span_id="ab" * 8, operation="chat")
    store.insert_arrow("spans", rows_to_table(tenant_a, [*a, orphan]))
    b = [
        *_trace("t1", h1, 50.0, {"service": "shop", "release": "9.9", "environment": "prod", "session_id": "s1"}, [
            {"operation": "chat", "request_model": "gpt-4o", "cost_usd": 5.0, "output_text": "tenant B secret"},
        ]),
        *_trace("t5", h2, 70.0, {"service": "shop", "release": "1.0", "environment": "prod", "session_id": "s1"}, [
            {"operation": "chat", "request_model": "gpt-4o", "output_text": "B answer"},
        ]),
    ]  # fmt: skip
    store.insert_arrow("spans", rows_to_table(tenant_b, b))
    store.insert_arrow(
        "scores",
        _scores(tenant_a, [
            ("t1", 1, "hallucination", 0.9, "hallucinated"),
            ("t2", 1, "hallucination", 0.1, "grounded"),
            ("t2", 2, "tool_failure", 1.0, "timeout"),
            ("t3", 1, "hallucination", 0.4, "grounded"),
        ], {"t1": h1, "t2": h2, "t3": h3}),
    )  # fmt: skip
    store.insert_arrow(
        "scores",
        _scores(
            tenant_b,
            [("t1", 1, "hallucination", 0.99, "hallucinated"), ("t5", 1, "hallucination", 0.8, "hallucinated")],
            {"t1": h1, "t5": h2},
        ),
    )
