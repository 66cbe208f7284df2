"""A store failure mid-request is 503 + Retry-After on every API route, never 500.

The store is taken away three real ways: its database dropped (a DatabaseError, not an
OperationalError), the store closed, and its ClickHouse HTTP server stopped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from driftline.collector.service import CollectorService
from driftline.config import CollectorSettings
from driftline.server import create_app
from tests.conftest import KEY_A, TENANT_A, LiveServer, make_settings, serve
from tests.support.clickhouse_http import ClickHouseHTTPServer
from tests.support.sql import admin_client

AUTH = {"Authorization": f"Bearer {KEY_A}"}
ADMIN_KEY = "key-tenant-a-admin"  # tenant A's admin key: the routes that change review queues need it
# Requests for every API route, by "METHOD /route" (a new route must be added here: the first test
# checks the list): (path, query parameters, JSON body for a POST). Review routes run in this order:
# the queue is made first and deleted last; so is the judge.
Request = tuple[str, dict[str, str], object]
_Q = "/api/v1/review/queues/q1"
_ITEM = f"{_Q}/items/{'ab' * 16}"
_RUBRIC = {"fields": [{"name": "ok", "type": "boolean"}]}
_JUDGE = {"prompt": "{{ output }}", "output": {"labels": ["ok", "bad"]}, "base_url": "http://127.0.0.1:9/v1",
          "model": "m", "api_key": "k"}  # fmt: skip
REQUESTS: dict[str, list[Request]] = {
    "GET /api/v1/traces": [("/api/v1/traces", {}, None), ("/api/v1/traces", {"service": "svc"}, None)],
    "GET /api/v1/traces/{trace_id}": [("/api/v1/traces/" + "ab" * 16, {}, None)],
    "GET /api/v1/overview": [("/api/v1/overview", {}, None)],
    "GET /api/v1/sessions": [("/api/v1/sessions", {}, None)],
    "GET /api/v1/sessions/{session_id}": [("/api/v1/sessions/s1", {}, None)],
    "POST /api/v1/feedback": [("/api/v1/feedback", {}, {"id": "f1", "trace_id": "ab" * 16, "value": 1})],
    "POST /api/v1/feedback/batch": [
        ("/api/v1/feedback/batch", {}, {"items": [{"id": "f2", "trace_id": "ab" * 16, "value": 0}]})
    ],
    "GET /api/v1/compare/releases": [
        ("/api/v1/compare/releases", {"service": "svc", "baseline": "1", "candidate": "2"}, None)
    ],
    "POST /api/v1/review/queues": [("/api/v1/review/queues", {}, {"name": "q1", "rubric": _RUBRIC})],
    "GET /api/v1/review/queues": [("/api/v1/review/queues", {}, None)],
    "GET /api/v1/review/queues/{queue}": [(_Q, {}, None)],
    "PUT /api/v1/review/queues/{queue}": [(_Q, {}, {"rubric": _RUBRIC})],
    "GET /api/v1/review/queues/{queue}/progress": [(f"{_Q}/progress", {}, None)],
    "GET /api/v1/review/queues/{queue}/items": [(f"{_Q}/items", {}, None)],
    "POST /api/v1/review/queues/{queue}/items": [(f"{_Q}/items", {}, {"trace_ids": ["ab" * 16]})],
    "POST /api/v1/review/queues/{queue}/items/search": [(f"{_Q}/items/search", {}, {"filter": {"service": "svc"}})],
    "POST /api/v1/review/queues/{queue}/next": [(f"{_Q}/next", {}, None)],
    "GET /api/v1/review/queues/{queue}/items/{trace_id}": [(_ITEM, {}, None)],
    "POST /api/v1/review/queues/{queue}/items/{trace_id}/claim": [(f"{_ITEM}/claim", {}, None)],
    "POST /api/v1/review/queues/{queue}/items/{trace_id}/release": [(f"{_ITEM}/release", {}, None)],
    "POST /api/v1/review/queues/{queue}/items/{trace_id}/skip": [(f"{_ITEM}/skip", {}, None)],
    "POST /api/v1/review/queues/{queue}/items/{trace_id}/label": [(f"{_ITEM}/label", {}, {"fields": {"ok": True}})],
    "POST /api/v1/review/queues/{queue}/items/{trace_id}/adjudicate": [
        (f"{_ITEM}/adjudicate", {}, {"fields": {"ok": True}})
    ],
    "GET /api/v1/review/queues/{queue}/export": [(f"{_Q}/export", {}, None)],
    "GET /api/v1/review/datasets": [("/api/v1/review/datasets", {}, None)],
    "POST /api/v1/review/datasets/{dataset}": [("/api/v1/review/datasets/d1", {}, {"queue": "q1"})],
    "GET /api/v1/review/datasets/{dataset}/export": [("/api/v1/review/datasets/d1/export", {}, None)],
    "GET /api/v1/review/agreement": [("/api/v1/review/agreement", {}, None)],
    "DELETE /api/v1/review/queues/{queue}": [(_Q, {}, None)],
    "POST /api/v1/judges": [("/api/v1/judges", {}, {"name": "j1", **_JUDGE})],
    "GET /api/v1/judges": [("/api/v1/judges", {}, None)],
    "GET /api/v1/judges/{judge}": [("/api/v1/judges/j1", {}, None)],
    "PUT /api/v1/judges/{judge}": [("/api/v1/judges/j1", {}, _JUDGE)],
    "DELETE /api/v1/judges/{judge}": [("/api/v1/judges/j1", {}, None)],
    "GET /api/v1/scorers": [("/api/v1/scorers", {}, None)],
}
_ADMIN_ROUTES = {
    "POST /api/v1/review/queues",
    "PUT /api/v1/review/queues/{queue}",
    "DELETE /api/v1/review/queues/{queue}",
    "POST /api/v1/judges",
    "PUT /api/v1/judges/{judge}",
    "DELETE /api/v1/judges/{judge}",
}


@pytest.fixture
def settings(tmp_path: Path, chdb_path: Path, database: str) -> CollectorSettings:
    """Tenant A's keys: the read/review key the requests use, and an admin key for the queue changes."""
    keys = f"{KEY_A}={TENANT_A},{ADMIN_KEY}={TENANT_A}:admin"
    return make_settings(
        tmp_path / "data", f"chdb://{chdb_path}", database, api_keys=keys, judge_endpoints=[_JUDGE["base_url"]]
    )


