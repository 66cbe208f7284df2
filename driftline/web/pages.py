"""The pages. Each one asks the JSON API for its data (`call_api`) and renders it; asked with
`Accept: application/json`, it answers that same JSON, so every page has a JSON twin."""

# No `from __future__ import annotations`: FastAPI reads these annotations at definition time.

import secrets
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from driftline.scorers.registry import SCORER_NAMES
from driftline.web.apicall import ApiAnswer, call_api
from driftline.web.auth_routes import check_csrf, session_of
from driftline.web.filters import render
from driftline.web.sessions import Session, SessionCodec
from driftline.web.view import TRACE_FILTERS, trace_view

__all__ = ["page_response", "pages_router"]


def _wants_json(request: Request) -> bool:
    if request.query_params.get("format") == "json":
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _params(request: Request, names: tuple[str, ...]) -> list[tuple[str, str]]:
    """The page's query parameters the API takes, empty ones left out (a blank form field)."""
    return [(k, v) for k, v in request.query_params.multi_items() if k in names and v.strip() != ""]


# The overview's ranges, in hours (its template links them).
RANGES = ("1", "6", "24", "168")


def _fitting_range(body: dict[str, Any]) -> str:
    """The shortest range that reaches back to the first LLM call; 24 h without data."""
    earliest, until = body.get("earliest"), body.get("until")
    if not earliest or not until:
        return "24"
    age_h = (datetime.fromisoformat(until) - datetime.fromisoformat(earliest)).total_seconds() / 3600
    return next((r for r in RANGES if float(r) >= age_h), RANGES[-1])


def page_response(
    templates: Jinja2Templates,
    request: Request,
    session: Session,
    template: str,
    answer: ApiAnswer,
    status_code: int | None = None,
    **ctx: Any,
) -> Response:
    """A page drawn from `answer`, or that answer itself as the page's JSON twin. `status_code`: the
    page's own (a form the API refused, shown again over a good answer), else the answer's."""
    if _wants_json(request):
        return JSONResponse(answer.body, status_code=answer.status)
    base = {"tenant": session.tenant, "csrf": session.csrf, "api": answer, "json_url": answer.url}
    # The API's status carries over (a 404 trace is a 404 page), except that a page never
    # answers 401 to a signed-in browser: a key revoked since sign-in shows its error.
    status = status_code or answer.status
    status = status if status != 401 else 403
    return render(templates, request, template, base | ctx, status_code=status)


