"""POST /api/v1/admin/backfill: re-score a window in the process that holds the store (a running
`driftline up` or scorer), so `driftline score backfill` works while a server owns the data
directory. One backfill at a time, in a thread; GET .../backfill/{id} reports its progress.

Admin role only, and scoped to the caller's tenant: an admin key of one tenant never re-scores
another tenant's spans.
"""

# No `from __future__ import annotations`: FastAPI reads these annotations at definition time.

import dataclasses
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from driftline.auth import Authenticator, Forbidden, Principal, Unauthenticated
from driftline.scorers.runner import RunResult, ScorerJob

__all__ = ["BackfillIn", "Backfills", "backfill_router"]

log = logging.getLogger(__name__)


class BackfillIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scorer: str = Field(min_length=1, description="scorer name, e.g. hallucination")
    since: datetime = Field(description="spans that started at or after it")
    until: datetime | None = Field(None, description="spans that started before it (default: now)")


@dataclasses.dataclass
class Backfill:
    id: str
    scorer: str
    tenant: str
    since: datetime
    until: datetime
    state: str = "running"  # running | done | failed
    done: int = 0  # tenants finished (one here: the caller's)
    total: int = 1
    scored: int = 0
    failed: int = 0
    error: str = ""

    def view(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["since"], out["until"] = self.since.isoformat(), self.until.isoformat()
        return out


class Backfills:
    """The backfills of this process: at most one running; the finished ones kept for reading."""

    def __init__(
        self, jobs: Mapping[str, ScorerJob], more: Callable[[str, str], ScorerJob | None] | None = None
    ) -> None:
        """`jobs`: the configured scorers by name; `more(tenant, name)`: a tenant's own scorer of
        that name (the judges it defined through the API), or None."""
        self.jobs = dict(jobs)
        self._more = more
        self._lock = threading.Lock()
        self._all: dict[str, Backfill] = {}
        self._running: threading.Thread | None = None

    def start(self, tenant: str, req: BackfillIn) -> Backfill:
        job = self.jobs.get(req.scorer)
        if job is None and self._more is not None:
            job = self._more(tenant, req.scorer)
        if job is None:
            raise KeyError(
                f"unknown scorer {req.scorer!r} (known: {', '.join(sorted(self.jobs))}, and the judges "
                "this tenant defined through the API, while enabled)"
            )
        until = req.until or datetime.now(UTC)
        bf = Backfill(uuid.uuid4().hex, req.scorer, tenant, _utc(req.since), _utc(until))
        with self._lock:
            if self._running is not None and self._running.is_alive():
                raise RuntimeError("a backfill is running; wait for it")
            # The same scorer and options as the scheduled job, for this tenant only, and every
            # shard: whichever replica is asked re-scores the whole window (scores are keyed, so
            # an overlap with a scheduled run replaces, never duplicates).
            opt = dataclasses.replace(job.opt, tenants=(tenant,), shard_index=0, shard_count=1)
            scoped = ScorerJob(job.scorer, job.store, opt, job.clock)
            self._all[bf.id] = bf
            self._running = threading.Thread(target=self._run, args=(bf, scoped), name="backfill", daemon=True)
            self._running.start()
        return bf

    def _run(self, bf: Backfill, job: ScorerJob) -> None:
        try:
            r = job.backfill(bf.since, bf.until, on_page=lambda so_far: _progress(bf, so_far))
        except Exception as e:  # reported to the caller; the scheduler keeps running
            log.exception("backfill %s of %s failed", bf.id, bf.scorer)
            bf.state, bf.error = "failed", type(e).__name__
            return
        bf.scored, bf.failed, bf.done, bf.state = r.scored, r.failed, bf.total, "done"

    def get(self, bf_id: str, tenant: str) -> Backfill | None:
        bf = self._all.get(bf_id)
        return bf if bf is not None and bf.tenant == tenant else None

    def wait(self, timeout_s: float) -> None:
        """For shutdown: let a running backfill finish, up to the deadline."""
        t = self._running
        if t is not None:
            t.join(timeout_s)


def _progress(bf: Backfill, so_far: RunResult) -> None:
    """After each page: GET .../backfill/{id} shows the spans scored so far."""
    bf.scored, bf.failed = so_far.scored, so_far.failed


def _utc(d: datetime) -> datetime:
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def backfill_router(backfills: Backfills, auth: Authenticator) -> APIRouter:
    router = APIRouter(prefix="/api/v1/admin")

    def admin(request: Request) -> Principal:
        try:
            return auth.require(request.headers.get("authorization"), "admin")
        except Forbidden as e:
            raise HTTPException(403, str(e)) from None
        except Unauthenticated as e:
            raise HTTPException(401, str(e), headers={"WWW-Authenticate": "Bearer"}) from None

    Admin = Annotated[Principal, Depends(admin)]

    @router.post("/backfill", status_code=202, summary="Re-score a window of the caller's spans now")
    def start(who: Admin, req: BackfillIn) -> dict[str, Any]:
        try:
            return backfills.start(who.tenant, req).view()
        except KeyError as e:
            raise HTTPException(400, str(e.args[0])) from None
        except RuntimeError as e:
            raise HTTPException(409, str(e), headers={"Retry-After": "10"}) from None

    @router.get("/backfill/{bf_id}", summary="A backfill's progress")
    def progress(who: Admin, bf_id: str) -> dict[str, Any]:
        bf = backfills.get(bf_id, who.tenant)
        if bf is None:
            raise HTTPException(404, f"backfill {bf_id} not found")
        return bf.view()

    return router
