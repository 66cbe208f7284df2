"""GET /api/v1/traces (search), /traces/{id}, /sessions and /sessions/{id}."""

# No `from __future__ import annotations`: FastAPI reads these annotations at definition time.

import base64
import binascii
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request

from driftline.api.models import (
    Assessment,
    SessionDetail,
    SessionList,
    SessionSummary,
    TraceDetail,
    TraceList,
    TraceSummary,
)
from driftline.store import Store
from driftline.store.queries import feedback as fb_queries
from driftline.store.queries import sessions as session_queries
from driftline.store.queries import traces as trace_queries

__all__ = ["jsonable_span", "trace_routes"]

_HEX32 = r"^[0-9a-f]{32}$"
_DEFAULT_RANGE = timedelta(days=7)
_SESSION_RANGE = timedelta(days=30)
_FAILURE_LABELS = frozenset({"hallucinated", "refused", "pii"})
Text = Query(min_length=1, max_length=500)


def jsonable_span(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, datetime):
            out[k] = _utc(v).isoformat()
        elif isinstance(v, float) and not math.isfinite(v):
            out[k] = None
        else:
            out[k] = v
    return out


def _utc(v: datetime) -> datetime:
    """clickhouse-connect gives naive datetimes for UTC columns; a query may carry no zone either."""
    return v if v.tzinfo else v.replace(tzinfo=UTC)


def _invalid(param: str, msg: str) -> HTTPException:
    return HTTPException(422, [{"loc": ["query", param], "msg": msg, "type": "value_error"}])


