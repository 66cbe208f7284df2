"""The workflow's rules on the embedded store with a fake clock (leases, renewals, N reviewers,
skips), and two API replicas racing for one item: two desks over one store, no shared lock, only
the read-back rule between them."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from driftline.review.desk import Conflict, ReviewDesk
from driftline.review.models import QueueDefinition
from driftline.review.workflow import Event, Label, claim_stands, fold
from driftline.store import Store
from tests import review_data as rd
from tests.review_data import NOW, Clock, trace_id

T = "tenant-flow"
QUEUE = QueueDefinition.model_validate(
    {"rubric": {"fields": [{"name": "ok", "type": "boolean", "required": True}]}, "lease_seconds": 60}
)


def test_leases_expire_renew_and_free_the_item(store: Store) -> None:
    rd.traces(store, T, [1])
    clock = Clock(NOW)
    desk = ReviewDesk(store, {"q": QUEUE}, clock=clock)
    desk.add(T, "q", [trace_id(1)], "lead")
    first = desk.claim(T, "q", trace_id(1), "alice")
    expires = first.my_claim_expires_at
    assert expires is not None and NOW + timedelta(seconds=60) <= expires < NOW + timedelta(seconds=60, milliseconds=1)
    clock.t = NOW + timedelta(seconds=50)
    with pytest.raises(Conflict):
        desk.claim(T, "q", trace_id(1), "bob")
    renewed = desk.claim(T, "q", trace_id(1), "alice")  # the holder claims again: a longer lease
    assert renewed.my_claim_expires_at is not None and renewed.my_claim_expires_at > NOW + timedelta(seconds=100)
    clock.t = NOW + timedelta(seconds=100)
    with pytest.raises(Conflict):
        desk.claim(T, "q", trace_id(1), "bob")
    clock.t = NOW + timedelta(seconds=111)  # past the renewed lease
    assert desk.item(T, "q", trace_id(1), "bob").status == "open"
    with pytest.raises(Conflict, match="claim the item first"):
        desk.label(T, "q", trace_id(1), "alice", {"ok": True}, "", "")
    assert desk.claim(T, "q", trace_id(1), "bob").holders == ["bob"]
    assert desk.label(T, "q", trace_id(1), "bob", {"ok": True}, "", "").status == "done"


def test_the_fold_rules_by_hand() -> None:
    """N = 2: two reviewers hold at once, a third is refused; a skip bars for good; a label frees the slot
    only for someone else; an adjudication closes the item."""
    from driftline.review.models import Rubric

    rubric = Rubric.model_validate({"fields": [{"name": "ok", "type": "boolean"}]})
    t0 = NOW
    lease = timedelta(seconds=60)

    def claim(who: str, s: int) -> Event:
        return Event("claim", who, t0 + timedelta(seconds=s), t0 + timedelta(seconds=s) + lease, f"{who}{s}")

    events = [claim("a", 0), claim("b", 1), claim("c", 2)]
    assert [claim_stands(e, events, [], 2) for e in events] == [True, True, False]
    assert set(fold(events, [], rubric, 2, t0 + timedelta(seconds=3)).holders) == {"a", "b"}
    # a labels at 10 s: c, claiming at 12 s, still finds two slots used (a labeled, b holds).
    labels = [Label("label", "a", {"ok": True}, "", "", t0 + timedelta(seconds=10))]
    events.append(claim("c", 12))
    assert not claim_stands(events[-1], events, labels, 2)
    # b skips at 20 s: c's claim at 21 s stands; b can never claim again.
    events += [Event("skip", "b", t0 + timedelta(seconds=20), t0 + timedelta(seconds=20), "bskip"), claim("c", 21)]
    assert claim_stands(events[-1], events, labels, 2)
    events.append(claim("b", 200))
    assert not claim_stands(events[-1], events, labels, 2)
    state = fold(events, labels, rubric, 2, t0 + timedelta(seconds=30))
    assert state.status == "claimed" and state.holders == {"c": t0 + timedelta(seconds=81)}
    # Expired leases hold nothing: at 90 s the item is open again.
    assert fold(events, labels, rubric, 2, t0 + timedelta(seconds=90)).status == "open"
    adj = [*labels, Label("adjudication", "lead", {"ok": False}, "", "", t0 + timedelta(seconds=95))]
    assert fold(events, adj, rubric, 2, t0 + timedelta(seconds=96)).status == "done"
    assert not claim_stands(claim("d", 100), events, adj, 2)


@pytest.mark.parametrize("round_", range(3))
def test_two_replicas_racing_never_both_hold_an_item(store: Store, round_: int) -> None:
    """Two desks (two API processes) over one store share no lock. Each decides under its own lock,
    writes, waits its settle time and reads back: of claims racing for one item exactly one stands,
    and the losers let go."""
    rd.traces(store, T, [1, 2, 3])
    desks = [ReviewDesk(store, {"q": QUEUE}, settle_s=0.2) for _ in range(2)]
    desks[0].add(T, "q", [trace_id(i) for i in (1, 2, 3)], "lead")
    reviewers = ["alice", "bob", "carol", "dave"]
    for i in (1, 2, 3):
        barrier = threading.Barrier(len(reviewers))
        won: list[str] = []

        def go(
            who: str, desk: ReviewDesk, i: int = i, barrier: threading.Barrier = barrier, won: list[str] = won
        ) -> None:
            barrier.wait()
            try:
                desk.claim(T, "q", trace_id(i), who)
                won.append(who)
            except Conflict:
                pass

        threads = [threading.Thread(target=go, args=(w, desks[k % 2])) for k, w in enumerate(reviewers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(won) == 1, won
        for desk in desks:  # both replicas fold the rows to the same single holder
            assert desk.item(T, "q", trace_id(i), "x").holders == won
