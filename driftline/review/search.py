"""A trace-list filter (the query parameters of GET /api/v1/traces, as the UI's list carries them)
turned into the store's TraceQuery, for "add these N to a queue"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from driftline.store.queries.traces import TraceQuery

__all__ = ["search_filter"]

_Text = Field(None, min_length=1, max_length=500)


class _Filter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: datetime | None = None
    until: datetime | None = None
    service: str | None = _Text
    model: str | None = _Text
    release: str | None = _Text
    environment: str | None = _Text
    operation: str | None = _Text
    status: Literal["error", "ok"] | None = None
    session_id: str | None = _Text
    user_id: str | None = _Text
    scorer: str | None = _Text
    label: str | None = _Text
    min_score: float | None = Field(None, allow_inf_nan=False)
    max_score: float | None = Field(None, allow_inf_nan=False)
    feedback: Literal["any", "negative", "positive", "none"] | None = None
    q: str | None = _Text
    # The list's own paging and order are not part of the filter: the newest come first.
    sort: str | None = None
    order: str | None = None
    limit: str | None = None
    cursor: str | None = None


def _utc(v: datetime) -> datetime:
    return v if v.tzinfo else v.replace(tzinfo=UTC)


def search_filter(params: dict[str, str], now: datetime) -> TraceQuery:
    """The TraceQuery of these parameters (empty values are unset, as in a submitted form);
    ValueError or ValidationError on a bad one."""
    f = _Filter.model_validate({k: v for k, v in params.items() if v != ""})
    hi = _utc(f.until) if f.until else now
    lo = _utc(f.since) if f.since else hi - timedelta(days=7)
    if lo >= hi:
        raise ValueError("since must be before until")
    if f.min_score is not None and f.max_score is not None and f.min_score > f.max_score:
        raise ValueError("min_score is above max_score")
    return TraceQuery(
        since=lo, until=hi, service=f.service, model=f.model, release=f.release, environment=f.environment,
        operation=f.operation, session_id=f.session_id, user_id=f.user_id, status=f.status, scorer=f.scorer,
        label=f.label, min_score=f.min_score, max_score=f.max_score, feedback=f.feedback, text=f.q,
        sort="time", descending=True, limit=200,
    )  # fmt: skip