def _encode_cursor(kind: str, key: tuple[Any, str]) -> str:
    raw = json.dumps([kind, key[0], key[1]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(kind: str, cursor: str | None) -> tuple[Any, str] | None:
    if cursor is None:
        return None
    try:
        got = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        ok = isinstance(got, list) and len(got) == 3 and got[0] == kind and isinstance(got[2], str)
        if ok and isinstance(got[1], int | float) and not isinstance(got[1], bool) and math.isfinite(got[1]):
            return got[1], got[2]
    except (ValueError, binascii.Error, UnicodeDecodeError):
        pass
    raise _invalid("cursor", "not a cursor of this list with this sort and order")


def _range(since: datetime | None, until: datetime | None, default: timedelta) -> tuple[datetime, datetime]:
    hi = _utc(until) if until is not None else datetime.now(UTC)
    lo = _utc(since) if since is not None else hi - default
    if lo >= hi:
        raise _invalid("since", "since must be before until")
    return lo, hi


def _summary(row: dict[str, Any]) -> TraceSummary:
    cost = row["cost_usd"]
    return TraceSummary.model_validate(
        row | {"started": _utc(row["started"]), "cost_usd": cost if cost is None or math.isfinite(cost) else None}
    )


def _score(r: dict[str, Any]) -> Assessment:
    try:
        details = json.loads(r["details"]) if r["details"] else {}
    except ValueError:
        details = {"raw": r["details"]}
    return Assessment(
        kind="score",
        id=f"{r['scorer']}:{r['scorer_version']}:{r['span_id']}",
        trace_id=r["trace_id"],
        span_id=r["span_id"],
        name=r["scorer"],
        value=r["value"] if math.isfinite(r["value"]) else None,
        label=r["label"],
        comment=r["explanation"],
        source="scorer",
        author="",
        version=r["scorer_version"],
        details=details if isinstance(details, dict) else {"value": details},
        negative=r["label"] in _FAILURE_LABELS or (r["scorer"] == "tool_failure" and r["label"] != "ok"),
        created_at=_utc(r["scored_at"]),
    )


def _feedback(r: dict[str, Any]) -> Assessment:
    return Assessment(
        kind="feedback",
        **{k: r[k] for k in ("id", "trace_id", "span_id", "name", "value", "label", "comment", "source")},
        author=r["author"],
        version=r["version"],
        details={},
        negative=bool(r["negative"]),
        created_at=_utc(r["created_at"]),
    )


def _summaries(store: Store, tenant: str, rows: list[dict[str, Any]]) -> list[TraceSummary]:
    """Summaries of the traces in `rows` (trace_id, started), in the order of `rows`. `started` may
    be any span's start (a score's), so the window reaches TRACE_SPAN either side."""
    if not rows:
        return []
    starts = [_utc(r["started"]) for r in rows]
    got = trace_queries.trace_summaries(
        store,
        tenant,
        [r["trace_id"] for r in rows],
        min(starts) - trace_queries.TRACE_SPAN,
        max(starts) + trace_queries.TRACE_SPAN,
        starts,
    )
    return [_summary(got[r["trace_id"]]) for r in rows if r["trace_id"] in got]


def _summarize(
    trace_id: str, spans: list[dict[str, Any]], scores: list[dict[str, Any]], feedback: list[dict[str, Any]]
) -> dict[str, Any]:
    """A trace's list row from rows already read: the same rules as the list's query
    (trace_queries.trace_summaries), without reading the trace a second time."""
    root = min(spans, key=lambda s: (s["parent_span_id"] != "", s["start_time"]))
    by_start = sorted(spans, key=lambda s: s["start_time"])

    def first(col: str) -> str:
        return next((str(s[col]) for s in by_start if s[col]), "")

    costs = [s["cost_usd"] for s in spans if s["cost_usd"] is not None]
    answers = [s for s in spans if s["output_text"]]
    hallucination = [r for r in scores if r["scorer"] == "hallucination"]
    worst = max(hallucination, key=lambda r: r["value"]) if hallucination else None
    errors = sum(1 for s in spans if s["status_code"] == "error")
    return {
        "trace_id": trace_id,
        "started": root["start_time"],
        "duration_ms": root["duration_ms"],
        "spans": len(spans),
        "errors": errors,
        "error": errors > 0,
        **{k: root[k] for k in ("service", "release", "environment")},
        "root_name": root["name"],
        "session_id": first("session_id"),
        "user_id": first("user_id"),
        "models": sorted({m for s in spans for m in (s["request_model"], s["response_model"]) if m}),
        "cost_usd": sum(costs) if costs else None,
        "input_tokens": sum(s["input_tokens"] or 0 for s in spans),
        "output_tokens": sum(s["output_tokens"] or 0 for s in spans),
        "tool_failures": sum(
            1 for r in scores if r["scorer"] == "tool_failure" and r["label"] not in ("ok", "error", "no_context")
        ),
        "hallucination_score": worst["value"] if worst else None,
        "hallucination_label": worst["label"] if worst else None,
        "feedback_count": len(feedback),
        "negative_feedback": sum(1 for f in feedback if f["negative"]),
        "input_preview": first("input_text")[:200],
        "output_preview": str(max(answers, key=lambda s: s["end_time"])["output_text"])[:200] if answers else "",
    }


def trace_routes(router: APIRouter, store: Store, tenant: Callable[[Request], str]) -> None:
    Tenant = Annotated[str, Depends(tenant)]

    @router.get("/traces", summary="Search traces", response_model=TraceList)
    def list_traces(
        t: Tenant,
        since: Annotated[datetime | None, Query(description="traces started at or after (default: 7 days ago)")] = None,
        until: Annotated[datetime | None, Query(description="traces started before (default: now)")] = None,
        service: Annotated[str | None, Text] = None,
        model: Annotated[str | None, Query(min_length=1, max_length=500, description="request or response")] = None,
        release: Annotated[str | None, Text] = None,
        environment: Annotated[str | None, Text] = None,
        operation: Annotated[str | None, Text] = None,
        status: Annotated[Literal["error", "ok"] | None, Query(description="some span failed / none did")] = None,
        session_id: Annotated[str | None, Text] = None,
        user_id: Annotated[str | None, Text] = None,
        scorer: Annotated[str | None, Text] = None,
        label: Annotated[str | None, Query(min_length=1, max_length=500, description="a score label")] = None,
        min_score: Annotated[float | None, Query(allow_inf_nan=False)] = None,
        max_score: Annotated[float | None, Query(allow_inf_nan=False)] = None,
        feedback: Annotated[Literal["any", "negative", "positive", "none"] | None, Query()] = None,
        q: Annotated[str | None, Query(min_length=1, max_length=500, description="text in input or output")] = None,
        sort: Annotated[Literal["time", "cost", "duration", "score"], Query()] = "time",
        order: Annotated[Literal["desc", "asc"], Query()] = "desc",
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Query(max_length=1000, description="next_cursor of the page before")] = None,
    ) -> TraceList:
        lo, hi = _range(since, until, _DEFAULT_RANGE)
        if min_score is not None and max_score is not None and min_score > max_score:
            raise _invalid("min_score", "min_score is above max_score")
        kind = f"traces:{sort}:{order}"
        query = trace_queries.TraceQuery(
            since=lo, until=hi, service=service, model=model, release=release, environment=environment,
            operation=operation, session_id=session_id, user_id=user_id, status=status, scorer=scorer,
            label=label, min_score=min_score, max_score=max_score, feedback=feedback, text=q, sort=sort,
            descending=order == "desc", limit=limit, after=_decode_cursor(kind, cursor),
        )  # fmt: skip
        rows, nxt = trace_queries.search_traces(store, t, query)
        return TraceList(
            traces=_summaries(store, t, rows), next_cursor=_encode_cursor(kind, nxt) if nxt is not None else None
        )

    @router.get("/traces/{trace_id}", summary="A trace: its spans, scores and feedback", response_model=TraceDetail)
    def get_trace(
        t: Tenant,
        trace_id: Annotated[str, Path(pattern=_HEX32, description="32 lowercase hex characters")],
    ) -> TraceDetail:
        spans = trace_queries.get_trace(store, t, trace_id)
        if not spans:
            raise HTTPException(404, f"trace {trace_id} not found")
        scores = trace_queries.trace_scores(store, t, trace_id)
        feedback = fb_queries.feedback_for_trace(store, t, trace_id)
        return TraceDetail(
            trace_id=trace_id,
            summary=_summary(_summarize(trace_id, spans, scores, feedback)),
            spans=[jsonable_span(s) for s in spans],
            scores=[_score(r) for r in scores],
            feedback=[_feedback(r) for r in feedback],
        )

    @router.get("/sessions", summary="Sessions, the most recently active first", response_model=SessionList)
    def list_sessions(
        t: Tenant,
        since: Annotated[datetime | None, Query(description="active at or after (default: 7 days ago)")] = None,
        until: Annotated[datetime | None, Query(description="active before (default: now)")] = None,
        service: Annotated[str | None, Text] = None,
        user_id: Annotated[str | None, Text] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Query(max_length=1000)] = None,
    ) -> SessionList:
        lo, hi = _range(since, until, _DEFAULT_RANGE)
        after = _decode_cursor("sessions", cursor)
        if after is not None and not isinstance(after[0], int):
            raise _invalid("cursor", "not a cursor of this list")
        rows, nxt = session_queries.list_sessions(
            store, t, lo, hi, service=service, user_id=user_id, limit=limit, after=after
        )
        return SessionList(
            sessions=[
                SessionSummary.model_validate(r | {"started": _utc(r["started"]), "ended": _utc(r["ended"])})
                for r in rows
            ],
            next_cursor=_encode_cursor("sessions", nxt) if nxt is not None else None,
        )

    @router.get("/sessions/{session_id}", summary="A session's traces, oldest first", response_model=SessionDetail)
    def get_session(
        t: Tenant,
        session_id: Annotated[str, Path(min_length=1, max_length=500)],
        since: Annotated[datetime | None, Query(description="default: 30 days ago")] = None,
        until: Annotated[datetime | None, Query(description="default: now")] = None,
    ) -> SessionDetail:
        lo, hi = _range(since, until, _SESSION_RANGE)
        rows = session_queries.session_trace_ids(store, t, session_id, lo, hi)
        if not rows:
            raise HTTPException(404, f"session {session_id} not found")
        return SessionDetail(session_id=session_id, traces=_summaries(store, t, rows))
