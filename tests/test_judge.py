"""The LLM judge against a FAKE OpenAI-compatible server (it stands in for the provider, nothing
else): verdicts, the hourly budget, malformed replies, the offline pre-filter."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from driftline.scorers.base import Score, SpanRow, TraceContext
from driftline.scorers.hallucination import OfflineHallucinationScorer
from driftline.scorers.judge import HallucinationJudgeScorer, JudgeConfig
from driftline.scorers.metrics import ScorerMetrics
from driftline.scorers.runner import JobOptions, ScorerJob
from tests.conftest import KEY_A, TENANT_A, LiveServer
from tests.otlp_helpers import http_exporter, provider_for, send_rag_trace
from tests.support.fake_judge import FakeJudge, fake_judge
from tests.support.sql import admin_rows


@pytest.fixture
def judge_server() -> Iterator[FakeJudge]:
    with fake_judge() as f:
        yield f


class _Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 10, 5, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _ingest(live: LiveServer, n: int) -> list[dict[str, str]]:
    tp = provider_for(http_exporter(live.url, KEY_A))
    ids = [
        send_rag_trace(
            tp,
            "Canberra is the capital city of Australia.",
            "What is the capital of Australia?",
            f"The capital is Canberra ({i}).",
        )
        for i in range(n)
    ]
    tp.shutdown()
    assert live.runtime.flush(20)
    return ids


def _judge(server: FakeJudge, metrics: ScorerMetrics, clock: _Clock, **cfg: Any) -> HallucinationJudgeScorer:
    config = JudgeConfig(base_url=server.url, model="gpt-4o-mini", api_key="judge-secret", prefilter=False, **cfg)
    return HallucinationJudgeScorer(config, metrics, offline=None, clock=clock)


def _metric(metrics_registry: CollectorRegistry, name: str, **labels: str) -> float:
    v = metrics_registry.get_sample_value(name, labels)
    return float(v or 0.0)


def test_verdicts_tokens_and_malformed_reply(live: LiveServer, judge_server: FakeJudge) -> None:
    reg = CollectorRegistry()
    m = ScorerMetrics(reg)
    clock = _Clock()
    _ingest(live, 3)
    judge_server.replies = [
        '{"verdict": "hallucinated", "confidence": 0.8, "reason": "number not in context"}',
        '```json\n{"verdict": "grounded", "confidence": 0.9, "reason": "all supported"}\n```',
        "I think it is fine!",  # not the JSON asked for
    ]
    job = ScorerJob(_judge(judge_server, m, clock), live.runtime.store, JobOptions(settle=timedelta(0)))
    r = job.run_once()
    assert r.scored == 3 and r.failed == 0
    rows = admin_rows(
        live.runtime.store,
        "SELECT label, value, explanation FROM {db}.scores WHERE tenant = {tenant:String} "
        "AND scorer = 'hallucination_judge' ORDER BY span_start_time",
        {"tenant": TENANT_A},
    )
    assert [x["label"] for x in rows] == ["hallucinated", "grounded", "error"]
    assert rows[0]["value"] == pytest.approx(0.8) and rows[1]["value"] == pytest.approx(0.1)
    assert "malformed judge reply" in rows[2]["explanation"]
    assert judge_server.requests[0]["auth"] == "Bearer judge-secret"
    assert "Canberra is the capital city of Australia." in judge_server.requests[0]["body"]["messages"][0]["content"]
    assert (
        _metric(reg, "driftline_judge_tokens_total", judge="hallucination_judge", tenant=TENANT_A, direction="input")
        == 1200
    )
    assert (
        _metric(reg, "driftline_judge_calls_total", judge="hallucination_judge", tenant=TENANT_A, outcome="malformed")
        == 1
    )
    assert _metric(reg, "driftline_judge_spend_usd_total", judge="hallucination_judge", tenant=TENANT_A) > 0


def test_budget_exhaustion_stops_calls_and_says_so(
    live: LiveServer, judge_server: FakeJudge, caplog: pytest.LogCaptureFixture
) -> None:
    reg = CollectorRegistry()
    m = ScorerMetrics(reg)
    clock = _Clock()
    _ingest(live, 5)
    # each call is estimated at under 500 tokens and costs 420 (the fake's usage): 2 fit in 1000
    judge = _judge(judge_server, m, clock, budget_tokens_per_hour=1000)
    job = ScorerJob(judge, live.runtime.store, JobOptions(settle=timedelta(0)))
    with caplog.at_level(logging.WARNING):
        r = job.run_once()
    assert len(judge_server.requests) == 2 and r.scored == 2
    assert (
        _metric(reg, "driftline_judge_tokens_total", judge="hallucination_judge", tenant=TENANT_A, direction="input")
        == 800
    )  # never over
    assert _metric(reg, "driftline_judge_budget_exhausted", judge="hallucination_judge", tenant=TENANT_A) == 1
    assert (
        _metric(reg, "driftline_judge_calls_total", judge="hallucination_judge", tenant=TENANT_A, outcome="over_budget")
        == 3
    )
    assert any("budget" in rec.getMessage() and TENANT_A in rec.getMessage() for rec in caplog.records)
    assert "judge-secret" not in caplog.text
    # the next hour the judge resumes with a fresh budget (a backfill of the window re-runs it)
    clock.now += timedelta(hours=1)
    r2 = job.backfill(datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC) + timedelta(minutes=1))
    assert r2.scored == 2 and len(judge_server.requests) == 4


def test_a_judge_has_calls_in_flight_together_and_still_never_overruns_its_budget(
    live: LiveServer, judge_server: FakeJudge
) -> None:
    reg = CollectorRegistry()
    m = ScorerMetrics(reg)
    _ingest(live, 5)
    judge_server.answer = lambda body: (
        '{"verdict": "hallucinated", "confidence": 0.9}'
        if "(3)" in body["messages"][0]["content"]
        else '{"verdict": "grounded", "confidence": 0.9}'
    )
    # Four calls at once, and room for two (each estimated at under 500 tokens, costing 420): each
    # call's estimate is held before it is made, so the other three spans are refused, not sent.
    judge = _judge(judge_server, m, _Clock(), budget_tokens_per_hour=1000, concurrency=4)
    r = ScorerJob(judge, live.runtime.store, JobOptions(settle=timedelta(0))).run_once()
    assert len(judge_server.requests) == 2 and r.scored == 2
    assert (
        _metric(reg, "driftline_judge_tokens_total", judge="hallucination_judge", tenant=TENANT_A, direction="input")
        == 800
    )
    assert (
        _metric(reg, "driftline_judge_calls_total", judge="hallucination_judge", tenant=TENANT_A, outcome="over_budget")
        == 3
    )
    # With room for all: the three left are judged together (the fake holds each call until three
    # are in flight, as a slow provider would), each span keeps its own verdict, and what a call
    # cost replaces its estimate in the budget.
    judge_server.hold = 3
    wide = _judge(judge_server, m, _Clock(), budget_tokens_per_hour=10_000, concurrency=3)
    r2 = ScorerJob(wide, live.runtime.store, JobOptions(settle=timedelta(0))).run_once()
    assert r2.scored == 3 and len(judge_server.requests) == 5 and judge_server.max_in_flight == 3
    assert wide.budget.remaining(TENANT_A)[0] == 10_000 - 3 * 420
    rows = admin_rows(
        live.runtime.store,
        "SELECT label FROM {db}.scores FINAL WHERE tenant = {tenant:String} AND scorer = 'hallucination_judge' "
        "ORDER BY span_start_time",
        {"tenant": TENANT_A},
    )
    assert [x["label"] for x in rows] == ["grounded", "grounded", "grounded", "hallucinated", "grounded"]


def test_confident_offline_score_skips_the_judge(live: LiveServer, judge_server: FakeJudge) -> None:
    reg = CollectorRegistry()
    m = ScorerMetrics(reg)
    offline = OfflineHallucinationScorer()
    # find an answer the real offline scorer is confident about
    span: SpanRow = {
        "operation": "chat", "output_text": "The capital is Sydney, founded in 1788 by Arthur Phillip, population 5 million.",
        "input_text": "What is the capital of Australia?", "span_id": "s", "start_time": 1,
    }  # fmt: skip
    trace = TraceContext([{"span_id": "r", "start_time": 0, "retrieved_documents":
                           json.dumps([{"content": "Canberra is the capital city of Australia."}])}])  # fmt: skip
    pre = offline.score(span, trace)
    assert isinstance(pre, Score) and pre.details.get("confident"), pre
    config = JudgeConfig(base_url=judge_server.url, model="gpt-4o-mini")
    judge = HallucinationJudgeScorer(config, m, offline=offline, clock=_Clock())
    out = judge.score({**span, "tenant": TENANT_A}, trace)
    assert out is not None and out.label == "hallucinated"
    assert judge_server.requests == [] and out.details["source"] == "offline"
    assert (
        _metric(
            reg,
            "driftline_judge_calls_total",
            judge="hallucination_judge",
            tenant=TENANT_A,
            outcome="skipped_confident",
        )
        == 1
    )


def test_verdicts_are_cached_and_transient_failures_retried(live: LiveServer, judge_server: FakeJudge) -> None:
    from driftline.scorers.judge_cache import JudgeCache

    reg = CollectorRegistry()
    m = ScorerMetrics(reg)
    _ingest(live, 2)
    judge_server.replies = [503, '{"verdict": "hallucinated", "confidence": 0.7, "reason": "made up"}']
    config = JudgeConfig(base_url=judge_server.url, model="gpt-4o-mini", prefilter=False)
    judge = HallucinationJudgeScorer(config, m, clock=_Clock(), cache=JudgeCache(live.runtime.store))
    judge.client._sleep = lambda _: None  # the backoff is not waited in a test
    job = ScorerJob(judge, live.runtime.store, JobOptions(settle=timedelta(0)))
    assert job.run_once().scored == 2
    assert len(judge_server.requests) == 3  # one 503, retried
    assert _metric(reg, "driftline_judge_retries_total", judge="hallucination_judge", tenant=TENANT_A) == 1
    body = judge_server.requests[0]["body"]
    assert body["response_format"]["json_schema"]["schema"]["properties"]["verdict"]["enum"] == [
        "grounded",
        "hallucinated",
    ]
    # A backfill, with a new scorer instance (a restart, another replica): answered from the cache.
    again = HallucinationJudgeScorer(config, m, clock=_Clock(), cache=JudgeCache(live.runtime.store))
    r = ScorerJob(again, live.runtime.store).backfill(
        datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC) + timedelta(minutes=1)
    )
    assert r.scored == 2 and len(judge_server.requests) == 3
    assert (
        _metric(reg, "driftline_judge_calls_total", judge="hallucination_judge", tenant=TENANT_A, outcome="cached") == 2
    )
    rows = admin_rows(
        live.runtime.store,
        "SELECT label, details FROM {db}.scores FINAL WHERE tenant = {tenant:String} "
        "AND scorer = 'hallucination_judge' ORDER BY span_start_time",
        {"tenant": TENANT_A},
    )
    assert [x["label"] for x in rows] == ["hallucinated", "grounded"]
    assert all(json.loads(x["details"])["cached"] for x in rows)


@pytest.mark.parametrize("answer", ["", "   ", "assistant: ", "Assistant:", "AI: assistant: ...", "?!"])
def test_the_judges_refuse_what_the_offline_scorer_refuses(judge_server: FakeJudge, answer: str) -> None:
    """An empty or role-only answer (a tool-calling step) is not sent to a paid judge: the same rule
    as the offline scorer's, for the hallucination judge and for custom judges alike."""
    from driftline.judge_config import JudgeDefinition, JudgeOutput
    from driftline.scorers.judge_custom import CustomJudgeScorer, JudgeSpec

    offline = OfflineHallucinationScorer()
    judge = _judge(judge_server, ScorerMetrics(CollectorRegistry()), _Clock())
    definition = JudgeDefinition(prompt="{{ output }}", output=JudgeOutput(labels=["ok", "bad"]))
    custom = CustomJudgeScorer(
        JudgeSpec("tone", definition, judge_server.url, "m", ""), ScorerMetrics(CollectorRegistry())
    )
    span: SpanRow = {"operation": "chat", "output_text": answer}
    assert [s.applies(span) for s in (offline, judge, custom)] == [False, False, False]
    said = {**span, "output_text": answer + " Canberra."}
    assert [s.applies(said) for s in (offline, judge, custom)] == [True, True, True]


