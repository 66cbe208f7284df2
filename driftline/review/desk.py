"""The review desk: queue definitions, items and the workflow (claim, label, skip, release,
adjudicate) for the API. Every method takes the tenant; every store call is scoped to it.

Claims on a store without transactions. Every claim, label, skip and release of a queue goes
through one lock per (tenant, queue) in this process: under it the desk folds the item's rows
(workflow.py), writes its event, and reads the item back, so within one API process two reviewers
can never both hold a claim. Across several API replicas the rows decide: every replica folds the
same rows to the same holder, and a claim that a replica finds beaten on read-back is released at
once. What a replica cannot see is a racing claim still in flight; `settle_s` waits that long before
the read-back (it must exceed the store's insert-to-visible delay plus the replicas' clock skew).
On a ClickHouse server with replicated tables that means inserts with `insert_quorum` and reads
with `select_sequential_consistency`; without them, two replicas racing within the delay can
both believe they hold one item for at most one lease. `driftline up` runs one process: exact.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from driftline.review.models import ItemLabel, QueueDefinition, QueueProgress, ReviewItem
from driftline.review.workflow import Event, ItemState, Label, claim_stands, final_fields, fold, utc, validate_label
from driftline.store import Store
from driftline.store.queries import review as q
from driftline.store.queries.feedback import FeedbackRecord, insert_feedback

__all__ = ["Conflict", "NotFound", "Queue", "ReviewDesk", "label_row"]


class NotFound(LookupError):
    """No such queue or item for this tenant (404)."""


class Conflict(Exception):
    """The item is not in a state that allows this (409): held by another, not held, done, ..."""


@dataclass(frozen=True)
class Queue:
    name: str
    source: str  # config, api
    definition: QueueDefinition


def label_row(row: Mapping[str, Any]) -> Label:
    try:
        fields = json.loads(row["fields"]) if row["fields"] else {}
    except ValueError:
        fields = {}
    return Label(
        str(row["kind"]), str(row["reviewer"]), fields if isinstance(fields, dict) else {},
        str(row["note"]), str(row["corrected_answer"]), utc(row["labeled_at"]),
    )  # fmt: skip


class ReviewDesk:
    def __init__(
        self,
        store: Store,
        configured: Mapping[str, QueueDefinition] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        settle_s: float = 0.0,
    ) -> None:
        self.store = store
        self.configured = dict(configured or {})
        self._clock = clock
        self.settle_s = settle_s
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._last = datetime(1970, 1, 1, tzinfo=UTC)
        self._clock_guard = threading.Lock()

    # -- time and locks ---------------------------------------------------------------------
    def now(self) -> datetime:
        """The clock, strictly increasing in this process (events are ordered by their time)."""
        with self._clock_guard:
            t = utc(self._clock())
            t = max(t, self._last + timedelta(microseconds=1))
            self._last = t
            return t

    def _lock(self, tenant: str, queue: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault((tenant, queue), threading.Lock())

    # -- queues -----------------------------------------------------------------------------
    def queues(self, tenant: str) -> list[Queue]:
        stored = {r["name"]: r for r in q.stored_queues(self.store, tenant)}
        out: dict[str, Queue] = {n: Queue(n, "config", d) for n, d in self.configured.items()}
        for name, r in stored.items():
            if r["deleted"]:
                out.pop(name, None)
            else:
                out[name] = Queue(name, "api", QueueDefinition.model_validate_json(r["definition"]))
        return [out[n] for n in sorted(out)]

    def queue(self, tenant: str, name: str) -> Queue:
        for qu in self.queues(tenant):
            if qu.name == name:
                return qu
        raise NotFound(f"queue {name!r} not found")

    def put_queue(self, tenant: str, name: str, definition: QueueDefinition) -> Queue:
        q.insert_queue(self.store, tenant, name, definition.model_dump_json(), False, self.now())
        return Queue(name, "api", definition)

    def delete_queue(self, tenant: str, name: str) -> None:
        qu = self.queue(tenant, name)
        q.insert_queue(self.store, tenant, name, qu.definition.model_dump_json(), True, self.now())

    # -- reading items ------------------------------------------------------------------------
    def _states(self, tenant: str, qu: Queue, trace_ids: list[str] | None, now: datetime) -> dict[str, ItemState]:
        """Item states. Events older than two leases cannot hold an item now, nor decide whether a
        younger claim stands, so the store reads only the recent ones (skips: all, they bar for
        good); old claims and releases are never read."""
        d = qu.definition
        recent = now - timedelta(seconds=2 * d.lease_seconds)
        evs: dict[str, list[Event]] = {}
        for r in q.events(self.store, tenant, qu.name, trace_ids, recent=recent):
            evs.setdefault(str(r["trace_id"]), []).append(Event.of(r))
        lbs: dict[str, list[Label]] = {}
        for r in q.labels(self.store, tenant, qu.name, trace_ids):
            lbs.setdefault(str(r["trace_id"]), []).append(label_row(r))
        ids = trace_ids if trace_ids is not None else sorted(set(evs) | set(lbs))
        return {t: fold(evs.get(t, []), lbs.get(t, []), d.rubric, d.reviewers_per_item, now) for t in ids}

    def _item(self, qu: Queue, row: Mapping[str, Any], st: ItemState, viewer: str, see_all: bool) -> ReviewItem:
        complete = st.status in ("disputed", "done") or see_all
        shown = [lb for lb in st.labels if complete or lb.reviewer == viewer]
        if st.adjudication is not None:
            shown.append(st.adjudication)
        final = final_fields(st)
        return ReviewItem(
            queue=qu.name,
            **{k: row[k] for k in ("trace_id", "span_id", "rule", "reason", "scorer", "score_label", "service",
                                   "release", "added_by")},
            score_value=row["score_value"],
            trace_start=utc(row["trace_start"]),
            created_at=utc(row["created_at"]),
            status=st.status,
            viewer=viewer,
            holders=sorted(st.holders),
            my_claim_expires_at=st.holders.get(viewer),
            labeled_by=st.labeled_by,
            labels=[
                ItemLabel(kind=lb.kind, reviewer=lb.reviewer, fields=dict(lb.fields), note=lb.note,
                          corrected_answer=lb.corrected_answer, labeled_at=lb.labeled_at)
                for lb in shown
            ],
            final=final[0] if final else None,
            agreement=(
                [{"field": f, "agree": a, "values": v} for f, a, v in st.agreement]
                if st.agreement is not None and complete else None
            ),
        )  # fmt: skip

    def items(
        self, tenant: str, name: str, viewer: str, status: str | None = None, limit: int = 50, after: str | None = None
    ) -> tuple[list[ReviewItem], str | None]:
        """Items oldest first (by when they were added), optionally of one status; keyset pages by
        (created_at, trace_id) given as `after` = the previous page's last 'created_at_us:trace_id'."""
        qu = self.queue(tenant, name)
        now = self.now()
        rows = q.items(self.store, tenant, name)
        states = self._states(tenant, qu, None, now)
        empty = fold([], [], qu.definition.rubric, qu.definition.reviewers_per_item, now)
        out: list[ReviewItem] = []
        for r in rows:
            key = f"{int(utc(r['created_at']).timestamp() * 1_000_000)}:{r['trace_id']}"
            if after is not None and _page_key(key) <= _page_key(after):
                continue
            st = states.get(str(r["trace_id"]), empty)
            if status is not None and st.status != status:
                continue
            if len(out) == limit:
                last = out[-1]
                return out, f"{int(last.created_at.timestamp() * 1_000_000)}:{last.trace_id}"
            out.append(self._item(qu, r, st, viewer, see_all=False))
        return out, None

    def item(self, tenant: str, name: str, trace_id: str, viewer: str, see_all: bool = False) -> ReviewItem:
        qu = self.queue(tenant, name)
        rows = q.items(self.store, tenant, name, [trace_id])
        if not rows:
            raise NotFound(f"item {trace_id} not in queue {name!r}")
        st = self._states(tenant, qu, [trace_id], self.now())[trace_id]
        return self._item(qu, rows[0], st, viewer, see_all)

    def progress(self, tenant: str, qu: Queue) -> QueueProgress:
        now = self.now()
        rows = q.items(self.store, tenant, qu.name)
        states = self._states(tenant, qu, None, now)
        empty = fold([], [], qu.definition.rubric, qu.definition.reviewers_per_item, now)
        counts = {"open": 0, "claimed": 0, "disputed": 0, "done": 0}
        oldest: datetime | None = None
        hour = now.replace(minute=0, second=0, microsecond=0)
        added = 0
        for r in rows:
            st = states.get(str(r["trace_id"]), empty)
            counts[st.status] += 1
            created = utc(r["created_at"])
            if st.status == "open" and (oldest is None or created < oldest):
                oldest = created
            added += 1 if not r["added_by"] and created >= hour else 0
        by_reviewer: dict[str, int] = {}
        for st in states.values():
            for rv in st.labeled_by:
                by_reviewer[rv] = by_reviewer.get(rv, 0) + 1
        return QueueProgress(
            items=len(rows), **counts, oldest_open_at=oldest,
            oldest_open_age_s=(now - oldest).total_seconds() if oldest else None,
            added_last_hour=added, by_reviewer=dict(sorted(by_reviewer.items())),
        )  # fmt: skip

    # -- the workflow ---------------------------------------------------------------------------
    def _rows(self, tenant: str, qu: Queue, trace_id: str) -> tuple[list[Event], list[Label]]:
        evs = [Event.of(r) for r in q.events(self.store, tenant, qu.name, [trace_id])]
        lbs = [label_row(r) for r in q.labels(self.store, tenant, qu.name, [trace_id])]
        return evs, lbs

    def _event(self, tenant: str, qu: Queue, trace_id: str, kind: str, reviewer: str, at: datetime) -> Event:
        expires = at + timedelta(seconds=qu.definition.lease_seconds) if kind == "claim" else at
        e = Event(kind, reviewer, at, expires, uuid.uuid4().hex)
        row = {"queue": qu.name, "trace_id": trace_id, "event_id": e.event_id, "kind": kind, "reviewer": reviewer}
        q.insert_events(self.store, tenant, [row | {"at": at, "expires_at": expires}])
        return e

    def _try_claim(self, tenant: str, qu: Queue, trace_id: str, reviewer: str) -> bool:
        """Under the queue's lock: claim if the rows allow, read back, keep it only if it stands."""
        d = qu.definition
        evs, lbs = self._rows(tenant, qu, trace_id)
        now = self.now()
        probe = Event("claim", reviewer, now, now + timedelta(seconds=d.lease_seconds), "~probe")
        if not claim_stands(probe, evs, lbs, d.reviewers_per_item):
            return False
        mine = self._event(tenant, qu, trace_id, "claim", reviewer, now)
        if self.settle_s:
            time.sleep(self.settle_s)  # let a racing replica's earlier claim become visible
        evs, lbs = self._rows(tenant, qu, trace_id)
        if not any(e.event_id == mine.event_id for e in evs):
            evs.append(mine)
        if claim_stands(mine, evs, lbs, d.reviewers_per_item):
            return True
        self._event(tenant, qu, trace_id, "release", reviewer, self.now())  # beaten: let go at once
        return False

    def claim(self, tenant: str, name: str, trace_id: str, reviewer: str) -> ReviewItem:
        """Claim this item (or renew the caller's lease on it); Conflict when it cannot be held."""
        qu = self.queue(tenant, name)
        if not q.items(self.store, tenant, name, [trace_id]):
            raise NotFound(f"item {trace_id} not in queue {name!r}")
        with self._lock(tenant, name):
            ok = self._try_claim(tenant, qu, trace_id, reviewer)
        item = self.item(tenant, name, trace_id, reviewer)
        if not ok:
            raise Conflict(_why_not(item, reviewer))
        return item

    def claim_next(self, tenant: str, name: str, reviewer: str) -> ReviewItem | None:
        """The item the caller holds already, else the oldest open item the caller may claim; None
        when there is none.

        The store narrows the queue to candidates (queries/review.py: `held_items`, and
        `claimable_items` a page at a time); the fold of each candidate's rows decides, as for every
        other item: a candidate the fold refuses is passed over, and the next page is read only when
        a whole page was refused. Every item the store leaves out is one the fold would refuse, so
        the choice is the one a fold of the whole queue gives, at the cost of the few items read."""
        qu = self.queue(tenant, name)
        d = qu.definition
        with self._lock(tenant, name):
            now = self.now()
            held = q.held_items(self.store, tenant, name, reviewer, now)
            states = self._states(tenant, qu, held, now) if held else {}
            for trace_id in held:
                if reviewer in states[trace_id].holders:
                    return self.item(tenant, name, trace_id, reviewer)
            after: tuple[datetime, str] | None = None
            while True:
                rows = q.claimable_items(self.store, tenant, name, reviewer, d.reviewers_per_item, now, after, _PAGE)
                ids = [str(r["trace_id"]) for r in rows]
                states = self._states(tenant, qu, ids, now) if ids else {}
                for trace_id in ids:
                    st = states[trace_id]
                    if st.status != "open" or reviewer in st.labeled_by:
                        continue
                    if self._try_claim(tenant, qu, trace_id, reviewer):
                        return self.item(tenant, name, trace_id, reviewer)
                if len(rows) < _PAGE:
                    return None
                after = (utc(rows[-1]["created_at"]), ids[-1])

    def _let_go(self, tenant: str, name: str, trace_id: str, reviewer: str, kind: str) -> ReviewItem:
        qu = self.queue(tenant, name)
        with self._lock(tenant, name):
            st = self._state(tenant, qu, trace_id)
            if reviewer not in st.holders:
                raise Conflict("you do not hold a claim on this item")
            self._event(tenant, qu, trace_id, kind, reviewer, self.now())
        return self.item(tenant, name, trace_id, reviewer)

    def release(self, tenant: str, name: str, trace_id: str, reviewer: str) -> ReviewItem:
        """Give the item back; the caller may claim it again later."""
        return self._let_go(tenant, name, trace_id, reviewer, "release")

    def skip(self, tenant: str, name: str, trace_id: str, reviewer: str) -> ReviewItem:
        """Give the item back for others: it is requeued, and never offered to the caller again."""
        return self._let_go(tenant, name, trace_id, reviewer, "skip")

    def _state(self, tenant: str, qu: Queue, trace_id: str) -> ItemState:
        if not q.items(self.store, tenant, qu.name, [trace_id]):
            raise NotFound(f"item {trace_id} not in queue {qu.name!r}")
        evs, lbs = self._rows(tenant, qu, trace_id)
        return fold(evs, lbs, qu.definition.rubric, qu.definition.reviewers_per_item, self.now())

    def label(self, tenant: str, name: str, trace_id: str, reviewer: str, fields: Mapping[str, Any],
              note: str, corrected_answer: str) -> ReviewItem:  # fmt: skip
        """Record the caller's label; the caller must hold a live claim. ValueError: invalid fields."""
        qu = self.queue(tenant, name)
        clean = validate_label(qu.definition.rubric, fields)
        if corrected_answer and not qu.definition.rubric.corrected_answer:
            raise ValueError("corrected_answer: this queue's rubric does not take one")
        with self._lock(tenant, name):
            st = self._state(tenant, qu, trace_id)
            if reviewer not in st.holders:
                raise Conflict("claim the item first: you do not hold a live claim on it (it may have expired)")
            self._write_label(tenant, qu, trace_id, "label", reviewer, clean, note, corrected_answer)
            after = self._state(tenant, qu, trace_id)
        self._feed_back(tenant, qu, trace_id, after)
        return self.item(tenant, name, trace_id, reviewer)

    def adjudicate(self, tenant: str, name: str, trace_id: str, reviewer: str, fields: Mapping[str, Any],
                   note: str, corrected_answer: str, may_override: bool) -> ReviewItem:  # fmt: skip
        """The final label of a disputed item. Only by someone who did not label it, unless
        `may_override` (admin); an item that is done may be re-adjudicated only then too."""
        qu = self.queue(tenant, name)
        clean = validate_label(qu.definition.rubric, fields)
        with self._lock(tenant, name):
            st = self._state(tenant, qu, trace_id)
            if st.status != "disputed" and not (may_override and st.status == "done"):
                raise Conflict(f"only a disputed item is adjudicated; this one is {st.status}")
            if reviewer in st.labeled_by and not may_override:
                raise Conflict("a reviewer of this item cannot adjudicate it")
            self._write_label(tenant, qu, trace_id, "adjudication", reviewer, clean, note, corrected_answer)
            after = self._state(tenant, qu, trace_id)
        self._feed_back(tenant, qu, trace_id, after)
        return self.item(tenant, name, trace_id, reviewer, see_all=True)

    def _write_label(self, tenant: str, qu: Queue, trace_id: str, kind: str, reviewer: str,
                     fields: dict[str, Any], note: str, corrected: str) -> None:  # fmt: skip
        q.insert_labels(self.store, tenant, [{
            "queue": qu.name, "trace_id": trace_id, "kind": kind, "reviewer": reviewer,
            "fields": json.dumps(fields, sort_keys=True), "note": note, "corrected_answer": corrected,
            "labeled_at": self.now(),
        }])  # fmt: skip

    def _feed_back(self, tenant: str, qu: Queue, trace_id: str, st: ItemState) -> None:
        """A final label becomes feedback on the trace (source 'review'), one item per field, so the
        trace view shows it beside the scores. Written only once final: a reviewer reading the trace
        of a two-reviewer item never sees the other's label there first."""
        final = final_fields(st)
        if final is None:
            return
        fields, note, _, who = final
        row = q.items(self.store, tenant, qu.name, [trace_id])[0]
        now = self.now()
        records = []
        for f in qu.definition.rubric.fields:
            if f.name not in fields or f.type == "text":
                continue
            v = fields[f.name]
            text = "true" if v is True else "false" if v is False else str(v)
            records.append(FeedbackRecord(
                id=f"review:{qu.name}:{trace_id}:{f.name}", trace_id=trace_id, span_id=str(row["span_id"]),
                name=f"{qu.name}.{f.name}", value=float(v) if f.type in ("numeric", "boolean") else None,
                label=text if f.type != "numeric" else "", comment=note, source="review", author=", ".join(who),
                version=f"queue:{qu.name}", negative=text in f.negative, created_at=now,
            ))  # fmt: skip
        insert_feedback(self.store, tenant, records, now)

    # -- adding items -----------------------------------------------------------------------------
    def add(self, tenant: str, name: str, trace_ids: list[str], added_by: str) -> tuple[list[str], int, int]:
        """Queue these traces by hand (no sampling, no cap): (added, already queued, not found)."""
        self.queue(tenant, name)
        want = list(dict.fromkeys(trace_ids))
        with self._lock(tenant, name):
            have = q.existing_items(self.store, tenant, name, want)
            facts = q.trace_facts(self.store, tenant, [t for t in want if t not in have])
            now = self.now()
            new = [t for t in want if t in facts]
            q.insert_items(self.store, tenant, [{
                "queue": name, "trace_id": t, "span_id": str(facts[t]["answer_span"] or ""), "rule": "manual",
                "reason": f"added by {added_by}", "scorer": "", "score_value": None, "score_label": "",
                "service": facts[t]["service"], "release": facts[t]["release"], "trace_start": facts[t]["trace_start"],
                "added_by": added_by, "created_at": now,
            } for t in new])  # fmt: skip
        return new, len([t for t in want if t in have]), len(want) - len(new) - len(have)


# Candidates read at once by claim_next: enough to pass over the items others hold at the head of
# the queue (one per reviewer at work, usually) without a second read.
_PAGE = 16


def _page_key(key: str) -> tuple[int, str]:
    us, _, trace = key.partition(":")
    return int(us), trace


def _why_not(item: ReviewItem, reviewer: str) -> str:
    if item.status == "done":
        return "the item is done"
    if item.status == "disputed":
        return "the item waits for adjudication"
    if reviewer in item.labeled_by:
        return "you labeled this item already"
    if item.holders:
        return "the item is held by another reviewer"
    return "you skipped this item, or it is not claimable"
