"""The HTTP app: OTLP/HTTP, the API, health and /metrics on one port."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from clickhouse_connect.driver.exceptions import OperationalError
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from driftline import __version__
from driftline.api import api_router
from driftline.collector.receiver_http import otlp_http_router
from driftline.runtime import Runtime
from driftline.web import mount_web

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def create_app(rt: Runtime, manage_runtime: bool = False) -> FastAPI:
    """`manage_runtime`: start and stop the runtime with the app's lifespan (uvicorn does this;
    tests that drive the app in-process start the runtime themselves)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if manage_runtime:
            rt.start()
        try:
            yield
        finally:
            if manage_runtime:
                rt.stop()

    # /docs is served by the web package from local assets (no CDN); ReDoc has none, so it is off.
    app = FastAPI(title="Driftline", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)

    @app.exception_handler(OperationalError)
    async def store_unavailable(request: Request, exc: OperationalError) -> JSONResponse:
        # The store is down or unreachable: infrastructure, so retry later, never a 500.
        log.warning("store unavailable for %s: %s", request.url.path, type(exc).__name__)
        return JSONResponse({"detail": "store unavailable, retry later"}, status_code=503, headers={"Retry-After": "5"})

    otlp = otlp_http_router(rt.ingest_async, rt.auth, rt.metrics, rt.settings.max_request_bytes)
    app.include_router(otlp, tags=["otlp"])
    app.include_router(api_router(rt.store, rt.auth), tags=["api"])
    mount_web(app, rt.store, rt.auth, rt.registry)  # the UI at /, drawn from the API above

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    def readyz(response: Response) -> dict[str, object]:
        ok, problems = rt.ready()
        if not ok:
            response.status_code = 503
        return {"ready": ok, "problems": problems, "spool_bytes": rt.spool.pending_bytes if rt.spool else 0}

    @app.get("/metrics", tags=["ops"])
    def metrics() -> Response:
        return Response(generate_latest(rt.registry), media_type=CONTENT_TYPE_LATEST)

    return app
