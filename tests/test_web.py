"""The web UI over HTTP: sign-in sessions, pages drawn from the JSON API, offline /docs.

Runs the real app under uvicorn on loopback with the real store (the browser test drives the
same pages in Chromium)."""

from __future__ import annotations

import base64
import html
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from prometheus_client import CollectorRegistry

from driftline.auth import Authenticator
from driftline.collector.errors import Unauthenticated
from driftline.config import ScorerSettings, hash_api_key, load_settings
from driftline.drift import DriftPolicy
from driftline.scorers.hallucination import OfflineHallucinationScorer
from driftline.scorers.metrics import ScorerMetrics
from driftline.scorers.registry import build_scorers
from driftline.scorers.runner import JobOptions, ScorerJob
from driftline.sli import LLM_OPS, SLIJob, SLIOptions
from driftline.store import Store, StoreConfig
from driftline.store.queries.overview import overview_series
from driftline.store.queries.traces import trace_scores
from driftline.web.overview import drift_firing
from driftline.web.sessions import COOKIE, SessionCodec
from driftline.web.view import messages, waterfall
from tests.conftest import KEY_A, KEY_B, TENANT_A, LiveServer
from tests.otlp_helpers import http_exporter, provider_for, send_rag_trace


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.refs.append(value)


def refs(html: str) -> list[str]:
    p = _Refs()
    p.feed(html)
    return p.refs


@pytest.fixture
def client(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, follow_redirects=False, timeout=30) as c:
        yield c


def sign_in(c: httpx.Client, key: str = KEY_A) -> None:
    r = c.post("/login", data={"key": key, "next": "/traces"})
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/traces"


def send_trace(live: LiveServer, key: str, service: str) -> str:
    provider = TracerProvider(resource=Resource.create({"service.name": service, "service.version": "2.0"}))
    provider.add_span_processor(
        SimpleSpanProcessor(
            OTLPSpanExporter(endpoint=f"{live.url}/v1/traces", headers={"Authorization": f"Bearer {key}"})
        )
    )
    with provider.get_tracer("t").start_as_current_span("chat m") as span:
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute("gen_ai.request.model", "m")
        trace_id = format(span.get_span_context().trace_id, "032x")
    provider.shutdown()
    assert live.runtime.flush()
    return trace_id


def test_docs_render_offline(client: httpx.Client) -> None:
    r = client.get("/docs")
    assert r.status_code == 200
    found = refs(r.text) + re.findall(r"url: *['\"]([^'\"]+)['\"]", r.text)
    assert found, "the docs page references its assets"
    assets = [u for u in found if u.endswith((".js", ".css", ".svg"))]
    assert {a.rsplit("/", 1)[-1] for a in assets} >= {"swagger-ui-bundle.js", "swagger-ui.css"}
    for url in found:
        assert not urlsplit(url).netloc, f"/docs loads {url} from another host"
    assert "cdn" not in r.text.lower()
    for url in [*assets, "/openapi.json"]:
        assert client.get(url).status_code == 200, url


def test_pages_need_a_session_and_keep_the_target(client: httpx.Client) -> None:
    r = client.get("/traces?service=a%20b&release=1")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=%2Ftraces%3Fservice%3Da%2520b%26release%3D1"
    assert client.get("/traces", headers={"accept": "application/json"}).status_code == 401


def test_failed_sign_ins_are_limited_per_client_address(live: LiveServer) -> None:
    from fastapi import FastAPI
    from starlette.testclient import TestClient

    from driftline.web import mount_web

    auth = Authenticator({})
    auth.add_key(KEY_A, TENANT_A)
    app = FastAPI(docs_url=None)
    mount_web(app, live.runtime.store, auth, login_failures_per_minute=3)
    guesser = TestClient(app, client=("203.0.113.7", 50000), follow_redirects=False)
    other = TestClient(app, client=("203.0.113.8", 50000), follow_redirects=False)
    for _ in range(3):
        assert guesser.post("/login", data={"key": "guess", "next": "/"}).status_code == 401
    # Out of attempts: refused before the key is checked, so even the right key gets no answer.
    r = guesser.post("/login", data={"key": KEY_A, "next": "/"})
    assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 20
    assert COOKIE not in r.cookies and "Too many failed sign-ins" in r.text
    # Another address still signs in; a successful sign-in costs nothing.
    for _ in range(5):
        r = other.post("/login", data={"key": KEY_A, "next": "/traces"})
        assert r.status_code == 303 and COOKIE in r.cookies


