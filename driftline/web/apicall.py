"""One API, two faces: a page asks the JSON API for its data, in process, as a script would.

The request goes through the app itself (routing, validation, the tenant from the API key, the
store-failure handler), so a page shows exactly what `GET /api/v1/...` answers, and the API's
tests and the browser test exercise one code path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import Request

__all__ = ["ApiAnswer", "call_api", "call_api_raw"]


@dataclass(frozen=True)
class ApiAnswer:
    status: int
    body: Any
    url: str  # the JSON twin of the page, for its "JSON" link

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def error(self) -> str:
        """The API's own message for a failed call (FastAPI's `detail`, a 422's fields)."""
        if self.ok:
            return ""
        detail = self.body.get("detail") if isinstance(self.body, dict) else None
        if isinstance(detail, list):  # request validation: name each bad field
            return "; ".join(
                f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg', '')}"
                for d in detail
                if isinstance(d, dict)
            )
        return str(detail or f"HTTP {self.status}")


async def call_api(
    request: Request,
    token: str,
    method: str,
    path: str,
    params: list[tuple[str, str]] | None = None,
    json: Any = None,
) -> ApiAnswer:
    # An API bug answers 500 to the page (shown as an error), as it would to a script.
    query = httpx.QueryParams(list(params or []))
    transport = httpx.ASGITransport(app=request.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://driftline.internal") as client:
        r = await client.request(method, path, params=query, json=json, headers={"Authorization": f"Session {token}"})
    try:
        body = r.json()
    except ValueError:
        body = {"detail": r.text[:500]}
    return ApiAnswer(r.status_code, body, path + (f"?{query}" if query else ""))


async def call_api_raw(
    request: Request, token: str, path: str, params: list[tuple[str, str]] | None = None
) -> httpx.Response:
    """A GET whose answer is not JSON (a download), as the API sent it."""
    transport = httpx.ASGITransport(app=request.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://driftline.internal") as client:
        return await client.get(
            path, params=httpx.QueryParams(list(params or [])), headers={"Authorization": f"Session {token}"}
        )
