"""The review API over the real app on a real uvicorn and the embedded store: queues, claims with
leases, labels, skips, adjudication, tenant isolation, export. Concurrency is real: threads
hitting the live server at once."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from driftline.collector.service import CollectorService
from tests import api_data
from tests.api_data import T
from tests.conftest import LiveServer, make_settings, serve

A, B = "tenant-a", "tenant-b"
KEYS = {
    "lead": f"k-lead={A}:admin:lead",
    "alice": f"k-alice={A}:review+read:alice",
    "bob": f"k-bob={A}:review+read:bob",
    "carol": f"k-carol={A}:review+read:carol",
    "reader": f"k-reader={A}:read:rita",
    "ingest": f"k-ingest={A}:ingest",
    "blead": f"k-blead={B}:admin:blead",
}
RUBRIC: dict[str, Any] = {
    "instructions": "Is the answer supported by the retrieved passage?",
    "fields": [
        {"name": "grounding", "type": "categorical", "options": ["grounded", "hallucinated", "unsure"],
         "required": True, "negative": ["hallucinated"], "scorer": "hallucination"},
        {"name": "helpful", "type": "boolean"},
        {"name": "quality", "type": "numeric", "min": 1, "max": 5, "agree_within": 1},
        {"name": "comment", "type": "text"},
    ],
    "corrected_answer": True,
}  # fmt: skip


def h(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer k-{who}"}


@pytest.fixture
def app(tmp_path: Path, chdb_path: Path, database: str) -> Iterator[LiveServer]:
    keys = ",".join(KEYS.values())
    rt = CollectorService(make_settings(tmp_path / "data", f"chdb://{chdb_path}", database, api_keys=keys))
    rt.start()
    api_data.load(rt.store, A, B)
    server, thread, url = serve(rt)
    try:
        yield LiveServer(url, rt)
    finally:
        server.should_exit = True
        thread.join(10)
        rt.stop()


def make_queue(url: str, name: str = "grounding", who: str = "lead", **kw: Any) -> dict[str, Any]:
    body = {"name": name, "rubric": RUBRIC, **kw}
    r = httpx.post(f"{url}/api/v1/review/queues", json=body, headers=h(who))
    assert r.status_code == 201, r.text
    return dict(r.json())


def add(url: str, queue: str, *names: str, who: str = "alice") -> dict[str, Any]:
    r = httpx.post(
        f"{url}/api/v1/review/queues/{queue}/items", json={"trace_ids": [T[n] for n in names]}, headers=h(who)
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def item_url(url: str, queue: str, name: str, action: str = "") -> str:
    return f"{url}/api/v1/review/queues/{queue}/items/{T[name]}" + (f"/{action}" if action else "")


GOOD = {"fields": {"grounding": "hallucinated", "helpful": False, "quality": 2}, "note": "made up the carrier"}


def test_queue_crud_roles_and_validation(app: LiveServer) -> None:
    url = app.url
    made = make_queue(url, max_per_hour=10)
    assert made["source"] == "api" and made["progress"]["items"] == 0
    assert made["definition"]["rubric"]["fields"][0]["options"] == ["grounded", "hallucinated", "unsure"]
    # Only admin changes queues; a reviewer may read them; an ingest key may not.
    assert (
        httpx.post(f"{url}/api/v1/review/queues", json={"name": "x", "rubric": RUBRIC}, headers=h("alice")).status_code
        == 403
    )
    assert httpx.get(f"{url}/api/v1/review/queues", headers=h("ingest")).status_code == 403
    assert httpx.get(f"{url}/api/v1/review/queues", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert [q["name"] for q in httpx.get(f"{url}/api/v1/review/queues", headers=h("alice")).json()["queues"]] == [
        "grounding"
    ]
    # A second POST of the same name conflicts; PUT replaces.
    again = httpx.post(f"{url}/api/v1/review/queues", json={"name": "grounding", "rubric": RUBRIC}, headers=h("lead"))
    assert again.status_code == 409
    r = httpx.put(
        f"{url}/api/v1/review/queues/grounding", json={"rubric": RUBRIC, "max_per_hour": 3}, headers=h("lead")
    )
    assert r.status_code == 200 and r.json()["definition"]["max_per_hour"] == 3
    # Bad rubrics are refused with a message naming the problem.
    bad = {"name": "bad", "rubric": {"fields": [{"name": "g", "type": "categorical", "options": ["only"]}]}}
    r = httpx.post(f"{url}/api/v1/review/queues", json=bad, headers=h("lead"))
    assert r.status_code == 422 and "at least two options" in r.text
    bad_rule = {"name": "bad", "rubric": RUBRIC, "rules": [{"kind": "score"}]}
    r = httpx.post(f"{url}/api/v1/review/queues", json=bad_rule, headers=h("lead"))
    assert r.status_code == 422 and "needs scorer" in r.text
    assert httpx.delete(f"{url}/api/v1/review/queues/grounding", headers=h("lead")).status_code == 204
    assert httpx.get(f"{url}/api/v1/review/queues/grounding", headers=h("alice")).status_code == 404
    assert httpx.get(f"{url}/openapi.json").json()["paths"]["/api/v1/review/queues/{queue}/items/{trace_id}/label"]


def test_claim_label_and_the_counts(app: LiveServer) -> None:
    url = app.url
    make_queue(url)
    got = add(url, "grounding", "t1", "t2", "t1")
    assert got["added"] == 2 and got["already"] == 0 and got["missing"] == 0
    assert add(url, "grounding", "t1")["already"] == 1  # one item per trace per queue
    assert add(url, "grounding", "t5")["missing"] == 1  # tenant B's trace: not ours
    prog = httpx.get(f"{url}/api/v1/review/queues/grounding/progress", headers=h("alice")).json()
    assert (prog["items"], prog["open"], prog["claimed"], prog["done"]) == (2, 2, 0, 0)

    # Labelling without a claim is refused; the next item is the oldest open one.
    assert httpx.post(item_url(url, "grounding", "t1", "label"), json=GOOD, headers=h("alice")).status_code == 409
    nxt = httpx.post(f"{url}/api/v1/review/queues/grounding/next", headers=h("alice"))
    assert nxt.status_code == 200, nxt.text
    item = nxt.json()
    assert item["trace_id"] == T["t1"] and item["status"] == "claimed" and item["holders"] == ["alice"]
    assert item["viewer"] == "alice"
    assert item["my_claim_expires_at"] is not None and item["span_id"] == f"{T['t1'][:14]}01"
    # Asking again gives the item alice already holds.
    assert httpx.post(f"{url}/api/v1/review/queues/grounding/next", headers=h("alice")).json()["trace_id"] == T["t1"]
    # bob cannot take it; his next item is t2.
    r = httpx.post(item_url(url, "grounding", "t1", "claim"), headers=h("bob"))
    assert r.status_code == 409 and "held by another" in r.json()["detail"]
    assert httpx.post(f"{url}/api/v1/review/queues/grounding/next", headers=h("bob")).json()["trace_id"] == T["t2"]
    prog = httpx.get(f"{url}/api/v1/review/queues/grounding/progress", headers=h("alice")).json()
    assert (prog["open"], prog["claimed"], prog["done"]) == (0, 2, 0)

    # Invalid labels name every problem; a valid one completes the item.
    bad = {"fields": {"grounding": "maybe", "quality": 9, "extra": 1}}
    r = httpx.post(item_url(url, "grounding", "t1", "label"), json=bad, headers=h("alice"))
    assert r.status_code == 422
    for part in ("grounding: must be one of", "quality: must be between 1 and 5", "unknown field 'extra'"):
        assert part in r.text
    r = httpx.post(item_url(url, "grounding", "t1", "label"), json={"fields": {"helpful": True}}, headers=h("alice"))
    assert r.status_code == 422 and "grounding: required" in r.text
    r = httpx.post(item_url(url, "grounding", "t1", "label"), json=GOOD | {"corrected_answer": "It ships Monday."},
                   headers=h("alice"))  # fmt: skip
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "done" and done["holders"] == [] and done["labeled_by"] == ["alice"]
    assert done["final"] == {"grounding": "hallucinated", "helpful": False, "quality": 2.0}
    prog = httpx.get(f"{url}/api/v1/review/queues/grounding/progress", headers=h("reader")).json()
    assert (prog["open"], prog["claimed"], prog["done"], prog["by_reviewer"]) == (0, 1, 1, {"alice": 1})
    # A done item cannot be claimed again.
    assert httpx.post(item_url(url, "grounding", "t1", "claim"), headers=h("carol")).status_code == 409

    # The label is on the trace, in the feedback shape, for the trace view.
    trace = httpx.get(f"{url}/api/v1/traces/{T['t1']}", headers=h("reader")).json()
    fb = {f["name"]: f for f in trace["feedback"] if f["source"] == "review"}
    assert fb["grounding.grounding"]["label"] == "hallucinated" and fb["grounding.grounding"]["negative"] is True
    assert fb["grounding.grounding"]["author"] == "alice" and fb["grounding.helpful"]["value"] == 0.0

    # Filtered lists.
    listed = httpx.get(f"{url}/api/v1/review/queues/grounding/items?status=done", headers=h("reader")).json()
    assert [i["trace_id"] for i in listed["items"]] == [T["t1"]]


def test_release_and_skip(app: LiveServer) -> None:
    url = app.url
    make_queue(url)
    add(url, "grounding", "t1")
    assert httpx.post(item_url(url, "grounding", "t1", "claim"), headers=h("alice")).status_code == 200
    assert httpx.post(item_url(url, "grounding", "t1", "release"), headers=h("bob")).status_code == 409
    r = httpx.post(item_url(url, "grounding", "t1", "release"), headers=h("alice"))
    assert r.status_code == 200 and r.json()["status"] == "open"
    assert httpx.post(item_url(url, "grounding", "t1", "claim"), headers=h("bob")).status_code == 200
    r = httpx.post(item_url(url, "grounding", "t1", "skip"), headers=h("bob"))
    assert r.status_code == 200 and r.json()["status"] == "open"
    # Skipped: requeued for others, never offered to bob again.
    assert httpx.post(f"{url}/api/v1/review/queues/grounding/next", headers=h("bob")).status_code == 204
    assert httpx.post(item_url(url, "grounding", "t1", "claim"), headers=h("bob")).status_code == 409
    assert httpx.post(f"{url}/api/v1/review/queues/grounding/next", headers=h("alice")).json()["trace_id"] == T["t1"]


def test_two_reviewers_never_both_hold_a_claim(app: LiveServer) -> None:
    """Many reviewers claim the same item at once, several rounds: exactly one wins each round."""
    url = app.url
    make_queue(url)
    add(url, "grounding", "t1", "t2", "t3")
    reviewers = ["alice", "bob", "carol", "lead"]
    for name in ("t1", "t2", "t3"):
        barrier = threading.Barrier(len(reviewers))
        codes: dict[str, int] = {}

        def claim(
            who: str, name: str = name, barrier: threading.Barrier = barrier, codes: dict[str, int] = codes
        ) -> None:
            with httpx.Client(timeout=60) as c:
                barrier.wait()
                codes[who] = c.post(item_url(url, "grounding", name, "claim"), headers=h(who)).status_code

        threads = [threading.Thread(target=claim, args=(w,)) for w in reviewers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [w for w, c in codes.items() if c == 200]
        assert len(winners) == 1 and sorted(codes.values()) == [200, 409, 409, 409], codes
        item = httpx.get(item_url(url, "grounding", name), headers=h("reader")).json()
        assert item["holders"] == winners


def test_next_item_races_hand_out_distinct_items(app: LiveServer) -> None:
    url = app.url
    make_queue(url)
    add(url, "grounding", "t1", "t2", "t3")
    got: dict[str, str | None] = {}
    barrier = threading.Barrier(4)

    def take(who: str) -> None:
        with httpx.Client(timeout=60) as c:
            barrier.wait()
            r = c.post(f"{url}/api/v1/review/queues/grounding/next", headers=h(who))
            got[who] = r.json()["trace_id"] if r.status_code == 200 else None

    threads = [threading.Thread(target=take, args=(w,)) for w in ("alice", "bob", "carol", "lead")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    taken = [v for v in got.values() if v is not None]
    assert sorted(taken) == sorted([T["t1"], T["t2"], T["t3"]]) and list(got.values()).count(None) == 1


def test_an_expired_lease_frees_the_item(app: LiveServer) -> None:
    """A real lease of 10 s (the shortest a queue allows), with a real wait: the desk's clock is the
    wall clock here; the desk's own tests move a fake one."""
    url = app.url
    make_queue(url, lease_seconds=10)
    add(url, "grounding", "t1")
    first = httpx.post(item_url(url, "grounding", "t1", "claim"), headers=h("alice")).json()
    assert httpx.post(item_url(url, "grounding", "t1", "claim"), headers=h("bob")).status_code == 409
    import time
    from datetime import datetime

    expires = datetime.fromisoformat(first["my_claim_expires_at"])
    while datetime.now(expires.tzinfo) < expires:
        time.sleep(0.2)
    after = httpx.get(item_url(url, "grounding", "t1"), headers=h("reader")).json()
    assert after["status"] == "open" and after["holders"] == []
    assert httpx.post(item_url(url, "grounding", "t1", "claim"), headers=h("bob")).status_code == 200
    # alice's lease is gone: her label is refused.
    assert httpx.post(item_url(url, "grounding", "t1", "label"), json=GOOD, headers=h("alice")).status_code == 409


