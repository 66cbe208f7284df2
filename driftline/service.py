"""What a service is to the process that runs it: start, HTTP routes, health, and the phases of an
ordered shutdown. A process (driftline/process.py) runs one service, or all three for `driftline up`,
and walks every service through each phase before the next one: stop accepting, stop the
scheduler, flush buffers; then it closes the shared clients (STYLE.md #6). Each phase gets what is
left of one deadline (shutdown_timeout_s)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

__all__ = ["Service"]


class Service:
    """Base of the collector, scorer and API services; every phase is a no-op unless overridden."""

    name = "service"

    def start(self) -> None:
        """Start background work (threads, workers, listeners other than the HTTP one)."""

    def routers(self) -> list[APIRouter]:
        """HTTP routes this service adds to the process's app."""
        return []

    def mount(self, app: FastAPI) -> None:
        """Add this service to the process's app: its routers, and whatever else it serves."""
        for router in self.routers():
            app.include_router(router, tags=[self.name])

    def describe(self, base_url: str) -> list[str]:
        """What it serves, for the start-up banner (e.g. 'OTLP/HTTP http://host:4318/v1/traces')."""
        return []

    def health(self) -> tuple[list[str], list[str]]:
        """(problems, notes): a problem makes /readyz answer 503, a note is only reported."""
        return [], []

    def status(self) -> dict[str, object]:
        """Figures /readyz shows beside the verdict (the collector: bytes waiting in its spool)."""
        return {}

    def stop_accepting(self, deadline: float) -> None:
        """Phase 1: take no new work (listeners of its own, such as gRPC)."""

    def stop_jobs(self, deadline: float) -> None:
        """Phase 2: let a running job finish, start no other."""

    def drain(self, deadline: float) -> None:
        """Phase 3: write what is buffered (flush), stop workers."""
