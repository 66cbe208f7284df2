"""trace_index (migration 11): a trace by id finds its spans through the index's start range, also
when they fall on two days, arrive twice, or were written before the migration (the backfill).

Spans go in through the store's own insert path (the view runs on it); the reads are the query
functions the API calls.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from driftline.collector.batch import rows_to_table
from driftline.store import Store
from driftline.store.queries import traces as trace_queries
from tests.support.sql import admin_client, admin_rows

TENANT, OTHER = "tenant-a", "tenant-b"
# A second before a day ends: the trace's last span starts on the next day.
MIDNIGHT = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
START = MIDNIGHT - timedelta(seconds=1)
T1, T2 = "d1" * 16, "d2" * 16


def _ns(dt: datetime) -> int:
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


def _spans(trace: str, offsets_ms: list[int]) -> list[dict[str, Any]]:
    rows = []
    for n, ms in enumerate(offsets_ms):
        start = START + timedelta(milliseconds=ms)
        rows.append({
            "trace_id": trace, "span_id": f"{trace[:14]}{n:02x}",
            "parent_span_id": "" if n == 0 else f"{trace[:14]}00",
            "start_time": _ns(start), "end_time": _ns(start + timedelta(milliseconds=10)), "duration_ms": 10.0,
            "name": f"span {n}", "service": "shop", "status_code": "unset",
        })  # fmt: skip
    return rows


def _write(store: Store) -> None:
    t1 = _spans(T1, [0, 400, 1500])  # the last one after midnight
    for _ in range(2):  # an OTLP retry: the same spans again
        store.insert_arrow("spans", rows_to_table(TENANT, t1))
    store.insert_arrow("spans", rows_to_table(TENANT, _spans(T2, [100, 200])))
    store.insert_arrow("spans", rows_to_table(OTHER, _spans(T2, [300])))


def _check(store: Store) -> None:
    spans = trace_queries.get_trace(store, TENANT, T1)
    assert [s["name"] for s in spans] == ["span 0", "span 1", "span 2"]
    naive = MIDNIGHT.replace(tzinfo=None)  # the rows' times are naive UTC
    assert spans[-1]["start_time"] >= naive > spans[0]["start_time"]
    # The other tenant's span of the same trace id is neither found nor counted.
    assert [s["name"] for s in trace_queries.get_trace(store, TENANT, T2)] == ["span 0", "span 1"]
    assert [s["name"] for s in trace_queries.get_trace(store, OTHER, T2)] == ["span 0"]
    assert trace_queries.get_trace(store, OTHER, T1) == []
    assert trace_queries.get_trace(store, TENANT, "d3" * 16) == []


def test_a_trace_over_midnight_sent_twice_reads_each_span_once(store: Store) -> None:
    _write(store)
    _check(store)
    days = admin_rows(
        store,
        "SELECT day, min(first_start) AS lo, max(last_start) AS hi FROM {db}.trace_index "
        "WHERE tenant = {t:String} AND trace_id = {id:String} GROUP BY day ORDER BY day",
        {"t": TENANT, "id": T1},
    )
    assert [r["day"] for r in days] == [START.date(), MIDNIGHT.date()]


def test_the_migration_backfills_spans_written_before_it(store: Store) -> None:
    db = store.cfg.database
    with admin_client(store) as c:  # back to before version 11: no index, no view
        for name in ("trace_index_spans", "trace_index"):
            c.command(f"DROP TABLE {db}.{name}")
        c.command(f"DELETE FROM {db}.schema_migrations WHERE version = 11")
    _write(store)
    assert store.migrate() == [11]
    _check(store)
