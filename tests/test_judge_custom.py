"""Custom LLM judges declared in YAML, against a FAKE OpenAI-compatible endpoint (it stands in for
the provider, nothing else): spans scored with the rendered prompt's hash and the judge's reasoning
in the trace view, the version following the prompt, the cache, the budget, retries and structured
output."""

from __future__ import annotations

import hashlib
import json
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from driftline.config import ConfigError, ScorerSettings, load_settings
from driftline.scorers.judge_custom import CustomJudgeScorer, JudgeCache
from driftline.scorers.metrics import ScorerMetrics
from driftline.scorers.registry import build_jobs, judge_specs
from driftline.scorers.runner import JobOptions, ScorerJob
from driftline.store import Store
from tests.conftest import KEY_A, TENANT_A, LiveServer
from tests.otlp_helpers import http_exporter, provider_for, send_rag_trace
from tests.support.fake_judge import FakeJudge, fake_judge
from tests.support.sql import admin_rows

PASSAGE = "Canberra is the capital city of Australia."
QUESTION = "What is the capital of Australia?"


def _yaml(tmp_path: Path, url: str, prompt: str = "Is this answer polite?\nQ: {{ input }}\nA: {{ output }}",
          **extra: Any) -> Path:  # fmt: skip
    doc: dict[str, Any] = {
        "judge_base_url": url,
        "judge_api_key": "judge-secret",
        "judges": {
            "politeness": {
                "system": "You grade answers of the {{ metadata.service }} service.",
                "prompt": prompt,
                "output": {"labels": ["polite", "rude"], "score_min": 0, "score_max": 1},
                "budget_tokens_per_hour": 100_000,
                **extra,
            }
        },
        "scorers": {"politeness": {"sample_rate": 1.0}},
    }
    path = tmp_path / "driftline.yml"
    path.write_text(json.dumps(doc))  # JSON is YAML
    return path


def _settings(path: Path) -> ScorerSettings:
    return load_settings(ScorerSettings, config_file=path, environ={})


def _ingest(live: LiveServer, answers: list[str]) -> list[dict[str, str]]:
    tp = provider_for(http_exporter(live.url, KEY_A), service="support-bot", release="2.0")
    ids = [send_rag_trace(tp, PASSAGE, QUESTION, a) for a in answers]
    tp.shutdown()
    assert live.runtime.flush(20)
    return ids


def _judge_job(settings: ScorerSettings, store: Store, reg: CollectorRegistry | None = None) -> ScorerJob:
    jobs = build_jobs(settings, store, ScorerMetrics(reg or CollectorRegistry()))
    [job] = [sj.job for sj in jobs if sj.job.scorer.name == "politeness"]
    return ScorerJob(job.scorer, store, JobOptions(settle=timedelta(0)))


def _scores(store: Store, scorer: str = "politeness") -> list[dict[str, Any]]:
    return admin_rows(
        store,
        "SELECT trace_id, span_id, scorer_version, value, label, explanation, details FROM {db}.scores FINAL "
        "WHERE tenant = {tenant:String} AND scorer = {scorer:String} ORDER BY span_start_time, scorer_version",
        {"tenant": TENANT_A, "scorer": scorer},
    )


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


