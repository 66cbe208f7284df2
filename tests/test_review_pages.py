"""The review pages over HTTP: the real app on a real uvicorn, the embedded store, sessions signed in
with real keys. Each page is drawn from the review API; these tests post the pages' own forms and
check what the API then holds (the browser test drives the same pages in Chromium)."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from driftline.collector.service import CollectorService
from tests import api_data
from tests.api_data import T
from tests.conftest import LiveServer, make_settings, serve

A, B = "tenant-a", "tenant-b"
KEYS = ",".join(
    [
        f"k-lead={A}:admin:lead",
        f"k-alice={A}:review+read:alice",
        f"k-bob={A}:review+read:bob",
        f"k-blead={B}:admin:blead",
    ]
)
QUEUE: dict[str, Any] = {
    "description": "Answers to check against their passage",
    "rubric": {
        "instructions": "Is the answer supported by the retrieved passage?",
        "fields": [
            {"name": "grounding", "type": "categorical", "options": ["grounded", "hallucinated", "unsure"],
             "required": True, "negative": ["hallucinated"], "scorer": "hallucination"},
            {"name": "helpful", "type": "boolean"},
            {"name": "quality", "type": "numeric", "min": 1, "max": 5, "required": True},
            {"name": "comment", "type": "text"},
        ],
        "corrected_answer": True,
    },
    "reviewers_per_item": 1,
}  # fmt: skip


@pytest.fixture
def app(tmp_path: Path, chdb_path: Path, database: str) -> Iterator[LiveServer]:
    rt = CollectorService(make_settings(tmp_path / "data", f"chdb://{chdb_path}", database, api_keys=KEYS))
    rt.start()
    api_data.load(rt.store, A, B)
    server, thread, url = serve(rt)
    try:
        yield LiveServer(url, rt)
    finally:
        server.should_exit = True
        thread.join(10)
        rt.stop()


def api(app: LiveServer, who: str) -> httpx.Client:
    return httpx.Client(base_url=app.url, headers={"Authorization": f"Bearer k-{who}"}, timeout=30)


@contextmanager
def browser(app: LiveServer, who: str) -> Iterator[httpx.Client]:
    """A signed-in browser session (cookie), not following redirects."""
    with httpx.Client(base_url=app.url, follow_redirects=False, timeout=30) as c:
        r = c.post("/login", data={"key": f"k-{who}", "next": "/review"})
        assert r.status_code == 303, r.text
        yield c


def csrf(page: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', page)
    assert m, "the page has a form with its token"
    return m.group(1)


def hidden(page: str) -> dict[str, str]:
    """A label form's hidden inputs (its token, each field's type), as the browser would post them."""
    return dict(re.findall(r'<input type="hidden" name="((?:csrf|type\.\w+))" value="([^"]*)">', page))


def grab(pattern: str, text: str) -> str:
    """The first group of `pattern` in `text` (which must hold it)."""
    m = re.search(pattern, text, re.S)
    assert m, f"{pattern!r} not found"
    return m.group(1)


def make_queue(app: LiveServer, name: str = "grounding", tenant_key: str = "lead") -> None:
    with api(app, tenant_key) as c:
        r = c.put(f"/api/v1/review/queues/{name}", json=QUEUE)
        assert r.status_code == 200, r.text


def item(app: LiveServer, who: str, queue: str, trace_id: str) -> dict[str, Any]:
    with api(app, who) as c:
        r = c.get(f"/api/v1/review/queues/{queue}/items/{trace_id}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


def test_review_pages_need_a_session(app: LiveServer) -> None:
    with httpx.Client(base_url=app.url, follow_redirects=False, timeout=30) as c:
        for path in ("/review", "/review/queues/grounding", f"/review/queues/grounding/items/{T['t1']}",
                     "/review/datasets", "/review/agreement", f"/review/add?trace_id={T['t1']}"):  # fmt: skip
            r = c.get(path)
            assert r.status_code == 303, path
            assert r.headers["location"].startswith("/login?next="), path
        r = c.post("/review/queues/grounding/next", data={"csrf": "x"})
        assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_add_a_trace_from_the_trace_view(app: LiveServer) -> None:
    make_queue(app)
    with browser(app, "alice") as c:
        page = c.get(f"/traces/{T['t1']}").text
        link = html.unescape(grab(r'href="(/review/add\?[^"]+)" data-testid="add-to-review"', page))
        assert parse_qs(urlsplit(link).query)["trace_id"] == [T["t1"]]
        chooser = c.get(link)
        assert chooser.status_code == 200
        assert '<option value="grounding">' in chooser.text
        r = c.post("/review/add", data={"csrf": csrf(chooser.text), "queue": "grounding", "trace_id": T["t1"],
                                        "back": f"/traces/{T['t1']}"})  # fmt: skip
        assert r.status_code == 200, r.text
        assert "1 added" in r.text
        again = c.post("/review/add", data={"csrf": csrf(chooser.text), "queue": "grounding", "trace_id": T["t1"]})
        assert "0 added, 1 already there" in again.text
        # A bad queue name is the API's 404, shown on the chooser, never a 500.
        bad = c.post("/review/add", data={"csrf": csrf(chooser.text), "queue": "nope", "trace_id": T["t1"]})
        assert bad.status_code == 404
        assert "Not added" in bad.text
    got = item(app, "alice", "grounding", T["t1"])
    assert got["rule"] == "manual" and got["added_by"] == "alice" and got["status"] == "open"


def test_add_these_n_from_a_filtered_trace_list(app: LiveServer) -> None:
    make_queue(app)
    with browser(app, "alice") as c:
        page = c.get("/traces", params={"service": "shop"}).text
        m = re.search(r'href="(/review/add\?[^"]+)" data-testid="add-these">Add these (\d+)', page)
        assert m, "the filtered list offers to add what it shows"
        link, n = html.unescape(m.group(1)), int(m.group(2))
        ids = parse_qs(urlsplit(link).query)["trace_id"]
        assert n == len(ids) == 2 and set(ids) == {T["t1"], T["t2"]}  # shop's traces in range; not search's t3
        assert parse_qs(urlsplit(link).query)["back"] == ["/traces?service=shop"]
        chooser = c.get(link)
        assert "<strong>2</strong> traces" in chooser.text and "service=shop" in chooser.text
        form = {"csrf": csrf(chooser.text), "queue": "grounding", "back": "/traces?service=shop", "trace_id": ids}
        r = c.post("/review/add", data=form)
        assert "2 added" in r.text
        # A full page of the list (200 traces) fits in the chooser's address.
        many = c.get("/review/add", params={"trace_id": [f"{i:032x}" for i in range(200)], "back": "/traces"})
        assert many.status_code == 200 and "<strong>200</strong> traces" in many.text
    with api(app, "alice") as a:
        items = a.get("/api/v1/review/queues/grounding/items").json()["items"]
    assert {i["trace_id"] for i in items} == {T["t1"], T["t2"]}


def test_label_by_form_then_the_next_item_opens(app: LiveServer) -> None:
    make_queue(app)
    with api(app, "alice") as a:
        assert (
            a.post("/api/v1/review/queues/grounding/items", json={"trace_ids": [T["t1"], T["t2"]]}).json()["added"] == 2
        )
    with browser(app, "alice") as c:
        overview = c.get("/review")
        assert overview.status_code == 200
        row = grab(r'data-queue="grounding">(.*?)</tr>', overview.text)
        assert re.search(r'data-testid="count-open">2<', row) and re.search(r'data-testid="count-done">0<', row)
        queue_page = c.get("/review/queues/grounding")
        assert "Review next item" in queue_page.text
        r = c.post("/review/queues/grounding/next", data={"csrf": csrf(queue_page.text)})
        assert r.status_code == 303
        first = r.headers["location"].rsplit("/", 1)[-1]
        assert first in (T["t1"], T["t2"])
        view = c.get(r.headers["location"])
        assert view.status_code == 200
        # The whole trace, and the rubric with its fields, keys and instructions.
        assert 'id="label-form"' in view.text and "Is the answer supported" in view.text
        for name in ("grounding", "helpful", "quality", "comment"):
            assert f'data-field="{name}"' in view.text
        assert '<kbd aria-hidden="true">2</kbd> hallucinated' in view.text
        assert view.text.count('class="panel detail span-detail') == 2  # both spans of the trace
        assert "/static/review.js" in view.text
        assert hidden(view.text)["type.quality"] == "numeric"  # the form types its answers

        # A required field left blank: the API's message, the values kept, nothing stored.
        action = f"/review/queues/grounding/items/{first}/label"
        bad = c.post(action, data=hidden(view.text) | {"field.grounding": "hallucinated", "field.comment": "kept"})
        assert bad.status_code == 422
        assert "quality" in bad.text and "Not done" in bad.text
        assert ">kept</textarea>" in bad.text
        assert item(app, "alice", "grounding", first)["labeled_by"] == []

        # Out of range: the API says so.
        bad = c.post(action, data=hidden(view.text) | {"field.grounding": "grounded", "field.quality": "9"})
        assert bad.status_code == 422 and "between 1 and 5" in bad.text

        ok = c.post(
            action,
            data=hidden(view.text) | {"field.grounding": "hallucinated", "field.helpful": "false",
                  "field.quality": "2", "field.comment": "wrong shipper", "corrected_answer": "It ships tomorrow.",
                  "note": "checked the passage"},
        )  # fmt: skip
        assert ok.status_code == 303
        second = ok.headers["location"].rsplit("/", 1)[-1]
        assert second in (T["t1"], T["t2"]) and second != first  # the next item, claimed
        labeled = item(app, "alice", "grounding", first)
        assert labeled["status"] == "done"
        assert labeled["final"] == {
            "grounding": "hallucinated",
            "helpful": False,
            "quality": 2.0,
            "comment": "wrong shipper",
        }
        assert item(app, "alice", "grounding", second)["my_claim_expires_at"] is not None

        # Skip the second: nothing is left for alice, and the queue page says so.
        view2 = c.get(ok.headers["location"])
        r = c.post(f"/review/queues/grounding/items/{second}/skip", data={"csrf": csrf(view2.text)})
        assert r.status_code == 303 and r.headers["location"] == "/review/queues/grounding?notice=empty"
        assert "Nothing left in this queue" in c.get(r.headers["location"]).text

        # The counts moved.
        row = grab(r'data-queue="grounding">(.*?)</tr>', c.get("/review").text)
        assert re.search(r'data-testid="count-done">1<', row) and re.search(r'data-testid="count-open">1<', row)


def test_forms_need_their_token(app: LiveServer) -> None:
    make_queue(app)
    with browser(app, "alice") as c:
        assert c.post("/review/queues/grounding/next", data={"csrf": "forged"}).status_code == 403
        assert (
            c.post("/review/add", data={"csrf": "forged", "queue": "grounding", "trace_id": T["t1"]}).status_code == 403
        )
    with api(app, "alice") as a:
        assert a.get("/api/v1/review/queues/grounding/items").json()["items"] == []


def test_disagreement_is_adjudicated_and_the_golden_set_downloads(app: LiveServer) -> None:
    make_queue(app)
    with api(app, "lead") as lead:
        r = lead.put("/api/v1/review/queues/grounding", json=QUEUE | {"reviewers_per_item": 2})
        assert r.status_code == 200
        assert lead.post("/api/v1/review/queues/grounding/items", json={"trace_ids": [T["t1"]]}).status_code == 200
    for who, verdict in (("alice", "hallucinated"), ("bob", "grounded")):
        with browser(app, who) as c:
            start = c.get("/review/queues/grounding")
            r = c.post("/review/queues/grounding/next", data={"csrf": csrf(start.text)})
            assert r.headers["location"].endswith(T["t1"])
            mine = c.get(r.headers["location"]).text
            assert 'data-testid="labels"' not in mine  # blind: no one's label before all are in
            r = c.post(f"/review/queues/grounding/items/{T['t1']}/label",
                       data=hidden(mine) | {"field.grounding": verdict, "field.quality": "3"})  # fmt: skip
            assert r.status_code == 303
    with browser(app, "lead") as c:
        listing = c.get("/review/queues/grounding?status=disputed").text
        assert f"/review/queues/grounding/items/{T['t1']}/adjudicate" in listing
        view = c.get(f"/review/queues/grounding/items/{T['t1']}/adjudicate")
        assert view.status_code == 200
        labels = grab(r'data-testid="labels">(.*?)</table>', view.text)
        assert "alice" in labels and "bob" in labels and "disagree" in labels
        r = c.post(f"/review/queues/grounding/items/{T['t1']}/adjudicate",
                   data=hidden(view.text) | {"field.grounding": "hallucinated", "field.quality": "3",
                         "corrected_answer": "It ships tomorrow."})  # fmt: skip
        assert r.status_code == 303, r.text
        assert item(app, "lead", "grounding", T["t1"])["final"]["grounding"] == "hallucinated"

        download = c.get("/review/queues/grounding/export")
        assert download.status_code == 200
        assert download.headers["content-disposition"] == 'attachment; filename="grounding.jsonl"'
        records = [json.loads(line) for line in download.text.splitlines() if line.strip()]
        assert [r["trace_id"] for r in records] == [T["t1"]]
        assert "hallucinated" in json.dumps(records[0]) and "It ships tomorrow." in json.dumps(records[0])

        page = c.get("/review/queues/grounding")
        r = c.post("/review/queues/grounding/dataset", data={"csrf": csrf(page.text), "dataset": "gold"})
        assert r.status_code == 303 and r.headers["location"].startswith("/review/datasets?added=gold")
        sets = c.get(r.headers["location"]).text
        assert 'data-dataset="gold"' in sets and "/review/datasets/gold/export" in sets
        gold = c.get("/review/datasets/gold/export")
        assert gold.status_code == 200 and T["t1"] in gold.text

        # The scorer said hallucinated; the final human label agrees.
        agreement = c.get("/review/agreement").text
        row = re.search(
            r'<tr data-scorer="hallucination"[^>]*>(.*?)</tr>\s*(?=<tr data-scorer|</tbody>)', agreement, re.S
        )
        assert row, agreement
        assert re.search(r'data-testid="agreement-n">1<', row.group(1))


def test_a_tenant_sees_only_its_own_queue_items(app: LiveServer) -> None:
    make_queue(app)
    make_queue(app, tenant_key="blead")
    with api(app, "lead") as a:
        a.post("/api/v1/review/queues/grounding/items", json={"trace_ids": [T["t1"]]})
    with browser(app, "blead") as c:
        r = c.get(f"/review/queues/grounding/items/{T['t1']}")
        assert r.status_code == 404
        assert "tenant B secret" not in r.text and "Parcel Express" not in r.text
        row = grab(r'data-queue="grounding">(.*?)</tr>', c.get("/review").text)
        assert re.search(r'data-testid="count-items">0<', row)


def test_review_pages_have_json_twins(app: LiveServer) -> None:
    make_queue(app)
    with browser(app, "alice") as c:
        r = c.get("/review?format=json")
        assert r.status_code == 200
        assert [q["name"] for q in r.json()["queues"]] == ["grounding"]


def test_an_item_is_claimed_on_its_page_and_another_reviewer_sees_who_holds_it(app: LiveServer) -> None:
    make_queue(app)
    with api(app, "alice") as a:
        a.post("/api/v1/review/queues/grounding/items", json={"trace_ids": [T["t1"]]})
    url = f"/review/queues/grounding/items/{T['t1']}"
    with browser(app, "alice") as c:
        view = c.get(url).text
        assert 'id="claim"' in view and 'id="label-form"' not in view  # open: claim first
        r = c.post(url + "/claim", data={"csrf": csrf(view)})
        assert r.status_code == 303 and r.headers["location"] == url
        view = c.get(url).text
        assert 'id="label-form"' in view and "Yours until" in view
    with browser(app, "bob") as c:
        view = c.get(url).text
        assert "Held by alice" in view and 'id="label-form"' not in view
        r = c.post(url + "/claim", data={"csrf": csrf(view)})
        assert r.status_code == 409 and "Not done" in r.text  # the API's conflict, on the page
    with browser(app, "alice") as c:
        r = c.post(url + "/release", data={"csrf": csrf(c.get(url).text)})
        assert r.status_code == 303 and r.headers["location"] == "/review/queues/grounding?notice=released"
    assert item(app, "alice", "grounding", T["t1"])["status"] == "open"
    with browser(app, "alice") as c:
        assert c.get(url, params={"format": "json"}).json()["status"] == "open"  # the page's JSON twin


def test_a_label_sent_after_the_claim_ended_is_saved_if_no_one_took_the_item(app: LiveServer) -> None:
    make_queue(app)
    with api(app, "alice") as a:
        a.post("/api/v1/review/queues/grounding/items", json={"trace_ids": [T["t1"], T["t2"]]})
    with browser(app, "alice") as c:
        r = c.post("/review/queues/grounding/next", data={"csrf": csrf(c.get("/review/queues/grounding").text)})
        url = r.headers["location"]
        first = url.rsplit("/", 1)[-1]
        view = c.get(url).text
        with api(app, "alice") as a:  # her claim ends while the page is open (as a lease runs out)
            assert a.post(f"/api/v1/review/queues/grounding/items/{first}/release").status_code == 200
        r = c.post(url + "/label", data=hidden(view) | {"field.grounding": "grounded", "field.quality": "5"})
        assert r.status_code == 303, r.text
        assert item(app, "alice", "grounding", first)["final"] == {"grounding": "grounded", "quality": 5.0}
        # Bob holds the other one: alice's late label on it is refused, and the page says by whom.
        other = T["t2"] if first == T["t1"] else T["t1"]
        with api(app, "alice") as a:
            a.post(f"/api/v1/review/queues/grounding/items/{other}/release")
        with api(app, "bob") as b:
            assert b.post(f"/api/v1/review/queues/grounding/items/{other}/claim").status_code == 200
        r = c.post(
            f"/review/queues/grounding/items/{other}/label",
            data=hidden(view) | {"field.grounding": "grounded", "field.quality": "5"},
        )
        assert r.status_code == 409 and "Not done" in r.text and "Held by bob" in r.text
        assert item(app, "bob", "grounding", other)["labeled_by"] == []
