"""The scorer on real chDB never wedges on how spans spread over days, and one tenant's failure never
stops the others: the `scores` table is partitioned by day like `spans`, and ClickHouse refuses an
INSERT that touches more than 100 partitions."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from driftline.collector.batch import rows_to_table
from driftline.scorers.latency import LatencyScorer
from driftline.scorers.metrics import ScorerMetrics
from driftline.scorers.runner import JobOptions, ScorerJob
from driftline.scorers.scheduler import ScoringService
from driftline.store import Store, StoreConfig
from tests.support.sql import admin_client, admin_rows

DAY_NS = 86_400 * 10**9
NOW_NS = int(time.time()) * 10**9


@pytest.fixture
def store(chdb_path: Path, database: str) -> Iterator[Store]:
    s = Store(StoreConfig(f"chdb://{chdb_path}", database), retention_days=400)  # TTL keeps 150 days
    s.migrate()
    yield s
    with admin_client(s) as c:
        c.command(f"DROP DATABASE IF EXISTS {database}")
    s.close()


def _spans(n_days: int, first: int = 1) -> list[dict[str, Any]]:
    """One chat span a day for `n_days` days, the newest a day ago."""
    rows = []
    for i in range(n_days):
        start = NOW_NS - (first + i) * DAY_NS
        rows.append(
            {"trace_id": f"{i + 1:032x}", "span_id": f"{i + 1:016x}", "start_time": start,
             "end_time": start + 5 * 10**6, "duration_ms": 5.0, "operation": "chat", "service": "app"}
        )  # fmt: skip
    return rows


def _scored(store: Store, tenant: str) -> int:
    rows = admin_rows(
        store, f"SELECT count() AS n FROM {{db}}.scores FINAL WHERE tenant = '{tenant}' AND scorer = 'latency'"
    )
    return int(rows[0]["n"])


def test_scores_spread_over_150_days_are_all_stored_by_a_run_and_a_backfill(store: Store) -> None:
    spans = _spans(150)
    for part in (spans[:75], spans[75:]):  # the spans go in as two INSERTs of 75 days
        store.insert_arrow("spans", rows_to_table("acme", part))
    job = ScorerJob(LatencyScorer(), store, JobOptions(settle=timedelta(0)))
    r = job.run_once()
    assert (r.scored, r.tenant_errors) == (150, 0)
    assert _scored(store, "acme") == 150
    assert job.run_once().candidates == 0  # the watermark moved: nothing is scored twice

    now = datetime.now(UTC)
    b = job.backfill(now - timedelta(days=200), now)
    assert (b.scored, b.tenant_errors) == (150, 0)
    assert _scored(store, "acme") == 150  # replaced, not duplicated


def test_a_tenant_the_store_refuses_does_not_stop_the_next_one(store: Store) -> None:
    store.insert_arrow("spans", rows_to_table("first", _spans(3)))
    store.insert_arrow("spans", rows_to_table("second", _spans(3)))
    with admin_client(store) as c:  # the store refuses the first tenant's scores, for real
        c.command(f"ALTER TABLE {store.cfg.database}.scores ADD CONSTRAINT no_first CHECK tenant != 'first'")
    job = ScorerJob(LatencyScorer(), store, JobOptions(settle=timedelta(0), tenants=("first", "second")))
    metrics = ScorerMetrics(registry := CollectorRegistry())
    r = ScoringService([], metrics).run(job)  # the wrapper every scheduled run goes through
    assert r is not None and (r.tenants, r.tenant_errors, r.scored) == (2, 1, 3)
    assert registry.get_sample_value("driftline_scorer_tenant_failures_total", {"scorer": "latency"}) == 1
    assert registry.get_sample_value("driftline_scorer_runs_total", {"scorer": "latency", "outcome": "partial"}) == 1
    assert (_scored(store, "first"), _scored(store, "second")) == (0, 3)
    # The failed tenant's watermark stayed: once the store takes its scores, the next run scores them.
    with admin_client(store) as c:
        c.command(f"ALTER TABLE {store.cfg.database}.scores DROP CONSTRAINT no_first")
    again = job.run_once()
    assert (again.tenant_errors, again.scored) == (0, 3)
    assert _scored(store, "first") == 3


def test_a_backfill_pages_through_a_window_larger_than_one_run(store: Store) -> None:
    # 23 spans, 6 of them starting in the same microsecond (the page boundary falls among them),
    # and pages of 5: a backfill must page to the end, not stop after the first 5.
    rows = _spans(17)
    same_us = NOW_NS - 20 * DAY_NS
    for i in range(6):
        rows.append(
            {"trace_id": f"{0xF0 - i:032x}", "span_id": f"{100 + i:016x}", "start_time": same_us + i,
             "end_time": same_us + 10**6, "duration_ms": 1.0, "operation": "chat"}
        )  # fmt: skip
    store.insert_arrow("spans", rows_to_table("acme", rows))
    job = ScorerJob(LatencyScorer(), store, JobOptions(settle=timedelta(0), max_spans_per_run=5))
    seen: list[tuple[int, int, str]] = []
    pages: list[int] = []
    now = datetime.now(UTC)
    r = job.backfill(
        now - timedelta(days=30), now, on_tenant=lambda d, t, what: seen.append((d, t, what)),
        on_page=lambda so_far: pages.append(so_far.scored),
    )  # fmt: skip
    assert (r.candidates, r.scored) == (23, 23)
    assert _scored(store, "acme") == 23
    assert pages == [5, 10, 15, 20, 23]  # progress after every page
    assert seen[0] == (0, 1, "acme") and seen[-1] == (1, 1, "acme: 23 spans")
