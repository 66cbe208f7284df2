"""Template helpers: number and time formats, and the one way a page is rendered (with its
security headers)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, Undefined
from starlette.responses import Response

from driftline.web.view import pretty_json

__all__ = ["install_filters", "render"]

# Pages run no inline script and load nothing from another origin. (Swagger UI's page boots with
# an inline script, so /docs goes without this header.)
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # pages show tenant data
}


def render(
    templates: Jinja2Templates, request: Request, name: str, ctx: dict[str, Any], status_code: int = 200
) -> Response:
    return templates.TemplateResponse(request, name, ctx, status_code=status_code, headers=_HEADERS)


def _missing(v: Any) -> bool:
    return v is None or isinstance(v, Undefined) or (isinstance(v, float) and not math.isfinite(v))


def _ms(v: Any) -> str:
    if _missing(v):
        return "–"
    x = float(v)
    if x >= 60_000:
        return f"{x / 60_000:.1f} min"
    if x >= 1000:
        return f"{x / 1000:.2f} s"
    return f"{x:.0f} ms" if x >= 10 else f"{x:.1f} ms"


def _usd(v: Any) -> str:
    if _missing(v):
        return "–"
    x = float(v)
    if x == 0:
        return "$0"
    return f"${x:.4f}" if x < 1 else f"${x:,.2f}"


def _num(v: Any, digits: int = 2) -> str:
    if _missing(v):
        return "–"
    if isinstance(v, int):
        return f"{v:,}"
    return f"{float(v):.{digits}f}"


def _pct(v: Any) -> str:
    return "–" if _missing(v) else f"{100 * float(v):.1f}%"


def _when(v: Any) -> str:
    """An ISO time as `YYYY-MM-DD HH:MM:SS` UTC: dense, sortable, unambiguous."""
    if not v:
        return ""
    try:
        t = datetime.fromisoformat(str(v))
    except ValueError:
        return str(v)
    if t.tzinfo is not None:
        t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%d %H:%M:%S")


def _age(v: Any) -> str:
    """A duration in seconds, coarsely: `45 s`, `12 min`, `3 h 5 min`, `4 d 2 h`."""
    if _missing(v):
        return "–"
    s = max(0, int(float(v)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def _short(v: Any, n: int = 8) -> str:
    return str(v or "")[:n]


def install_filters(env: Environment) -> None:
    env.filters.update(age=_age, ms=_ms, usd=_usd, num=_num, pct=_pct, when=_when, short=_short, prettyjson=pretty_json)
