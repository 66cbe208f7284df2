"""SLIs and drift from stored spans and scores, served from a cache on /metrics."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx

from driftline.drift import DriftPolicy
from driftline.scorers.hallucination import OfflineHallucinationScorer
from driftline.scorers.runner import JobOptions, ScorerJob
from driftline.sli import SLIJob, SLIOptions
from tests.conftest import KEY_A, TENANT_A, LiveServer
from tests.otlp_helpers import http_exporter, provider_for, send_rag_trace

PASSAGE = "Canberra is the capital city of Australia."
MIN = 60 * 1_000_000_000


def _send(live: LiveServer, n: int, bad_every: int, *, release: str = "1.2.3", model: str = "gpt-4o-mini",
          minutes_ago: tuple[float, float] = (4.5, 0)) -> None:  # fmt: skip
    tp = provider_for(http_exporter(live.url, KEY_A), release=release)
    now = time.time_ns()
    start, end = minutes_ago
    for i in range(n):
        at = now - int((start - (start - end) * i / max(1, n - 1)) * MIN)
        bad = bool(bad_every) and i % bad_every == 0
        send_rag_trace(tp, PASSAGE, "What is the capital of Australia?",
                       "The capital is Sydney." if bad else "The capital is Canberra.", model=model, at_ns=at)  # fmt: skip
    tp.shutdown()
    assert live.runtime.flush(20)


def _opts(**kw: object) -> SLIOptions:
    small = {"alpha": 0.01, "min_current": 20, "min_baseline": 30}
    return SLIOptions(
        drift_current=timedelta(minutes=10),
        drift_baseline=timedelta(hours=2),
        rate_policy=DriftPolicy(min_effect=0.2, **small),  # type: ignore[arg-type]
        distribution_policy=DriftPolicy(min_effect=0.1, **small),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def _score(live: LiveServer) -> None:
    ScorerJob(OfflineHallucinationScorer(), live.runtime.store, JobOptions(settle=timedelta(0))).run_once()


def _series(snap: object, name: str, **match: str) -> list[float]:
    return [v for lab, v in snap.gauges[name] if all(lab.get(k) == x for k, x in match.items())]  # type: ignore[attr-defined]


def test_slis_served_from_cache_with_bounded_labels(live: LiveServer) -> None:
    rt = live.runtime
    _send(live, 40, bad_every=10)
    _send(live, 5, bad_every=0, model="gpt-4o")
    _score(live)
    sli = SLIJob(rt.store, _opts(top_models=1))
    rt.registry.register(sli.collector)
    before = httpx.get(f"{live.url}/metrics").text
    assert "driftline_sli_requests{" not in before  # nothing computed yet: nothing invented
    snap = sli.run_once()
    assert _series(snap, "driftline_sli_requests", window="5m", model="gpt-4o-mini") == [40]
    assert _series(snap, "driftline_sli_requests", window="5m", model="other") == [5]  # top-1 model only
    assert _series(snap, "driftline_sli_hallucination_rate", window="5m", model="gpt-4o-mini") == [0.1]
    assert _series(snap, "driftline_sli_latency_seconds", window="5m", model="gpt-4o-mini", quantile="0.5") == [0.8]
    text = httpx.get(f"{live.url}/metrics").text
    line = ('driftline_sli_hallucination_rate{environment="test",model="gpt-4o-mini",release="1.2.3",'
            f'service="checkout-bot",tenant="{TENANT_A}",window="5m"}} 0.1')  # fmt: skip
    assert line in text


def test_a_release_that_stops_being_grounded_drifts(live: LiveServer) -> None:
    rt = live.runtime
    _send(live, 60, bad_every=10, release="1.2.3", minutes_ago=(100, 15))  # baseline: 10% hallucinated
    _send(live, 30, bad_every=10, release="1.2.3", minutes_ago=(9, 0))  # same release, same rate
    _send(live, 30, bad_every=2, release="2.0.0", minutes_ago=(9, 0))  # new release: 50%
    _score(live)
    snap = SLIJob(rt.store, _opts()).run_once()
    assert _series(snap, "driftline_drift_detected", sli="hallucination_rate", release="2.0.0") == [1.0]
    assert _series(snap, "driftline_drift_detected", sli="hallucination_rate", release="1.2.3") == [0.0]
    assert _series(snap, "driftline_drift_current", sli="hallucination_rate", release="2.0.0") == [0.5]
    assert _series(snap, "driftline_drift_baseline", sli="hallucination_rate", release="2.0.0") == [0.1]
    assert _series(snap, "driftline_drift_samples", sli="hallucination_rate", release="2.0.0", side="current") == [30]
    assert _series(snap, "driftline_drift_detected", sli="latency", release="2.0.0") == [0.0]  # latency unchanged


def test_release_against_release(live: LiveServer) -> None:
    _send(live, 40, bad_every=10, release="1.2.3", minutes_ago=(50, 20))
    _send(live, 40, bad_every=2, release="1.3.0", minutes_ago=(19, 1))
    _score(live)
    r = httpx.get(
        f"{live.url}/api/v1/compare/releases",
        params={"service": "checkout-bot", "baseline": "1.2.3", "candidate": "1.3.0", "hours": 2},
        headers={"Authorization": f"Bearer {KEY_A}"},
    )
    assert r.status_code == 200, r.text
    h = r.json()["slis"]["hallucination_rate"]
    assert h["candidate"] == 0.5 and h["baseline"] == 0.1 and h["n_candidate"] == 40
    assert h["regressed"] is False and "samples" in h["why_not"]  # 40 is below the default minimum of 150
    lat = r.json()["slis"]["latency_ms"]
    assert lat["n_candidate"] == 40 and lat["regressed"] is False
    # the other tenant sees nothing of it
    other = httpx.get(
        f"{live.url}/api/v1/compare/releases",
        params={"service": "checkout-bot", "baseline": "1.2.3", "candidate": "1.3.0"},
        headers={"Authorization": "Bearer key-tenant-b"},
    ).json()["slis"]
    assert other == {}


def _low_traffic_opts(current_max: timedelta) -> SLIOptions:
    small = {"alpha": 0.01, "min_current": 20, "min_baseline": 30}
    return SLIOptions(
        drift_current=timedelta(minutes=5),
        drift_current_max=current_max,
        drift_baseline=timedelta(hours=2),
        rate_policy=DriftPolicy(min_effect=0.2, **small),  # type: ignore[arg-type]
        distribution_policy=DriftPolicy(min_effect=0.1, **small),  # type: ignore[arg-type]
    )


def test_a_low_traffic_release_gets_a_longer_window_not_a_smaller_sample(live: LiveServer) -> None:
    rt = live.runtime
    _send(live, 60, bad_every=10, release="1.0.0", minutes_ago=(100, 35))  # baseline: 10% hallucinated
    # Two quiet releases over the last 24 minutes: 5 traces in any 5 minutes, 20 needed.
    _send(live, 24, bad_every=2, release="2.0.0", minutes_ago=(23.5, 0.2))  # 50%: a regression
    _send(live, 24, bad_every=10, release="1.0.0", minutes_ago=(23.5, 0.2))  # 10%, as before
    _score(live)
    hall = {"sli": "hallucination_rate"}

    off = SLIJob(rt.store, _low_traffic_opts(timedelta(minutes=5))).run_once()  # today's behaviour
    assert _series(off, "driftline_drift_samples", **hall, release="2.0.0", side="current") == [5]
    assert _series(off, "driftline_drift_detected", **hall, release="2.0.0") == [0.0]
    assert _series(off, "driftline_drift_window_seconds", **hall, release="2.0.0") == [300.0]

    snap = SLIJob(rt.store, _low_traffic_opts(timedelta(minutes=30))).run_once()
    [n_cur] = _series(snap, "driftline_drift_samples", **hall, release="2.0.0", side="current")
    [window] = _series(snap, "driftline_drift_window_seconds", **hall, release="2.0.0")
    assert 20 <= n_cur <= 22  # grown a minute at a time, just past the minimum
    assert 15 * 60 < window <= 21 * 60
    assert _series(snap, "driftline_drift_detected", **hall, release="2.0.0") == [1.0]
    # The baseline (every release) ends where the longer window starts: the traces inside the window
    # are on one side only. Both quiet releases sent at the same moments, so the baseline is the 60
    # old traces and, of each quiet release, the 24 - n_cur sent before the window (a minute boundary
    # falling between the two sends, milliseconds apart, may move one).
    [n_base] = _series(snap, "driftline_drift_samples", **hall, release="2.0.0", side="baseline")
    assert abs(n_base - (60 + 2 * (24 - n_cur))) <= 1, (n_base, n_cur)
    # The quiet release that did not change gets its longer window too, and does not drift.
    assert _series(snap, "driftline_drift_detected", **hall, release="1.0.0") == [0.0]
    assert _series(snap, "driftline_drift_samples", **hall, release="1.0.0", side="current")[0] >= 20
