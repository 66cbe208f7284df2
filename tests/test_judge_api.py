"""LLM judges defined through the API (/api/v1/judges), over the real app on a real uvicorn and the
real store, against a FAKE OpenAI-compatible judge endpoint (it stands in for the provider, nothing
else): made by an admin key, run by the scorer on its next run without a restart, a new version on
an edited prompt with both versions' scores kept apart, tenant-scoped, the key write-only."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from driftline.api_service import ApiService
from driftline.collector.service import CollectorService
from driftline.config import ScorerSettings, load_settings
from driftline.judge_config import endpoint_allowed
from driftline.scorers.service import ScorerService
from driftline.server import build_app
from tests.conftest import KEY_A, KEY_B, TENANT_A, TENANT_B, LiveServer, make_settings, serve
from tests.otlp_helpers import http_exporter, provider_for, send_rag_trace
from tests.support.fake_judge import FakeJudge, fake_judge

ADMIN_A, ADMIN_B = "key-tenant-a-admin", "key-tenant-b-admin"
KEYS = f"{KEY_A}={TENANT_A},{ADMIN_A}={TENANT_A}:admin,{KEY_B}={TENANT_B},{ADMIN_B}={TENANT_B}:admin"
JUDGE_KEY = "sk-judge-do-not-echo-4711"
PASSAGE = "Canberra is the capital city of Australia."
QUESTION = "What is the capital of Australia?"


def _h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# The operator's list of endpoints API judges may call (judge_endpoints): the fake judge, and one
# more for the test of a key that must not follow a judge to a new endpoint.
MOVED_TO = "https://judge.example.com/v1"


@pytest.fixture
def app(tmp_path: Path, chdb_path: Path, database: str, judge_server: FakeJudge) -> Iterator[LiveServer]:
    endpoints = [judge_server.url, MOVED_TO]
    settings = make_settings(
        tmp_path / "data", f"chdb://{chdb_path}", database, api_keys=KEYS, judge_endpoints=endpoints
    )
    rt = CollectorService(settings)
    rt.start()
    server, thread, url = serve(rt)
    try:
        yield LiveServer(url, rt)
    finally:
        server.should_exit = True
        thread.join(10)
        rt.stop()


def _polite(body: dict[str, Any]) -> str:
    user = body["messages"][-1]["content"]
    rude = "idiot" in user
    return json.dumps({"score": 0.1 if rude else 0.95, "label": "rude" if rude else "polite",
                       "reasoning": "insults the user" if rude else "courteous and on topic"})  # fmt: skip


@pytest.fixture
def judge_server() -> Iterator[FakeJudge]:
    with fake_judge() as f:
        f.answer = _polite
        yield f


def _judge(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "prompt": "Is this answer polite?\nQ: {{ input }}\nA: {{ output }}",
        "output": {"labels": ["polite", "rude"]},
        "base_url": url,
        "model": "gpt-4o-mini",
        "api_key": JUDGE_KEY,
        **extra,
    }


def _ingest(app: LiveServer, key: str, answers: list[str]) -> list[dict[str, str]]:
    tp = provider_for(http_exporter(app.url, key), service="support-bot", release="2.0")
    ids = [send_rag_trace(tp, PASSAGE, QUESTION, a) for a in answers]
    tp.shutdown()
    assert app.runtime.flush(20)
    return ids


def _scorer(app: LiveServer) -> ScorerService:
    """The scorer service over the app's store, its clock a little ahead (spans are never too fresh),
    every judge due at every run (the interval is a millisecond)."""
    settings = load_settings(
        ScorerSettings, environ={}, scorer_interval_s=0.001, judge_endpoints=app.runtime.settings.judge_endpoints
    )
    return ScorerService(
        settings, app.runtime.store, CollectorRegistry(), clock=lambda: datetime.now(UTC) + timedelta(seconds=5)
    )


def _judge_scores(app: LiveServer, key: str, trace_id: str, name: str = "politeness") -> list[dict[str, Any]]:
    r = httpx.get(f"{app.url}/api/v1/traces/{trace_id}", headers=_h(key), timeout=30)
    assert r.status_code == 200, r.text
    return sorted((s for s in r.json()["scores"] if s["name"] == name), key=lambda s: str(s["version"]))


def test_a_judge_made_through_the_api_scores_spans_and_an_edit_is_a_new_version(
    app: LiveServer, judge_server: FakeJudge, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ids = _ingest(app, KEY_A, ["The capital is Canberra.", "Canberra, you idiot."])
    scorer = _scorer(app)
    assert scorer.api_judges.run_once() == {}  # no judge yet

    made = httpx.post(f"{app.url}/api/v1/judges", json={"name": "politeness", **_judge(judge_server.url)},
                      headers=_h(ADMIN_A), timeout=30)  # fmt: skip
    assert made.status_code == 201, made.text
    v1 = made.json()["version"]
    assert v1.startswith("j") and made.json()["api_key_set"] is True
    assert made.json()["definition"]["prompt"].startswith("Is this answer polite?")

    # The running scorer picks it up on its next run: both spans judged, with the stored key.
    [(key, r1)] = scorer.api_judges.run_once().items()
    assert key == (TENANT_A, "politeness") and r1 is not None and (r1.scored, r1.failed) == (2, 0)
    assert {r["auth"] for r in judge_server.requests} == {f"Bearer {JUDGE_KEY}"}
    [polite] = _judge_scores(app, KEY_A, ids[0]["trace_id"])
    [rude] = _judge_scores(app, KEY_A, ids[1]["trace_id"])
    assert (polite["label"], polite["comment"], polite["version"]) == ("polite", "courteous and on topic", v1)
    assert (rude["label"], rude["comment"]) == ("rude", "insults the user")
    assert rude["details"]["judge_version"] == v1 and len(rude["details"]["prompt_sha256"]) == 64
    assert scorer.api_judges.run_once()[key].scored == 0  # type: ignore[union-attr]  # already judged
    asked = len(judge_server.requests)
    assert asked == 2

    # Edit the prompt (the key left out: kept, the endpoint is the same): a new version.
    edited = _judge(judge_server.url, prompt="Rate the politeness of: {{ output }}")
    del edited["api_key"]
    put = httpx.put(f"{app.url}/api/v1/judges/politeness", json=edited, headers=_h(ADMIN_A), timeout=30)
    assert put.status_code == 200, put.text
    v2 = put.json()["version"]
    assert v2 != v1 and put.json()["api_key_set"] is True
    # Budget, sampling and filters decide no verdict: changing them keeps the version.
    same = httpx.put(f"{app.url}/api/v1/judges/politeness", json={**edited, "budget_tokens_per_hour": 90_000},
                     headers=_h(ADMIN_A), timeout=30)  # fmt: skip
    assert same.json()["version"] == v2
    r2 = scorer.api_judges.run_once()[key]  # the same scorer: no restart
    assert r2 is not None and r2.scored == 2
    assert judge_server.requests[-1]["body"]["messages"][-1]["content"].startswith("Rate the politeness of:")
    assert judge_server.requests[-1]["auth"] == f"Bearer {JUDGE_KEY}"

    # Both versions' scores are kept, each under its own version and its own prompt hash.
    both = _judge_scores(app, KEY_A, ids[1]["trace_id"])
    assert sorted(s["version"] for s in both) == sorted([v1, v2])
    assert len({s["details"]["prompt_sha256"] for s in both}) == 2
    assert {s["details"]["judge_version"] for s in both} == {v1, v2}

    # The trace view shows each verdict's reasoning, prompt hash and judge version.
    with httpx.Client(base_url=app.url, timeout=30) as c:
        assert c.post("/login", data={"key": KEY_A, "next": "/traces"}).status_code == 303
        page = c.get(f"/traces/{ids[1]['trace_id']}").text
        listed = c.get("/traces").text
    assert "insults the user" in page
    for s in both:
        assert f'prompt sha256 <span title="{s["details"]["prompt_sha256"]}">' in page
        assert f"judge version {s['version']}" in page
    # The list's scorer filter offers the judge, and the scorer list says where it comes from.
    assert '<option value="politeness"' in listed
    known = httpx.get(f"{app.url}/api/v1/scorers", headers=_h(KEY_A), timeout=30).json()["scorers"]
    assert {"name": "politeness", "sources": ["api_judge", "scores"]} in known
    assert {"name": "hallucination", "sources": ["builtin"]} in known

    # The key is never answered back nor logged.
    for r in (made, put, httpx.get(f"{app.url}/api/v1/judges", headers=_h(KEY_A), timeout=30),
              httpx.get(f"{app.url}/api/v1/judges/politeness", headers=_h(KEY_A), timeout=30)):  # fmt: skip
        assert r.status_code in (200, 201) and JUDGE_KEY not in r.text
    assert JUDGE_KEY not in caplog.text

    # Deleted: the scorer stops running it; its scores stay.
    assert httpx.delete(f"{app.url}/api/v1/judges/politeness", headers=_h(ADMIN_A), timeout=30).status_code == 204
    assert httpx.get(f"{app.url}/api/v1/judges/politeness", headers=_h(KEY_A), timeout=30).status_code == 404
    _ingest(app, KEY_A, ["Canberra it is."])
    assert scorer.api_judges.run_once() == {} and len(judge_server.requests) == 4
    assert len(_judge_scores(app, KEY_A, ids[1]["trace_id"])) == 2


def test_judges_are_tenant_scoped(app: LiveServer, judge_server: FakeJudge) -> None:
    a = _ingest(app, KEY_A, ["The capital is Canberra."])
    b = _ingest(app, KEY_B, ["The capital is Canberra, you idiot."])
    made = httpx.post(f"{app.url}/api/v1/judges", json={"name": "politeness", **_judge(judge_server.url)},
                      headers=_h(ADMIN_A), timeout=30)  # fmt: skip
    assert made.status_code == 201
    # Tenant B sees none of A's judges, and cannot change or delete them.
    assert httpx.get(f"{app.url}/api/v1/judges", headers=_h(KEY_B), timeout=30).json() == {"judges": []}
    assert httpx.get(f"{app.url}/api/v1/judges/politeness", headers=_h(KEY_B), timeout=30).status_code == 404
    assert httpx.delete(f"{app.url}/api/v1/judges/politeness", headers=_h(ADMIN_B), timeout=30).status_code == 404
    known_b = httpx.get(f"{app.url}/api/v1/scorers", headers=_h(KEY_B), timeout=30).json()["scorers"]
    assert "politeness" not in {s["name"] for s in known_b}
    # A's judge judges A's spans only.
    results = _scorer(app).api_judges.run_once()
    assert set(results) == {(TENANT_A, "politeness")} and len(judge_server.requests) == 1
    assert len(_judge_scores(app, KEY_A, a[0]["trace_id"])) == 1
    assert _judge_scores(app, KEY_B, b[0]["trace_id"]) == []
    # B's own judge of the same name is B's: A's stays as it was.
    mine = _judge(judge_server.url, prompt="Be strict. {{ output }}")
    assert httpx.put(f"{app.url}/api/v1/judges/politeness", json=mine, headers=_h(ADMIN_B), timeout=30).is_success
    got_a = httpx.get(f"{app.url}/api/v1/judges/politeness", headers=_h(KEY_A), timeout=30).json()
    assert got_a["version"] == made.json()["version"] and got_a["definition"]["prompt"].startswith("Is this")
    assert set(_scorer(app).api_judges.run_once()) == {(TENANT_A, "politeness"), (TENANT_B, "politeness")}
    [b_score] = _judge_scores(app, KEY_B, b[0]["trace_id"])
    assert b_score["label"] == "rude" and b_score["version"] != got_a["version"]


def test_roles(app: LiveServer, judge_server: FakeJudge) -> None:
    body = {"name": "politeness", **_judge(judge_server.url)}
    assert httpx.post(f"{app.url}/api/v1/judges", json=body, timeout=30).status_code == 401
    # A read key reads; only admin writes.
    assert httpx.post(f"{app.url}/api/v1/judges", json=body, headers=_h(KEY_A), timeout=30).status_code == 403
    assert httpx.post(f"{app.url}/api/v1/judges", json=body, headers=_h(ADMIN_A), timeout=30).status_code == 201
    assert httpx.post(f"{app.url}/api/v1/judges", json=body, headers=_h(ADMIN_A), timeout=30).status_code == 409
    assert httpx.get(f"{app.url}/api/v1/judges/politeness", headers=_h(KEY_A), timeout=30).status_code == 200
    put = httpx.put(f"{app.url}/api/v1/judges/politeness", json=_judge(judge_server.url), headers=_h(KEY_A), timeout=30)
    assert put.status_code == 403
    assert httpx.delete(f"{app.url}/api/v1/judges/politeness", headers=_h(KEY_A), timeout=30).status_code == 403


def test_the_key_is_write_only_and_never_follows_a_new_endpoint(app: LiveServer, judge_server: FakeJudge) -> None:
    url = f"{app.url}/api/v1/judges/politeness"
    assert httpx.put(url, json=_judge(judge_server.url), headers=_h(ADMIN_A), timeout=30).json()["api_key_set"]
    moved = _judge(MOVED_TO)
    del moved["api_key"]
    # The endpoint changed and no key was given: the old key is not sent to the new endpoint.
    assert httpx.put(url, json=moved, headers=_h(ADMIN_A), timeout=30).json()["api_key_set"] is False
    back = _judge(judge_server.url)
    assert httpx.put(url, json=back, headers=_h(ADMIN_A), timeout=30).json()["api_key_set"] is True
    assert httpx.put(url, json={**back, "api_key": ""}, headers=_h(ADMIN_A), timeout=30).json()["api_key_set"] is False


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"prompt": "{{ outptu }}"}, "prompt", "unknown template variable 'outptu'"),
        ({"system": "{% if %}"}, "system", "not a valid template"),
        ({"output": {"labels": ["a", "a"]}}, "output", "labels must be distinct"),
        ({"output": {"labels": ["ok", "error"]}}, "output", "'error' is reserved"),
        ({"base_url": "ftp://judge/v1"}, "base_url", "must start with http:// or https://"),
        ({"base_url": "http://169.254.169.254/latest"}, "base_url", "judge_endpoints"),
        ({"base_url": "https://judge.example.com.attacker.test/v1"}, "base_url", "judge_endpoints"),
        ({"base_url": "https://judge.example.com/v1evil"}, "base_url", "judge_endpoints"),
        ({"base_url": ""}, "base_url", "at least 1 character"),
        ({"model": ""}, "model", "at least 1 character"),
        ({"temperature": 5}, "temperature", "less than or equal to 2"),
        ({"sample_rate": 1.5}, "sample_rate", "less than or equal to 1"),
        ({"temprature": 0}, "temprature", "Extra inputs are not permitted"),
        ({"canary": {"dataset": "golden"}}, "canary", "canary_dataset"),
        ({"canary_dataset": "../etc"}, "canary_dataset", "String should match pattern"),
        ({"canary_interval_s": 1}, "canary_interval_s", "greater than or equal to 60"),
        ({"name": "refusal"}, "name", "built-in scorer"),
        ({"name": "has space"}, "name", "String should match pattern"),
    ],
)
def test_a_bad_definition_is_a_422_naming_the_field(
    app: LiveServer, judge_server: FakeJudge, change: dict[str, Any], field: str, message: str
) -> None:
    body = {"name": "politeness", **_judge(judge_server.url), **change}
    r = httpx.post(f"{app.url}/api/v1/judges", json=body, headers=_h(ADMIN_A), timeout=30)
    assert r.status_code == 422, r.text
    errors = r.json()["detail"]
    assert any(e["loc"][:2] == ["body", field] and message in e["msg"] for e in errors), errors
    assert JUDGE_KEY not in r.text  # a refused body is not echoed with its key
    assert httpx.get(f"{app.url}/api/v1/judges", headers=_h(KEY_A), timeout=30).json() == {"judges": []}


def test_a_stored_definition_no_longer_valid_is_skipped_not_a_500(
    app: LiveServer, judge_server: FakeJudge, caplog: pytest.LogCaptureFixture
) -> None:
    """A definition stored by another version of Driftline that this one rejects (here: a template
    variable it does not know) hides neither the tenant's other judges nor the list: it is left out,
    logged once, and a PUT replaces it."""
    from driftline.scorers.judge_book import JudgeBook

    _ingest(app, KEY_A, ["The capital is Canberra."])
    ok = httpx.post(f"{app.url}/api/v1/judges", json={"name": "politeness", **_judge(judge_server.url)},
                    headers=_h(ADMIN_A), timeout=30)  # fmt: skip
    assert ok.status_code == 201
    bad = dict(ok.json()["definition"])
    bad["prompt"] = "{{ reference_answer }}"
    JudgeBook(app.runtime.store)._write(TENANT_A, "older", json.dumps(bad), "", False, datetime.now(UTC))
    listed = httpx.get(f"{app.url}/api/v1/judges", headers=_h(KEY_A), timeout=30)
    assert listed.status_code == 200 and [j["name"] for j in listed.json()["judges"]] == ["politeness"]
    assert httpx.get(f"{app.url}/api/v1/judges/older", headers=_h(KEY_A), timeout=30).status_code == 404
    with caplog.at_level(logging.WARNING):
        results = _scorer(app).api_judges.run_once()
    assert set(results) == {(TENANT_A, "politeness")}
    assert "judge older of tenant tenant-a: stored definition not valid" in caplog.text
    assert "unknown template variable 'reference_answer'" in caplog.text
    fixed = httpx.put(f"{app.url}/api/v1/judges/older", json=_judge(judge_server.url), headers=_h(ADMIN_A), timeout=30)
    assert fixed.status_code == 200
    assert set(_scorer(app).api_judges.run_once()) == {(TENANT_A, "politeness"), (TENANT_A, "older")}


def _wait_for(check: Any, timeout_s: float = 60.0) -> Any:
    """Poll `check` until it returns something truthy (bounded): the scheduler runs on its own thread."""
    import threading

    done = threading.Event()
    deadline = datetime.now(UTC) + timedelta(seconds=timeout_s)
    while datetime.now(UTC) < deadline:
        if got := check():
            return got
        done.wait(0.1)
    raise AssertionError(f"not within {timeout_s} s")


def test_the_running_scheduler_picks_a_judge_up_and_its_edit_without_a_restart(
    app: LiveServer, judge_server: FakeJudge
) -> None:
    """Through the real APScheduler: the scorer is started first, the judge made and edited after."""
    ids = _ingest(app, KEY_A, ["Canberra, you idiot."])
    settings = load_settings(ScorerSettings, environ={}, scorer_interval_s=0.3, sli_interval_s=3600,
                             review_fill_interval_s=3600, review_agreement_interval_s=3600,
                             judge_endpoints=app.runtime.settings.judge_endpoints)  # fmt: skip
    service = ScorerService(
        settings, app.runtime.store, CollectorRegistry(), clock=lambda: datetime.now(UTC) + timedelta(seconds=5)
    )
    service.start()
    try:
        made = httpx.post(f"{app.url}/api/v1/judges", json={"name": "politeness", **_judge(judge_server.url)},
                          headers=_h(ADMIN_A), timeout=30)  # fmt: skip
        v1 = made.json()["version"]
        trace_id = ids[0]["trace_id"]
        assert [s["version"] for s in _wait_for(lambda: _judge_scores(app, KEY_A, trace_id))] == [v1]
        edited = _judge(judge_server.url, prompt="Rate the politeness of: {{ output }}")
        v2 = httpx.put(f"{app.url}/api/v1/judges/politeness", json=edited, headers=_h(ADMIN_A), timeout=30).json()

        def two() -> list[dict[str, Any]] | None:
            got = _judge_scores(app, KEY_A, trace_id)
            return got if len(got) == 2 else None

        both = _wait_for(two)
        assert sorted(s["version"] for s in both) == sorted([v1, v2["version"]])
    finally:
        assert service.scoring.stop(wait=True, timeout_s=30)


def test_an_api_judge_is_watched_by_its_canary_dataset(app: LiveServer, judge_server: FakeJudge) -> None:
    """A judge made through the API with a canary_dataset: its tenant's reviewed items re-scored on
    schedule, a verdict change against the pinned baseline counted per (judge, tenant)."""
    from driftline.scorers.judge_api_jobs import ApiJudgeJobs
    from driftline.scorers.metrics import ScorerMetrics
    from driftline.scorers.registry import job_options
    from driftline.scorers.scheduler import ScoringService
    from driftline.store.queries import review as review_queries

    now = datetime.now(UTC)
    records = [
        {"trace_id": f"t{i}", "span_id": f"s{i}", "queue": "support", "input": "Refund?", "output": out,
         "context": "", "corrected_answer": "", "labels": {}}
        for i, out in enumerate(["Sure, refunded.", "No, you idiot.", "Ask again later, idiot."])
    ]  # fmt: skip
    review_queries.insert_dataset_records(
        app.runtime.store, TENANT_A,
        [{"dataset": "golden", "queue": "support", "trace_id": r["trace_id"], "record": json.dumps(r), "added_at": now}
         for r in records],
    )  # fmt: skip
    body = {"name": "politeness", **_judge(judge_server.url), "canary_dataset": "golden", "canary_interval_s": 600}
    assert httpx.post(f"{app.url}/api/v1/judges", json=body, headers=_h(ADMIN_A), timeout=30).status_code == 201
    reg = CollectorRegistry()
    metrics = ScorerMetrics(reg)
    scoring = ScoringService([], metrics)
    ticks = [0.0]
    settings = load_settings(ScorerSettings, environ={}, judge_endpoints=app.runtime.settings.judge_endpoints)
    jobs = ApiJudgeJobs(settings, app.runtime.store, metrics, run=scoring.run, options=job_options,
                        run_periodic=scoring.run_periodic, monotonic=lambda: ticks[0])  # fmt: skip
    labels = {"judge": "politeness", "tenant": TENANT_A}

    def gauges() -> tuple[float | None, float | None]:
        return (reg.get_sample_value("driftline_judge_canary_changed", labels),
                reg.get_sample_value("driftline_judge_canary_items", labels))  # fmt: skip

    jobs.run_once()  # the first canary run pins the baseline: 3 items asked, none compared yet
    assert len(judge_server.requests) == 3 and gauges() == (0, 0)
    ticks[0] += 60
    jobs.run_once()  # within canary_interval_s: not asked again
    assert len(judge_server.requests) == 3
    judge_server.answer = lambda _: json.dumps({"score": 0.9, "label": "polite", "reasoning": "fine"})  # drifted
    ticks[0] += 600
    jobs.run_once()
    assert len(judge_server.requests) == 6 and gauges() == (2, 3)  # the two rude verdicts flipped
    assert reg.get_sample_value("driftline_scorer_runs_total", {"scorer": "canary:politeness", "outcome": "ok"}) == 2


def test_a_name_a_configured_judge_uses_is_not_run(
    app: LiveServer, judge_server: FakeJudge, caplog: pytest.LogCaptureFixture
) -> None:
    """The API cannot know the scorer's configured judges and plugins: the scorer skips an API judge
    that takes one's name (its scores would mix with theirs) and says so once."""
    _ingest(app, KEY_A, ["The capital is Canberra."])
    body = {"name": "politeness", **_judge(judge_server.url)}
    assert httpx.post(f"{app.url}/api/v1/judges", json=body, headers=_h(ADMIN_A), timeout=30).status_code == 201
    configured = {"politeness": {"prompt": "{{ output }}", "output": {"labels": ["ok"]}, "base_url": judge_server.url}}
    settings = load_settings(ScorerSettings, environ={}, judges=configured, scorers_enabled=True,
                             judge_endpoints=app.runtime.settings.judge_endpoints)  # fmt: skip
    service = ScorerService(settings, app.runtime.store, CollectorRegistry())
    with caplog.at_level(logging.WARNING):
        assert service.api_judges.run_once() == {} and service.api_judges.run_once() == {}
    said = [r.getMessage() for r in caplog.records if "is not run" in r.getMessage()]
    assert said == ["judge politeness of tenant tenant-a is not run: a configured scorer has that name"]
    assert judge_server.requests == []


