"""The HTTP app of a process: each service's routes, health, readiness and /metrics."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from clickhouse_connect.driver.exceptions import OperationalError
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from driftline import __version__
from driftline.service import Service

if TYPE_CHECKING:
    from driftline.collector.service import CollectorService

__all__ = ["build_app", "create_app"]

log = logging.getLogger(__name__)


def build_app(services: Sequence[Service], registry: CollectorRegistry) -> FastAPI:
    # /docs is served by the web package from local assets (no CDN); ReDoc has none, so it is off.
    app = FastAPI(title="Driftline", version=__version__, docs_url=None, redoc_url=None)

    @app.exception_handler(OperationalError)
    async def store_unavailable(request: Request, exc: OperationalError) -> JSONResponse:
        # The store is down or unreachable: infrastructure, so retry later, never a 500.
        log.warning("store unavailable for %s: %s", request.url.path, type(exc).__name__)
        return JSONResponse({"detail": "store unavailable, retry later"}, status_code=503, headers={"Retry-After": "5"})

    for service in services:
        service.mount(app)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    def readyz(response: Response) -> dict[str, object]:
        problems: list[str] = []
        notes: list[str] = []
        for s in services:
            p, n = s.health()
            problems += p
            notes += [x for x in n if x not in notes]
        if problems:
            response.status_code = 503
        out: dict[str, object] = {"ready": not problems, "problems": problems + notes}
        for s in services:
            out.update(s.status())
        return out

    @app.get("/metrics", tags=["ops"])
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def create_app(rt: CollectorService) -> FastAPI:
    """A collector and the API over its store, in one app: how tests drive the real routes in-process."""
    from driftline.api_service import ApiService

    return build_app([rt, ApiService(rt.store, rt.auth, rt.registry)], rt.registry)
