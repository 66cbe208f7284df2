"""Migration 19: the engine merges each closed day of the tables read with FINAL into one part (of
trace_rows, each closed block of 6 hours: migration 20), so the reads take it without FINAL
(queries/_summary.merged) and find a trace in one granule.

The engine does it an hour after a day's last insert; the test brings the hour forward by lowering
the age on its own store, then waits for the engine's background merges (nothing is OPTIMIZEd).
Its few small parts the engine's merge selector would merge at once anyway, so its ordinary merges
are held back (`min_parts_to_merge_at_once`, which a merge forced by age ignores): every merge seen
is one the age forced.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from driftline.store import Store
from driftline.store.queries import traces as trace_queries
from driftline.store.queries._summary import merged
from driftline.store.schema import FORCE_MERGE_AGE_S, FORCE_MERGED_TABLES, ROW_BLOCK_HOURS
from tests.support.sql import admin_client, admin_rows
from tests.test_small_granules import TENANT, _score, _spans

DAY1 = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0) - timedelta(days=3)
DAY2 = DAY1 + timedelta(days=1)
TRACES = [(f"{n:02x}{d:02x}" * 8, day + timedelta(minutes=n)) for n in range(3) for d, day in enumerate((DAY1, DAY2))]


def _parts(store: Store) -> dict[tuple[str, str], int]:
    """Active parts per (table, partition) of the tables merged by age."""
    rows = admin_rows(
        store,
        "SELECT table, partition, count() AS n FROM system.parts WHERE database = {database:String} "
        "AND table IN {tables:Array(String)} AND active GROUP BY table, partition",
        {"database": store.cfg.database, "tables": list(FORCE_MERGED_TABLES)},
    )
    return {(r["table"], r["partition"]): r["n"] for r in rows}


def test_the_day_partitioned_tables_merge_a_day_whole_once_it_is_an_hour_old(store: Store) -> None:
    rows = admin_rows(
        store,
        "SELECT name, engine_full FROM system.tables WHERE database = {database:String} AND name IN {t:Array(String)}",
        {"database": store.cfg.database, "t": list(FORCE_MERGED_TABLES)},
    )
    assert sorted(r["name"] for r in rows) == sorted(FORCE_MERGED_TABLES)
    for r in rows:
        assert f"min_age_to_force_merge_seconds = {FORCE_MERGE_AGE_S}" in r["engine_full"], r["name"]
        assert "min_age_to_force_merge_on_partition_only = 1" in r["engine_full"], r["name"]


def test_a_day_left_in_several_parts_is_merged_by_the_engine_and_then_read_without_final(store: Store) -> None:
    with admin_client(store) as c:
        for table in FORCE_MERGED_TABLES:
            c.command(f"ALTER TABLE {store.cfg.database}.{table} MODIFY SETTING min_parts_to_merge_at_once = 100")
    for trace, start in TRACES:  # an insert each: a part each
        store.insert_arrow("spans", _spans(trace, start))
        store.insert_arrow("scores", _score(trace, start, 0.9))
    days = {str(DAY1.date()), str(DAY2.date())}
    # trace_rows is partitioned in blocks of hours (migration 20): the traces' block of each day.
    blocks = {f"{d} {DAY1.hour - DAY1.hour % ROW_BLOCK_HOURS:02}:00:00" for d in days}
    partitions = {t: blocks if t == "trace_rows" else days for t in FORCE_MERGED_TABLES}
    time.sleep(2)  # time enough for an ordinary merge of small parts (none comes)
    assert all(n > 1 for n in _parts(store).values())
    assert not {d for d, _, _ in merged(store, TENANT)} & blocks
    lo, hi = DAY1 - timedelta(hours=1), DAY2 + timedelta(hours=1)
    query = trace_queries.TraceQuery(since=lo, until=hi, limit=10)
    before = trace_queries.search_traces(store, TENANT, query)

    with admin_client(store) as c:  # the hour brought forward
        for table in FORCE_MERGED_TABLES:
            c.command(f"ALTER TABLE {store.cfg.database}.{table} MODIFY SETTING min_age_to_force_merge_seconds = 1")
    deadline = time.monotonic() + 60
    while any(n > 1 for n in _parts(store).values()) and time.monotonic() < deadline:
        time.sleep(0.5)
    parts = _parts(store)
    assert set(parts) == {(t, d) for t in FORCE_MERGED_TABLES for d in partitions[t]}
    assert all(n == 1 for n in parts.values()), parts
    assert {d for d, _, _ in merged(store, TENANT)} >= blocks
    # The same page, read now without FINAL on both days.
    assert trace_queries.search_traces(store, TENANT, query) == before
    assert len(before[0]) == len(TRACES)
