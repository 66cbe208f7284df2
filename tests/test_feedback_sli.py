"""Feedback as an SLI: the negative-feedback rate per service/model/release, and its drift."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from driftline.collector.batch import rows_to_table
from driftline.drift import DriftPolicy
from driftline.releases import compare_releases
from driftline.sli import LLM_OPS, SLIJob, SLIOptions, SLISnapshot
from driftline.store import Store
from driftline.store.queries.feedback import FeedbackRecord, insert_feedback
from driftline.store.queries.overview import overview_series

NOW = datetime.now(UTC).replace(microsecond=0)


def _traces(store: Store, tenant: str, release: str, n: int, bad_every: int, minutes_ago: tuple[float, float]) -> None:
    """`n` one-span chat traces spread over the window, each with one feedback item; every
    `bad_every`-th item negative (a thumbs down), the others a thumbs up."""
    rows, items = [], []
    start, end = minutes_ago
    for i in range(n):
        at = NOW - timedelta(minutes=start - (start - end) * i / max(1, n - 1))
        tid = f"{tenant[-1:]}{release[0]}{i:030x}"
        ns = int(at.timestamp() * 1e9)
        rows.append({
            "trace_id": tid, "span_id": f"{i:016x}", "start_time": ns, "end_time": ns + 10**9, "duration_ms": 1000.0,
            "name": "chat gpt-4o", "service": "bot", "release": release, "environment": "prod", "operation": "chat",
            "request_model": "gpt-4o",
        })  # fmt: skip
        bad = i % bad_every == 0
        items.append(FeedbackRecord(
            id=f"fb-{tid}", trace_id=tid, span_id="", name="thumbs", value=0.0 if bad else 1.0, label="",
            comment="", source="user", author="", version="", negative=bad, created_at=at + timedelta(seconds=2),
        ))  # fmt: skip
    store.insert_arrow("spans", rows_to_table(tenant, rows))
    insert_feedback(store, tenant, items, NOW)


def _series(snap: SLISnapshot, name: str, **match: str) -> list[float]:
    return [v for lab, v in snap.gauges[name] if all(lab.get(k) == x for k, x in match.items())]


def _job(store: Store) -> SLIJob:
    small = DriftPolicy(alpha=0.01, min_current=20, min_baseline=30, min_effect=0.2)
    opts = SLIOptions(drift_current=timedelta(minutes=10), drift_baseline=timedelta(hours=2), rate_policy=small)
    return SLIJob(store, opts, clock=lambda: NOW)


def test_negative_feedback_rate_per_release_and_its_drift(store: Store) -> None:
    _traces(store, "tenant-a", "1.0", 60, bad_every=10, minutes_ago=(100, 15))  # baseline: 10% negative
    _traces(store, "tenant-a", "1.0", 30, bad_every=10, minutes_ago=(9, 0.5))  # same release, same rate
    _traces(store, "tenant-a", "2.0", 30, bad_every=2, minutes_ago=(9, 0.5))  # new release: 50% negative
    _traces(store, "tenant-b", "2.0", 30, bad_every=1, minutes_ago=(4, 0.5))  # another tenant: all negative
    snap = _job(store).run_once()
    a = {"tenant": "tenant-a", "service": "bot", "model": "gpt-4o", "environment": "prod"}
    assert _series(snap, "driftline_sli_feedback", **a, release="2.0", window="1h") == [30]
    assert _series(snap, "driftline_sli_negative_feedback_rate", **a, release="2.0", window="1h") == [0.5]
    assert _series(snap, "driftline_sli_negative_feedback_rate", **a, release="1.0", window="1h") == [0.1]
    assert _series(snap, "driftline_sli_negative_feedback_rate", tenant="tenant-b", window="1h") == [1.0]
    assert _series(snap, "driftline_drift_detected", **a, sli="negative_feedback_rate", release="2.0") == [1.0]
    assert _series(snap, "driftline_drift_detected", **a, sli="negative_feedback_rate", release="1.0") == [0.0]
    assert _series(snap, "driftline_drift_current", **a, sli="negative_feedback_rate", release="2.0") == [0.5]
    assert _series(snap, "driftline_drift_baseline", **a, sli="negative_feedback_rate", release="2.0") == [0.1]
    assert _series(
        snap, "driftline_drift_samples", **a, sli="negative_feedback_rate", release="2.0", side="current"
    ) == [30]


def test_feedback_replaced_by_its_id_counts_once_with_its_new_value(store: Store) -> None:
    _traces(store, "tenant-a", "1.0", 10, bad_every=1, minutes_ago=(4, 1))  # all negative
    _traces(store, "tenant-a", "1.0", 10, bad_every=10**6, minutes_ago=(4, 1))  # same ids, now 1 negative (i=0)
    snap = _job(store).run_once()
    assert _series(snap, "driftline_sli_feedback", tenant="tenant-a", window="5m") == [10]
    assert _series(snap, "driftline_sli_negative_feedback_rate", tenant="tenant-a", window="5m") == [0.1]


def test_negative_feedback_rate_in_the_release_comparison_and_the_overview(store: Store) -> None:
    _traces(store, "tenant-a", "1.0", 40, bad_every=10, minutes_ago=(50, 31))  # 10% negative
    _traces(store, "tenant-a", "2.0", 40, bad_every=2, minutes_ago=(29, 1))  # 50% negative
    _traces(store, "tenant-b", "2.0", 40, bad_every=1, minutes_ago=(29, 1))  # another tenant: all negative
    small = DriftPolicy(alpha=0.01, min_current=20, min_baseline=20, min_effect=0.2)
    since, until = NOW - timedelta(hours=1), NOW
    cmp = compare_releases(store, "tenant-a", "bot", "1.0", "2.0", since, until, rate_policy=small)
    fb = cmp["negative_feedback_rate"]
    assert (fb["baseline"], fb["candidate"], fb["n_baseline"], fb["n_candidate"]) == (0.1, 0.5, 40, 40)
    assert fb["regressed"] is True
    other = compare_releases(store, "tenant-a", "another-service", "1.0", "2.0", since, until)
    assert "negative_feedback_rate" not in other  # the feedback is on another service's traces
    # The overview: per release, the negative share of the feedback recorded in each step, by hand.
    for step in (600, 3600):
        series = overview_series(store, "tenant-a", since, until, step, LLM_OPS)
        got = {
            s["release"]: {
                p["t"]: p["negative_feedback_rate"] for p in s["points"] if p["negative_feedback_rate"] is not None
            }
            for s in series
        }
        want = {"1.0": _expected_rates(40, 10, (50, 31), step), "2.0": _expected_rates(40, 2, (29, 1), step)}
        assert got == want


def _expected_rates(n: int, bad_every: int, minutes_ago: tuple[float, float], step: int) -> dict[int, float]:
    """What `_traces` recorded, bucketed as the overview buckets it: step -> negative share."""
    counts: dict[int, list[int]] = {}
    start, end = minutes_ago
    for i in range(n):
        at = NOW - timedelta(minutes=start - (start - end) * i / max(1, n - 1)) + timedelta(seconds=2)
        t = int(at.timestamp()) // step * step
        c = counts.setdefault(t, [0, 0])
        c[0] += i % bad_every == 0
        c[1] += 1
    return {t: bad / total for t, (bad, total) in counts.items()}
