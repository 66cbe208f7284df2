"""Spans, scores and feedback for the review tests, written straight into the store (the filling
job and the API read them through the real queries)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from driftline.collector.batch import rows_to_table
from driftline.scorers.runner import SCORE_SCHEMA
from driftline.store import Store
from driftline.store.queries.feedback import FeedbackRecord, insert_feedback

__all__ = ["NOW", "Clock", "feedback", "scores", "span_id", "trace_id", "traces"]

NOW = datetime.now(UTC).replace(microsecond=0)


class Clock:
    """A desk's clock that a test moves by hand: `clock.t = ...`."""

    def __init__(self, t: datetime) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t


def trace_id(i: int) -> str:
    return f"{i:032x}"


def span_id(i: int) -> str:
    return f"{i:014x}01"


def _ns(dt: datetime) -> int:
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


def traces(store: Store, tenant: str, ids: Sequence[int], start: datetime = NOW - timedelta(minutes=30)) -> None:
    """For each i a RAG trace: root, retrieval, chat answer (span_id(i))."""
    rows: list[dict[str, Any]] = []
    for i in ids:
        t = trace_id(i)
        t0 = start + timedelta(seconds=i)
        base = {"trace_id": t, "service": "shop", "release": "1.0", "environment": "prod", "status_code": "unset"}
        rows += [
            base | {"span_id": f"{i:014x}00", "parent_span_id": "", "name": "agent", "start_time": _ns(t0),
                    "end_time": _ns(t0 + timedelta(seconds=2)), "duration_ms": 2000.0},
            base | {"span_id": f"{i:014x}02", "parent_span_id": f"{i:014x}00", "name": "retrieve",
                    "operation": "retrieval", "start_time": _ns(t0 + timedelta(milliseconds=10)),
                    "end_time": _ns(t0 + timedelta(milliseconds=20)), "duration_ms": 10.0,
                    "retrieved_documents": json.dumps([{"content": f"Order {i} shipped by Parcel Express."}])},
            base | {"span_id": span_id(i), "parent_span_id": f"{i:014x}00", "name": "chat", "operation": "chat",
                    "request_model": "gpt-4o", "start_time": _ns(t0 + timedelta(milliseconds=30)),
                    "end_time": _ns(t0 + timedelta(seconds=1)), "duration_ms": 970.0,
                    "input_text": f"Where is order {i}?", "output_text": f"Order {i} shipped by Parcel Express."},
        ]  # fmt: skip
    store.insert_arrow("spans", rows_to_table(tenant, rows))


def scores(
    store: Store,
    tenant: str,
    rows: Sequence[tuple[int, str, float, str]],
    scored_at: datetime = NOW,
    version: str = "v1",
    details: dict[str, Any] | None = None,
    start: datetime = NOW - timedelta(minutes=30),
) -> None:
    """(i, scorer, value, label) scores on trace i's answer span."""
    cols: dict[str, list[Any]] = {f.name: [] for f in SCORE_SCHEMA}
    for i, scorer, value, label in rows:
        vals = {
            "tenant": tenant, "trace_id": trace_id(i), "span_id": span_id(i), "scorer": scorer,
            "scorer_version": version, "value": value, "label": label, "explanation": "", "service": "shop",
            "operation": "chat", "model": "gpt-4o", "release": "1.0", "environment": "prod",
            "span_start_time": start + timedelta(seconds=i), "scored_at": scored_at,
            "details": json.dumps(details or {}),
        }  # fmt: skip
        for k, v in vals.items():
            cols[k].append(v)
    store.insert_arrow("scores", pa.table(cols, schema=SCORE_SCHEMA))


def feedback(store: Store, tenant: str, i: int, negative: bool, at: datetime = NOW) -> None:
    rec = FeedbackRecord(
        id=f"fb-{i}", trace_id=trace_id(i), span_id="", name="thumbs", value=0.0 if negative else 1.0,
        label="thumbs_down" if negative else "thumbs_up", comment="", source="user", author="", version="",
        negative=negative, created_at=at,
    )  # fmt: skip
    insert_feedback(store, tenant, [rec], at)