def test_a_refused_body_never_echoes_the_key(app: LiveServer, judge_server: FakeJudge) -> None:
    """A missing field's error would carry the whole body as its input: on the judge routes the
    refused input is left out of a 422 (the field and the message stay); elsewhere FastAPI's as is."""
    body = {"name": "politeness", **_judge(judge_server.url)}
    del body["prompt"]
    r = httpx.post(f"{app.url}/api/v1/judges", json=body, headers=_h(ADMIN_A), timeout=30)
    assert r.status_code == 422 and JUDGE_KEY not in r.text
    assert {"loc": ["body", "prompt"], "msg": "Field required", "type": "missing"} in r.json()["detail"]
    r = httpx.put(f"{app.url}/api/v1/judges/politeness", json={"api_key": JUDGE_KEY}, headers=_h(ADMIN_A), timeout=30)
    assert r.status_code == 422 and JUDGE_KEY not in r.text
    other = httpx.get(f"{app.url}/api/v1/traces", params={"limit": "many"}, headers=_h(KEY_A), timeout=30)
    assert other.status_code == 422 and other.json()["detail"][0]["input"] == "many"


def test_an_edit_is_no_way_round_the_hourly_budget(app: LiveServer, judge_server: FakeJudge) -> None:
    _ingest(app, KEY_A, [f"The capital is Canberra ({i})." for i in range(4)])
    # Each call is estimated below 600 tokens and costs 420 (the fake's usage): 2 fit in 1,200.
    body = {"name": "politeness", **_judge(judge_server.url), "budget_tokens_per_hour": 1200}
    assert httpx.post(f"{app.url}/api/v1/judges", json=body, headers=_h(ADMIN_A), timeout=30).status_code == 201
    scorer = _scorer(app)
    assert scorer.api_judges.run_once()[(TENANT_A, "politeness")].scored == 2  # type: ignore[union-attr]
    del body["name"]
    edited = {**body, "max_retries": 1}  # no verdict changes: the same version, a job built anew
    assert httpx.put(f"{app.url}/api/v1/judges/politeness", json=edited, headers=_h(ADMIN_A), timeout=30).is_success
    assert scorer.api_judges.run_once()[(TENANT_A, "politeness")].scored == 0  # type: ignore[union-attr]
    assert len(judge_server.requests) == 2  # this hour's 840 tokens still count against the 1,200


