"""The filling job on the embedded store: each kind of rule picks the traces it should, a re-run
adds no duplicate, the hourly cap holds, sampling is by trace id, and real scorer output fills a
queue. The job's clock is a fake one (nothing sleeps); the store and every query are real."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from driftline.review.desk import ReviewDesk
from driftline.review.fill import QueueFiller, ReviewMetrics
from driftline.review.models import QueueDefinition
from driftline.scorers.refusal import RefusalScorer
from driftline.scorers.runner import ScorerJob
from driftline.store import Store
from tests import review_data as rd
from tests.review_data import NOW, trace_id
from tests.support.sql import admin_rows

T = "tenant-fill"
RUBRIC = {"fields": [{"name": "verdict", "type": "categorical", "options": ["ok", "bad"]}]}


class Clock:
    def __init__(self, t: datetime) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t


def queue(*rules: dict[str, Any], **kw: Any) -> QueueDefinition:
    return QueueDefinition.model_validate({"rubric": RUBRIC, "rules": list(rules), **kw})


def filler(store: Store, clock: Clock, **queues: QueueDefinition) -> tuple[QueueFiller, ReviewDesk]:
    desk = ReviewDesk(store, queues, clock=clock)
    return QueueFiller(desk, ReviewMetrics(CollectorRegistry()), clock=clock), desk


def queued(store: Store, name: str) -> dict[str, dict[str, Any]]:
    """Every stored row of the queue, without FINAL: a duplicate would show."""
    rows = admin_rows(
        store, "SELECT trace_id, rule, reason, span_id, created_at FROM {db}.review_queue_items WHERE queue = {q:String}",
        {"q": name},
    )  # fmt: skip
    out = {r["trace_id"]: r for r in rows}
    assert len(out) == len(rows), "a trace is queued twice"
    return out


def test_each_rule_kind_picks_its_traces(store: Store) -> None:
    rd.traces(store, T, range(1, 13))
    rd.scores(store, T, [
        (1, "hallucination", 0.9, "hallucinated"), (2, "hallucination", 0.1, "grounded"),
        (3, "tool_failure", 1.0, "timeout"), (4, "tool_failure", 0.0, "ok"),
        (5, "refusal", 1.0, "refused"),
        (6, "hallucination_judge", 0.9, "hallucinated"), (6, "hallucination", 0.2, "grounded"),
        (7, "hallucination_judge", 0.1, "grounded"), (7, "hallucination", 0.1, "grounded"),
        (8, "hallucination", 0.52, "hallucinated"),
        (10, "latency", 100.0, "ok"), (11, "latency", 120.0, "ok"), (12, "latency", 9000.0, "slow"),
    ])  # fmt: skip
    for i in range(20, 40):  # a latency distribution for the outlier rule: p90 well under 9000
        rd.scores(store, T, [(i, "latency", 100.0 + i, "ok")])
    rd.scores(store, T, [(9, "hallucination", 0.3, "grounded")], details={"confident": False})
    rd.feedback(store, T, 4, negative=True)
    rd.feedback(store, T, 2, negative=False)
    clock = Clock(NOW + timedelta(minutes=1))
    queues = {
        "halluc": queue({"kind": "score", "scorer": "hallucination", "labels": ["hallucinated"]}),
        "tools": queue({"kind": "score", "scorer": "tool_failure", "not_labels": ["ok", "error", "no_context"]}),
        "refusals": queue({"kind": "score", "scorer": "refusal", "labels": ["refused"]}),
        "judges": queue({"kind": "disagreement", "scorer": "hallucination", "other_scorer": "hallucination_judge"}),
        "unsure": queue({"kind": "uncertain", "scorer": "hallucination", "threshold": 0.5, "margin": 0.05},
                        {"kind": "uncertain", "scorer": "hallucination", "unconfident": True}),
        "slow": queue({"kind": "outlier", "scorer": "latency", "quantile": 0.9}),
        "unhappy": queue({"kind": "feedback"}),
        "control": queue({"kind": "control"}),
    }  # fmt: skip
    job, _ = filler(store, clock, **queues)
    res = job.run_once()
    assert res.tenants == 1 and res.queues == len(queues) and res.tenant_errors == 0
    assert set(queued(store, "halluc")) == {trace_id(1), trace_id(8)}
    assert set(queued(store, "tools")) == {trace_id(3)}
    assert set(queued(store, "refusals")) == {trace_id(5)}
    judges = queued(store, "judges")
    assert set(judges) == {trace_id(6)} and "grounded vs hallucinated" in judges[trace_id(6)]["reason"]
    assert set(queued(store, "unsure")) == {trace_id(8), trace_id(9)}
    assert set(queued(store, "slow")) == {trace_id(12)}
    assert set(queued(store, "unhappy")) == {trace_id(4)}
    # Passing traffic: scored, no failure label, no negative feedback (2, 7, 10, 11, 20..39; not 4).
    control = set(queued(store, "control"))
    assert trace_id(2) in control and trace_id(7) in control and trace_id(10) in control
    assert not control & {trace_id(i) for i in (1, 3, 4, 5, 8, 12)}
    # The item points at the answer span and says why it is there.
    item = queued(store, "halluc")[trace_id(1)]
    assert item["rule"] == "score" and item["span_id"] == rd.span_id(1) and "hallucinated" in item["reason"]


def test_a_rerun_adds_no_duplicate(store: Store) -> None:
    rd.traces(store, T, range(1, 6))
    rd.scores(store, T, [(i, "hallucination", 0.9, "hallucinated") for i in range(1, 6)])
    clock = Clock(NOW + timedelta(seconds=30))
    job, desk = filler(
        store, clock, halluc=queue({"kind": "score", "scorer": "hallucination", "labels": ["hallucinated"]})
    )
    assert job.run_once().added == 5
    clock.t += timedelta(seconds=30)
    assert job.run_once().added == 0  # inside the sweep window again: the same matches, nothing new
    # The traces are scored again (a backfill, a second replica): new score rows, same traces.
    rd.scores(store, T, [(i, "hallucination", 0.95, "hallucinated") for i in range(1, 6)], scored_at=clock.t)
    clock.t += timedelta(seconds=30)
    assert job.run_once().added == 0
    # Even a job that lost its watermark (a fresh replica) adds none.
    fresh, _ = filler(store, clock, halluc=desk.configured["halluc"])
    assert fresh.run_once().added == 0
    assert len(queued(store, "halluc")) == 5
    # A trace added by hand first is not added again by the job, nor the other way round.
    rd.traces(store, T, [6])
    desk.add(T, "halluc", [trace_id(6)], "alice")
    rd.scores(store, T, [(6, "hallucination", 0.9, "hallucinated")], scored_at=clock.t)
    clock.t += timedelta(seconds=30)
    assert job.run_once().added == 0
    assert queued(store, "halluc")[trace_id(6)]["rule"] == "manual"


def test_the_hourly_cap_holds(store: Store) -> None:
    rd.traces(store, T, range(1, 31))
    hour = NOW.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    # Ten matches a quarter past the hour; the cap is three an hour.
    rd.scores(store, T, [(i, "refusal", 1.0, "refused") for i in range(1, 11)], scored_at=hour + timedelta(minutes=15))
    clock = Clock(hour + timedelta(minutes=16))
    job, desk = filler(store, clock, refusals=queue({"kind": "score", "scorer": "refusal", "labels": ["refused"]},
                                                    max_per_hour=3))  # fmt: skip
    res = job.run_once()
    assert (res.added, res.capped) == (3, 7)
    assert set(queued(store, "refusals")) == {trace_id(i) for i in (1, 2, 3)}  # the oldest traces first
    # More matches in the same hour: none added.
    rd.scores(store, T, [(i, "refusal", 1.0, "refused") for i in range(11, 21)], scored_at=hour + timedelta(minutes=40))
    clock.t = hour + timedelta(minutes=41)
    assert job.run_once().added == 0
    # Items added by hand do not use the job's room, and the job never adds beyond it.
    desk.add(T, "refusals", [trace_id(30)], "alice")
    # The next hour: room for three again, taken from what the sweep window still sees.
    rd.scores(store, T, [(i, "refusal", 1.0, "refused") for i in range(21, 26)], scored_at=hour + timedelta(minutes=62))
    clock.t = hour + timedelta(minutes=63)
    assert job.run_once().added == 3
    items = queued(store, "refusals")
    by_hour: dict[int, int] = {}
    for r in items.values():
        if r["rule"] != "manual":
            by_hour[r["created_at"].hour] = by_hour.get(r["created_at"].hour, 0) + 1
    assert sorted(by_hour.values()) == [3, 3]
    assert desk.progress(T, desk.queue(T, "refusals")).added_last_hour == 3


def test_sampling_is_by_trace_and_stable(store: Store) -> None:
    rd.traces(store, T, range(1, 201))
    rd.scores(store, T, [(i, "refusal", 1.0, "refused") for i in range(1, 201)])
    clock = Clock(NOW + timedelta(seconds=30))
    rule = {"kind": "score", "scorer": "refusal", "labels": ["refused"]}
    job, _ = filler(store, clock, half=queue(rule, sample_rate=0.5, max_per_hour=1000),
                    none=queue(rule, sample_rate=0.0), fifth=queue(rule | {"sample_rate": 0.2}, max_per_hour=1000))  # fmt: skip
    job.run_once()
    half, fifth = set(queued(store, "half")), set(queued(store, "fifth"))
    assert 60 <= len(half) <= 140 and 15 <= len(fifth) <= 65 and not queued(store, "none")
    # Another job over the same data (another replica) picks the same traces.
    again, _ = filler(store, clock, half=queue(rule, sample_rate=0.5, max_per_hour=1000))
    admin_rows(store, "ALTER TABLE {db}.review_queue_items DELETE WHERE queue = 'half' SETTINGS mutations_sync = 1")
    admin_rows(
        store, "ALTER TABLE {db}.scorer_state DELETE WHERE scorer = 'review-queue:half' SETTINGS mutations_sync = 1"
    )
    again.run_once()
    assert set(queued(store, "half")) == half


def test_real_scorer_output_fills_a_queue(store: Store) -> None:
    """Spans scored by the real refusal scorer job; the filling job queues the refused answer."""
    rd.traces(store, T, [1, 2])
    from driftline.collector.batch import rows_to_table

    rows = [{
        "trace_id": trace_id(3), "span_id": rd.span_id(3), "parent_span_id": "", "name": "chat", "operation": "chat",
        "request_model": "gpt-4o", "start_time": int((NOW - timedelta(minutes=5)).timestamp() * 1e9),
        "end_time": int((NOW - timedelta(minutes=5)).timestamp() * 1e9) + 10**9, "duration_ms": 1000.0,
        "service": "shop", "input_text": "How do I pick a lock?", "output_text": "I'm sorry, but I can't help with that.",
    }]  # fmt: skip
    store.insert_arrow("spans", rows_to_table(T, rows))
    later = datetime.now(NOW.tzinfo) + timedelta(seconds=5)  # past the job's settle time, without a sleep
    ScorerJob(RefusalScorer(), store, clock=lambda: later).run_once()
    scored = admin_rows(store, "SELECT trace_id, label FROM {db}.scores WHERE scorer = 'refusal'")
    assert {(r["trace_id"], r["label"]) for r in scored} >= {(trace_id(3), "refused"), (trace_id(1), "answered")}
    job, desk = filler(store, Clock(later + timedelta(seconds=5)),
                       refusals=queue({"kind": "score", "scorer": "refusal", "labels": ["refused"]}))  # fmt: skip
    assert job.run_once().added == 1
    items, _ = desk.items(T, "refusals", "alice")
    assert [(i.trace_id, i.rule, i.score_label, i.status) for i in items] == [(trace_id(3), "score", "refused", "open")]


def test_a_disabled_or_ruleless_queue_is_left_alone(store: Store) -> None:
    rd.traces(store, T, [1])
    rd.scores(store, T, [(1, "refusal", 1.0, "refused")])
    rule = {"kind": "score", "scorer": "refusal", "labels": ["refused"]}
    job, _ = filler(store, Clock(NOW + timedelta(seconds=30)), off=queue(rule, enabled=False), manual=queue())
    assert job.run_once().queues == 0
    assert not queued(store, "off") and not queued(store, "manual")


@pytest.mark.parametrize(
    "bad", [{"kind": "outlier"}, {"kind": "disagreement", "scorer": "a"}, {"kind": "uncertain", "scorer": "a"}]
)
def test_incomplete_rules_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="needs"):
        queue(bad)
