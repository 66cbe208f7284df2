"""The API service: the read API (traces, releases), and the routes feedback, review and the web UI
add. It holds no background work: its stop is the HTTP server's. Its readiness is the HTTP server's
too: a read while the store is down answers 503 + Retry-After on its own."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from prometheus_client import CollectorRegistry

from driftline.api import api_router
from driftline.api.judges import judge_validation_errors
from driftline.api_metrics import ApiMetrics
from driftline.auth import Authenticator
from driftline.config import ApiSettings
from driftline.review.desk import ReviewDesk
from driftline.service import Service
from driftline.store import Store

__all__ = ["ApiService", "run"]


class ApiService(Service):
    name = "api"

    def __init__(
        self,
        store: Store,
        auth: Authenticator,
        registry: CollectorRegistry,
        metrics: ApiMetrics | None = None,
        settings: ApiSettings | None = None,
        judge_endpoints: Sequence[str] | None = None,
    ) -> None:
        """`registry`: the process's; `metrics`: the API's own, registered there unless given;
        `settings`: the configured review queues and the claim settle time (default: none, 0)."""
        self.store = store
        self.auth = auth
        self.registry = registry
        self.metrics = metrics or ApiMetrics(registry)
        # judge_endpoints: given, or the settings' (a collector's runtime in tests has no ApiSettings).
        self.judge_endpoints = list(
            judge_endpoints if judge_endpoints is not None else settings.judge_endpoints if settings is not None else ()
        )
        self.login_failures_per_minute: int = (
            settings.login_failures_per_minute
            if settings is not None
            else ApiSettings.model_fields["login_failures_per_minute"].default
        )
        self.review = ReviewDesk(
            store,
            settings.review_queues if settings is not None else {},
            settle_s=settings.review_claim_settle_s if settings is not None else 0.0,
        )

    def routers(self) -> list[APIRouter]:
        return [api_router(self.store, self.auth, self.review, self.judge_endpoints)]

    def mount(self, app: FastAPI) -> None:
        from driftline.web import mount_web

        super().mount(app)
        app.add_exception_handler(RequestValidationError, judge_validation_errors)
        self.metrics.instrument(app)
        mount_web(app, self.store, self.auth, self.login_failures_per_minute)  # the UI at /, drawn from the API above

    def describe(self, base_url: str) -> list[str]:
        return [f"UI {base_url}/", f"API {base_url}/api/v1"]


def run(settings: ApiSettings) -> int:
    """`driftline api`: the read API (and later the UI) over a ClickHouse server."""
    from driftline.process import run_services

    return run_services("api", settings, lambda ctx: [ApiService(ctx.store, ctx.auth, ctx.registry, settings=settings)])