def test_no_context_says_what_evidence_is_missing(judge_server: FakeJudge) -> None:
    """A chat call with instructions only (a system prompt, a question) has no evidence: no_context,
    without a call, and the explanation does not claim a system prompt would have been evidence."""
    from driftline.scorers.judge import NO_CONTEXT

    judge = _judge(judge_server, ScorerMetrics(CollectorRegistry()), _Clock())
    span: SpanRow = {
        "tenant": TENANT_A, "operation": "chat", "span_id": "s", "start_time": 1,
        "system_prompt": "You are a helpful support agent. Answer briefly.",
        "input_text": "What is the capital of Australia?", "output_text": "Canberra.",
    }  # fmt: skip
    out = judge.score(span, TraceContext([]))
    assert out is not None and out.label == "no_context" and out.explanation == NO_CONTEXT
    assert "system prompt" not in out.explanation and "documents pasted into the prompt" in out.explanation
    assert judge_server.requests == []
    # The same instructions with a document pasted into the prompt are evidence: the judge is asked.
    judge_server.replies = ['{"verdict": "grounded", "confidence": 0.9, "reason": "supported"}']
    pasted = {
        **span,
        "system_prompt": span["system_prompt"] + "\n\nContext:\nCanberra is the capital city of Australia.",
    }
    out = judge.score(pasted, TraceContext([]))
    assert out is not None and out.label == "grounded" and len(judge_server.requests) == 1


def test_the_trace_view_shows_the_judges_reasoning_and_prompt_hash(live: LiveServer, judge_server: FakeJudge) -> None:
    """The built-in judge's verdict in the trace page: its reasoning, its version and the hash of
    exactly the prompt it was sent."""
    import hashlib

    import httpx

    [ids] = _ingest(live, 1)
    judge_server.replies = [
        '{"verdict": "hallucinated", "confidence": 0.8, "reason": "the year is not in the passage"}'
    ]
    judge = _judge(judge_server, ScorerMetrics(CollectorRegistry()), _Clock())
    assert ScorerJob(judge, live.runtime.store, JobOptions(settle=timedelta(0))).run_once().scored == 1
    sent = judge_server.requests[0]["body"]["messages"][0]["content"]
    with httpx.Client(base_url=live.url, timeout=30) as c:
        assert c.post("/login", data={"key": KEY_A, "next": "/traces"}).status_code == 303
        page = c.get(f"/traces/{ids['trace_id']}").text
    assert "the year is not in the passage" in page
    sha = hashlib.sha256(sent.encode()).hexdigest()
    assert f'judge version {judge.version} · prompt sha256 <span title="{sha}">{sha[:16]}</span>' in page
