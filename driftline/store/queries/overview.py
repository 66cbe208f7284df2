"""The overview's series: quality, errors, cost and latency over time per service and release,
with the same rate definitions as the SLIs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from driftline.store.store import Store

__all__ = ["OVERVIEW_METRICS", "earliest_llm_call", "overview_series"]

OVERVIEW_METRICS = (
    "requests", "error_rate", "hallucination_rate", "tool_failure_rate", "negative_feedback_rate", "cost_usd",
    "latency_p95_ms",
)  # fmt: skip


def overview_series(
    store: Store, tenant: str, since: datetime, until: datetime, step_s: int, llm_ops: Sequence[str]
) -> list[dict[str, Any]]:
    """One series per (service, release): points of every metric in `OVERVIEW_METRICS`, oldest first.
    Requests, errors, cost and latency count the spans of `llm_ops` (the SLIs' LLM calls)."""
    p = {"tenant": tenant, "since": since, "until": until, "step": step_s, "ops": list(llm_ops)}
    points: dict[tuple[str, str], dict[int, dict[str, Any]]] = defaultdict(dict)
    for r in store._reader.rows(
        tenant,
        "SELECT service, release, toUnixTimestamp(toStartOfInterval(start_time, INTERVAL {step:UInt32} SECOND)) AS t, "
        "count() AS n, countIf(status_code = 'error') AS errors, sum(ifNull(cost_usd, 0)) AS cost, "
        "quantile(0.95)(duration_ms) AS p95 FROM {db}.spans FINAL WHERE tenant = {tenant:String} "
        "AND start_time > {since:DateTime64(3)} AND start_time <= {until:DateTime64(3)} "
        "AND operation IN {ops:Array(String)} GROUP BY service, release, t",
        p,
    ):
        points[(r["service"], r["release"])][int(r["t"])] = {
            "requests": r["n"],
            "error_rate": r["errors"] / r["n"],
            "cost_usd": r["cost"],
            "latency_p95_ms": r["p95"],
        }
    # The same rate definitions as the SLIs: hallucinated among scored answers with context,
    # any failure class among tool calls.
    for r in store._reader.rows(
        tenant,
        "SELECT service, release, toUnixTimestamp(toStartOfInterval(span_start_time, INTERVAL {step:UInt32} SECOND)) "
        "AS t, scorer, countIf(scorer = 'hallucination' AND label = 'hallucinated') + "
        "countIf(scorer = 'tool_failure' AND label != 'ok') AS bad, count() AS n FROM {db}.scores FINAL "
        "WHERE tenant = {tenant:String} AND span_start_time > {since:DateTime64(3)} "
        "AND span_start_time <= {until:DateTime64(3)} AND scorer IN ('hallucination', 'tool_failure') "
        "AND label NOT IN ('no_context', 'error') GROUP BY service, release, t, scorer",
        p,
    ):
        point = points[(r["service"], r["release"])].setdefault(int(r["t"]), {})
        point[f"{r['scorer']}_rate"] = r["bad"] / r["n"]
    # Negative feedback among the feedback recorded in each step, on traces of the service and
    # release (the root span's, as the SLI counts it).
    root = "(parent_span_id != '', start_time)"
    for r in store._reader.rows(
        tenant,
        "SELECT s.service AS service, s.release AS release, f.t AS t, sum(f.negative) AS bad, count() AS n FROM "
        "(SELECT trace_id, negative, toUnixTimestamp(toStartOfInterval(created_at, INTERVAL {step:UInt32} SECOND)) "
        "AS t FROM {db}.feedback FINAL WHERE tenant = {tenant:String} AND source != 'review' "
        "AND created_at > {since:DateTime64(3)} "
        "AND created_at <= {until:DateTime64(3)}) AS f INNER JOIN (SELECT trace_id, "
        f"argMin(service, {root}) AS service, argMin(release, {root}) AS release FROM {{db}}.spans "
        "WHERE tenant = {tenant:String} AND trace_id IN (SELECT trace_id FROM {db}.feedback "
        "WHERE tenant = {tenant:String} AND created_at > {since:DateTime64(3)} "
        "AND created_at <= {until:DateTime64(3)}) "
        "GROUP BY trace_id) AS s ON f.trace_id = s.trace_id GROUP BY service, release, t",
        p,
    ):
        point = points[(r["service"], r["release"])].setdefault(int(r["t"]), {})
        point["negative_feedback_rate"] = r["bad"] / r["n"]
    out = []
    for (service, release), by_t in sorted(points.items()):
        out.append(
            {
                "service": service,
                "release": release,
                "points": [{"t": t, **{m: v.get(m) for m in OVERVIEW_METRICS}} for t, v in sorted(by_t.items())],
            }
        )
    return out


def earliest_llm_call(
    store: Store, tenant: str, since: datetime, until: datetime, llm_ops: Sequence[str]
) -> datetime | None:
    """When the tenant's first LLM call in (since, until] started: the overview fits its range to it."""
    rows = store._reader.rows(
        tenant,
        "SELECT min(start_time) AS first, count() AS n FROM {db}.spans WHERE tenant = {tenant:String} "
        "AND start_time > {since:DateTime64(3)} AND start_time <= {until:DateTime64(3)} "
        "AND operation IN {ops:Array(String)}",
        {"tenant": tenant, "since": since, "until": until, "ops": list(llm_ops)},
    )
    if not rows or not rows[0]["n"]:
        return None
    first: datetime = rows[0]["first"]
    return first if first.tzinfo else first.replace(tzinfo=UTC)