def test_yaml_judge_scores_spans_and_the_trace_view_shows_prompt_hash_and_reasoning(
    live: LiveServer, judge_server: FakeJudge, tmp_path: Path
) -> None:
    ids = _ingest(live, ["The capital is Canberra.", "Canberra, you idiot."])
    s = _settings(_yaml(tmp_path, judge_server.url))
    reg = CollectorRegistry()
    r = _judge_job(s, live.runtime.store, reg).run_once()
    assert r.scored == 2 and r.failed == 0
    rows = _scores(live.runtime.store)
    assert [(x["label"], x["explanation"]) for x in rows] == [
        ("polite", "courteous and on topic"),
        ("rude", "insults the user"),
    ]
    assert rows[0]["value"] == pytest.approx(0.95)
    # What the endpoint received: the rendered system and user messages, the key, the JSON schema.
    req = judge_server.requests[0]
    assert req["auth"] == "Bearer judge-secret"
    body = req["body"]
    assert body["messages"] == [
        {"role": "system", "content": "You grade answers of the support-bot service."},
        {"role": "user", "content": f"Is this answer polite?\nQ: {QUESTION}\nA: The capital is Canberra."},
    ]
    schema = body["response_format"]["json_schema"]["schema"]
    assert body["response_format"]["type"] == "json_schema" and schema["properties"]["label"]["enum"] == [
        "polite",
        "rude",
    ]
    # The score's details carry the hash of exactly those messages and the judge version.
    details = json.loads(rows[0]["details"])
    sent_hash = hashlib.sha256(json.dumps(body["messages"], sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    version = judge_specs(s)[0].version
    assert details["prompt_sha256"] == sent_hash and details["judge_version"] == version == rows[0]["scorer_version"]
    assert details["cached"] is False
    # The trace view shows the reasoning and the prompt hash beside the score.
    with httpx.Client(base_url=live.url, timeout=30) as c:
        assert c.post("/login", data={"key": KEY_A, "next": "/traces"}).status_code == 303
        page = c.get(f"/traces/{ids[1]['trace_id']}").text
    assert "insults the user" in page
    assert f'prompt sha256 <span title="{json.loads(rows[1]["details"])["prompt_sha256"]}">' in page
    assert f"judge version {version}" in page
    assert (
        reg.get_sample_value(
            "driftline_judge_calls_total", {"judge": "politeness", "tenant": TENANT_A, "outcome": "ok"}
        )
        == 2
    )


def test_the_version_follows_the_prompt_and_old_scores_never_mix(
    live: LiveServer, judge_server: FakeJudge, tmp_path: Path
) -> None:
    _ingest(live, ["The capital is Canberra."])
    s1 = _settings(_yaml(tmp_path, judge_server.url))
    # Budget, sampling, retries and filters decide no verdict: same version.
    same = _settings(_yaml(tmp_path, judge_server.url, budget_tokens_per_hour=5, max_retries=0))
    edited = _settings(_yaml(tmp_path, judge_server.url, prompt="Rate the politeness.\n{{ output }}"))
    other_model = _settings(_yaml(tmp_path, judge_server.url, model="gpt-4.1"))
    v1, v_same, v2, v3 = (judge_specs(x)[0].version for x in (s1, same, edited, other_model))
    assert v1 == v_same and len({v1, v2, v3}) == 3
    assert _judge_job(s1, live.runtime.store).run_once().scored == 1
    assert _judge_job(s1, live.runtime.store).run_once().scored == 0  # idempotent: already scored
    assert _judge_job(edited, live.runtime.store).run_once().scored == 1  # a new version scores again
    rows = _scores(live.runtime.store)
    assert sorted(x["scorer_version"] for x in rows) == sorted([v1, v2])  # both kept, each under its own
    assert judge_server.requests[-1]["body"]["messages"][-1]["content"].startswith("Rate the politeness.")


def test_cache_makes_reruns_free_across_restarts(live: LiveServer, judge_server: FakeJudge, tmp_path: Path) -> None:
    _ingest(live, ["The capital is Canberra.", "Canberra, you idiot.", "It is Canberra."])
    s = _settings(_yaml(tmp_path, judge_server.url))
    assert _judge_job(s, live.runtime.store).run_once().scored == 3
    assert len(judge_server.requests) == 3
    # A backfill re-scores the window (replacing the scores) with a new scorer instance, as after a
    # restart or on another replica: every verdict comes from the cache in the store.
    reg = CollectorRegistry()
    job = _judge_job(s, live.runtime.store, reg)
    now = datetime.now(UTC)
    r = job.backfill(now - timedelta(hours=1), now + timedelta(minutes=1))
    assert r.scored == 3 and len(judge_server.requests) == 3
    assert (
        reg.get_sample_value(
            "driftline_judge_calls_total", {"judge": "politeness", "tenant": TENANT_A, "outcome": "cached"}
        )
        == 3
    )
    rows = _scores(live.runtime.store)
    assert {json.loads(x["details"])["cached"] for x in rows} == {True}
    assert sorted(x["label"] for x in rows) == ["polite", "polite", "rude"]
    # The cache is per tenant: another tenant's identical span would be asked again.
    scorer = job.scorer
    assert isinstance(scorer, CustomJudgeScorer)
    variables = {"input": QUESTION, "output": "The capital is Canberra.", "context": PASSAGE, "expected": "",
                 "metadata": {"service": "support-bot"}}  # fmt: skip
    h = scorer.input_hash(scorer.messages(variables))
    cache = JudgeCache(live.runtime.store)
    assert cache.get(TENANT_A, "politeness", scorer.version, h) is not None
    assert cache.get("tenant-b", "politeness", scorer.version, h) is None


def test_budget_holds(live: LiveServer, judge_server: FakeJudge, tmp_path: Path) -> None:
    _ingest(live, [f"The capital is Canberra ({i})." for i in range(5)])
    # Each call is estimated below 600 tokens and costs 420 (the fake's usage): 2 fit in 1,200.
    s = _settings(_yaml(tmp_path, judge_server.url, budget_tokens_per_hour=1200))
    reg = CollectorRegistry()
    r = _judge_job(s, live.runtime.store, reg).run_once()
    assert r.scored == 2 and len(judge_server.requests) == 2
    labels = {"judge": "politeness", "tenant": TENANT_A}
    assert reg.get_sample_value("driftline_judge_tokens_total", {**labels, "direction": "input"}) == 800
    assert reg.get_sample_value("driftline_judge_budget_exhausted", labels) == 1
    assert (
        reg.get_sample_value(
            "driftline_judge_calls_total", {"judge": "politeness", "tenant": TENANT_A, "outcome": "over_budget"}
        )
        == 3
    )


def _scorer(server: FakeJudge, tmp_path: Path, reg: CollectorRegistry, sleeps: list[float],
            **extra: Any) -> CustomJudgeScorer:  # fmt: skip
    [spec] = judge_specs(_settings(_yaml(tmp_path, server.url, **extra)))
    scorer = CustomJudgeScorer(spec, ScorerMetrics(reg))
    scorer.client._sleep = sleeps.append  # record the backoff instead of waiting it
    return scorer


VARS = {"input": "q", "output": "a polite answer", "context": "", "expected": "", "metadata": {"service": "s"}}


def test_transient_failures_are_retried_with_backoff_then_given_up(judge_server: FakeJudge, tmp_path: Path) -> None:
    reg = CollectorRegistry()
    sleeps: list[float] = []
    scorer = _scorer(judge_server, tmp_path, reg, sleeps, max_retries=3)
    judge_server.replies = [503, 429]
    out = scorer.judge(TENANT_A, VARS, use_cache=False)
    assert out is not None and out.label == "polite"
    assert len(judge_server.requests) == 3 and len(sleeps) == 2 and all(0 <= x <= 8 for x in sleeps)
    assert reg.get_sample_value("driftline_judge_retries_total", {"judge": "politeness", "tenant": TENANT_A}) == 2
    # Another tenant's judge of the same name counts in its own series, not in this tenant's.
    judge_server.replies = [503]
    assert scorer.judge("tenant-b", VARS, use_cache=False) is not None
    assert reg.get_sample_value("driftline_judge_retries_total", {"judge": "politeness", "tenant": "tenant-b"}) == 1
    assert reg.get_sample_value("driftline_judge_retries_total", {"judge": "politeness", "tenant": TENANT_A}) == 2
    ok = {"judge": "politeness", "outcome": "ok"}
    assert reg.get_sample_value("driftline_judge_calls_total", {**ok, "tenant": "tenant-b"}) == 1
    assert reg.get_sample_value("driftline_judge_calls_total", {**ok, "tenant": TENANT_A}) == 1
    # Beyond max_retries the call fails (the span stays unscored, to be retried by a later run).
    judge_server.replies = [503] * 4
    from driftline.scorers.judge_client import JudgeCallError

    with pytest.raises(JudgeCallError, match="HTTP 503"):
        scorer.judge(TENANT_A, VARS, use_cache=False)
    assert len(judge_server.requests) == 3 + 2 + 4
    # A permanent failure is not retried.
    judge_server.replies = [401]
    with pytest.raises(JudgeCallError, match="HTTP 401"):
        scorer.judge(TENANT_A, VARS, use_cache=False)
    assert len(judge_server.requests) == 3 + 2 + 4 + 1


def test_timeout_is_transient(tmp_path: Path) -> None:
    import socket

    # A listener that accepts and never answers: every attempt times out.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        [spec] = judge_specs(_settings(_yaml(tmp_path, url, timeout_s=0.2, max_retries=1)))
        reg = CollectorRegistry()
        scorer = CustomJudgeScorer(spec, ScorerMetrics(reg))
        scorer.client._sleep = lambda _: None
        from driftline.scorers.judge_client import JudgeCallError

        with pytest.raises(JudgeCallError, match="timeout") as e:
            scorer.judge(TENANT_A, VARS, use_cache=False)
        assert e.value.transient
        assert reg.get_sample_value("driftline_judge_retries_total", {"judge": "politeness", "tenant": TENANT_A}) == 1
    finally:
        sock.close()


def test_structured_output_falls_back_where_the_endpoint_refuses_it(judge_server: FakeJudge, tmp_path: Path) -> None:
    reg = CollectorRegistry()
    scorer = _scorer(judge_server, tmp_path, reg, [])
    judge_server.refuse_response_format = True
    out = scorer.judge(TENANT_A, VARS, use_cache=False)
    assert out is not None and out.label == "polite" and out.details["structured"] is False
    assert [("response_format" in r["body"]) for r in judge_server.requests] == [True, False]
    scorer.judge(TENANT_A, VARS, use_cache=False)  # remembered: not asked with it again
    assert "response_format" not in judge_server.requests[-1]["body"]
    # json_object mode asks for a JSON object; the schema is then only in the prompt.
    obj = _scorer(judge_server, tmp_path, CollectorRegistry(), [], structured_output="json_object")
    judge_server.refuse_response_format = False
    obj.judge(TENANT_A, VARS, use_cache=False)
    assert judge_server.requests[-1]["body"]["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize(
    "reply",
    [
        "not json at all",
        '{"score": 0.5, "label": "sarcastic", "reasoning": "x"}',  # not one of the labels
        '{"score": 7, "label": "polite", "reasoning": "x"}',  # outside the score range
        '{"score": "high", "label": "polite"}',
    ],
)
def test_a_reply_outside_the_schema_is_an_error_score(judge_server: FakeJudge, tmp_path: Path, reply: str) -> None:
    reg = CollectorRegistry()
    scorer = _scorer(judge_server, tmp_path, reg, [])
    judge_server.replies = [reply]
    out = scorer.judge(TENANT_A, VARS, use_cache=False)
    assert out is not None and out.label == "error" and "malformed judge reply" in out.explanation
    assert (
        reg.get_sample_value(
            "driftline_judge_calls_total", {"judge": "politeness", "tenant": TENANT_A, "outcome": "malformed"}
        )
        == 1
    )


@pytest.mark.parametrize(
    ("judge", "message"),
    [
        ({"prompt": "{{ outptu }}", "output": {"labels": ["a"]}}, "unknown template variable 'outptu'"),
        ({"prompt": "{% if %}", "output": {"labels": ["a"]}}, "not a valid template"),
        ({"prompt": "x", "output": {"labels": ["a", "a"]}}, "labels must be distinct"),
        ({"prompt": "x", "output": {"labels": ["a", "error"]}}, "'error' is reserved"),
        ({"prompt": "x", "output": {"labels": ["a"], "score_min": 1, "score_max": 0}}, "score_min must be below"),
        ({"prompt": "x", "output": {"labels": ["a"]}, "temprature": 0}, "Extra inputs are not permitted"),
        ({"prompt": "x", "output": {"labels": ["a"]}, "canary": {"file": "/nonexistent.jsonl"}}, "does not exist"),
        ({"prompt": "x", "output": {"labels": ["a"]}, "concurrency": 0}, "concurrency"),
        ({"prompt": "x", "output": {"labels": ["a"]}, "concurrency": 65}, "concurrency"),
    ],
)
def test_a_bad_judge_definition_stops_start_up_naming_it(tmp_path: Path, judge: dict[str, Any], message: str) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(
        textwrap.dedent(
            f"""\
            judge_base_url: http://127.0.0.1:9/v1
            judges:
              politeness: {json.dumps(judge)}
            """
        )
    )
    with pytest.raises(ConfigError, match="judges") as e:
        _settings(path)
    assert message in str(e.value) and "politeness" in str(e.value)


def test_a_judge_needs_an_endpoint_and_a_free_name(tmp_path: Path, live: LiveServer) -> None:
    with pytest.raises(ConfigError, match=r"judges\.tone: no endpoint"):
        load_settings(ScorerSettings, environ={}, judges={"tone": {"prompt": "x", "output": {"labels": ["a"]}}})
    s = load_settings(
        ScorerSettings,
        environ={},
        judge_base_url="http://127.0.0.1:9/v1",
        judges={"refusal": {"prompt": "x", "output": {"labels": ["a"]}}},
    )
    with pytest.raises(ValueError, match="'refusal' takes the name of a built-in scorer"):
        build_jobs(s, live.runtime.store, ScorerMetrics(CollectorRegistry()))
