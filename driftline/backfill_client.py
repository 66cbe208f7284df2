"""`driftline score backfill` through a running server: POST the backfill to its admin API, then
follow its progress (a bar on stderr for a person at a terminal) until it is done."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

import httpx

from driftline.progress import steps

__all__ = ["BackfillFailed", "backfill_remote"]


class BackfillFailed(Exception):
    """The server refused the backfill or it failed there; the message says why."""


def backfill_remote(
    endpoint: str, api_key: str, scorer: str, since: datetime, until: datetime, poll_s: float = 0.5
) -> dict[str, Any]:
    """The finished backfill as the server reports it (scored, failed, tenant, ...)."""
    headers = {"Authorization": f"Bearer {api_key}"}
    body = {"scorer": scorer, "since": since.isoformat(), "until": until.isoformat()}
    wait = threading.Event()
    with httpx.Client(base_url=endpoint.rstrip("/"), headers=headers, timeout=30) as client:
        try:
            r = client.post("/api/v1/admin/backfill", json=body)
        except httpx.HTTPError as e:
            raise BackfillFailed(f"cannot reach {endpoint}: {e}") from None
        if r.status_code != 202:
            raise BackfillFailed(f"{endpoint} answered {r.status_code}: {_detail(r)}")
        state: dict[str, Any] = r.json()
        with steps(f"backfill {scorer}", unit="tenant") as step:
            while state["state"] == "running":
                step(state["done"], state["total"], state["tenant"])
                wait.wait(poll_s)  # the server runs it; we only look
                r = client.get(f"/api/v1/admin/backfill/{state['id']}")
                if r.status_code != 200:
                    raise BackfillFailed(f"{endpoint} answered {r.status_code}: {_detail(r)}")
                state = r.json()
            step(state["done"], state["total"], state["tenant"])
    if state["state"] != "done":
        raise BackfillFailed(f"the backfill failed on the server ({state['error']}); see its log")
    return state


def _detail(r: httpx.Response) -> str:
    try:
        return str(r.json().get("detail", r.text))
    except ValueError:
        return r.text[:200]