def test_two_reviewers_blind_then_agreement_then_adjudication(app: LiveServer) -> None:
    url = app.url
    make_queue(url, reviewers_per_item=2)
    add(url, "grounding", "t1", "t2")
    # Two reviewers may hold one item at once; a third may not.
    assert httpx.post(item_url(url, "grounding", "t1", "claim"), headers=h("alice")).status_code == 200
    assert httpx.post(item_url(url, "grounding", "t1", "claim"), headers=h("bob")).status_code == 200
    assert httpx.post(item_url(url, "grounding", "t1", "claim"), headers=h("carol")).status_code == 409
    r = httpx.post(item_url(url, "grounding", "t1", "label"), json=GOOD, headers=h("alice"))
    assert r.status_code == 200 and r.json()["status"] == "claimed"
    # bob does not see alice's label, neither on the item nor on the trace.
    mine = httpx.get(item_url(url, "grounding", "t1"), headers=h("bob")).json()
    assert mine["labels"] == [] and mine["labeled_by"] == ["alice"] and mine["final"] is None
    assert mine["agreement"] is None
    trace = httpx.get(f"{url}/api/v1/traces/{T['t1']}", headers=h("bob")).json()
    assert not [f for f in trace["feedback"] if f["source"] == "review"]
    assert len(httpx.get(item_url(url, "grounding", "t1"), headers=h("alice")).json()["labels"]) == 1
    # bob agrees (quality within 1): done, and both labels are visible.
    agree = {"fields": {"grounding": "hallucinated", "helpful": False, "quality": 3}}
    r = httpx.post(item_url(url, "grounding", "t1", "label"), json=agree, headers=h("bob"))
    body = r.json()
    assert body["status"] == "done" and len(body["labels"]) == 2
    assert all(a["agree"] in (True, None) for a in body["agreement"])

    # t2: they disagree -> disputed -> adjudicated by carol (not by a reviewer of it).
    for who, g in (("alice", "grounded"), ("bob", "hallucinated")):
        assert httpx.post(item_url(url, "grounding", "t2", "claim"), headers=h(who)).status_code == 200
        httpx.post(item_url(url, "grounding", "t2", "label"), json={"fields": {"grounding": g}}, headers=h(who))
    item = httpx.get(item_url(url, "grounding", "t2"), headers=h("carol")).json()
    assert item["status"] == "disputed" and item["final"] is None
    grounding = next(a for a in item["agreement"] if a["field"] == "grounding")
    assert grounding == {"field": "grounding", "agree": False, "values": {"alice": "grounded", "bob": "hallucinated"}}
    verdict = {"fields": {"grounding": "grounded"}, "note": "the passage says so"}
    assert (
        httpx.post(item_url(url, "grounding", "t2", "adjudicate"), json=verdict, headers=h("alice")).status_code == 409
    )
    r = httpx.post(item_url(url, "grounding", "t2", "adjudicate"), json=verdict, headers=h("carol"))
    assert r.status_code == 200 and r.json()["status"] == "done" and r.json()["final"] == {"grounding": "grounded"}
    prog = httpx.get(f"{url}/api/v1/review/queues/grounding/progress", headers=h("reader")).json()
    assert (prog["done"], prog["disputed"]) == (2, 0)


