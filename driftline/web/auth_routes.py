"""Sign in with an API key, sign out; and the guard every page uses."""

# No `from __future__ import annotations`: FastAPI reads these annotations at definition time.

import hmac
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from driftline.collector.errors import Unauthenticated
from driftline.collector.ratelimit import TenantRateLimiter
from driftline.web.filters import render
from driftline.web.sessions import COOKIE, Session, SessionCodec

__all__ = ["LoginRequired", "auth_router", "safe_next", "session_of"]


class LoginRequired(Exception):
    """A page asked for without a session: the app answers with the login page's address."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


def safe_next(url: str | None) -> str:
    """Only a path on this site: never an open redirect to another host."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return "/"
    return url


def session_of(request: Request, sessions: SessionCodec) -> Session:
    session = sessions.read(request.cookies.get(COOKIE))
    if session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return session


def check_csrf(session: Session, token: str) -> None:
    if not hmac.compare_digest(session.csrf, token):
        raise HTTPException(403, "stale form: reload the page and try again")


def auth_router(
    sessions: SessionCodec, templates: Jinja2Templates, failures: TenantRateLimiter | None = None
) -> APIRouter:
    """`failures`: failed sign-ins per client address; an address out of them is refused (429)
    before its key is even checked, so guessing on gets no answer, right or wrong."""
    router = APIRouter(include_in_schema=False)

    @router.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/") -> Response:
        return render(templates, request, "login.html", {"next": safe_next(next), "error": ""})

    @router.post("/login", response_class=HTMLResponse)
    def login(
        request: Request, key: Annotated[str, Form(max_length=512)], next: Annotated[str, Form()] = "/"
    ) -> Response:
        address = request.client.host if request.client is not None else ""
        wait = failures.wait_for(address) if failures is not None else 0.0
        if wait:
            ctx = {"next": safe_next(next), "error": f"Too many failed sign-ins from here: try again in {wait:.0f} s."}
            resp = render(templates, request, "login.html", ctx, status_code=429)
            resp.headers["Retry-After"] = f"{wait:.0f}"
            return resp
        try:
            token = sessions.issue(key.strip())
        except Unauthenticated:
            if failures is not None:
                failures.try_take(address, 1)
            ctx = {"next": safe_next(next), "error": "That API key is not valid."}
            return render(templates, request, "login.html", ctx, status_code=401)
        resp = RedirectResponse(safe_next(next), status_code=303)
        resp.set_cookie(
            COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return resp

    @router.post("/logout")
    def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
        session = sessions.read(request.cookies.get(COOKIE))
        if session is not None:
            check_csrf(session, csrf)
            sessions.revoke(session.token)
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return resp

    return router
