"""End to end: traffic in -> scored -> SLIs and drift on /metrics -> real Prometheus rules -> real
Alertmanager -> a webhook. A release whose answers stop being grounded pages, with the right
labels and the review link; when it recovers, the resolved notification arrives. Stable traffic
with normal noise, for the same time, pages nobody. Fast intervals; bench/time_to_page.py
measures the production ones."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from driftline.alerting import AlertThresholds, render_rules
from driftline.collector.service import CollectorService
from driftline.drift import DriftPolicy
from driftline.scorers.hallucination import OfflineHallucinationScorer
from driftline.scorers.metrics import ScorerMetrics
from driftline.scorers.runner import JobOptions, ScorerJob
from driftline.scorers.scheduler import ScheduledJob, ScoringService
from driftline.sli import SLIJob, SLIOptions
from tests.conftest import KEY_A, TENANT_A, LiveServer, require_tool
from tests.otlp_helpers import http_exporter, provider_for, send_rag_trace
from tests.support.alert_stack import AlertStack, Notification

PASSAGE = "Canberra is the capital city of Australia, chosen as a compromise in 1908."
GOOD, BAD = "The capital is Canberra.", "The capital is Sydney, the largest city."
REVIEW = "http://127.0.0.1:8080/review"
MIN_NS = 60 * 1_000_000_000


@dataclass
class Pipeline:
    live: LiveServer
    stack: AlertStack
    scoring: ScoringService
    sli: SLIJob


def _traffic(live: LiveServer, release: str, n: int, bad_share: float, rng: random.Random,
             minutes_ago: tuple[float, float] | None = None) -> None:  # fmt: skip
    tp = provider_for(http_exporter(live.url, KEY_A), release=release)
    now = time.time_ns()
    for i in range(n):
        at = None
        if minutes_ago:
            a, b = minutes_ago
            at = now - int((a - (a - b) * i / max(1, n - 1)) * MIN_NS)
        answer = BAD if rng.random() < bad_share else GOOD
        send_rag_trace(tp, PASSAGE, "What is the capital of Australia?", answer, at_ns=at)
    tp.shutdown()


@pytest.fixture
def pipeline(live: LiveServer, tmp_path: Path) -> Iterator[Pipeline]:
    require_tool("prometheus")
    require_tool("prometheus-alertmanager")
    rt: CollectorService = live.runtime
    metrics = ScorerMetrics(rt.registry)
    job = ScorerJob(OfflineHallucinationScorer(), rt.store, JobOptions(settle=timedelta(0)))
    small = {"alpha": 0.001, "min_current": 25, "min_baseline": 60}
    sli = SLIJob(
        rt.store,
        SLIOptions(
            drift_current=timedelta(seconds=20),
            drift_baseline=timedelta(minutes=30),
            rate_policy=DriftPolicy(min_effect=0.3, **small),  # type: ignore[arg-type]
            distribution_policy=DriftPolicy(min_effect=0.3, **small),  # type: ignore[arg-type]
        ),
    )
    rt.registry.register(sli.collector)
    scoring = ScoringService([ScheduledJob(job, 0.5)], metrics)
    scoring.add_periodic("sli", sli.run_once, 0.5)
    rules = render_rules(
        AlertThresholds(
            review_base_url=REVIEW,
            evaluation_interval="1s",
            drift_for="2s",
            keep_firing_for="1s",
            drift_min_current=25,
            drift_min_baseline=60,
        )
    )
    stack = AlertStack(tmp_path / "mon", live.url.removeprefix("http://"), rules)
    try:
        stack.start()
        scoring.start()
        yield Pipeline(live, stack, scoring, sli)
    finally:
        scoring.stop()
        stack.stop()


def _is(n: Notification, status: str, alertname: str) -> bool:
    return n.status == status and any(a["labels"].get("alertname") == alertname for a in n.alerts)


def _keep_sending(p: Pipeline, release: str, bad_share: float, stop: threading.Event, seed: int) -> threading.Thread:
    rng = random.Random(seed)

    def run() -> None:
        while not stop.is_set():
            _traffic(p.live, release, 4, bad_share, rng)
            stop.wait(0.25)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_ungrounded_release_pages_and_resolves(pipeline: Pipeline) -> None:
    rng = random.Random(1)
    _traffic(pipeline.live, "1.0.0", 120, 0.05, rng, minutes_ago=(25, 1))  # the baseline: 5% bad
    stop = threading.Event()
    t0 = time.time()
    sender = _keep_sending(pipeline, "2.0.0", 0.6, stop, seed=2)  # the new release: 60% bad
    try:
        fired = pipeline.stack.wait_for(lambda n: _is(n, "firing", "DriftlineHallucinationRateDrift"), 120)
    finally:
        stop.set()
        sender.join(10)
    assert fired is not None, "no page arrived"
    alert = next(a for a in fired.alerts if a["labels"]["alertname"] == "DriftlineHallucinationRateDrift")
    labels = alert["labels"]
    assert labels["severity"] == "page" and labels["sli"] == "hallucination_rate"
    assert labels["tenant"] == TENANT_A and labels["release"] == "2.0.0" and labels["service"] == "checkout-bot"
    assert labels["model"] == "gpt-4o-mini" and labels["environment"] == "test"
    url = alert["annotations"]["review_url"]
    assert url.startswith(REVIEW) and "release=2.0.0" in url and "service=checkout-bot" in url
    print(f"time to page with fast intervals: {fired.received_at - t0:.1f} s")

    # the release recovers: grounded answers only; the page resolves
    stop2 = threading.Event()
    sender = _keep_sending(pipeline, "2.0.0", 0.0, stop2, seed=3)
    try:
        resolved = pipeline.stack.wait_for(lambda n: _is(n, "resolved", "DriftlineHallucinationRateDrift"), 120)
    finally:
        stop2.set()
        sender.join(10)
    assert resolved is not None, "the page never resolved"
    # the stable release never paged
    assert not any(a["labels"].get("release") == "1.0.0" for n in pipeline.stack.notifications for a in n.alerts)


def test_stable_noisy_traffic_pages_nobody(pipeline: Pipeline) -> None:
    rng = random.Random(4)
    _traffic(pipeline.live, "1.0.0", 120, 0.05, rng, minutes_ago=(25, 1))
    stop = threading.Event()
    sender = _keep_sending(pipeline, "1.0.0", 0.05, stop, seed=5)  # same rate, binomial noise
    try:
        # as long as the paging test may take to fire, plus margin
        got = pipeline.stack.wait_for(lambda n: n.status == "firing", 60)
    finally:
        stop.set()
        sender.join(10)
    assert got is None, [a["labels"] for a in got.alerts] if got else None
    # and the pipeline was live: drift was tested, with enough samples, and found nothing
    snap = pipeline.sli.snapshot
    samples = [v for lab, v in snap.gauges["driftline_drift_samples"]
               if lab["sli"] == "hallucination_rate" and lab["side"] == "current"]  # fmt: skip
    detected = [v for lab, v in snap.gauges["driftline_drift_detected"] if lab["sli"] == "hallucination_rate"]
    assert samples and min(samples) >= 25 and detected == [0.0]