def test_tenants_do_not_see_each_others_queues_or_items(app: LiveServer) -> None:
    url = app.url
    make_queue(url)
    add(url, "grounding", "t1")
    assert httpx.get(f"{url}/api/v1/review/queues", headers=h("blead")).json()["queues"] == []
    assert httpx.get(f"{url}/api/v1/review/queues/grounding", headers=h("blead")).status_code == 404
    assert httpx.get(item_url(url, "grounding", "t1"), headers=h("blead")).status_code == 404
    assert httpx.post(item_url(url, "grounding", "t1", "claim"), headers=h("blead")).status_code == 404
    # Tenant B makes its own queue of the same name: separate items, separate claims.
    make_queue(url, who="blead")
    assert httpx.get(item_url(url, "grounding", "t1"), headers=h("blead")).status_code == 404
    r = httpx.post(
        f"{url}/api/v1/review/queues/grounding/items", json={"trace_ids": [T["t1"], T["t2"]]}, headers=h("blead")
    )
    assert r.json()["added"] == 1 and r.json()["missing"] == 1  # B holds its own t1, not A's t2
    assert httpx.post(item_url(url, "grounding", "t1", "claim"), headers=h("blead")).status_code == 200
    a_item = httpx.get(item_url(url, "grounding", "t1"), headers=h("reader")).json()
    assert a_item["status"] == "open" and a_item["holders"] == []
    assert httpx.get(f"{url}/api/v1/review/queues/grounding/export", headers=h("blead")).text == ""