def pages_router(sessions: SessionCodec, templates: Jinja2Templates) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def page(request: Request, session: Session, template: str, answer: ApiAnswer, **ctx: Any) -> Response:
        return page_response(templates, request, session, template, answer, **ctx)

    @router.get("/", response_class=HTMLResponse)
    async def overview(request: Request) -> Response:
        s = session_of(request, sessions)
        params = _params(request, ("hours",))
        if params:
            answer = await call_api(request, s.token, "GET", "/api/v1/overview", params)
            return page(request, s, "overview.html", answer, hours=params[0][1])
        # No range asked: the shortest of the page's ranges that holds the data (a demo started
        # a few minutes ago fills the last hour, not one point of a day).
        answer = await call_api(request, s.token, "GET", "/api/v1/overview", [("hours", RANGES[-1])])
        hours = _fitting_range(answer.body) if answer.ok else RANGES[-1]
        if hours != RANGES[-1]:
            answer = await call_api(request, s.token, "GET", "/api/v1/overview", [("hours", hours)])
        return page(request, s, "overview.html", answer, hours=hours)

    @router.get("/traces", response_class=HTMLResponse)
    async def traces(request: Request) -> Response:
        s = session_of(request, sessions)
        params = _params(request, (*TRACE_FILTERS, "cursor"))
        answer = await call_api(request, s.token, "GET", "/api/v1/traces", params)
        # The scorer filter offers every scorer the tenant has (built-in, its judges, plugins'),
        # from the API like the list; the built-in ones if that call fails (the list says why).
        known = await call_api(request, s.token, "GET", "/api/v1/scorers")
        scorer_names = [x["name"] for x in known.body["scorers"]] if known.ok else list(SCORER_NAMES)
        # Alerts link here with their tenant label: a link for another tenant says so.
        linked_tenant = request.query_params.get("tenant", "")
        filters = {k: v for k, v in params if k != "cursor"}
        next_cursor = answer.body.get("next_cursor") if answer.ok and isinstance(answer.body, dict) else None
        next_url = None
        if next_cursor:
            next_url = str(request.url.include_query_params(cursor=next_cursor).remove_query_params("tenant"))
        return page(
            request,
            s,
            "traces.html",
            answer,
            filters=filters,
            scorer_names=scorer_names,
            other_tenant=linked_tenant if linked_tenant and linked_tenant != s.tenant else "",
            next_url=next_url,
        )

    @router.get("/traces/{trace_id}", response_class=HTMLResponse)
    async def trace(request: Request, trace_id: str, span: str = "", feedback_error: str = "") -> Response:
        s = session_of(request, sessions)
        answer = await call_api(request, s.token, "GET", f"/api/v1/traces/{quote(trace_id, safe='')}")
        return _trace_page(request, s, answer, span, feedback_error)

    def _trace_page(request: Request, s: Session, answer: ApiAnswer, span: str, feedback_error: str) -> Response:
        body = answer.body if answer.ok and isinstance(answer.body, dict) else {}
        return page(
            request,
            s,
            "trace.html",
            answer,
            **trace_view(body, span),
            trace_id=body.get("trace_id", request.path_params.get("trace_id", "")),
            feedback_error=feedback_error,
        )

    @router.post("/traces/{trace_id}/feedback")
    async def feedback(
        request: Request,
        trace_id: str,
        csrf: Annotated[str, Form()],
        label: Annotated[str, Form(max_length=64)],
        comment: Annotated[str, Form(max_length=4000)] = "",
        span_id: Annotated[str, Form(max_length=16)] = "",
    ) -> Response:
        s = session_of(request, sessions)
        check_csrf(s, csrf)
        item = {
            "id": "ui-" + secrets.token_hex(12),
            "trace_id": trace_id,
            "span_id": span_id,
            "name": "thumbs",
            "value": 1.0 if label == "thumbs_up" else 0.0,
            "label": label,
            "comment": comment.strip(),
            "source": "user",
            "author": f"ui:{s.tenant}",
        }
        answer = await call_api(request, s.token, "POST", "/api/v1/feedback", json=item)
        if not answer.ok:
            again = await call_api(request, s.token, "GET", f"/api/v1/traces/{quote(trace_id, safe='')}")
            return _trace_page(request, s, again, span_id, answer.error)
        suffix = f"?span={quote(span_id, safe='')}" if span_id else ""
        return RedirectResponse(f"/traces/{quote(trace_id, safe='')}{suffix}#feedback", status_code=303)

    @router.get("/sessions", response_class=HTMLResponse)
    async def session_list(request: Request) -> Response:
        s = session_of(request, sessions)
        params = _params(request, ("since", "until", "service", "user_id", "limit", "cursor"))
        answer = await call_api(request, s.token, "GET", "/api/v1/sessions", params)
        return page(request, s, "sessions.html", answer, filters=dict(params))

    @router.get("/sessions/{session_id}", response_class=HTMLResponse)
    async def session_view(request: Request, session_id: str) -> Response:
        s = session_of(request, sessions)
        answer = await call_api(request, s.token, "GET", f"/api/v1/sessions/{quote(session_id, safe='')}")
        return page(request, s, "session.html", answer, session_id=session_id)

    @router.get("/compare", response_class=HTMLResponse)
    async def compare(request: Request) -> Response:
        s = session_of(request, sessions)
        params = _params(request, ("service", "baseline", "candidate", "hours"))
        form = dict(params)
        if all(form.get(k) for k in ("service", "baseline", "candidate")):
            answer = await call_api(request, s.token, "GET", "/api/v1/compare/releases", params)
        else:  # nothing asked yet: the empty form
            answer = ApiAnswer(200, {}, "/api/v1/compare/releases")
        return page(request, s, "compare.html", answer, form=form)

    return router
