"""claim_next reads candidates, not the queue's history: its choice is the one a fold of the whole
queue gives (a mixed history: labels, disputes, an adjudication, skips, releases, expired and live
claims, five reviewers, two per item), and the rows it asks the store for do not grow with the
queue's done items (counted by the ClickHouse HTTP interface's query log)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from driftline.review.desk import ReviewDesk, label_row
from driftline.review.models import QueueDefinition
from driftline.review.workflow import Event, claim_stands
from driftline.store import Store, StoreConfig
from driftline.store.queries import review as q
from tests import review_data as rd
from tests.review_data import NOW, Clock, trace_id
from tests.support.clickhouse_http import ClickHouseHTTPServer
from tests.support.sql import admin_client

T = "tenant-claim"
LEASE = 60
PAIR = QueueDefinition.model_validate({
    "rubric": {"fields": [{"name": "ok", "type": "boolean", "required": True}]},
    "lease_seconds": LEASE, "reviewers_per_item": 2,
})  # fmt: skip


def full_fold_choice(store: Store, desk: ReviewDesk, reviewer: str) -> str | None:
    """The choice as claim_next made it before: every item of the queue folded (the item list folds
    them all), the item the reviewer holds first, else the first open item not labeled by them on
    which a claim of theirs would stand, by all of the item's rows."""
    items, _ = desk.items(T, "q", reviewer, limit=10_000)
    held = [it for it in items if reviewer in it.holders]
    if held:
        return held[0].trace_id
    now = desk.now()
    probe = Event("claim", reviewer, now, now + timedelta(seconds=LEASE), "~probe")
    for it in items:
        if it.status != "open" or reviewer in it.labeled_by:
            continue
        evs = [Event.of(r) for r in q.events(store, T, "q", [it.trace_id])]
        lbs = [label_row(r) for r in q.labels(store, T, "q", [it.trace_id])]
        if claim_stands(probe, evs, lbs, PAIR.reviewers_per_item):
            return it.trace_id
    return None


def test_claim_order_is_the_full_folds_on_a_mixed_history(store: Store) -> None:
    rd.traces(store, T, range(1, 41))
    clock = Clock(NOW)
    desk = ReviewDesk(store, {"q": PAIR}, clock=clock)
    tid = trace_id
    # Added in two batches: items 30-40 come first, then 1-29 (the order is created_at, then id).
    desk.add(T, "q", [tid(i) for i in range(30, 41)], "lead")
    clock.t += timedelta(seconds=1)
    desk.add(T, "q", [tid(i) for i in range(1, 30)], "lead")
    desk.claim(T, "q", tid(14), "carol")  # will expire
    desk.claim(T, "q", tid(13), "bob")
    desk.release(T, "q", tid(13), "bob")
    clock.t += timedelta(seconds=3 * LEASE)  # carol's claim is long gone (older than two leases)
    for i, (first, second) in {9: (True, True), 10: (True, False), 11: (False, True)}.items():
        for who, ok in (("alice", first), ("bob", second)):
            desk.claim(T, "q", tid(i), who)
            desk.label(T, "q", tid(i), who, {"ok": ok}, "", "")
    desk.adjudicate(T, "q", tid(11), "lead", {"ok": True}, "", "", may_override=False)  # 10 stays disputed
    desk.claim(T, "q", tid(12), "alice")
    desk.skip(T, "q", tid(12), "alice")
    desk.claim(T, "q", tid(15), "dave")
    desk.label(T, "q", tid(15), "dave", {"ok": True}, "", "")  # one of two labels
    desk.claim(T, "q", tid(16), "alice")
    desk.label(T, "q", tid(16), "alice", {"ok": True}, "", "")
    for who in ("erin", "dave"):
        desk.claim(T, "q", tid(17), who)  # both slots held
    # The head of the queue (items 30-40, 1-8: more than one page of candidates) held by two.
    for i in [*range(30, 41), *range(1, 9)]:
        for who in ("bob", "carol"):
            desk.claim(T, "q", tid(i), who)
    desk.claim(T, "q", tid(18), "alice")  # alice holds one item already

    reviewers = ["alice", "bob", "carol", "dave", "erin", "alice", "frank", "bob", "erin", "alice", "dave"]
    actions = ["label_yes", "keep", "label_no", "skip", "release", "label_no", "keep", "skip", "label_yes"]
    chosen: list[str | None] = []
    for step in range(len(reviewers) * 2):
        who = reviewers[step % len(reviewers)]
        if step == len(reviewers):
            clock.t += timedelta(seconds=LEASE + 5)  # every claim expires: the head is free again
        expected = full_fold_choice(store, desk, who)
        got = desk.claim_next(T, "q", who)
        assert (got.trace_id if got else None) == expected, (step, who)
        chosen.append(expected)
        if got is None:
            continue
        action = actions[step % len(actions)]
        if action.startswith("label"):
            desk.label(T, "q", got.trace_id, who, {"ok": action == "label_yes"}, "", "")
        elif action in ("skip", "release"):
            getattr(desk, action)(T, "q", got.trace_id, who)
        clock.t += timedelta(seconds=1)
    # The history made every kind of choice: a held item, items past the held head, the freed head.
    assert tid(18) in chosen and tid(9) not in chosen and tid(30) in chosen and len(set(chosen)) > 8


