"""The API service's own metrics: requests and their duration by route template and status class.
The registry is passed in; labels come from the app's fixed set of route templates (never a path
with a trace id in it) and five status classes.

The recorder is a plain ASGI middleware. It wraps every request of the app, OTLP exports included
when the collector shares it; Starlette's `app.middleware("http")` (BaseHTTPMiddleware) would run
each of them in a task group of its own and pass the response through a memory stream."""

from __future__ import annotations

import time

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
        app.add_middleware(_Recorder, metrics=self, prefix=prefix)


class _Recorder:
    """Counts and times each HTTP request once the app has answered it, by the route the router
    matched (the router writes it into the request's scope). A request the app fails before any
    response is counted as 5xx: the server then answers 500."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics, prefix: str) -> None:
        self.app = app
        self.metrics = metrics
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "")
            if route.startswith(self.prefix):
                self.metrics.requests.labels(route, f"{status // 100}xx").inc()
                self.metrics.duration.labels(route).observe(time.perf_counter() - t0)