def test_sign_in_keeps_only_a_session_id_in_an_httponly_strict_cookie(client: httpx.Client) -> None:
    r = client.post("/login", data={"key": "not-a-key", "next": "/"})
    assert r.status_code == 401
    assert "not valid" in r.text
    assert COOKIE not in r.cookies

    r = client.post("/login", data={"key": KEY_A, "next": "/traces"})
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "httponly" in cookie.lower()
    assert "samesite=strict" in cookie.lower()
    assert KEY_A not in cookie  # the key stays on the server
    assert KEY_A not in r.headers["location"]

    page = client.get("/traces")
    assert page.status_code == 200
    assert f'data-testid="tenant">{TENANT_A}<' in page.text
    assert "Content-Security-Policy" in page.headers
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None

    # A sign-out form from elsewhere (no token) is refused; with it, the session ends.
    assert client.post("/logout", data={"csrf": "forged"}).status_code == 403
    assert client.get("/traces").status_code == 200
    assert client.post("/logout", data={"csrf": csrf.group(1)}).status_code == 303
    client.cookies.clear()
    client.cookies.set(COOKIE, cookie.split(";")[0].split("=", 1)[1])  # replaying the old id
    assert client.get("/traces").status_code == 303


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example"])
def test_sign_in_never_redirects_off_site(client: httpx.Client, target: str) -> None:
    r = client.post("/login", data={"key": KEY_A, "next": target})
    assert r.status_code == 303
    assert r.headers["location"] == "/"


def test_a_page_is_drawn_from_its_json_twin(live: LiveServer, client: httpx.Client) -> None:
    mine = send_trace(live, KEY_A, "svc-web")
    theirs = send_trace(live, KEY_B, "svc-web")
    sign_in(client)
    api = client.get("/api/v1/traces", params={"limit": 5}, headers={"authorization": f"Bearer {KEY_A}"})
    twin = client.get("/traces", params={"limit": 5}, headers={"accept": "application/json"})
    assert twin.status_code == 200
    assert twin.json() == api.json()
    assert [t["trace_id"] for t in twin.json()["traces"]] == [mine]
    assert client.get("/traces", params={"limit": 5, "format": "json"}).json() == api.json()
    page = client.get("/traces")
    assert mine in page.text
    assert theirs not in page.text  # tenant B's trace, same service name
    assert client.get(f"/traces/{theirs}").status_code == 404
    view = client.get(f"/traces/{mine}")
    assert view.status_code == 200
    assert "chat m" in view.text


def test_alert_links_for_another_tenant_say_so(client: httpx.Client) -> None:
    sign_in(client)
    r = client.get("/traces", params={"tenant": "someone-else", "limit": 5})
    assert r.status_code == 200
    assert "This link is for tenant <strong>someone-else</strong>" in r.text


def test_overview_series_per_service_and_release(live: LiveServer, client: httpx.Client) -> None:
    send_trace(live, KEY_A, "svc-o")
    send_trace(live, KEY_A, "svc-o")
    now = datetime.now(UTC)
    series = overview_series(live.runtime.store, TENANT_A, now - timedelta(hours=1), now, 3600, LLM_OPS)
    assert [(s["service"], s["release"]) for s in series] == [("svc-o", "2.0")]
    assert sum(p["requests"] for p in series[0]["points"]) == 2
    assert all(p["error_rate"] == 0 for p in series[0]["points"])
    r = client.get("/api/v1/overview", params={"hours": 1}, headers={"authorization": f"Bearer {KEY_A}"})
    assert r.status_code == 200
    got = r.json()["series"]
    assert [(s["service"], s["release"], sum(p["requests"] for p in s["points"])) for s in got] == [("svc-o", "2.0", 2)]
    assert r.json()["drift_firing"] == []
    assert (
        client.get("/api/v1/overview", params={"hours": 0}, headers={"authorization": f"Bearer {KEY_A}"}).status_code
        == 422
    )
    b = client.get("/api/v1/overview", params={"hours": 1}, headers={"authorization": f"Bearer {KEY_B}"})
    assert b.json()["series"] == []


