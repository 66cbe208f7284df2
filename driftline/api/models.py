"""The JSON shapes of the read and feedback API. The web UI renders these same shapes, so they are
kept stable: add fields, never rename or drop one."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Assessment",
    "FeedbackAccepted",
    "FeedbackBatch",
    "FeedbackIn",
    "SessionDetail",
    "SessionList",
    "SessionSummary",
    "TraceDetail",
    "TraceList",
    "TraceSummary",
]

_HEX32 = r"^[0-9a-f]{32}$"
_SPAN_OR_EMPTY = r"^([0-9a-f]{16})?$"
# Labels that count as negative feedback when the client does not say.
NEGATIVE_LABELS = frozenset({"thumbs_down", "negative", "bad", "incorrect", "wrong"})


class Assessment(BaseModel):
    """A score or a feedback item: one shape for both (and for review labels), so the trace view,
    the SLIs and drift treat them alike."""

    kind: Literal["score", "feedback"]
    id: str = Field(description="feedback: the client's id; score: scorer:version:span_id")
    trace_id: str
    span_id: str = Field(description="'' when it is about the whole trace")
    name: str = Field(description="the scorer's name, or the feedback's name")
    value: float | None
    label: str
    comment: str = Field(description="the scorer's explanation, or the feedback comment")
    source: str = Field(description="'scorer' for automatic scores; feedback: user, app, evaluator, ...")
    author: str
    version: str = Field(description="the scorer's version, or the external evaluator's")
    details: dict[str, Any] = Field(description="the scorer's details; {} for feedback")
    negative: bool = Field(description="feedback: counts as negative; score: a failure label")
    created_at: datetime = Field(description="when it was scored or recorded")


class TraceSummary(BaseModel):
    trace_id: str
    started: datetime = Field(description="start of the root span")
    duration_ms: float = Field(description="duration of the root span")
    spans: int
    error: bool = Field(description="some span has error status")
    errors: int = Field(description="spans with error status")
    service: str
    release: str
    environment: str
    root_name: str
    session_id: str
    user_id: str
    models: list[str] = Field(description="request and response models of the trace's spans")
    cost_usd: float | None = Field(description="null when no span was priced")
    input_tokens: int
    output_tokens: int
    tool_failures: int = Field(description="tool_failure scores with a failure label")
    hallucination_score: float | None = Field(description="the worst (highest) hallucination score")
    hallucination_label: str | None = Field(description="the label of that score")
    feedback_count: int
    negative_feedback: int
    input_preview: str = Field(description="the first user input, at most 200 characters")
    output_preview: str = Field(description="the last answer, at most 200 characters")


class TraceList(BaseModel):
    traces: list[TraceSummary]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last")


class TraceDetail(BaseModel):
    trace_id: str
    summary: TraceSummary
    spans: list[dict[str, Any]] = Field(description="every span, by start time, with all its columns")
    scores: list[Assessment] = Field(description="every score of the trace and of each span")
    feedback: list[Assessment]


class SessionSummary(BaseModel):
    session_id: str
    started: datetime
    ended: datetime
    traces: int
    user_id: str
    service: str
    errors: int
    cost_usd: float | None


class SessionList(BaseModel):
    sessions: list[SessionSummary]
    next_cursor: str | None


class SessionDetail(BaseModel):
    session_id: str
    traces: list[TraceSummary] = Field(description="the conversation's traces, oldest first")


class FeedbackIn(BaseModel):
    """One feedback item. `id` makes it idempotent: posting the same id again replaces it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=128, description="the client's id for this item")
    trace_id: str = Field(pattern=_HEX32)
    span_id: str = Field("", pattern=_SPAN_OR_EMPTY, description="'' (default): the whole trace")
    name: str = Field("feedback", min_length=1, max_length=100)
    value: float | None = Field(None, allow_inf_nan=False)
    label: str = Field("", max_length=100)
    comment: str = Field("", max_length=10_000)
    source: str = Field("user", min_length=1, max_length=50, description="user, app, evaluator, ...")
    author: str = Field("", max_length=200)
    version: str = Field("", max_length=100)
    negative: bool | None = Field(
        None, description="unset: value <= 0, or label thumbs_down, negative, bad, incorrect or wrong"
    )
    created_at: datetime | None = Field(None, description="unset: when the server receives it")

    def is_negative(self) -> bool:
        if self.negative is not None:
            return self.negative
        return (self.value is not None and self.value <= 0) or self.label.lower() in NEGATIVE_LABELS


class FeedbackBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[FeedbackIn] = Field(min_length=1, max_length=1000)


class FeedbackAccepted(BaseModel):
    accepted: int
    ids: list[str]
