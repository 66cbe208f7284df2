"""`GET /api/v1/overview`: quality, errors, cost and latency over time per service and release,
and the drift tests firing now: the data of the UI's overview page, for scripts too."""

# No `from __future__ import annotations`: FastAPI reads these annotations at definition time.

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from prometheus_client import CollectorRegistry

from driftline.auth import Authenticator
from driftline.collector.errors import Unauthenticated
from driftline.sli import LLM_OPS
from driftline.store import Store

__all__ = ["drift_firing", "overview_router", "overview_series"]

_METRICS = ("requests", "error_rate", "hallucination_rate", "tool_failure_rate", "cost_usd", "latency_p95_ms")


def _step_s(hours: float) -> int:
    """About 60 points whatever the range, on round steps (1, 5, 15, 60 minutes...)."""
    for step in (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 86400):
        if hours * 3600 / step <= 90:
            return step
    return 86400


def overview_series(store: Store, tenant: str, since: datetime, until: datetime, step_s: int) -> list[dict[str, Any]]:
    """One series per (service, release): points of every metric in `_METRICS`, oldest first."""
    p = {"tenant": tenant, "since": since, "until": until, "step": step_s, "ops": list(LLM_OPS)}
    points: dict[tuple[str, str], dict[int, dict[str, Any]]] = defaultdict(dict)
    for r in store.query(
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
    for r in store.query(
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
    out = []
    for (service, release), by_t in sorted(points.items()):
        out.append(
            {
                "service": service,
                "release": release,
                "points": [{"t": t, **{m: v.get(m) for m in _METRICS}} for t, v in sorted(by_t.items())],
            }
        )
    return out


def drift_firing(registry: CollectorRegistry, tenant: str) -> list[dict[str, str]]:
    """The drift tests detecting a regression now, as the SLI job last computed them (what
    `driftline_drift_detected == 1` shows Prometheus). Empty where no SLI job runs in this process."""
    out = []
    for family in registry.collect():
        if family.name != "driftline_drift_detected":
            continue
        for s in family.samples:
            if s.value == 1 and s.labels.get("tenant") == tenant:
                out.append({k: v for k, v in s.labels.items() if k != "tenant"})
    return sorted(out, key=lambda d: tuple(d.values()))


def overview_router(
    store: Store, auth: Authenticator, registry: CollectorRegistry, clock: Callable[[], datetime] | None = None
) -> APIRouter:
    router = APIRouter(prefix="/api/v1")
    now = clock or (lambda: datetime.now(UTC))

    def tenant(request: Request) -> str:
        try:
            return auth.tenant_for(request.headers.get("authorization"))
        except Unauthenticated as e:
            raise HTTPException(401, str(e), headers={"WWW-Authenticate": "Bearer"}) from None

    @router.get("/overview", summary="SLIs over time per service and release, and drift firing now")
    def overview(
        t: Annotated[str, Depends(tenant)],
        hours: Annotated[float, Query(gt=0, le=24 * 30, description="look-back window")] = 24.0,
    ) -> dict[str, Any]:
        until = now()
        step = _step_s(hours)
        series = overview_series(store, t, until - timedelta(hours=hours), until, step)
        return {
            "since": (until - timedelta(hours=hours)).isoformat(),
            "until": until.isoformat(),
            "step_s": step,
            "metrics": list(_METRICS),
            "series": series,
            "drift_firing": drift_firing(registry, t),
        }

    return router
