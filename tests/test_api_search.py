"""The trace search, trace, session and feedback API on real chDB through the real app.

Every expectation below is worked out by hand from tests/api_data.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from driftline.collector.service import CollectorService
from driftline.server import create_app
from tests.api_data import NOW, T, load
from tests.conftest import KEY_A, KEY_B, TENANT_A, TENANT_B, make_settings

A = {"authorization": f"Bearer {KEY_A}"}
B = {"authorization": f"Bearer {KEY_B}"}
NAME = {v: k for k, v in T.items()}


@pytest.fixture
def client(tmp_path: Path, chdb_path: Path, database: str) -> Iterator[TestClient]:
    s = make_settings(tmp_path / "data", f"chdb://{chdb_path}", database, decode_workers=0, grpc_enabled=False)
    rt = CollectorService(s)
    rt.start()
    load(rt.store, TENANT_A, TENANT_B)
    with TestClient(create_app(rt)) as c:
        post = c.post(
            "/api/v1/feedback/batch",
            headers=A,
            json={"items": [
                {"id": "fb-1", "trace_id": T["t1"], "name": "thumbs", "value": 0, "comment": "wrong parcel"},
                {"id": "fb-2", "trace_id": T["t3"], "span_id": T["t3"][:14] + "01", "value": 1, "source": "app"},
            ]},
        )  # fmt: skip
        assert post.status_code == 200, post.text
        assert c.post(
            "/api/v1/feedback", headers=B, json={"id": "fb-1", "trace_id": T["t5"], "label": "bad"}
        ).is_success
        yield c
    rt.stop()


def names(c: TestClient, headers: dict[str, str] = A, **params: Any) -> list[str]:
    r = c.get("/api/v1/traces", headers=headers, params=params)
    assert r.status_code == 200, r.text
    return [NAME[t["trace_id"]] for t in r.json()["traces"]]


def test_unfiltered_list_is_newest_root_spans_of_the_last_week(client: TestClient) -> None:
    # t4 is 8 days old; t6 has no root span
    assert names(client) == ["t3", "t2", "t1"]
    assert names(client, order="asc") == ["t1", "t2", "t3"]
    assert names(client, since=(NOW - timedelta(days=9)).isoformat()) == ["t3", "t2", "t1", "t4"]
    assert names(client, until=(NOW - timedelta(hours=1, minutes=30)).isoformat()) == ["t2", "t1"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"service": "shop"}, ["t2", "t1"]),
        ({"service": "search"}, ["t3"]),
        ({"model": "gpt-4o"}, ["t3", "t1"]),
        ({"model": "gpt-4o-2024-08-06"}, ["t1"]),  # the response model counts too
        ({"model": "claude-3-5-sonnet"}, ["t2"]),
        ({"release": "2.0"}, ["t3", "t2"]),
        ({"environment": "staging"}, ["t3"]),
        ({"operation": "execute_tool"}, ["t2"]),
        ({"status": "error"}, ["t2"]),
        ({"status": "ok"}, ["t3", "t1"]),
        ({"session_id": "s2"}, ["t3"]),
        ({"user_id": "u1"}, ["t2", "t1"]),
        ({"scorer": "hallucination", "label": "hallucinated"}, ["t1"]),
        ({"label": "grounded"}, ["t3", "t2"]),
        ({"scorer": "tool_failure", "label": "timeout"}, ["t2"]),
        ({"min_score": 0.3}, ["t3", "t1"]),  # hallucination by default
        ({"min_score": 0.3, "max_score": 0.5}, ["t3"]),
        ({"max_score": 0.5}, ["t3", "t2"]),  # 0.4 and 0.1, not 0.9
        ({"feedback": "any"}, ["t3", "t1"]),
        ({"feedback": "negative"}, ["t1"]),
        ({"feedback": "positive"}, ["t3"]),
        ({"feedback": "none"}, ["t2"]),
        ({"q": "refund"}, ["t3", "t2"]),  # case-insensitive, input or output
        ({"q": "parcel express"}, ["t1"]),
        ({"q": "tenant B secret"}, []),
        ({"service": "shop", "release": "1.0"}, ["t1"]),
        ({"sort": "cost"}, ["t2", "t1", "t3"]),  # 0.03, 0.01, unpriced
        ({"sort": "duration"}, ["t2", "t1", "t3"]),  # 2500, 900, 400 ms
        ({"sort": "duration", "order": "asc"}, ["t3", "t1", "t2"]),
        ({"sort": "score"}, ["t1", "t3", "t2"]),  # 0.9, 0.4, 0.1
        ({"sort": "score", "scorer": "tool_failure"}, ["t2"]),
    ],
)
def test_each_filter_and_sort(client: TestClient, params: dict[str, Any], expected: list[str]) -> None:
    assert names(client, **params) == expected


def test_summaries_carry_scores_cost_models_and_feedback(client: TestClient) -> None:
    got = {NAME[t["trace_id"]]: t for t in client.get("/api/v1/traces", headers=A).json()["traces"]}
    t1, t2, t3 = got["t1"], got["t2"], got["t3"]
    assert t1["models"] == ["gpt-4o", "gpt-4o-2024-08-06"] and t1["cost_usd"] == pytest.approx(0.01)
    assert (t1["hallucination_score"], t1["hallucination_label"]) == (pytest.approx(0.9), "hallucinated")
    assert (t1["feedback_count"], t1["negative_feedback"]) == (1, 1)
    assert t1["input_preview"] == "Where is my order 1234?" and t1["session_id"] == "s1"
    assert t1["duration_ms"] == 900.0 and t1["spans"] == 2 and t1["error"] is False
    assert (t2["tool_failures"], t2["errors"], t2["error"]) == (1, 1, True)
    assert t2["input_tokens"] == 300 and t2["output_tokens"] == 50
    assert t3["cost_usd"] is None  # no span priced: unknown, not 0
    assert (t3["feedback_count"], t3["negative_feedback"]) == (1, 0)
    assert t3["service"] == "search" and t3["environment"] == "staging"


def test_a_trace_summarized_alone_reads_as_its_list_row(client: TestClient) -> None:
    """The trace view summarizes the rows it read; the list summarizes in SQL: same answer."""
    for row in client.get("/api/v1/traces", headers=A).json()["traces"]:
        detail = client.get(f"/api/v1/traces/{row['trace_id']}", headers=A).json()["summary"]
        assert detail == row, NAME[row["trace_id"]]


@pytest.mark.parametrize("order", ["desc", "asc"])
def test_cursor_pages_through_every_trace_once(client: TestClient, order: str) -> None:
    for sort in ("time", "cost", "duration", "score"):
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 1, "sort": sort, "order": order} | ({"cursor": cursor} if cursor else {})
            page = client.get("/api/v1/traces", headers=A, params=params).json()
            seen += [NAME[t["trace_id"]] for t in page["traces"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == names(client, sort=sort, order=order, limit=50), (sort, order)
        assert sorted(seen) == ["t1", "t2", "t3"], (sort, order)


def test_trace_detail_has_every_score_and_feedback_of_its_tenant_only(client: TestClient) -> None:
    d = client.get(f"/api/v1/traces/{T['t1']}", headers=A).json()
    assert [s["span_id"][-2:] for s in d["spans"]] == ["00", "01"]
    assert [(s["name"], s["label"], s["value"], s["source"]) for s in d["scores"]] == [
        ("hallucination", "hallucinated", 0.9, "scorer")
    ]
    s = d["scores"][0]
    assert s["comment"] == "hallucination says hallucinated" and s["details"] == {"why": "hallucinated"}
    assert s["version"] == "v1" and s["negative"] is True and s["kind"] == "score"
    assert [(f["id"], f["name"], f["value"], f["comment"], f["negative"]) for f in d["feedback"]] == [
        ("fb-1", "thumbs", 0.0, "wrong parcel", True)
    ]
    assert d["summary"]["release"] == "1.0" and d["summary"]["cost_usd"] == pytest.approx(0.01)
    b = client.get(f"/api/v1/traces/{T['t1']}", headers=B).json()  # B's own trace under the same id
    assert [x["label"] for x in b["scores"]] == ["hallucinated"] and b["scores"][0]["value"] == 0.99
    assert b["feedback"] == [] and b["summary"]["release"] == "9.9"
    assert "tenant B secret" not in client.get(f"/api/v1/traces/{T['t1']}", headers=A).text
    assert client.get(f"/api/v1/traces/{T['t5']}", headers=A).status_code == 404
    assert client.get(f"/api/v1/traces/{T['t2']}", headers=B).status_code == 404


def test_tenants_see_only_their_traces_and_sessions(client: TestClient) -> None:
    assert names(client, B) == ["t5", "t1"]
    assert names(client, B, feedback="negative") == ["t5"]
    assert names(client, B, scorer="hallucination", label="grounded") == []
    a = client.get("/api/v1/sessions", headers=A).json()["sessions"]
    assert [(s["session_id"], s["traces"]) for s in a] == [("s2", 1), ("s1", 2)]
    b = client.get("/api/v1/sessions", headers=B).json()["sessions"]
    assert [(s["session_id"], s["traces"]) for s in b] == [("s1", 2)]
    s1 = client.get("/api/v1/sessions/s1", headers=A).json()
    # oldest first, the conversation in order; a session reaches back 30 days (t4 is 8 days old)
    assert [NAME[t["trace_id"]] for t in s1["traces"]] == ["t4", "t1", "t2"]
    assert [NAME[t["trace_id"]] for t in client.get("/api/v1/sessions/s1", headers=B).json()["traces"]] == ["t1", "t5"]
    assert client.get("/api/v1/sessions/s2", headers=B).status_code == 404
    assert client.get("/api/v1/traces", headers={"authorization": "Bearer nope"}).status_code == 401


def test_session_list_summaries_and_pages(client: TestClient) -> None:
    first = client.get("/api/v1/sessions", headers=A, params={"limit": 1}).json()
    assert [s["session_id"] for s in first["sessions"]] == ["s2"] and first["next_cursor"]
    second = client.get("/api/v1/sessions", headers=A, params={"limit": 1, "cursor": first["next_cursor"]}).json()
    (s1,) = second["sessions"]
    assert (s1["session_id"], s1["user_id"], s1["service"], s1["errors"]) == ("s1", "u1", "shop", 1)
    assert s1["cost_usd"] == pytest.approx(0.04) and second["next_cursor"] is None
    assert [
        s["session_id"] for s in client.get("/api/v1/sessions", headers=A, params={"user_id": "u2"}).json()["sessions"]
    ] == ["s2"]


def test_feedback_is_idempotent_by_id_and_replaces(client: TestClient) -> None:
    body = {"id": "fb-1", "trace_id": T["t1"], "name": "thumbs", "value": 1, "comment": "actually fine"}
    for _ in range(2):
        assert client.post("/api/v1/feedback", headers=A, json=body).json() == {"accepted": 1, "ids": ["fb-1"]}
    fb = client.get(f"/api/v1/traces/{T['t1']}", headers=A).json()["feedback"]
    assert [(f["id"], f["comment"], f["negative"]) for f in fb] == [("fb-1", "actually fine", False)]
    assert names(client, feedback="negative") == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"trace_id": T["t1"]}, "id"),
        ({"id": "x", "trace_id": "XYZ"}, "trace_id"),
        ({"id": "x", "trace_id": T["t1"], "span_id": "123"}, "span_id"),
        ({"id": "x", "trace_id": T["t1"], "tenant": "tenant-b"}, "tenant"),  # the key decides the tenant
        ({"id": "", "trace_id": T["t1"]}, "id"),
    ],
)
def test_bad_feedback_is_422_naming_the_field(client: TestClient, body: dict[str, Any], field: str) -> None:
    r = client.post("/api/v1/feedback", headers=A, json=body)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == field


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"limit": 0}, "limit"),
        ({"sort": "name"}, "sort"),
        ({"status": "broken"}, "status"),
        ({"since": "yesterday"}, "since"),
        ({"since": NOW.isoformat(), "until": (NOW - timedelta(days=1)).isoformat()}, "since"),
        ({"min_score": "nan"}, "min_score"),
        ({"min_score": 0.9, "max_score": 0.1}, "min_score"),
        ({"feedback": "maybe"}, "feedback"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"service": ""}, "service"),
    ],
)
def test_bad_parameters_are_422_naming_them(client: TestClient, params: dict[str, Any], name: str) -> None:
    r = client.get("/api/v1/traces", headers=A, params=params)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][-1] == name


def test_a_cursor_of_another_sort_is_refused(client: TestClient) -> None:
    cursor = client.get("/api/v1/traces", headers=A, params={"limit": 1}).json()["next_cursor"]
    r = client.get("/api/v1/traces", headers=A, params={"limit": 1, "cursor": cursor, "sort": "cost"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "cursor"
