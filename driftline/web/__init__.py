"""The web UI and the offline API docs, served by the API service.

Server-rendered (Jinja2 templates, a little plain JavaScript, uPlot for charts), every asset from
this package (`static/`), so the UI and `/docs` work without internet. Every page draws its data
from the JSON API (`apicall.call_api`). See `static/vendor/README.txt` for the vendored assets.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from driftline.auth import Authenticator
from driftline.collector.ratelimit import TenantRateLimiter
from driftline.store import Store
from driftline.web.auth_routes import LoginRequired, auth_router
from driftline.web.filters import install_filters
from driftline.web.overview import overview_router
from driftline.web.pages import pages_router
from driftline.web.review_pages import review_router
from driftline.web.sessions import SessionCodec

__all__ = ["STATIC_DIR", "mount_web"]

_HERE = Path(__file__).parent
STATIC_DIR = _HERE / "static"


def mount_web(app: FastAPI, store: Store, auth: Authenticator, login_failures_per_minute: int) -> SessionCodec:
    """Add the UI, its JSON overview endpoint and offline /docs to `app` (built with
    `docs_url=None`). Returns the sign-in sessions. `login_failures_per_minute`: failed sign-ins
    one client address may make (0: no limit)."""
    templates = Jinja2Templates(directory=str(_HERE / "templates"))
    install_filters(templates.env)
    sessions = SessionCodec(auth)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    app.include_router(overview_router(store, auth), tags=["api"])
    failures = TenantRateLimiter(login_failures_per_minute / 60, burst_s=60) if login_failures_per_minute else None
    app.include_router(auth_router(sessions, templates, failures))
    app.include_router(pages_router(sessions, templates))
    app.include_router(review_router(sessions, templates))

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Response:
        if "application/json" in request.headers.get("accept", "") and "text/html" not in request.headers.get(
            "accept", ""
        ):
            return JSONResponse({"detail": "sign in, or call /api/v1 with an API key"}, status_code=401)
        return RedirectResponse(f"/login?next={quote(exc.next_url, safe='')}", status_code=303)

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_js_url="/static/vendor/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
            swagger_ui_parameters={"validatorUrl": None},  # no call to validator.swagger.io
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    def docs_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    return sessions
