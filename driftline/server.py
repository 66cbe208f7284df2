"""The HTTP app of a process: each service's routes, health, readiness; and /metrics, on its own
listener (metrics_host:metrics_port, loopback by default) or on the HTTP port, behind a bearer
token when one is set."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from driftline import __version__
from driftline.service import Service
from driftline.store.errors import STORE_ERRORS, StoreUnavailable

if TYPE_CHECKING:
    from driftline.collector.service import CollectorService

__all__ = ["build_app", "by_listener", "create_app", "metrics_app"]

log = logging.getLogger(__name__)


def _metrics_router(registry: CollectorRegistry, token: str) -> APIRouter:
    router = APIRouter()
    expected = f"Bearer {token}".encode()

    @router.get("/metrics", tags=["ops"])
    def metrics(request: Request) -> Response:
        if token:
            sent = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(sent, expected):  # constant time: no guessing by timing
                return Response("scrape token required\n", status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router


def metrics_app(registry: CollectorRegistry, token: str = "") -> FastAPI:
    """The /metrics listener's app: /metrics and nothing else."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(_metrics_router(registry, token))
    return app


ASGIApp = Any  # (scope, receive, send) -> awaitable; Starlette's type needs its private module


def by_listener(main: ASGIApp, metrics: ASGIApp, metrics_port: int) -> ASGIApp:
    """One uvicorn server, two listeners: a request reaching the metrics port gets `metrics`,
    every other one (and the lifespan) `main`."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        server = scope.get("server")
        if scope["type"] == "http" and server and server[1] == metrics_port:
            await metrics(scope, receive, send)
        else:
            await main(scope, receive, send)

    return app


def build_app(
    services: Sequence[Service], registry: CollectorRegistry, *, metrics: bool = True, metrics_token: str = ""
) -> FastAPI:
    """`metrics`: serve /metrics on this app too (false when it has a listener of its own)."""
    # /docs is served by the web package from local assets (no CDN); ReDoc has none, so it is off.
    app = FastAPI(title="Driftline", version=__version__, docs_url=None, redoc_url=None)

    async def store_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # Any store failure is infrastructure to the caller: retry later, never a 500.
        # driftline/store/errors.py classifies the exception types.
        cause = exc.__cause__ if isinstance(exc, StoreUnavailable) and exc.__cause__ else exc
        log.warning("store unavailable for %s: %s", request.url.path, type(cause).__name__)
        return JSONResponse(
            {"detail": "store unavailable, retry later"},
            status_code=503,
            headers={"Retry-After": str(StoreUnavailable.retry_after_s)},
        )

    store_errors: tuple[type[Exception], ...] = (StoreUnavailable, *STORE_ERRORS)
    for exc_type in store_errors:
        app.add_exception_handler(exc_type, store_unavailable)

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

    if metrics:
        app.include_router(_metrics_router(registry, metrics_token))
    return app


def create_app(rt: CollectorService) -> FastAPI:
    """A collector and the API over its store, with /metrics, in one app: how tests drive the real
    routes in-process."""
    from driftline.api_metrics import ApiMetrics
    from driftline.api_service import ApiService

    # Tests build many apps over one collector: the API's request metrics get a registry per app.
    api = ApiService(
        rt.store,
        rt.auth,
        rt.registry,
        metrics=ApiMetrics(CollectorRegistry()),
        judge_endpoints=rt.settings.judge_endpoints,
    )
    return build_app([rt, api], rt.registry)
