"""POST /api/v1/feedback (one item) and /api/v1/feedback/batch: feedback and external scores."""

# No `from __future__ import annotations`: FastAPI reads these annotations at definition time.

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from driftline.api.models import FeedbackAccepted, FeedbackBatch, FeedbackIn
from driftline.store import Store
from driftline.store.queries.feedback import FeedbackRecord, insert_feedback

__all__ = ["feedback_routes"]


def _record(item: FeedbackIn, now: datetime) -> FeedbackRecord:
    created = item.created_at or now
    return FeedbackRecord(
        id=item.id,
        trace_id=item.trace_id,
        span_id=item.span_id,
        name=item.name,
        value=item.value,
        label=item.label,
        comment=item.comment,
        source=item.source,
        author=item.author,
        version=item.version,
        negative=item.is_negative(),
        created_at=created if created.tzinfo else created.replace(tzinfo=UTC),
    )


def feedback_routes(
    router: APIRouter,
    store: Store,
    tenant: Callable[[Request], str],
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    Tenant = Annotated[str, Depends(tenant)]

    def accept(tenant: str, items: list[FeedbackIn]) -> FeedbackAccepted:
        now = clock()
        insert_feedback(store, tenant, [_record(it, now) for it in items], now)
        return FeedbackAccepted(accepted=len(items), ids=[it.id for it in items])

    @router.post("/feedback", summary="Record feedback on a trace or span (idempotent by id)")
    def post_feedback(t: Tenant, item: FeedbackIn) -> FeedbackAccepted:
        return accept(t, [item])

    @router.post("/feedback/batch", summary="Record up to 1000 feedback items at once (idempotent by id)")
    def post_feedback_batch(t: Tenant, batch: FeedbackBatch) -> FeedbackAccepted:
        return accept(t, batch.items)