def test_an_edit_is_no_way_round_the_hourly_span_cap(app: LiveServer, judge_server: FakeJudge) -> None:
    _ingest(app, KEY_A, [f"The capital is Canberra ({i})." for i in range(4)])
    body = {"name": "politeness", **_judge(judge_server.url), "max_spans_per_hour": 2}
    assert httpx.post(f"{app.url}/api/v1/judges", json=body, headers=_h(ADMIN_A), timeout=30).status_code == 201
    scorer = _scorer(app)
    first = scorer.api_judges.run_once()[(TENANT_A, "politeness")]
    assert first is not None and (first.scored, first.over_budget) == (2, 2)
    del body["name"]
    edited = {**body, "prompt": "Rate the politeness of: {{ output }}"}  # a new version, a job built anew
    assert httpx.put(f"{app.url}/api/v1/judges/politeness", json=edited, headers=_h(ADMIN_A), timeout=30).is_success
    again = scorer.api_judges.run_once()[(TENANT_A, "politeness")]
    assert again is not None and again.scored == 0  # this hour's 2 spans still count against the cap
    assert len(judge_server.requests) == 2


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://judge.example.com/v1", True),
        ("https://judge.example.com/v1/", True),
        ("https://judge.example.com/v1/chat", True),
        ("https://JUDGE.example.com:443/v1", True),
        ("https://judge.example.com/v1evil", False),  # a path under the entry's, whole segments only
        ("https://judge.example.com/", False),
        ("http://judge.example.com/v1", False),  # the scheme is part of it
        ("https://judge.example.com:8443/v1", False),
        ("https://judge.example.com.attacker.test/v1", False),
        ("https://judge.example.com@attacker.test/v1", False),  # the host is attacker.test
        ("https://user:pw@judge.example.com/v1", False),
        ("https://judge.example.com:99999/v1", False),  # not a port
        ("file:///etc/passwd", False),
    ],
)
def test_judge_endpoints_match_scheme_host_port_and_path_segments(url: str, allowed: bool) -> None:
    assert endpoint_allowed(url, [MOVED_TO]) is allowed