def test_export_golden_set_and_dataset(app: LiveServer) -> None:
    url = app.url
    make_queue(url)
    add(url, "grounding", "t1", "t2")
    httpx.post(item_url(url, "grounding", "t1", "claim"), headers=h("alice"))
    label = GOOD | {"corrected_answer": "It ships on Monday."}
    assert httpx.post(item_url(url, "grounding", "t1", "label"), json=label, headers=h("alice")).status_code == 200
    r = httpx.get(f"{url}/api/v1/review/queues/grounding/export", headers=h("reader"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(x) for x in r.text.splitlines()]
    assert len(lines) == 1  # t2 is not labeled
    rec = lines[0]
    assert rec["trace_id"] == T["t1"] and rec["labels"]["grounding"] == "hallucinated"
    assert rec["input"] == "Where is my order 1234?" and rec["output"] == "It shipped yesterday by Parcel Express."
    assert rec["note"] == "made up the carrier" and rec["corrected_answer"] == "It ships on Monday."
    assert rec["expected"] == {"hallucination": "hallucinated"} and rec["reviewers"] == ["alice"]
    r = httpx.post(f"{url}/api/v1/review/datasets/golden-1", json={"queue": "grounding"}, headers=h("alice"))
    assert r.status_code == 200 and r.json()["added"] == 1
    listed = httpx.get(f"{url}/api/v1/review/datasets", headers=h("reader")).json()
    assert [(d["name"], d["records"], d["queues"]) for d in listed] == [("golden-1", 1, ["grounding"])]
    exported = httpx.get(f"{url}/api/v1/review/datasets/golden-1/export", headers=h("reader")).text
    assert json.loads(exported.splitlines()[0])["labels"] == rec["labels"]
    assert httpx.get(f"{url}/api/v1/review/datasets/nope/export", headers=h("reader")).status_code == 404
    assert httpx.get(f"{url}/api/v1/review/datasets", headers=h("blead")).json() == []


def test_add_from_a_trace_list_filter(app: LiveServer) -> None:
    url = app.url
    make_queue(url)
    body = {
        "filter": {"service": "shop", "scorer": "hallucination", "label": "hallucinated", "sort": "time"},
        "limit": 10,
    }
    r = httpx.post(f"{url}/api/v1/review/queues/grounding/items/search", json=body, headers=h("alice"))
    assert r.status_code == 200, r.text
    assert r.json()["trace_ids"] == [T["t1"]]  # t2/t3 are grounded, t4 is 8 days old
    body = {"filter": {"service": "shop"}, "limit": 1}
    r = httpx.post(f"{url}/api/v1/review/queues/grounding/items/search", json=body, headers=h("alice"))
    assert r.json()["added"] + r.json()["already"] == 1  # respects the limit
    bad = {"filter": {"status": "broken"}}
    assert (
        httpx.post(f"{url}/api/v1/review/queues/grounding/items/search", json=bad, headers=h("alice")).status_code
        == 422
    )
