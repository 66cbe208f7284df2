"""LLM judges defined through the API under /api/v1/judges, per tenant: reading needs read, making,
changing and deleting need admin. A definition is checked as a configured one is (the template's
variables, the output schema, the endpoint): a bad one is a 422 naming the field. The endpoint's
key is write-only: an answer says whether one is set, never what it is. The scorer runs a new or
changed judge on its next run; its version is the definition's hash (scorers/judge_api_jobs.py)."""

# No `from __future__ import annotations`: FastAPI reads these annotations at definition time.

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from driftline.api.access import principal
from driftline.auth import Authenticator, Principal
from driftline.judge_config import JUDGE_NAME, ApiJudge, ApiJudgeIn, endpoint_allowed
from driftline.scorers.judge_book import JudgeBook, StoredJudge, TooManyJudges
from driftline.scorers.registry import SCORER_NAMES
from driftline.store import Store

__all__ = ["JudgeList", "JudgeSummary", "judge_routes", "judge_validation_errors"]

JudgeName = Annotated[str, Path(pattern=JUDGE_NAME, description="the judge's name")]


class JudgeSummary(BaseModel):
    name: str
    version: str = Field(description="the definition's hash: the scorer_version of this judge's scores")
    api_key_set: bool = Field(description="whether an endpoint key is stored (the key itself is never returned)")
    updated_at: datetime
    definition: ApiJudge = Field(description="the definition as given, without its key")


class JudgeList(BaseModel):
    judges: list[JudgeSummary]


def _summary(j: StoredJudge) -> JudgeSummary:
    return JudgeSummary(
        name=j.name, version=j.version, api_key_set=j.api_key_set, updated_at=j.updated_at, definition=j.definition
    )


def _name_taken(name: str, loc: list[str]) -> None:
    if name in SCORER_NAMES:
        raise HTTPException(
            422, [{"loc": loc, "msg": f"{name!r} is the name of a built-in scorer", "type": "value_error"}]
        )


async def judge_validation_errors(request: Request, exc: Exception) -> Response:
    """A 422 as FastAPI answers it, but on the judge routes without the refused input: a pydantic
    error carries the value it refused, and for a missing field that is the whole body, the
    endpoint's key included, which is never answered back."""
    assert isinstance(exc, RequestValidationError)
    if not request.url.path.startswith("/api/v1/judges"):
        return await request_validation_exception_handler(request, exc)
    errors = [{k: v for k, v in e.items() if k != "input"} for e in exc.errors()]
    return JSONResponse(status_code=422, content={"detail": jsonable_encoder(errors)})


def judge_routes(router: APIRouter, store: Store, auth: Authenticator, endpoints: Sequence[str] = ()) -> None:
    """`endpoints`: the operator's judge_endpoints, the only endpoints a judge made here may call."""
    book = JudgeBook(store)

    Reader = Annotated[Principal, Depends(principal(auth, "read"))]
    Admin = Annotated[Principal, Depends(principal(auth, "admin"))]
    tags: list[Any] = ["judges"]

    def put(p: Principal, name: str, body: ApiJudge) -> StoredJudge:
        if not endpoint_allowed(body.base_url, endpoints):
            msg = ("not an endpoint judges defined through the API may call: the operator lists those in "
                   "judge_endpoints" + ("" if endpoints else " (none listed)"))  # fmt: skip
            raise HTTPException(422, [{"loc": ["body", "base_url"], "msg": msg, "type": "value_error"}])
        definition = ApiJudge.model_validate(body.model_dump(exclude={"name"}) | {"api_key": body.api_key})
        try:
            return book.put(p.tenant, name, definition, key_given="api_key" in body.model_fields_set)
        except TooManyJudges as e:
            raise HTTPException(409, str(e)) from None

    @router.get("/judges", summary="The tenant's LLM judges defined through the API", response_model=JudgeList,
                tags=tags)  # fmt: skip
    def list_judges(p: Reader) -> JudgeList:
        return JudgeList(judges=[_summary(j) for j in book.judges(p.tenant)])

    @router.post("/judges", summary="Define an LLM judge (run from the scorer's next run on)",
                 response_model=JudgeSummary, status_code=201,
                 responses={409: {"description": "a judge of that name exists"}}, tags=tags)  # fmt: skip
    def make_judge(p: Admin, body: ApiJudgeIn) -> JudgeSummary:
        _name_taken(body.name, ["body", "name"])
        if book.judge(p.tenant, body.name) is not None:
            raise HTTPException(409, f"judge {body.name!r} exists: PUT /api/v1/judges/{body.name} changes it")
        return _summary(put(p, body.name, body))

    @router.get("/judges/{judge}", summary="An LLM judge", response_model=JudgeSummary, tags=tags)
    def get_judge(p: Reader, judge: JudgeName) -> JudgeSummary:
        j = book.judge(p.tenant, judge)
        if j is None:
            raise HTTPException(404, f"judge {judge!r} not found")
        return _summary(j)

    @router.put("/judges/{judge}",
                summary="Make or replace an LLM judge (a changed prompt, schema, endpoint or model is a new version)",
                response_model=JudgeSummary, tags=tags)  # fmt: skip
    def put_judge(p: Admin, judge: JudgeName, body: ApiJudge) -> JudgeSummary:
        _name_taken(judge, ["path", "judge"])
        return _summary(put(p, judge, body))

    @router.delete("/judges/{judge}", summary="Delete an LLM judge (its scores stay stored)", status_code=204,
                   tags=tags)  # fmt: skip
    def delete_judge(p: Admin, judge: JudgeName) -> Response:
        if not book.delete(p.tenant, judge):
            raise HTTPException(404, f"judge {judge!r} not found")
        return Response(status_code=204)
