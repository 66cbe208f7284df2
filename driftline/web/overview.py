"""`GET /api/v1/overview`: quality, errors, cost and latency over time per service and release,
and the drift tests firing now: the data of the UI's overview page, for scripts too."""

# No `from __future__ import annotations`: FastAPI reads these annotations at definition time.

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from driftline.api.access import principal
from driftline.auth import Authenticator
from driftline.sli import LLM_OPS
from driftline.store import Store
from driftline.store.queries.overview import OVERVIEW_METRICS, earliest_llm_call, overview_series

__all__ = ["drift_firing", "overview_router"]


def _step_s(hours: float) -> int:
    """About 60 points whatever the range, on round steps (1, 5, 15, 60 minutes...)."""
    for step in (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 86400):
        if hours * 3600 / step <= 90:
            return step
    return 86400


# Verdicts older than this are stale: the SLI job (every 15 s by default) has stopped.
STALE_AFTER = timedelta(minutes=15)


def drift_firing(store: Store, tenant: str, now: datetime) -> list[dict[str, str]]:
    """The drift tests detecting a regression now, from the SLI job's last run as it published it
    to the store (drift_state): the API may run in a process without the job (`driftline api`)."""
    return [{k: str(v) for k, v in r.items()} for r in store.sli.drift_firing(tenant, now - STALE_AFTER)]


def overview_router(store: Store, auth: Authenticator, clock: Callable[[], datetime] | None = None) -> APIRouter:
    router = APIRouter(prefix="/api/v1")
    now = clock or (lambda: datetime.now(UTC))

    reader = principal(auth, "read")

    def tenant(request: Request) -> str:
        return reader(request).tenant

    @router.get("/overview", summary="SLIs over time per service and release, and drift firing now")
    def overview(
        t: Annotated[str, Depends(tenant)],
        hours: Annotated[float, Query(gt=0, le=24 * 30, description="look-back window")] = 24.0,
    ) -> dict[str, Any]:
        until = now()
        step = _step_s(hours)
        series = overview_series(store, t, until - timedelta(hours=hours), until, step, LLM_OPS)
        first = earliest_llm_call(store, t, until - timedelta(hours=hours), until, LLM_OPS)
        return {
            "since": (until - timedelta(hours=hours)).isoformat(),
            "until": until.isoformat(),
            "step_s": step,
            "metrics": list(OVERVIEW_METRICS),
            "series": series,
            "earliest": first.isoformat() if first else None,  # the range's first LLM call
            "drift_firing": drift_firing(store, t, until),
        }

    return router
