"""GET /api/v1/scorers: every scorer a tenant has, for the trace list's scorer filter and for scripts.

The built-in scorers, the judges the tenant defined through the API, and every scorer whose scores
the tenant's store holds: configured judges and plugins' scorers among them, which the API process
may not know from its own settings (it may run apart from the scorer)."""

# No `from __future__ import annotations`: FastAPI reads these annotations at definition time.

from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from driftline.scorers.judge_book import JudgeBook
from driftline.scorers.registry import SCORER_NAMES
from driftline.store import Store

__all__ = ["ScorerInfo", "ScorerList", "scorer_routes"]

Source = Literal["builtin", "api_judge", "scores"]


class ScorerInfo(BaseModel):
    name: str
    sources: list[Source] = Field(
        description="builtin: shipped with Driftline; api_judge: a judge this tenant defined through the API; "
        "scores: the tenant has scores by this name (configured judges and plugins show here)"
    )


class ScorerList(BaseModel):
    scorers: list[ScorerInfo] = Field(description="by name")


def scorer_routes(router: APIRouter, store: Store, tenant: Callable[..., str]) -> None:
    book = JudgeBook(store)

    @router.get("/scorers", summary="Every scorer of the tenant: built-in, its API judges, and any that scored",
                response_model=ScorerList, tags=["judges"])  # fmt: skip
    def list_scorers(t: Annotated[str, Depends(tenant)]) -> ScorerList:
        found: dict[str, list[Source]] = {name: ["builtin"] for name in SCORER_NAMES}
        for j in book.judges(t):
            found.setdefault(j.name, []).append("api_judge")
        for name in store.scoring.scorer_names(t):
            found.setdefault(name, []).append("scores")
        return ScorerList(scorers=[ScorerInfo(name=n, sources=found[n]) for n in sorted(found)])
