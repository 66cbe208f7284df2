"""The review API under /api/v1/review: queues, items and their workflow, export, datasets,
agreement. Roles: reading needs read or review; claiming, labelling, skipping, adding items and
datasets need review; changing queues needs admin. The reviewer is the API key's name."""

# No `from __future__ import annotations`: FastAPI reads these annotations at definition time.

import dataclasses
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from driftline.api.access import principal
from driftline.auth import Authenticator, Principal
from driftline.review.agreement import agreement
from driftline.review.desk import Conflict, NotFound, Queue, ReviewDesk
from driftline.review.golden import add_to_dataset, golden_records
from driftline.review.models import (
    AddedItems,
    AddItems,
    AgreementReport,
    DatasetAdd,
    DatasetAdded,
    DatasetSummary,
    ItemList,
    LabelIn,
    QueueDefinition,
    QueueIn,
    QueueList,
    QueueProgress,
    QueueSummary,
    ReviewItem,
    SearchAdd,
)
from driftline.review.search import search_filter
from driftline.store import Store
from driftline.store.queries import review as q
from driftline.store.queries import traces as trace_queries

__all__ = ["review_routes"]

_NAME = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
_HEX32 = r"^[0-9a-f]{32}$"
QueueName = Annotated[str, Path(pattern=_NAME)]
TraceId = Annotated[str, Path(pattern=_HEX32, description="the item's trace id")]


