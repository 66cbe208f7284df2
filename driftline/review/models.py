"""Review queues as data: a queue's rules, sampling and cap, its rubric (label schema), and the JSON
shapes of the review API. Configured queues (`review_queues`) and queues made through the API are
the same `QueueDefinition`."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "DEMO_QUEUES",
    "AddItems",
    "AddedItems",
    "AgreementReport",
    "DatasetAdd",
    "DatasetAdded",
    "DatasetSummary",
    "FieldAgreement",
    "ItemLabel",
    "ItemList",
    "LabelField",
    "LabelIn",
    "QueueDefinition",
    "QueueList",
    "QueueProgress",
    "QueueRule",
    "QueueSummary",
    "ReviewItem",
    "Rubric",
    "ScorerAgreement",
    "SearchAdd",
]

_NAME = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
_FIELD = r"^[a-z][a-z0-9_]{0,63}$"
_HEX32 = r"^[0-9a-f]{32}$"

Status = Literal["open", "claimed", "disputed", "done"]
"""open: a reviewer slot is free; claimed: every slot is held by a live claim or labeled; disputed:
every reviewer labeled and they disagree (waiting for adjudication); done: the final label is known
(one reviewer's, agreeing reviewers', or an adjudication's). See workflow.py."""


class LabelField(BaseModel):
    """One field of a rubric. `scorer` ties it to an automatic scorer: the scorer's labels (mapped
    through `scorer_labels`, identity by default) are compared with this field's human values."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_FIELD, description="field key in labels and exports")
    type: Literal["categorical", "boolean", "numeric", "text"]
    description: str = Field("", max_length=2000)
    options: list[str] = Field(
        default_factory=list, max_length=20, description="categorical: the choices (keys 1-9 pick the first nine)"
    )
    min: float | None = Field(None, allow_inf_nan=False, description="numeric: lowest allowed value")
    max: float | None = Field(None, allow_inf_nan=False, description="numeric: highest allowed value")
    required: bool = False
    negative: list[str] = Field(
        default_factory=list, description="values that mark the item as a failure (e.g. 'hallucinated', 'false')"
    )
    agree_within: float = Field(0.0, ge=0, description="numeric: two reviewers agree when this close")
    scorer: str = Field("", max_length=100, description="automatic scorer this field judges (agreement, golden set)")
    scorer_labels: dict[str, str] = Field(
        default_factory=dict,
        description="scorer label -> this field's value (default: the same name); scorer labels not listed are "
        "not compared, nor are human values no scorer label maps to (e.g. 'unsure')",
    )

    @model_validator(mode="after")
    def _consistent(self) -> LabelField:
        if self.type == "categorical":
            if len(self.options) < 2:
                raise ValueError(f"field {self.name!r}: a categorical field needs at least two options")
            if len(set(self.options)) != len(self.options) or any(not o or len(o) > 100 for o in self.options):
                raise ValueError(f"field {self.name!r}: options must be distinct, 1-100 characters")
        elif self.options:
            raise ValueError(f"field {self.name!r}: only a categorical field has options")
        if self.type == "numeric":
            if self.min is None or self.max is None or self.min > self.max:
                raise ValueError(f"field {self.name!r}: a numeric field needs min <= max")
        elif self.min is not None or self.max is not None:
            raise ValueError(f"field {self.name!r}: only a numeric field has min and max")
        allowed = self.values()
        if allowed is not None:
            for v in [*self.negative, *self.scorer_labels.values()]:
                if v not in allowed:
                    raise ValueError(f"field {self.name!r}: {v!r} is not one of its values")
        if self.scorer_labels and not self.scorer:
            raise ValueError(f"field {self.name!r}: scorer_labels needs scorer")
        return self

    def values(self) -> list[str] | None:
        """The values a field can take as text, or None (numeric, text)."""
        if self.type == "categorical":
            return list(self.options)
        if self.type == "boolean":
            return ["true", "false"]
        return None

    def check(self, value: Any) -> Any:
        """The value in its stored form, or ValueError saying what is wrong."""
        if self.type == "categorical":
            if not isinstance(value, str) or value not in self.options:
                raise ValueError(f"{self.name}: must be one of {', '.join(self.options)}")
            return value
        if self.type == "boolean":
            if not isinstance(value, bool):
                raise ValueError(f"{self.name}: must be true or false")
            return value
        if self.type == "numeric":
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{self.name}: must be a number")
            assert self.min is not None and self.max is not None
            if not self.min <= value <= self.max:
                raise ValueError(f"{self.name}: must be between {self.min:g} and {self.max:g}")
            return float(value)
        if not isinstance(value, str) or len(value) > 10_000:
            raise ValueError(f"{self.name}: must be text of at most 10000 characters")
        return value


def as_text(value: Any) -> str:
    """A field value as the text categories compare on: booleans are 'true'/'false'."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Rubric(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instructions: str = Field("", max_length=20_000, description="what reviewers are asked to judge (plain text)")
    fields: list[LabelField] = Field(min_length=1, max_length=20)
    corrected_answer: bool = Field(False, description="offer a corrected answer box")

    @field_validator("fields")
    @classmethod
    def _unique(cls, v: list[LabelField]) -> list[LabelField]:
        names = [f.name for f in v]
        if len(set(names)) != len(names):
            raise ValueError("field names must be distinct")
        return v

    def field(self, name: str) -> LabelField | None:
        return next((f for f in self.fields if f.name == name), None)


class QueueRule(BaseModel):
    """What sends a trace to the queue (any rule matching does).

    - score: a scorer's score with one of `labels`, or any label but `not_labels`, and/or a value in
      [min_value, max_value] (hallucination label, any tool failure, refusal, ...).
    - outlier: a scorer's value above its `quantile` over the last `window_hours` (cost, latency).
    - feedback: negative feedback on the trace (reviewers' own labels do not count).
    - disagreement: `scorer` and `other_scorer` scored the same span with different labels
      (labels in `ignore_labels` are no verdict).
    - uncertain: a score within `margin` of `threshold`, or (with `unconfident`) one the scorer
      itself marked not confident (details.confident = false).
    - control: traces with scores and no failure at all (a random sample of passing traffic).
    `sample_rate` samples this rule's matches by a hash of the trace id.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["score", "outlier", "feedback", "disagreement", "uncertain", "control"]
    scorer: str = Field("", max_length=100)
    labels: list[str] = Field(default_factory=list, max_length=50)
    not_labels: list[str] = Field(default_factory=list, max_length=50)
    min_value: float | None = Field(None, allow_inf_nan=False)
    max_value: float | None = Field(None, allow_inf_nan=False)
    quantile: float = Field(0.99, gt=0, lt=1)
    window_hours: float = Field(24.0, gt=0, le=24 * 30)
    other_scorer: str = Field("", max_length=100)
    ignore_labels: list[str] = Field(default_factory=lambda: ["no_context", "error"], max_length=50)
    threshold: float | None = Field(None, allow_inf_nan=False)
    margin: float = Field(0.1, ge=0, allow_inf_nan=False)
    unconfident: bool = False
    sample_rate: float = Field(1.0, ge=0, le=1)

    @model_validator(mode="after")
    def _needs(self) -> QueueRule:
        k = self.kind
        if k in ("score", "outlier", "disagreement", "uncertain") and not self.scorer:
            raise ValueError(f"a {k} rule needs scorer")
        if k == "score" and not (
            self.labels or self.not_labels or self.min_value is not None or self.max_value is not None
        ):
            raise ValueError("a score rule needs labels, not_labels, min_value or max_value")
        if k == "disagreement" and not self.other_scorer:
            raise ValueError("a disagreement rule needs other_scorer")
        if k == "uncertain" and self.threshold is None and not self.unconfident:
            raise ValueError("an uncertain rule needs threshold or unconfident")
        return self


class QueueDefinition(BaseModel):
    """A review queue: where its items come from, how many, and what reviewers record."""

    model_config = ConfigDict(extra="forbid")

    description: str = Field("", max_length=2000)
    rubric: Rubric
    rules: list[QueueRule] = Field(default_factory=list, max_length=20, description="empty: items are added by hand")
    sample_rate: float = Field(1.0, ge=0, le=1, description="share of matching traces queued (by trace id hash)")
    max_per_hour: int = Field(50, ge=0, le=100_000, description="most items the filling job adds per clock hour")
    reviewers_per_item: int = Field(1, ge=1, le=5, description="distinct reviewers who label each item")
    lease_seconds: int = Field(600, ge=10, le=86_400, description="how long a claim holds an item")
    enabled: bool = Field(True, description="false: the filling job leaves this queue alone")


class QueueIn(QueueDefinition):
    name: str = Field(pattern=_NAME, description="lowercase letters, digits, '_', '.', '-'")


class QueueProgress(BaseModel):
    items: int
    open: int = Field(description="claimable by someone")
    claimed: int = Field(description="every reviewer slot held or labeled, not all labeled")
    disputed: int = Field(description="reviewers disagree: waiting for adjudication")
    done: int = Field(description="final label known")
    oldest_open_at: datetime | None = Field(description="when the oldest open item was added")
    oldest_open_age_s: float | None
    added_last_hour: int = Field(description="items the filling job added this clock hour (the cap's count)")
    by_reviewer: dict[str, int] = Field(description="labels per reviewer")


class QueueSummary(BaseModel):
    name: str
    source: Literal["config", "api"] = Field(description="configured, or made/changed through the API")
    definition: QueueDefinition
    progress: QueueProgress


class QueueList(BaseModel):
    queues: list[QueueSummary]


class ItemLabel(BaseModel):
    kind: Literal["label", "adjudication"]
    reviewer: str
    fields: dict[str, Any]
    note: str
    corrected_answer: str
    labeled_at: datetime


class FieldAgreement(BaseModel):
    field: str
    agree: bool | None = Field(description="null: not compared (free text)")
    values: dict[str, Any] = Field(description="reviewer -> value")


class ReviewItem(BaseModel):
    queue: str
    trace_id: str
    span_id: str
    rule: str
    reason: str
    scorer: str
    score_value: float | None
    score_label: str
    service: str
    release: str
    trace_start: datetime
    added_by: str
    created_at: datetime
    status: Status
    viewer: str = Field(description="the caller's reviewer name (the API key's name)")
    holders: list[str] = Field(description="reviewers holding a live claim")
    my_claim_expires_at: datetime | None = Field(description="when the caller's claim ends; null: not held")
    labeled_by: list[str] = Field(description="reviewers who labeled it")
    labels: list[ItemLabel] = Field(
        description="the caller's own label; everyone's once all reviewers are done; the adjudication"
    )
    final: dict[str, Any] | None = Field(description="the final label's fields, once done")
    agreement: list[FieldAgreement] | None = Field(description="per field, once every reviewer labeled")


class ItemList(BaseModel):
    items: list[ReviewItem]
    next_cursor: str | None


class LabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fields: dict[str, Any] = Field(description="field name -> value (categorical: an option; boolean; number; text)")
    note: str = Field("", max_length=10_000)
    corrected_answer: str = Field("", max_length=100_000)


class AddItems(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trace_ids: list[str] = Field(min_length=1, max_length=1000)

    @field_validator("trace_ids")
    @classmethod
    def _hex(cls, v: list[str]) -> list[str]:
        import re

        bad = [t for t in v if not re.fullmatch(_HEX32[1:-1], t)]
        if bad:
            raise ValueError(f"not a trace id (32 lowercase hex): {bad[0][:40]!r}")
        return v


class SearchAdd(BaseModel):
    """Add the traces a trace-list filter finds (the query parameters of GET /api/v1/traces)."""

    model_config = ConfigDict(extra="forbid")

    filter: dict[str, str] = Field(default_factory=dict, description="GET /api/v1/traces query parameters")
    limit: int = Field(50, ge=1, le=1000, description="add at most this many (the newest first)")


class AddedItems(BaseModel):
    added: int = Field(description="traces newly queued")
    already: int = Field(description="traces the queue held before")
    missing: int = Field(description="trace ids the store does not hold for this tenant")
    trace_ids: list[str] = Field(description="the traces newly queued")


class DatasetAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queue: str = Field(pattern=_NAME)


class DatasetAdded(BaseModel):
    dataset: str
    added: int = Field(description="records written (a record already there is replaced)")


class DatasetSummary(BaseModel):
    name: str
    records: int
    queues: list[str]
    updated_at: datetime


class ScorerAgreement(BaseModel):
    scorer: str
    version: str
    queue: str
    field: str
    n: int
    accuracy: float | None
    kappa: float | None
    labels: list[str] = Field(description="the confusion matrix's label order")
    confusion: list[list[int]] = Field(description="rows: human label, columns: scorer label")


class AgreementReport(BaseModel):
    since: datetime
    until: datetime
    scorers: list[ScorerAgreement]


# `driftline up --demo` with no queues configured: one queue, so the quick start has failures to
# review (the demo's ungrounded answers and failing tools) and a small control sample.
DEMO_QUEUES: dict[str, QueueDefinition] = {
    "hallucinations": QueueDefinition.model_validate(
        {
            "description": "Answers flagged as not grounded, failed tool calls, negative feedback, 5% of the rest",
            "rules": [
                {"kind": "score", "scorer": "hallucination", "labels": ["hallucinated"]},
                {"kind": "score", "scorer": "tool_failure", "not_labels": ["ok", "error", "no_context"]},
                {"kind": "feedback"},
                {"kind": "control", "sample_rate": 0.05},
            ],
            "max_per_hour": 30,
            "rubric": {
                "instructions": "Read the retrieved passages and tool results, then the answer. Is every claim "
                "in the answer supported by them?",
                "corrected_answer": True,
                "fields": [
                    {"name": "grounding", "type": "categorical", "options": ["grounded", "hallucinated", "unsure"],
                     "required": True, "negative": ["hallucinated"], "scorer": "hallucination",
                     "scorer_labels": {"grounded": "grounded", "hallucinated": "hallucinated"}},
                    {"name": "helpful", "type": "boolean", "description": "Would the user be helped by it?"},
                    {"name": "comment", "type": "text"},
                ],
            },
        }
    )
}  # fmt: skip