def _answers(url: str) -> list[tuple[str, int, str | None]]:
    out = []
    for route, requests in REQUESTS.items():
        method = route.split()[0]
        auth = {"Authorization": f"Bearer {ADMIN_KEY}"} if route in _ADMIN_ROUTES else AUTH
        for path, params, body in requests:
            r = httpx.request(method, url + path, params=params, json=body, headers=auth, timeout=60)
            out.append((f"{method} {path}?{params}", r.status_code, r.headers.get("retry-after")))
    return out


def _all_503(answers: list[tuple[str, int, str | None]]) -> None:
    wrong = [a for a in answers if a[1] != 503 or not a[2]]
    assert not wrong, f"expected 503 + Retry-After everywhere: {wrong}"


def test_every_api_route_is_covered(runtime: CollectorService) -> None:
    paths = create_app(runtime).openapi()["paths"]
    routes = {f"{m.upper()} {p}" for p, ops in paths.items() if p.startswith("/api/") for m in ops}
    assert routes == set(REQUESTS)


def test_routes_answer_before_the_failure(live: LiveServer) -> None:
    codes = {a[0]: a[1] for a in _answers(live.url)}
    # the store works: the 503s below come from the failures (201: the queue made, 204: no next item
    # to review, then the queue deleted; 404: no such item or dataset)
    assert set(codes.values()) <= {200, 201, 204, 404}, codes


def test_database_dropped_is_503(live: LiveServer) -> None:
    with admin_client(live.runtime.store) as c:
        c.command(f"DROP DATABASE {live.runtime.store.cfg.database}")
    _all_503(_answers(live.url))


def test_store_closed_is_503(live: LiveServer) -> None:
    live.runtime.store.close()
    _all_503(_answers(live.url))


@pytest.fixture
def http_runtime(
    tmp_path: Path, chdb_path: Path, database: str
) -> Iterator[tuple[CollectorService, ClickHouseHTTPServer]]:
    server = ClickHouseHTTPServer(data_dir=str(chdb_path), username="u", password="p").start()
    keys = f"{KEY_A}={TENANT_A},{ADMIN_KEY}={TENANT_A}:admin"
    rt = CollectorService(
        make_settings(tmp_path / "data", server.url, database, api_keys=keys, judge_endpoints=[_JUDGE["base_url"]])
    )
    rt.start()
    try:
        yield rt, server
    finally:
        rt.stop()
        server.close()


def test_clickhouse_server_gone_is_503(http_runtime: tuple[CollectorService, ClickHouseHTTPServer]) -> None:
    rt, server = http_runtime
    uv, thread, url = serve(rt)
    try:
        assert httpx.get(url + "/api/v1/traces", headers=AUTH).status_code == 200
        server.stop()
        _all_503(_answers(url))
    finally:
        uv.should_exit = True
        thread.join(10)


# The UI's pages, each drawn from one of the routes above.
PAGES = [
    "/",
    "/traces",
    "/traces/" + "ab" * 16,
    "/sessions",
    "/sessions/s1",
    "/compare?service=svc&baseline=1&candidate=2",
]


def test_ui_pages_under_a_store_failure_are_503_with_the_banner(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url, timeout=60) as browser:
        r = browser.post("/login", data={"key": KEY_A, "next": "/traces"})  # signing in needs no store
        assert r.status_code == 303, r.text
        assert all(browser.get(p).status_code in (200, 404) for p in PAGES)  # before: the store works
        with admin_client(live.runtime.store) as c:
            c.command(f"DROP DATABASE {live.runtime.store.cfg.database}")
        for path in PAGES:
            page = browser.get(path)
            assert page.status_code == 503, (path, page.status_code, page.text[:300])
            assert 'class="banner error" role="alert"><strong>503</strong>' in page.text, path
