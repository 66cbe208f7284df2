"""Scheduled scoring on the real scheduler, against chDB, with spans ingested through the collector."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry

from driftline.collector.service import CollectorService
from driftline.scorers.hallucination import OfflineHallucinationScorer
from driftline.scorers.metrics import ScorerMetrics
from driftline.scorers.runner import JobOptions, ScorerJob
from driftline.scorers.scheduler import ScheduledJob, ScoringService
from tests.conftest import KEY_A, TENANT_A, LiveServer
from tests.otlp_helpers import http_exporter, provider_for, send_rag_trace
from tests.support.sql import admin_rows

FACTS = [
    ("The Eiffel Tower was completed in March 1889 for the World's Fair in Paris.",
     "When was the Eiffel Tower completed?", "It was completed in March 1889.", "It was completed in 1925."),
    ("Canberra is the capital city of Australia, chosen as a compromise in 1908.",
     "What is the capital of Australia?", "The capital is Canberra.", "The capital is Sydney."),
    ("Mars has two small moons named Phobos and Deimos.",
     "How many moons does Mars have?", "Mars has two moons, Phobos and Deimos.", "Mars has five moons."),
]  # fmt: skip


def _ingest(live: LiveServer, n: int, errors_every: int = 0) -> list[dict[str, str]]:
    tp = provider_for(http_exporter(live.url, KEY_A))
    out = []
    for i in range(n):
        passage, q, good, bad = FACTS[i % len(FACTS)]
        err = bool(errors_every) and i % errors_every == 0
        out.append(send_rag_trace(tp, passage, q, bad if i % 2 else good, error=err))
    tp.shutdown()
    assert live.runtime.flush(20)
    return out


def _scores(rt: CollectorService, scorer: str) -> list[dict[str, object]]:
    return admin_rows(
        rt.store,
        "SELECT trace_id, span_id, label, value FROM {db}.scores WHERE tenant = {tenant:String} "
        "AND scorer = {scorer:String}",
        {"tenant": TENANT_A, "scorer": scorer},
    )


def _expected_sample(rt: CollectorService, ids: list[dict[str, str]], rate: float) -> set[str]:
    """What deterministic sampling must pick: the same hash, computed independently here."""
    rows = admin_rows(
        rt.store,
        "SELECT span_id FROM {db}.spans FINAL WHERE tenant = {tenant:String} AND span_id IN {ids:Array(String)} "
        "AND (status_code = 'error' OR cityHash64(trace_id, 'driftline-sample') % 1000000 < {ppm:UInt32})",
        {"tenant": TENANT_A, "ids": [i["span_id"] for i in ids], "ppm": int(rate * 1_000_000)},
    )
    return {str(r["span_id"]) for r in rows}


def test_scheduler_scores_each_sampled_span_once_and_restart_does_not_rescore(live: LiveServer) -> None:
    rt = live.runtime
    ids = _ingest(live, 24, errors_every=5)
    metrics = ScorerMetrics(CollectorRegistry())
    job = ScorerJob(OfflineHallucinationScorer(), rt.store, JobOptions(sample_rate=0.5, settle=timedelta(0)))
    svc = ScoringService([ScheduledJob(job, interval_s=0.2)], metrics)
    svc.start()
    try:
        for _ in range(200):  # bounded wait on the real scheduler's effect
            if job.last.candidates and len(_scores(rt, "hallucination")) and svc_runs(metrics) >= 3:
                break
            time.sleep(0.05)
    finally:
        svc.stop()
    got = _scores(rt, "hallucination")
    keys = [(r["trace_id"], r["span_id"]) for r in got]
    assert len(keys) == len(set(keys)), "a span was scored twice"
    expected = _expected_sample(rt, ids, 0.5)
    assert {str(r["span_id"]) for r in got} == expected
    assert 0 < len(expected) < len(ids)  # sampling kept some and left some
    errors = {i["span_id"] for n, i in enumerate(ids) if n % 5 == 0}
    assert errors <= expected  # error spans are always eligible
    # The grounding scorer's accuracy is tested on labeled data elsewhere; here: scores are real
    # verdicts (both kinds appear) and the answers built to be grounded are labeled so.
    labels = {str(r["span_id"]): r["label"] for r in got}
    assert set(labels.values()) >= {"grounded", "hallucinated"}
    for n, i in enumerate(ids):
        if i["span_id"] in labels and n % 2 == 0:
            assert labels[i["span_id"]] == "grounded", n

    again = ScorerJob(OfflineHallucinationScorer(), rt.store, JobOptions(sample_rate=0.5, settle=timedelta(0)))
    r = again.run_once()  # a restarted replica: nothing left to score
    assert r.scored == 0
    assert len(_scores(rt, "hallucination")) == len(got)


def svc_runs(metrics: ScorerMetrics) -> float:
    return sum(s.value for m in metrics.runs.collect() for s in m.samples if s.name.endswith("_total"))


def test_late_span_is_picked_up_by_the_sweep(live: LiveServer) -> None:
    rt = live.runtime
    _ingest(live, 3)
    job = ScorerJob(
        OfflineHallucinationScorer(), rt.store, JobOptions(settle=timedelta(0), sweep=timedelta(minutes=10))
    )
    first = job.run_once()
    assert first.scored == 3
    # A span that reaches the store late: stamped as ingested 5 minutes ago (behind the watermark),
    # as a slow flush or a spool replay would leave it.
    rt.ingest_clock = lambda: time.time() - 300
    late = _ingest(live, 1)[0]
    second = job.run_once()
    assert second.scored == 1
    assert late["span_id"] in {r["span_id"] for r in _scores(rt, "hallucination")}
    # and one older than the sweep window is left for a backfill
    rt.ingest_clock = lambda: time.time() - 3600
    older = _ingest(live, 1)[0]
    assert job.run_once().scored == 0
    res = job.backfill(datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC) + timedelta(minutes=1))
    assert res.scored == 5  # backfill re-scores the window: replaces, never duplicates
    rows = admin_rows(
        rt.store,
        "SELECT span_id, count() AS n FROM {db}.scores FINAL WHERE tenant = {tenant:String} GROUP BY span_id",
        {"tenant": TENANT_A},
    )
    assert older["span_id"] in {r["span_id"] for r in rows} and all(r["n"] == 1 for r in rows)


def test_two_replicas_split_the_work(live: LiveServer) -> None:
    rt = live.runtime
    ids = _ingest(live, 20)
    a = ScorerJob(OfflineHallucinationScorer(), rt.store, JobOptions(shard_index=0, shard_count=2, settle=timedelta(0)))
    b = ScorerJob(OfflineHallucinationScorer(), rt.store, JobOptions(shard_index=1, shard_count=2, settle=timedelta(0)))
    ra, rb = a.run_once(), b.run_once()
    assert ra.scored > 0 and rb.scored > 0 and ra.scored + rb.scored == len(ids)
    got = _scores(rt, "hallucination")
    assert len(got) == len(ids) and len({r["span_id"] for r in got}) == len(ids)
    # a trace never splits: every score of a trace came from one shard
    assert a.run_once().scored == 0 and b.run_once().scored == 0


def test_a_failing_job_never_stops_the_others(live: LiveServer) -> None:
    from driftline.scorers.cost import CostScorer
    from driftline.store import Store, StoreConfig
    from tests.support.alert_stack import free_port

    rt = live.runtime
    _ingest(live, 2)
    metrics = ScorerMetrics(CollectorRegistry())
    # a job whose store is a ClickHouse server that is not there: every run fails
    gone = Store(StoreConfig(f"http://default:@127.0.0.1:{free_port()}", "nowhere"))
    bad = ScorerJob(CostScorer(), gone, JobOptions(settle=timedelta(0)))
    good = ScorerJob(OfflineHallucinationScorer(), rt.store, JobOptions(settle=timedelta(0)))
    svc = ScoringService([ScheduledJob(bad, 0.1), ScheduledJob(good, 0.1)], metrics)
    svc.start()
    try:
        for _ in range(200):  # bounded wait on the real scheduler
            if (
                metrics.runs.labels("cost", "error")._value.get() >= 3
                and metrics.runs.labels("hallucination", "ok")._value.get() >= 3
            ):
                break
            time.sleep(0.05)
    finally:
        svc.stop()
        gone.close()
    assert metrics.runs.labels("cost", "error")._value.get() >= 3  # it kept being retried ...
    assert metrics.runs.labels("hallucination", "ok")._value.get() >= 3  # ... and the other kept running
    assert len(_scores(rt, "hallucination")) == 2


def test_a_backlog_larger_than_one_run_is_worked_off_in_order(live: LiveServer) -> None:
    rt = live.runtime
    ids = _ingest(live, 6)
    opts = JobOptions(settle=timedelta(0), max_spans_per_run=2, filters={"operation": ["chat"]})
    job = ScorerJob(OfflineHallucinationScorer(), rt.store, opts)
    runs = [job.run_once() for _ in range(4)]
    # each run takes at most its share of the oldest unscored spans, then resumes after them
    assert [r.scored for r in runs] == [2, 2, 2, 0]
    assert runs[0].lag_s > 0  # it stopped behind ingestion and says so
    assert {r["span_id"] for r in _scores(rt, "hallucination")} == {i["span_id"] for i in ids}