@pytest.fixture
def http_store(ch_http: ClickHouseHTTPServer, database: str) -> Iterator[Store]:
    s = Store(StoreConfig(ch_http.url, database))
    s.migrate()
    yield s
    with admin_client(s) as c:
        c.command(f"DROP DATABASE IF EXISTS {database}")
    s.close()


ONE = QueueDefinition.model_validate({"rubric": {"fields": [{"name": "ok", "type": "boolean"}]}})


def _worked_queue(store: Store, done: int, waiting: int) -> None:
    """`done` items each claimed and labeled by alice an hour ago, then `waiting` items untouched."""
    t0 = NOW - timedelta(hours=1)
    items, events, labels = [], [], []
    for i in range(1, done + waiting + 1):
        at = t0 + timedelta(seconds=i)
        items.append({
            "queue": "q", "trace_id": trace_id(i), "span_id": "", "rule": "manual", "reason": "", "scorer": "",
            "score_value": None, "score_label": "", "service": "shop", "release": "1.0", "trace_start": at,
            "added_by": "lead", "created_at": at,
        })  # fmt: skip
        if i <= done:
            events.append({"queue": "q", "trace_id": trace_id(i), "event_id": f"e{i}", "kind": "claim",
                           "reviewer": "alice", "at": at, "expires_at": at + timedelta(seconds=ONE.lease_seconds)})  # fmt: skip
            labels.append({"queue": "q", "trace_id": trace_id(i), "kind": "label", "reviewer": "alice",
                           "fields": '{"ok": true}', "note": "", "corrected_answer": "",
                           "labeled_at": at + timedelta(milliseconds=500)})  # fmt: skip
    q.insert_items(store, T, items)
    q.insert_events(store, T, events)
    q.insert_labels(store, T, labels)


def test_claim_next_reads_a_few_items_not_the_queues_history(http_store: Store, ch_http: ClickHouseHTTPServer) -> None:
    """150 done items (a claim and a label each) ahead of 10 open ones: claiming the next asks the
    store for a page of candidates and their rows, not for every item, event and label."""
    store = http_store
    desk = ReviewDesk(store, {"q": ONE}, clock=lambda: NOW)
    done, waiting = 150, 10
    _worked_queue(store, done, waiting)

    before = len(ch_http.query_log)
    got = desk.claim_next(T, "q", "bob")
    asked = [e for e in ch_http.query_log[before:] if e.query.lstrip().upper().startswith("SELECT")]
    assert got is not None and got.trace_id == trace_id(done + 1)
    returned = [e.result_rows for e in asked]
    # One page of candidates at most per read, and all reads together far fewer rows than the
    # queue's items, events or labels (a fold of the whole queue read 160 + 150 + 150).
    assert max(returned) <= 16 and sum(returned) < done // 4, returned


def test_states_read_recent_events_and_skips_not_the_history(http_store: Store, ch_http: ClickHouseHTTPServer) -> None:
    """A queue's progress folds every item, but of the events only those that can still matter:
    the last two leases' and every skip (a skip bars its reviewer for good, however old)."""
    store = http_store
    desk = ReviewDesk(store, {"q": ONE}, clock=lambda: NOW)
    done, waiting = 150, 10
    _worked_queue(store, done, waiting)
    long_ago = NOW - timedelta(hours=2)
    q.insert_events(store, T, [
        {"queue": "q", "trace_id": trace_id(done + 1), "event_id": "s1", "kind": "skip", "reviewer": "bob",
         "at": long_ago, "expires_at": long_ago},
        {"queue": "q", "trace_id": trace_id(done + 2), "event_id": "c1", "kind": "claim", "reviewer": "carol",
         "at": NOW - timedelta(seconds=60), "expires_at": NOW + timedelta(seconds=ONE.lease_seconds - 60)},
    ])  # fmt: skip

    before = len(ch_http.query_log)
    p = desk.progress(T, desk.queue(T, "q"))
    read = [e for e in ch_http.query_log[before:] if "review_events" in e.query]
    assert (p.items, p.done, p.claimed, p.open, p.by_reviewer) == (
        done + waiting,
        done,
        1,
        waiting - 1,
        {"alice": done},
    )
    assert [e.result_rows for e in read] == [2]  # the old skip and the live claim; not the 150 old claims
    # The old skip still bars bob from its item, and carol's claim holds the next one.
    got = desk.claim_next(T, "q", "bob")
    assert got is not None and got.trace_id == trace_id(done + 3)
