"""Feedback: thumbs, scores, labels and comments from end users, apps and external evaluators.

One row per client-supplied id and tenant (ReplacingMergeTree on `updated_at`): posting an item
again replaces it, so a client may retry freely.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    from driftline.store.store import Store

__all__ = ["FEEDBACK_SCHEMA", "FeedbackRecord", "feedback_counts", "feedback_for_trace", "insert_feedback"]

_MS = pa.timestamp("ms", tz="UTC")
FEEDBACK_SCHEMA = pa.schema(
    [
        ("tenant", pa.string()), ("id", pa.string()), ("trace_id", pa.string()), ("span_id", pa.string()),
        ("name", pa.string()), ("value", pa.float64()), ("label", pa.string()), ("comment", pa.string()),
        ("source", pa.string()), ("author", pa.string()), ("version", pa.string()), ("negative", pa.uint8()),
        ("created_at", _MS), ("updated_at", _MS),
    ]
)  # fmt: skip


@dataclass(frozen=True)
class FeedbackRecord:
    """One feedback item as stored (the tenant comes separately: it is never the client's say)."""

    id: str
    trace_id: str
    span_id: str
    name: str
    value: float | None
    label: str
    comment: str
    source: str
    author: str
    version: str
    negative: bool
    created_at: datetime


def insert_feedback(store: Store, tenant: str, items: Sequence[FeedbackRecord], now: datetime) -> None:
    """Write `items` for `tenant` in one INSERT; an id written before is replaced."""
    if not items:
        return
    cols: dict[str, list[Any]] = {f.name: [] for f in FEEDBACK_SCHEMA}
    for it in items:
        cols["tenant"].append(tenant)
        for name in ("id", "trace_id", "span_id", "name", "value", "label", "comment", "source", "author", "version"):
            cols[name].append(getattr(it, name))
        cols["negative"].append(1 if it.negative else 0)
        cols["created_at"].append(it.created_at)
        cols["updated_at"].append(now)
    store.insert_arrow("feedback", pa.table(cols, schema=FEEDBACK_SCHEMA))


def feedback_for_trace(store: Store, tenant: str, trace_id: str) -> list[dict[str, Any]]:
    """Every feedback item on the trace or one of its spans, oldest first."""
    return store._reader.rows(
        tenant,
        "SELECT id, trace_id, span_id, name, value, label, comment, source, author, version, negative, created_at "
        "FROM {db}.feedback FINAL WHERE tenant = {tenant:String} AND trace_id = {trace_id:String} "
        "ORDER BY created_at, id",
        {"tenant": tenant, "trace_id": trace_id},
    )


def feedback_counts(
    store: Store, tenant: str, since: datetime, until: datetime, llm_ops: Sequence[str]
) -> list[dict[str, Any]]:
    """Feedback recorded in (since, until] per service, model, release and environment of its trace
    (the root span's service, release and environment; the model of its first LLM call), with how
    much of it was negative. Feedback on a trace the store does not hold is not counted, nor are
    reviewers' labels (source 'review'): the feedback SLIs are about what users and apps said."""
    in_window = (
        "SELECT trace_id, negative FROM {db}.feedback FINAL WHERE tenant = {tenant:String} AND source != 'review' "
        "AND created_at > {since:DateTime64(3)} AND created_at <= {until:DateTime64(3)}"
    )
    root = "(parent_span_id != '', start_time)"
    return store._reader.rows(
        tenant,
        "SELECT s.service AS service, s.model AS model, s.release AS release, s.environment AS environment, "
        "count() AS n, sum(f.negative) AS bad "
        f"FROM ({in_window}) AS f INNER JOIN (SELECT trace_id, argMin(service, {root}) AS service, "
        "argMinIf(if(response_model != '', response_model, request_model), start_time, "
        "operation IN {ops:Array(String)}) AS model, "
        f"argMin(release, {root}) AS release, argMin(environment, {root}) AS environment "
        "FROM {db}.spans WHERE tenant = {tenant:String} "
        f"AND trace_id IN (SELECT trace_id FROM ({in_window})) GROUP BY trace_id) AS s ON f.trace_id = s.trace_id "
        "GROUP BY service, model, release, environment",
        {"tenant": tenant, "since": since, "until": until, "ops": list(llm_ops)},
    )
