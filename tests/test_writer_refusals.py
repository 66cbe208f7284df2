"""Batches the real store refuses for good never wedge the writer: a CHECK constraint added with
ALTER TABLE makes chDB itself refuse the poison spans (no fake insert). A refusal whose error code
is known to name the data is bisected at once; one the classifier does not know is bisected once
the same batch has failed a few probes while the store answers a ping."""

from __future__ import annotations

from collections.abc import Callable

from driftline.store import Store
from tests.support.spans import chat_request, ids_of
from tests.support.sql import admin_client
from tests.write_path import WritePath, stored_ids

A = "tenant-a"


def _refuse(store: Store, bad: set[str], check: str) -> None:
    """A constraint on the real spans table that the `bad` span ids violate ({bad}: their list)."""
    ids = ", ".join(f"'{i}'" for i in sorted(bad))
    with admin_client(store) as c:
        c.command(f"ALTER TABLE {store.cfg.database}.spans ADD CONSTRAINT poison CHECK {check.format(bad=ids)}")


def _quarantined(wp: WritePath) -> set[str]:
    return {i for e in wp.writer.quarantine.entries() for i in e.span_ids}


def test_a_violated_constraint_is_permanent_the_rest_is_stored(
    new_path: Callable[..., WritePath], store: Store
) -> None:
    wp = new_path()
    req = chat_request(8, 11)
    ids = sorted(ids_of(req))
    bad = {ids[1], ids[5]}
    _refuse(store, bad, "span_id NOT IN ({bad})")  # VIOLATED_CONSTRAINT (469)
    assert wp.send(A, req).accepted == 8
    wp.steps(2)
    assert not wp.writer.degraded and wp.spool.pending_bytes == 0
    assert set(stored_ids(store, A)) == set(ids) - bad
    assert _quarantined(wp) == bad
    assert wp.metric("driftline_collector_dropped_spans_total", reason="store_rejected") == 2


def test_an_unknown_refusal_of_the_same_batch_is_bisected_while_the_store_answers(
    new_path: Callable[..., WritePath], store: Store
) -> None:
    wp = new_path(escalate_after_probes=3)
    req = chat_request(8, 12)
    ids = sorted(ids_of(req))
    bad = {ids[2]}
    # bitTest past bit 63 raises an error code the classifier does not list: retried as the store's trouble.
    _refuse(store, bad, "bitTest(1, if(span_id IN ({bad}), 100, 0))")
    assert wp.send(A, req).accepted == 8
    wp.steps(2)
    assert wp.writer.degraded and wp.spool.pending_bytes
    for _ in range(2):  # bounded: probes fail, nothing is quarantined yet
        wp.clock.t += 10
        wp.steps(1)
    assert wp.writer.degraded and not _quarantined(wp) and stored_ids(store, A) == []
    wp.clock.t += 10  # the third failed probe while the store answers a ping: bisect
    wp.steps(2)
    assert set(stored_ids(store, A)) == set(ids) - bad
    assert _quarantined(wp) == bad and wp.spool.pending_bytes == 0
    assert wp.metric("driftline_collector_dropped_spans_total", reason="store_rejected") == 1


def test_the_stores_own_trouble_is_never_bisected_however_long(
    new_path: Callable[..., WritePath], store: Store
) -> None:
    """The store answers a ping but the table is gone (UNKNOWN_TABLE): its trouble, not the data's."""
    wp = new_path(escalate_after_probes=2)
    req = chat_request(4, 13)
    with admin_client(store) as c:
        c.command(f"DETACH TABLE {store.cfg.database}.spans")
    assert wp.send(A, req).accepted == 4
    for _ in range(10):
        wp.clock.t += 10
        wp.steps(1)
    assert wp.writer.degraded and not _quarantined(wp)
    with admin_client(store) as c:
        c.command(f"ATTACH TABLE {store.cfg.database}.spans")
    wp.clock.t += 10
    wp.steps(2)
    assert sorted(stored_ids(store, A)) == sorted(ids_of(req)) and not _quarantined(wp)