def test_session_tokens_are_signed_expire_and_hold_no_key() -> None:
    now = [1_000_000.0]
    # Keys long enough that a random token cannot hold one by chance (a 2-character key did, 1 run in ~40).
    k1, k2 = "key-alpha-5d0c7f3e9b21", "key-bravo-8e4a1c6f2d07"
    keys = {hash_api_key(k1): "t1", hash_api_key(k2): "t2"}
    codec = SessionCodec(Authenticator(keys), ttl_s=60, clock=lambda: now[0])
    token = codec.issue(k1)
    payload = base64.urlsafe_b64decode(token.partition(".")[0] + "==").decode()
    assert k1 not in token and k1 not in payload
    session = codec.read(token)
    assert session is not None
    assert session.tenant == "t1"
    # Another replica with the same keys accepts it; one with other keys does not.
    assert SessionCodec(Authenticator(dict(keys)), clock=lambda: now[0]).read(token) is not None
    assert SessionCodec(Authenticator({hash_api_key(k1): "t1"}), clock=lambda: now[0]).read(token) is None
    with pytest.raises(Unauthenticated):
        codec.issue("not-a-key")
    body, _, mac = token.partition(".")
    forged = body[:-2] + ("AA" if body[-2:] != "AA" else "BB")
    assert codec.read(f"{forged}.{mac}") is None
    assert codec.read("garbage") is None
    now[0] += 61
    assert codec.read(token) is None  # expired
    now[0] -= 61
    codec.revoke(token)
    assert codec.read(token) is None  # signed out
    # The API takes the token as a credential for the same tenant, and refuses it once revoked.
    fresh = codec.issue(k2)
    auth = Authenticator(keys)
    codec2 = SessionCodec(auth, clock=lambda: now[0])
    assert auth.tenant_for(f"Session {fresh}") == "t2"
    codec2.revoke(fresh)
    with pytest.raises(Unauthenticated):
        auth.tenant_for(f"Session {fresh}")


def test_a_bad_parameter_shows_the_apis_message(client: httpx.Client) -> None:
    sign_in(client)
    r = client.get("/traces", params={"limit": "0"})
    assert r.status_code == 422
    assert re.search(r'role="alert"><strong>422</strong>[^<]*limit', r.text)


def test_drift_marks_come_from_the_sli_job_of_another_process(
    live: LiveServer, client: httpx.Client, chdb_path: Path, database: str
) -> None:
    """The API process runs no SLI job (as `driftline api` alone): the overview marks the drift
    the job found elsewhere, through the store, and clears them when a later run finds none."""
    tp = provider_for(http_exporter(live.url, KEY_A), service="svc-d", release="2.0")
    now_ns = time.time_ns()
    passage, question, answer = "Canberra is the capital city of Australia.", "Capital?", "Canberra."
    for i in range(30):  # the baseline, two hours ago: no errors
        send_rag_trace(tp, passage, question, answer, at_ns=now_ns - 7200 * 10**9 + i * 10**9)
    for i in range(20):  # the last minute: three calls in four fail
        send_rag_trace(tp, passage, question, answer, error=i % 4 != 0, at_ns=now_ns - 60 * 10**9 + i * 10**9)
    tp.shutdown()
    assert live.runtime.flush(20)
    now = datetime.fromtimestamp(now_ns / 1e9, UTC)
    policy = DriftPolicy(alpha=0.01, min_current=10, min_baseline=20, min_effect=0.2)  # small samples
    scorer_side = Store(StoreConfig(f"chdb://{chdb_path}", database), retention_days=30)  # its own clients
    try:
        SLIJob(scorer_side, SLIOptions(rate_policy=policy), clock=lambda: now).run_once()
        r = client.get("/api/v1/overview", params={"hours": 3}, headers={"authorization": f"Bearer {KEY_A}"})
        assert r.status_code == 200, r.text
        firing = r.json()["drift_firing"]
        assert [(d["sli"], d["service"], d["release"]) for d in firing] == [("error_rate", "svc-d", "2.0")]
        assert firing == drift_firing(live.runtime.store, TENANT_A, now)
        other = client.get("/api/v1/overview", headers={"authorization": f"Bearer {KEY_B}"})
        assert other.json()["drift_firing"] == []  # tenant B sees none of tenant A's
        sign_in(client)
        page = client.get("/", params={"hours": 3})
        assert 'data-testid="drift-firing"' in page.text
        assert "error_rate" in page.text
        # A later run past the bad minute finds nothing: the mark goes.
        later = now + timedelta(minutes=10)
        SLIJob(scorer_side, SLIOptions(rate_policy=policy), clock=lambda: later).run_once()
        assert drift_firing(live.runtime.store, TENANT_A, later) == []
        # A run too old to trust (the job stopped) marks nothing either.
        assert drift_firing(live.runtime.store, TENANT_A, later + timedelta(hours=1)) == []
    finally:
        scorer_side.close()


