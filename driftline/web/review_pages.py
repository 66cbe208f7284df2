"""The review pages: the queues, a queue, an item (the whole trace with the rubric beside it), the
adjudication of a disagreement, adding traces by hand, golden sets and agreement. Each asks the
review API for its data (`call_api`), as a script would; the forms post here, and the page calls
the API and goes on to the next item."""

# No `from __future__ import annotations`: FastAPI reads these annotations at definition time.

import asyncio
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from driftline.web.apicall import ApiAnswer, call_api, call_api_raw
from driftline.web.auth_routes import check_csrf, safe_next, session_of
from driftline.web.pages import page_response
from driftline.web.review_api import (
    TYPE_PREFIX,
    agreement_path,
    datasets_path,
    export_path,
    form_values,
    item_path,
    label_values,
    queue_path,
    queues_path,
)
from driftline.web.sessions import Session, SessionCodec
from driftline.web.view import trace_view

__all__ = ["review_router"]

STATUSES = ("open", "claimed", "disputed", "done")
# What a redirect back to a page says happened (a code in its query, never free text).
NOTICES = {
    "labeled": "Label saved.",
    "skipped": "Skipped: the item goes back to the queue for someone else.",
    "released": "Released: the item is open again.",
    "adjudicated": "Final label saved.",
    "empty": "Nothing left in this queue for you to label right now.",
}


def _page(url: str, **query: str) -> str:
    q = {k: v for k, v in query.items() if v}
    return url + (f"?{urlencode(q)}" if q else "")


def _queue_url(queue: str, **query: str) -> str:
    return _page(f"/review/queues/{quote(queue, safe='')}", **query)


def _item_url(queue: str, trace_id: str, **query: str) -> str:
    return _page(f"/review/queues/{quote(queue, safe='')}/items/{quote(trace_id, safe='')}", **query)


def _body(answer: ApiAnswer) -> dict[str, Any]:
    return answer.body if answer.ok and isinstance(answer.body, dict) else {}