def review_routes(router: APIRouter, store: Store, auth: Authenticator, desk: ReviewDesk) -> None:
    Reader = Annotated[Principal, Depends(principal(auth, "read", "review"))]
    Reviewer = Annotated[Principal, Depends(principal(auth, "review"))]
    Admin = Annotated[Principal, Depends(principal(auth, "admin"))]
    Analyst = Annotated[Principal, Depends(principal(auth, "read"))]

    def queue_of(p: Principal, name: str) -> Queue:
        try:
            return desk.queue(p.tenant, name)
        except NotFound as e:
            raise HTTPException(404, str(e)) from None

    def summary(p: Principal, qu: Queue) -> QueueSummary:
        return QueueSummary(
            name=qu.name, source=qu.source, definition=qu.definition, progress=desk.progress(p.tenant, qu)
        )

    def act(fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except NotFound as e:
            raise HTTPException(404, str(e)) from None
        except Conflict as e:
            raise HTTPException(409, str(e)) from None
        except ValueError as e:
            raise HTTPException(422, [{"loc": ["body", "fields"], "msg": str(e), "type": "value_error"}]) from None

    tags: list[str | Any] = ["review"]

    @router.get("/review/queues", summary="Review queues with their progress", response_model=QueueList, tags=tags)
    def list_queues(p: Reader) -> QueueList:
        return QueueList(queues=[summary(p, qu) for qu in desk.queues(p.tenant)])

    @router.post("/review/queues", summary="Make a queue", response_model=QueueSummary, status_code=201, tags=tags)
    def make_queue(p: Admin, body: QueueIn) -> QueueSummary:
        if any(qu.name == body.name for qu in desk.queues(p.tenant)):
            raise HTTPException(409, f"queue {body.name!r} exists: PUT /api/v1/review/queues/{body.name} changes it")
        definition = QueueDefinition.model_validate(body.model_dump(exclude={"name"}))
        return summary(p, desk.put_queue(p.tenant, body.name, definition))

    @router.get("/review/queues/{queue}", summary="A queue", response_model=QueueSummary, tags=tags)
    def get_queue(p: Reader, queue: QueueName) -> QueueSummary:
        return summary(p, queue_of(p, queue))

    @router.put("/review/queues/{queue}", summary="Make or replace a queue", response_model=QueueSummary, tags=tags)
    def put_queue(p: Admin, queue: QueueName, body: QueueDefinition) -> QueueSummary:
        return summary(p, desk.put_queue(p.tenant, queue, body))

    @router.delete("/review/queues/{queue}", summary="Delete a queue (its items and labels stay stored)",
                   status_code=204, tags=tags)  # fmt: skip
    def delete_queue(p: Admin, queue: QueueName) -> Response:
        act(lambda: desk.delete_queue(p.tenant, queue))
        return Response(status_code=204)

    @router.get("/review/queues/{queue}/progress", summary="Open, claimed, disputed and done counts",
                response_model=QueueProgress, tags=tags)  # fmt: skip
    def progress(p: Reader, queue: QueueName) -> QueueProgress:
        return desk.progress(p.tenant, queue_of(p, queue))

    @router.get("/review/queues/{queue}/items", summary="A queue's items, oldest first", response_model=ItemList,
                tags=tags)  # fmt: skip
    def list_items(
        p: Reader,
        queue: QueueName,
        status: Annotated[Literal["open", "claimed", "disputed", "done"] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, Query(pattern=r"^\d{1,20}:[0-9a-f]{32}$")] = None,
    ) -> ItemList:
        got, nxt = act(lambda: desk.items(p.tenant, queue, p.name, status, limit, cursor))
        return ItemList(items=got, next_cursor=nxt)

    @router.post("/review/queues/{queue}/items", summary="Add traces by hand (from the trace view)",
                 response_model=AddedItems, tags=tags)  # fmt: skip
    def add_items(p: Reviewer, queue: QueueName, body: AddItems) -> AddedItems:
        new, already, missing = act(lambda: desk.add(p.tenant, queue, body.trace_ids, p.name))
        return AddedItems(added=len(new), already=already, missing=missing, trace_ids=new)

    @router.post("/review/queues/{queue}/items/search",
                 summary="Add the traces a trace-list filter finds (the newest first, up to limit)",
                 response_model=AddedItems, tags=tags)  # fmt: skip
    def add_search(p: Reviewer, queue: QueueName, body: SearchAdd) -> AddedItems:
        queue_of(p, queue)
        try:
            query = search_filter(body.filter, datetime.now(UTC))
        except (ValueError, ValidationError) as e:
            raise HTTPException(422, [{"loc": ["body", "filter"], "msg": str(e), "type": "value_error"}]) from None
        found: list[str] = []
        while len(found) < body.limit:
            rows, nxt = trace_queries.search_traces(store, p.tenant, query)
            found += [str(r["trace_id"]) for r in rows]
            if nxt is None:
                break
            query = dataclasses.replace(query, after=nxt)
        new, already, missing = act(lambda: desk.add(p.tenant, queue, found[: body.limit], p.name))
        return AddedItems(added=len(new), already=already, missing=missing, trace_ids=new)

    @router.post("/review/queues/{queue}/next",
                 summary="Claim the next item: the one you hold, else the oldest open one; 204 when none",
                 response_model=ReviewItem, responses={204: {"description": "nothing to review"}},
                 tags=tags)  # fmt: skip
    def claim_next(p: Reviewer, queue: QueueName) -> Any:
        item = act(lambda: desk.claim_next(p.tenant, queue, p.name))
        return item if item is not None else Response(status_code=204)

    @router.get("/review/queues/{queue}/items/{trace_id}", summary="An item: status, claim, the labels you may see",
                response_model=ReviewItem, tags=tags)  # fmt: skip
    def get_item(p: Reader, queue: QueueName, trace_id: TraceId) -> ReviewItem:
        item: ReviewItem = act(lambda: desk.item(p.tenant, queue, trace_id, p.name, see_all=p.can("admin")))
        return item

    @router.post("/review/queues/{queue}/items/{trace_id}/claim", summary="Claim an item (or renew your lease)",
                 response_model=ReviewItem, responses={409: {"description": "held by another, or done"}},
                 tags=tags)  # fmt: skip
    def claim(p: Reviewer, queue: QueueName, trace_id: TraceId) -> ReviewItem:
        item: ReviewItem = act(lambda: desk.claim(p.tenant, queue, trace_id, p.name))
        return item

    @router.post("/review/queues/{queue}/items/{trace_id}/release", summary="Give a claimed item back",
                 response_model=ReviewItem, tags=tags)  # fmt: skip
    def release(p: Reviewer, queue: QueueName, trace_id: TraceId) -> ReviewItem:
        item: ReviewItem = act(lambda: desk.release(p.tenant, queue, trace_id, p.name))
        return item

    @router.post("/review/queues/{queue}/items/{trace_id}/skip",
                 summary="Skip: the item goes back to the queue for others, never to you again",
                 response_model=ReviewItem, tags=tags)  # fmt: skip
    def skip(p: Reviewer, queue: QueueName, trace_id: TraceId) -> ReviewItem:
        item: ReviewItem = act(lambda: desk.skip(p.tenant, queue, trace_id, p.name))
        return item

    @router.post("/review/queues/{queue}/items/{trace_id}/label", summary="Label a claimed item",
                 response_model=ReviewItem, responses={409: {"description": "no live claim"}}, tags=tags)  # fmt: skip
    def label(p: Reviewer, queue: QueueName, trace_id: TraceId, body: LabelIn) -> ReviewItem:
        item: ReviewItem = act(
            lambda: desk.label(p.tenant, queue, trace_id, p.name, body.fields, body.note, body.corrected_answer)
        )
        return item

    @router.post("/review/queues/{queue}/items/{trace_id}/adjudicate",
                 summary="The final label of a disputed item (by someone who did not label it)",
                 response_model=ReviewItem, tags=tags)  # fmt: skip
    def adjudicate(p: Reviewer, queue: QueueName, trace_id: TraceId, body: LabelIn) -> ReviewItem:
        item: ReviewItem = act(lambda: desk.adjudicate(
            p.tenant, queue, trace_id, p.name, body.fields, body.note, body.corrected_answer, p.can("admin")
        ))  # fmt: skip
        return item

    def jsonl(records: Iterator[dict[str, Any]], filename: str) -> StreamingResponse:
        body = (json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)
        return StreamingResponse(
            body, media_type="application/x-ndjson",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )  # fmt: skip

    @router.get("/review/queues/{queue}/export",
                summary="The golden set: finished items as JSONL (input, context, output, labels, note, "
                "corrected answer, trace id)", response_class=StreamingResponse, tags=tags)  # fmt: skip
    def export(p: Reader, queue: QueueName) -> StreamingResponse:
        qu = queue_of(p, queue)
        records = list(golden_records(store, p.tenant, qu))  # read before answering: a store error is a 503
        return jsonl(iter(records), f"{queue}.jsonl")

    @router.get("/review/datasets", summary="Named golden datasets", response_model=list[DatasetSummary], tags=tags)
    def list_datasets(p: Reader) -> list[DatasetSummary]:
        return [
            DatasetSummary(name=r["dataset"], records=r["records"], queues=sorted(r["queues"]),
                           updated_at=r["updated_at"].replace(tzinfo=UTC))
            for r in q.datasets(store, p.tenant)
        ]  # fmt: skip

    @router.post("/review/datasets/{dataset}", summary="Add a queue's finished items to a dataset",
                 response_model=DatasetAdded, tags=tags)  # fmt: skip
    def add_dataset(p: Reviewer, dataset: QueueName, body: DatasetAdd) -> DatasetAdded:
        return DatasetAdded(dataset=dataset, added=add_to_dataset(store, p.tenant, dataset, queue_of(p, body.queue)))

    @router.get("/review/datasets/{dataset}/export", summary="A dataset as JSONL", response_class=StreamingResponse,
                tags=tags)  # fmt: skip
    def export_dataset(p: Reader, dataset: QueueName) -> StreamingResponse:
        records = q.dataset_records(store, p.tenant, dataset)
        if not records:
            raise HTTPException(404, f"dataset {dataset!r} not found")
        return jsonl((json.loads(r) for r in records), f"{dataset}.jsonl")

    @router.get("/review/agreement",
                summary="Each scorer's agreement with people's labels: accuracy, Cohen's kappa, confusion matrix",
                response_model=AgreementReport, tags=tags)  # fmt: skip
    def get_agreement(
        p: Analyst, hours: Annotated[float, Query(gt=0, le=24 * 90, description="look-back window")] = 24 * 7
    ) -> AgreementReport:
        until = datetime.now(UTC)
        since = until - timedelta(hours=hours)
        return AgreementReport(
            since=since, until=until, scorers=agreement(store, p.tenant, desk.queues(p.tenant), since, until)
        )