def test_no_endpoint_listed_no_judge_through_the_api_and_the_scorer_holds_to_its_own_list(
    app: LiveServer, judge_server: FakeJudge, caplog: pytest.LogCaptureFixture
) -> None:
    """The API refuses an endpoint the operator did not list; a judge stored while its endpoint was
    listed is not run by a scorer whose list no longer has it (and that is said once)."""
    _ingest(app, KEY_A, ["The capital is Canberra."])
    body = {"name": "politeness", **_judge(judge_server.url)}
    assert httpx.post(f"{app.url}/api/v1/judges", json=body, headers=_h(ADMIN_A), timeout=30).status_code == 201
    settings = load_settings(ScorerSettings, environ={}, scorer_interval_s=0.001, judge_endpoints=[MOVED_TO])
    service = ScorerService(settings, app.runtime.store, CollectorRegistry())
    with caplog.at_level(logging.WARNING):
        assert service.api_judges.run_once() == {} and service.api_judges.run_once() == {}
    said = [r.getMessage() for r in caplog.records if "is not run" in r.getMessage()]
    assert said == ["judge politeness of tenant tenant-a is not run: its endpoint is not in judge_endpoints"]
    assert judge_server.requests == []

    # An API over settings that list nothing: no judge can be made.
    bare = ApiService(app.runtime.store, app.runtime.auth, CollectorRegistry(), judge_endpoints=[])
    with TestClient(build_app([bare], CollectorRegistry())) as client:
        r = client.post("/api/v1/judges", json={**body, "name": "other"}, headers=_h(ADMIN_A))
    assert r.status_code == 422, r.text
    [err] = r.json()["detail"]
    assert err["loc"] == ["body", "base_url"] and "(none listed)" in err["msg"] and JUDGE_KEY not in r.text