def _see_other(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


def download(r: httpx.Response, name: str) -> Response:
    """The API's JSONL answer as a file download (its error as it is)."""
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    if r.status_code == 200:
        safe = "".join(c for c in name if c.isalnum() or c in "._-") or "golden"
        headers["Content-Disposition"] = f'attachment; filename="{safe}.jsonl"'
    media = r.headers.get("content-type", "application/octet-stream")
    return Response(r.content, status_code=r.status_code, media_type=media, headers=headers)


def review_router(sessions: SessionCodec, templates: Jinja2Templates) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def page(request: Request, s: Session, template: str, answer: ApiAnswer, **ctx: Any) -> Response:
        notice = NOTICES.get(request.query_params.get("notice", ""), "")
        return page_response(templates, request, s, template, answer, nav="review", notice=notice, **ctx)

    async def form_of(request: Request, s: Session) -> dict[str, str]:
        form = await request.form()
        values = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        check_csrf(s, values.get("csrf", ""))
        return values

    @router.get("/review", response_class=HTMLResponse)
    async def queues(request: Request) -> Response:
        s = session_of(request, sessions)
        answer = await call_api(request, s.token, "GET", queues_path())
        return page(request, s, "review_queues.html", answer)

    @router.get("/review/queues/{queue}", response_class=HTMLResponse)
    async def queue(request: Request, queue: str, status: str = "", cursor: str = "") -> Response:
        s = session_of(request, sessions)
        params = [(k, v) for k, v in (("status", status), ("cursor", cursor)) if v]
        answer, items = await asyncio.gather(
            call_api(request, s.token, "GET", queue_path(queue)),
            call_api(request, s.token, "GET", queue_path(queue) + "/items", params),
        )
        return page(request, s, "review_queue.html", answer, queue=queue, status=status, items=items, statuses=STATUSES)

    async def claim_next(request: Request, s: Session, queue: str) -> Response:
        """Claim the next item for this reviewer and open it; the queue page when none is left."""
        answer = await call_api(request, s.token, "POST", queue_path(queue) + "/next")
        if answer.status == 204:
            return _see_other(_queue_url(queue, notice="empty"))
        trace_id = _body(answer).get("trace_id")
        if answer.ok and trace_id:
            return _see_other(_item_url(queue, str(trace_id)))
        return page(request, s, "review_queue.html", answer, queue=queue, status="", items=answer, statuses=STATUSES)

    @router.post("/review/queues/{queue}/next")
    async def next_item(request: Request, queue: str) -> Response:
        s = session_of(request, sessions)
        await form_of(request, s)
        return await claim_next(request, s, queue)

    async def item_page(
        request: Request,
        s: Session,
        queue: str,
        trace_id: str,
        item: ApiAnswer,
        *,
        adjudicate: bool = False,
        error: str = "",
        status: int | None = None,
        values: dict[str, str] | None = None,
    ) -> Response:
        # Both at once: each API call is a thread of the app's pool.
        q, trace = await asyncio.gather(
            call_api(request, s.token, "GET", queue_path(queue)),
            call_api(request, s.token, "GET", f"/api/v1/traces/{quote(trace_id, safe='')}"),
        )
        it = _body(item)
        own = [lb for lb in it.get("labels", []) if lb.get("kind") == "label"]
        if values is None:  # a reviewer's own label (the API shows others' only once all are done)
            values = form_values(own[0]) if len(own) == 1 and it.get("status") != "done" else {}
        return page(
            request,
            s,
            "review_item.html",
            item,
            **trace_view(_body(trace), str(it.get("span_id") or "")),  # the span that sent it here
            queue=queue,
            trace_id=trace_id,
            item=it,
            queue_info=_body(q),
            queue_error="" if q.ok else q.error,
            trace_error="" if trace.ok else trace.error,
            adjudicate=adjudicate,
            error=error,
            values=values,
            status_code=status,
        )

    @router.get("/review/queues/{queue}/items/{trace_id}", response_class=HTMLResponse)
    async def item(request: Request, queue: str, trace_id: str) -> Response:
        s = session_of(request, sessions)
        answer = await call_api(request, s.token, "GET", item_path(queue, trace_id))
        return await item_page(request, s, queue, trace_id, answer)

    @router.get("/review/queues/{queue}/items/{trace_id}/adjudicate", response_class=HTMLResponse)
    async def adjudicate_view(request: Request, queue: str, trace_id: str) -> Response:
        s = session_of(request, sessions)
        answer = await call_api(request, s.token, "GET", item_path(queue, trace_id))
        return await item_page(request, s, queue, trace_id, answer, adjudicate=True)

    @router.post("/review/queues/{queue}/items/{trace_id}/claim")
    async def claim(request: Request, queue: str, trace_id: str) -> Response:
        s = session_of(request, sessions)
        await form_of(request, s)
        answer = await call_api(request, s.token, "POST", item_path(queue, trace_id) + "/claim")
        if answer.ok:
            return _see_other(_item_url(queue, trace_id))
        item = await call_api(request, s.token, "GET", item_path(queue, trace_id))
        return await item_page(request, s, queue, trace_id, item, error=answer.error, status=answer.status)

    async def write_label(request: Request, queue: str, trace_id: str, kind: str) -> Response:
        s = session_of(request, sessions)
        form = await form_of(request, s)
        # The form names each field's type (`type.<name>`), so the page need not read the queue
        # again to type the answers; the API checks them against the rubric it holds.
        fields = [
            {"name": k.removeprefix(TYPE_PREFIX), "type": v} for k, v in form.items() if k.startswith(TYPE_PREFIX)
        ]
        body = {
            "fields": label_values(fields, form),
            "note": form.get("note", ""),
            "corrected_answer": form.get("corrected_answer", ""),
        }
        path = item_path(queue, trace_id) + f"/{kind}"
        answer = await call_api(request, s.token, "POST", path, json=body)
        if answer.status == 409 and kind == "label":
            # The claim ran out while the reviewer read: claim again (if no one else has) and save.
            again = await call_api(request, s.token, "POST", item_path(queue, trace_id) + "/claim")
            if again.ok:
                answer = await call_api(request, s.token, "POST", path, json=body)
        if not answer.ok:
            item = await call_api(request, s.token, "GET", item_path(queue, trace_id))
            return await item_page(
                request,
                s,
                queue,
                trace_id,
                item,
                adjudicate=kind == "adjudicate",
                error=answer.error,
                status=answer.status,
                values=form,
            )
        if kind == "adjudicate":
            return _see_other(_queue_url(queue, status="disputed", notice="adjudicated"))
        return await claim_next(request, s, queue)

    @router.post("/review/queues/{queue}/items/{trace_id}/label")
    async def label(request: Request, queue: str, trace_id: str) -> Response:
        return await write_label(request, queue, trace_id, "label")

    @router.post("/review/queues/{queue}/items/{trace_id}/adjudicate")
    async def adjudicate(request: Request, queue: str, trace_id: str) -> Response:
        return await write_label(request, queue, trace_id, "adjudicate")

    async def let_go(request: Request, queue: str, trace_id: str, kind: str) -> Response:
        s = session_of(request, sessions)
        await form_of(request, s)
        answer = await call_api(request, s.token, "POST", item_path(queue, trace_id) + f"/{kind}")
        if not answer.ok:
            item = await call_api(request, s.token, "GET", item_path(queue, trace_id))
            return await item_page(request, s, queue, trace_id, item, error=answer.error, status=answer.status)
        if kind == "skip":
            return await claim_next(request, s, queue)
        return _see_other(_queue_url(queue, notice="released"))

    @router.post("/review/queues/{queue}/items/{trace_id}/skip")
    async def skip(request: Request, queue: str, trace_id: str) -> Response:
        return await let_go(request, queue, trace_id, "skip")

    @router.post("/review/queues/{queue}/items/{trace_id}/release")
    async def release(request: Request, queue: str, trace_id: str) -> Response:
        return await let_go(request, queue, trace_id, "release")

    # -- adding traces by hand: from a trace, or the traces a filtered list shows ----------------
    @router.get("/review/add", response_class=HTMLResponse)
    async def add_form(request: Request) -> Response:
        s = session_of(request, sessions)
        trace_ids = [t for t in request.query_params.getlist("trace_id") if t]
        answer = await call_api(request, s.token, "GET", queues_path())
        back = safe_next(request.query_params.get("back"))
        return page(request, s, "review_add.html", answer, trace_ids=trace_ids, back=back, result=None)

    @router.post("/review/add", response_class=HTMLResponse)
    async def add(request: Request) -> Response:
        s = session_of(request, sessions)
        form = await request.form()
        check_csrf(s, str(form.get("csrf", "")))
        trace_ids = [str(t) for t in form.getlist("trace_id") if str(t)]
        queue = str(form.get("queue", ""))
        back = safe_next(str(form.get("back", "")))
        answer = await call_api(request, s.token, "POST", queue_path(queue) + "/items", json={"trace_ids": trace_ids})
        if not answer.ok:  # the chooser again, with the API's reason
            queues = await call_api(request, s.token, "GET", queues_path())
            ctx = {"trace_ids": trace_ids, "back": back, "result": None, "error": answer.error}
            return page(request, s, "review_add.html", queues, status_code=answer.status, **ctx)
        return page(
            request, s, "review_add.html", answer, trace_ids=trace_ids, back=back, result=answer.body, queue=queue
        )

    # -- golden sets and agreement ---------------------------------------------------------------
    @router.post("/review/queues/{queue}/dataset")
    async def to_dataset(request: Request, queue: str) -> Response:
        s = session_of(request, sessions)
        form = await form_of(request, s)
        name = form.get("dataset", "").strip() or queue
        answer = await call_api(
            request, s.token, "POST", f"{datasets_path()}/{quote(name, safe='')}", json={"queue": queue}
        )
        if not answer.ok:
            return page(request, s, "review_datasets.html", answer, added=None)
        return _see_other(_page("/review/datasets", added=name, n=str(_body(answer).get("added", ""))))

    @router.get("/review/datasets", response_class=HTMLResponse)
    async def datasets(request: Request, added: str = "", n: str = "") -> Response:
        s = session_of(request, sessions)
        answer = await call_api(request, s.token, "GET", datasets_path())
        return page(request, s, "review_datasets.html", answer, added={"name": added, "n": n} if added else None)

    @router.get("/review/datasets/{name}/export")
    async def export(request: Request, name: str) -> Response:
        s = session_of(request, sessions)
        return download(await call_api_raw(request, s.token, export_path(name)), name)

    @router.get("/review/queues/{queue}/export")
    async def export_queue(request: Request, queue: str) -> Response:
        s = session_of(request, sessions)
        return download(await call_api_raw(request, s.token, queue_path(queue) + "/export"), queue)

    @router.get("/review/agreement", response_class=HTMLResponse)
    async def agreement(request: Request) -> Response:
        s = session_of(request, sessions)
        params = [(k, v) for k, v in request.query_params.multi_items() if k == "hours" and v]
        answer = await call_api(request, s.token, "GET", agreement_path(), params)
        shown = {k: v for k, v in request.query_params.items() if k in ("queue", "scorer") and v}  # narrows the rows
        return page(request, s, "review_agreement.html", answer, form=dict(params) | shown)

    return router
