"""Stratified sampling: at a low sample rate, a quiet release and a new one still get the scored
samples their drift tests need, a busy one is sampled at the base rate, and the per-trace decision
stays deterministic (every replica, every re-run agrees)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from driftline.scorers.hallucination import OfflineHallucinationScorer
from driftline.scorers.runner import JobOptions, ScorerJob
from driftline.store import Store
from tests.conftest import KEY_A, TENANT_A, LiveServer
from tests.otlp_helpers import http_exporter, provider_for, send_rag_trace
from tests.support.sql import admin_rows

PASSAGE = "Canberra is the capital city of Australia."


def _send(live: LiveServer, release: str, n: int, at: datetime | None = None) -> None:
    tp = provider_for(http_exporter(live.url, KEY_A), release=release)
    for i in range(n):
        at_ns = None if at is None else int(at.timestamp() * 1e9) + i * 1_000_000
        send_rag_trace(tp, PASSAGE, "Capital?", f"It is Canberra ({i}).", at_ns=at_ns)
    tp.shutdown()


def _scored(store: Store) -> dict[str, set[str]]:
    rows = admin_rows(
        store,
        "SELECT release, trace_id FROM {db}.scores FINAL WHERE tenant = {t:String} AND scorer = 'hallucination'",
        {"t": TENANT_A},
    )
    out: dict[str, set[str]] = {}
    for r in rows:
        out.setdefault(r["release"], set()).add(r["trace_id"])
    return out


def test_quiet_and_new_releases_get_their_samples(live: LiveServer) -> None:
    now = datetime.now(UTC)
    # The job's clock stands in an hour H of its own (two hours ahead, so the test never straddles a
    # real hour boundary); "the previous clock hour" is then [H - 1h, H).
    hour = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
    last_hour = hour - timedelta(minutes=30)
    # The previous clock hour: a busy release (300 traces) and a quiet one (6).
    _send(live, "busy", 300, at=last_hour)
    _send(live, "quiet", 6, at=last_hour)
    # Now: 200 traces of the busy release, 6 of the quiet one, and 6 of a release never seen before.
    _send(live, "busy", 200)
    _send(live, "quiet", 6)
    _send(live, "new", 6)
    assert live.runtime.flush(30)
    store = live.runtime.store

    # 10% base rate; at least 60 scored answers an hour per stratum. The busy release's answer
    # stratum had 300 answers: 60/300 = 20% > 10%; the quiet one's 6: everything; the new one: everything.
    opt = JobOptions(sample_rate=0.1, stratum_min_per_hour=60, settle=timedelta(0))

    def clock() -> datetime:
        return hour + timedelta(minutes=1)

    job = ScorerJob(OfflineHallucinationScorer(), store, opt, clock=clock)
    strata = job.strata(TENANT_A)
    assert strata is not None
    assert strata[("checkout-bot", "gpt-4o-mini", "busy")] == 200_000
    assert strata[("checkout-bot", "gpt-4o-mini", "quiet")] == 1_000_000
    assert ("checkout-bot", "gpt-4o-mini", "new") not in strata  # unseen: new_stratum_ppm, everything
    job.run_once()
    scored = _scored(store)
    assert len(scored["quiet"]) == 12 and len(scored["new"]) == 6  # every answer of the quiet and new releases
    busy = len(scored["busy"])
    assert 40 <= busy <= 170, busy  # ~20% of 500 (binomial, 100 +- 5 sd)

    # Without strata the quiet and new releases get the base rate: most of their answers unscored.
    flat = JobOptions(sample_rate=0.1, settle=timedelta(0))
    picked = store.scoring.candidates(
        TENANT_A, scorer="x", version="1", since=now - timedelta(hours=2), until=clock(), shard_index=0,
        shard_count=1, sample_ppm=round(flat.sample_rate * 1e6), limit=10_000, by_start=True, skip_scored=False,
    )  # fmt: skip
    quiet_flat = {r["trace_id"] for r in picked if r["release"] == "quiet" and r["operation"] == "chat"}
    assert quiet_flat < scored["quiet"]  # nested: what the base rate picks, the higher rate picks too

    # Deterministic: another replica (a new job, a restart) picks exactly the same traces.
    def pick() -> set[str]:
        rows = store.scoring.candidates(
            TENANT_A, scorer="x", version="1", since=now - timedelta(hours=2), until=clock(),
            shard_index=0, shard_count=1, sample_ppm=100_000, limit=10_000, by_start=True, skip_scored=False,
            strata=ScorerJob(OfflineHallucinationScorer(), store, opt, clock=clock).strata(TENANT_A),
        )  # fmt: skip
        return {r["trace_id"] for r in rows if r["operation"] == "chat"}

    first = pick()
    assert pick() == first
    assert first == set().union(*scored.values())


def test_sample_rate_one_needs_no_strata(store: Store) -> None:
    job = ScorerJob(OfflineHallucinationScorer(), store, JobOptions(sample_rate=1.0, stratum_min_per_hour=60))
    assert job.strata("anyone") is None
