"""The read API: traces and spans by tenant. Every handler resolves the tenant from the API key
first, and every query it runs is scoped to that tenant."""

# No `from __future__ import annotations`: FastAPI reads these annotations at definition time.

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request

from driftline.auth import Authenticator
from driftline.collector.errors import Unauthenticated
from driftline.releases import compare_releases
from driftline.store import Store

__all__ = ["api_router", "jsonable_span"]

_HEX32 = r"^[0-9a-f]{32}$"


def jsonable_span(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, datetime):
            out[k] = v.isoformat()
        elif isinstance(v, float) and not math.isfinite(v):
            out[k] = None
        else:
            out[k] = v
    return out


def api_router(store: Store, auth: Authenticator) -> APIRouter:
    router = APIRouter(prefix="/api/v1")

    def tenant(request: Request) -> str:
        try:
            return auth.tenant_for(request.headers.get("authorization"))
        except Unauthenticated as e:
            raise HTTPException(401, str(e), headers={"WWW-Authenticate": "Bearer"}) from None

    Tenant = Annotated[str, Depends(tenant)]

    @router.get("/traces", summary="The newest traces of the last 7 days")
    def list_traces(
        t: Tenant,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        service: Annotated[str | None, Query(description="only this service")] = None,
    ) -> dict[str, Any]:
        return {"traces": [jsonable_span(r) for r in store.recent_traces(t, limit, service)]}

    @router.get("/traces/{trace_id}", summary="A trace with all its spans")
    def get_trace(
        t: Tenant,
        trace_id: Annotated[str, Path(pattern=_HEX32, description="32 lowercase hex characters")],
    ) -> dict[str, Any]:
        spans = store.get_trace(t, trace_id)
        if not spans:
            raise HTTPException(404, f"trace {trace_id} not found")
        return {"trace_id": trace_id, "spans": [jsonable_span(s) for s in spans]}

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