def _span(sid: str, parent: str, start_ms: int, dur_ms: int) -> dict[str, object]:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    return {
        "span_id": sid,
        "parent_span_id": parent,
        "start_time": (t0 + timedelta(milliseconds=start_ms)).isoformat(),
        "end_time": (t0 + timedelta(milliseconds=start_ms + dur_ms)).isoformat(),
        "duration_ms": float(dur_ms),
    }


def test_waterfall_orders_the_tree_and_keeps_orphans() -> None:
    spans = [
        _span("c2", "root", 60, 40),
        _span("root", "", 0, 200),
        _span("c1", "root", 10, 30),
        _span("g1", "c1", 15, 10),
        _span("orphan", "never-arrived", 150, 50),
    ]
    rows, total = waterfall(spans)
    assert total == 200
    assert [(r["span"]["span_id"], r["depth"]) for r in rows] == [
        ("root", 0),
        ("c1", 1),
        ("g1", 2),
        ("c2", 1),
        ("orphan", 0),
    ]
    c2 = rows[3]
    assert (c2["offset_ms"], c2["left_pct"], c2["width_pct"]) == (60, 30, 20)
    # a cycle loses no span
    rows, _ = waterfall([_span("a", "b", 0, 1), _span("b", "a", 0, 1)])
    assert sorted(r["span"]["span_id"] for r in rows) == ["a", "b"]


def test_messages_read_both_message_shapes() -> None:
    genai = '[{"role": "user", "parts": [{"type": "text", "content": "hi"}, {"type": "tool_call", "name": "f"}]}]'
    assert messages(genai) == [
        {"role": "user", "texts": ["hi"], "others": ['{\n  "type": "tool_call",\n  "name": "f"\n}']}
    ]
    assert messages('[{"role": "assistant", "content": "yes"}]') == [
        {"role": "assistant", "texts": ["yes"], "others": []}
    ]
    assert messages("") == []
    assert messages("not json") == [{"role": "", "texts": ["not json"], "others": []}]


