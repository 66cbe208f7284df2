"""The API service's own metrics: requests and their duration by route template and status class.
The registry is passed in; labels come from the app's fixed set of route templates (never a path
with a trace id in it) and five status classes."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["ApiMetrics"]


class ApiMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "driftline_api_requests_total",
            "API requests by route template and status class (2xx, 4xx, ...).",
            ["route", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "driftline_api_request_duration_seconds",
            "Time to answer an API request, by route template.",
            ["route"],
            registry=registry,
        )

    def instrument(self, app: FastAPI, prefix: str = "/api/") -> None:
        """Record every request whose matched route starts with `prefix`."""

        @app.middleware("http")
        async def record(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
            t0 = time.perf_counter()
            response = await call_next(request)
            route = getattr(request.scope.get("route"), "path", "")
            if route.startswith(prefix):
                self.requests.labels(route, f"{response.status_code // 100}xx").inc()
                self.duration.labels(route).observe(time.perf_counter() - t0)
            return response