def test_the_admin_backfill_api_runs_a_judge_made_through_the_api(app: LiveServer, judge_server: FakeJudge) -> None:
    from driftline.auth import Authenticator
    from tests.test_backfill_api import _poll

    ids = _ingest(app, KEY_A, ["The capital is Canberra.", "Canberra, you idiot."])
    made = httpx.post(f"{app.url}/api/v1/judges", json={"name": "politeness", **_judge(judge_server.url)},
                      headers=_h(ADMIN_A), timeout=30)  # fmt: skip
    assert made.status_code == 201, made.text
    settings = load_settings(
        ScorerSettings, environ={}, api_keys=KEYS, judge_endpoints=app.runtime.settings.judge_endpoints
    )
    registry = CollectorRegistry()
    scorer = ScorerService(settings, app.runtime.store, registry, auth=Authenticator(settings.key_grants()))
    client = TestClient(build_app([scorer], registry))
    body = {"scorer": "politeness", "since": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
            "until": (datetime.now(UTC) + timedelta(minutes=1)).isoformat()}  # fmt: skip

    # Tenant B has no judge of that name: tenant A's is not B's to run.
    other = client.post("/api/v1/admin/backfill", json=body, headers=_h(ADMIN_B))
    assert other.status_code == 400 and "unknown scorer 'politeness'" in other.json()["detail"]
    started = client.post("/api/v1/admin/backfill", json=body, headers=_h(ADMIN_A))
    assert started.status_code == 202, started.text
    done = _poll(client, started.json()["id"], ADMIN_A)
    assert (done["state"], done["scored"], done["failed"]) == ("done", 2, 0)
    assert len(judge_server.requests) == 2
    [rude] = _judge_scores(app, KEY_A, ids[1]["trace_id"])
    assert (rude["label"], rude["version"]) == ("rude", made.json()["version"])
    # Again: the verdicts come from the judge's cache, the endpoint is asked nothing more.
    again = _poll(client, client.post("/api/v1/admin/backfill", json=body, headers=_h(ADMIN_A)).json()["id"], ADMIN_A)
    assert (again["state"], again["scored"]) == ("done", 2) and len(judge_server.requests) == 2
    # A disabled judge is not run, by the schedule or by a backfill.
    off = httpx.put(f"{app.url}/api/v1/judges/politeness", json={**_judge(judge_server.url), "enabled": False},
                    headers=_h(ADMIN_A), timeout=30)  # fmt: skip
    assert off.status_code == 200, off.text
    assert client.post("/api/v1/admin/backfill", json=body, headers=_h(ADMIN_A)).status_code == 400