def test_overview_rates_match_the_scores(live: LiveServer) -> None:
    """8 answers, 2 of them not grounded (the real offline scorer decides), 1 of the 8 calls an
    error, all in one minute: that minute reads 25% hallucinated and 12.5% errors."""
    tp = provider_for(http_exporter(live.url, KEY_A), release="3.1")
    at = (time.time_ns() // 60_000_000_000 - 2) * 60_000_000_000 + 1_000_000_000  # 2 minutes ago, one bucket
    for i in range(8):
        answer = "The capital is Sydney." if i % 4 == 0 else "The capital is Canberra."
        send_rag_trace(tp, "Canberra is the capital city of Australia.", "Capital?", answer, error=i == 1, at_ns=at)
    tp.shutdown()
    assert live.runtime.flush(20)
    ScorerJob(OfflineHallucinationScorer(), live.runtime.store, JobOptions(settle=timedelta(0))).run_once()
    now = datetime.now(UTC)
    series = overview_series(live.runtime.store, TENANT_A, now - timedelta(hours=1), now, 60, LLM_OPS)
    assert len(series) == 1
    (point,) = series[0]["points"]
    assert point["t"] == at // 1_000_000_000 - 1
    assert point["requests"] == 8
    assert point["error_rate"] == 1 / 8
    assert point["hallucination_rate"] == 2 / 8
    assert point["tool_failure_rate"] is None  # no tool calls: no rate, not a zero


def test_forms_are_escaped_and_need_their_token(live: LiveServer, client: httpx.Client) -> None:
    r = client.get("/login", params={"next": '/"><script>alert(1)</script>'})
    assert r.status_code == 200
    assert "<script>alert(1)" not in r.text
    trace_id = send_trace(live, KEY_A, "svc-csrf")
    sign_in(client)
    forged = client.post(f"/traces/{trace_id}/feedback", data={"csrf": "forged", "label": "thumbs_down"})
    assert forged.status_code == 403
    page = client.get(f"/traces/{trace_id}")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    ok = client.post(f"/traces/{trace_id}/feedback", data={"csrf": token.group(1), "label": "thumbs_down"})
    assert ok.status_code == 303
    detail = client.get(f"/api/v1/traces/{trace_id}", headers={"authorization": f"Bearer {KEY_A}"}).json()
    assert [(f["label"], f["negative"]) for f in detail["feedback"]] == [("thumbs_down", True)]


class _Options(HTMLParser):
    """The values of one <select>'s options."""

    def __init__(self, select_id: str) -> None:
        super().__init__()
        self.select_id, self.inside = select_id, False
        self.values: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "select":
            self.inside = a.get("id") == self.select_id
        elif tag == "option" and self.inside:
            self.values.append(a.get("value") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self.inside = False


def test_every_scorer_offered_in_the_list_filter_finds_its_traces(live: LiveServer, client: httpx.Client) -> None:
    """The scorer filter offers the names the scorers write, and each finds the traces it scored."""
    tp = provider_for(http_exporter(live.url, KEY_A), release="4.0")
    rag = send_rag_trace(tp, "Canberra is the capital city of Australia.", "Capital?", "The capital is Sydney.")
    with tp.get_tracer("tests").start_as_current_span("execute_tool lookup") as tool:
        tool.set_attribute("gen_ai.operation.name", "execute_tool")
        tool.set_attribute("gen_ai.tool.name", "lookup")
        tool.set_attribute("gen_ai.tool.call.arguments", '{"city": "Canberra"}')
        tool.set_attribute("gen_ai.tool.call.result", '{"error": "timeout"}')
        tool_trace = format(tool.get_span_context().trace_id, "032x")
    tp.shutdown()
    assert live.runtime.flush(20)
    metrics = ScorerMetrics(CollectorRegistry())
    scorers = build_scorers(load_settings(ScorerSettings, environ={}, judge_base_url="http://127.0.0.1:9"), metrics)
    scored: dict[str, set[str]] = {}
    for scorer in scorers:
        ScorerJob(scorer, live.runtime.store, JobOptions(settle=timedelta(0))).run_once()
    for row in trace_scores(live.runtime.store, TENANT_A, rag["trace_id"]) + trace_scores(
        live.runtime.store, TENANT_A, tool_trace
    ):
        scored.setdefault(row["scorer"], set()).add(str(row["trace_id"]))
    sign_in(client)
    parser = _Options("f-scorer")
    parser.feed(client.get("/traces").text)
    offered = [v for v in parser.values if v]
    assert sorted(offered) == sorted(s.name for s in scorers)  # the judge too, configured here
    # The judge would call an LLM: every other scorer ran on real spans, and its option finds them.
    for name in offered:
        if name == "hallucination_judge":
            continue
        assert scored.get(name), f"{name} scored nothing: the test data should give each scorer a span"
        got = client.get("/traces", params={"scorer": name, "limit": 50}, headers={"accept": "application/json"})
        assert got.status_code == 200, got.text
        assert {t["trace_id"] for t in got.json()["traces"]} == scored[name], name


def test_overview_range_fits_the_data(live: LiveServer, client: httpx.Client) -> None:
    sign_in(client)
    assert re.search(r'href="/\?hours=24" aria-current="page"', client.get("/").text)  # no data: a day
    tp = provider_for(http_exporter(live.url, KEY_A), release="5.0")
    send_rag_trace(tp, "Canberra is the capital city of Australia.", "Capital?", "Canberra.")
    tp.shutdown()
    assert live.runtime.flush(20)
    page = client.get("/")
    assert re.search(r'href="/\?hours=1" aria-current="page"', page.text)  # minutes of data: the last hour
    assert 'data-metric="hallucination_rate"' in page.text  # and its charts
    tp = provider_for(http_exporter(live.url, KEY_A), release="5.0")
    send_rag_trace(
        tp,
        "Canberra is the capital city of Australia.",
        "Capital?",
        "Canberra.",
        at_ns=time.time_ns() - 3 * 3600 * 10**9,
    )
    tp.shutdown()
    assert live.runtime.flush(20)
    assert re.search(r'href="/\?hours=6" aria-current="page"', client.get("/").text)  # three hours: 6 h
    assert re.search(r'href="/\?hours=168" aria-current="page"', client.get("/", params={"hours": 168}).text)


def test_a_tool_calls_arguments_and_result_show_on_the_trace_page(live: LiveServer, client: httpx.Client) -> None:
    tp = provider_for(http_exporter(live.url, KEY_A), release="6.0")
    with tp.get_tracer("tests").start_as_current_span("execute_tool weather") as tool:
        tool.set_attribute("gen_ai.operation.name", "execute_tool")
        tool.set_attribute("gen_ai.tool.name", "weather")
        tool.set_attribute("gen_ai.tool.call.arguments", '{"city": "Canberra", "days": 3}')
        tool.set_attribute("gen_ai.tool.call.result", '{"forecast": "sunny-and-mild"}')
        trace_id = format(tool.get_span_context().trace_id, "032x")
        span_id = format(tool.get_span_context().span_id, "016x")
    tp.shutdown()
    assert live.runtime.flush(20)
    sign_in(client)
    page = client.get(f"/traces/{trace_id}", params={"span": span_id})
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "Tool call <code>weather</code>" in text
    args = re.search(r'<div class="label">arguments</div><pre class="code">(.*?)</pre>', text, re.S)
    result = re.search(r'<div class="label">result</div><pre class="code">(.*?)</pre>', text, re.S)
    assert args and json.loads(args.group(1)) == {"city": "Canberra", "days": 3}
    assert result and json.loads(result.group(1)) == {"forecast": "sunny-and-mild"}


def test_release_comparison_counts_only_the_callers_tenant(live: LiveServer) -> None:
    for key, per_release in ((KEY_A, {"1": 2, "2": 3}), (KEY_B, {"1": 5, "2": 7})):
        for release, n in per_release.items():
            tp = provider_for(http_exporter(live.url, key), service="svc-iso", release=release)
            for _ in range(n):
                send_rag_trace(tp, "p", "q", "a", error=key == KEY_B)
            tp.shutdown()
    assert live.runtime.flush(20)
    params = {"service": "svc-iso", "baseline": "1", "candidate": "2", "hours": "1"}
    for key, (nb, nc, rate) in ((KEY_A, (2, 3, 0.0)), (KEY_B, (5, 7, 1.0))):
        r = httpx.get(f"{live.url}/api/v1/compare/releases", params=params, headers={"authorization": f"Bearer {key}"})
        assert r.status_code == 200, r.text
        err = r.json()["slis"]["error_rate"]
        assert (err["n_baseline"], err["n_candidate"], err["candidate"]) == (nb, nc, rate), key


CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


def test_pages_send_the_csp_and_reference_no_other_host(live: LiveServer, client: httpx.Client) -> None:
    trace_id = send_trace(live, KEY_A, "svc-csp")
    own = urlsplit(live.url).netloc
    login = client.get("/login")
    assert login.headers["content-security-policy"] == CSP
    sign_in(client)
    for path in (
        "/",
        "/traces",
        f"/traces/{trace_id}",
        "/sessions",
        "/compare",
        "/compare?service=svc-csp&baseline=1&candidate=2.0",
    ):
        page = client.get(path)
        assert page.status_code == 200, path
        assert page.headers["content-security-policy"] == CSP, path
        for ref in refs(page.text):
            parts = urlsplit(ref)  # relative, or this server (the JSON twin's link)
            assert parts.netloc in ("", own), f"{path} references {ref}"
            assert parts.scheme in ("", "http") and not ref.startswith("//"), f"{path} references {ref}"
