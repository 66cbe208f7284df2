"""The read and feedback API. Every handler resolves the tenant from the API key first, and every
store call it makes takes that tenant."""

# No `from __future__ import annotations`: FastAPI reads these annotations at definition time.

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from driftline.api.access import principal
from driftline.api.feedback import feedback_routes
from driftline.api.judges import judge_routes
from driftline.api.review import review_routes
from driftline.api.scorers import scorer_routes
from driftline.api.traces import jsonable_span, trace_routes
from driftline.auth import Authenticator
from driftline.releases import compare_releases
from driftline.review.desk import ReviewDesk
from driftline.store import Store

__all__ = ["api_router", "jsonable_span"]


def api_router(
    store: Store, auth: Authenticator, desk: ReviewDesk | None = None, judge_endpoints: Sequence[str] = ()
) -> APIRouter:
    """`desk`: the review queues' workflow (default: one with no configured queues)."""
    router = APIRouter(prefix="/api/v1")

    def with_role(*roles: str) -> Callable[[Request], str]:
        who = principal(auth, *roles)

        def tenant(request: Request) -> str:
            return who(request).tenant

        return tenant

    tenant = with_role("read")
    Tenant = Annotated[str, Depends(tenant)]
    trace_routes(router, store, tenant)
    # Feedback comes from applications (their ingest key) and from reviewers.
    feedback_routes(router, store, with_role("ingest", "review"))
    review_routes(router, store, auth, desk if desk is not None else ReviewDesk(store))
    judge_routes(router, store, auth, judge_endpoints)
    scorer_routes(router, store, tenant)

    @router.get("/compare/releases", summary="Has a candidate release regressed against a baseline release?")
    def compare(
        t: Tenant,
        service: Annotated[str, Query(min_length=1)],
        baseline: Annotated[str, Query(description="the release to compare against")],
        candidate: Annotated[str, Query(description="the release under test")],
        hours: Annotated[float, Query(gt=0, le=24 * 30, description="look-back window")] = 24.0,
    ) -> dict[str, Any]:
        until = datetime.now(UTC)
        slis = compare_releases(store, t, service, baseline, candidate, until - timedelta(hours=hours), until)
        return {"service": service, "baseline": baseline, "candidate": candidate, "hours": hours, "slis": slis}

    return router
