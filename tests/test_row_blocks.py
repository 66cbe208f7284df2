"""Migration 20 rebuilds trace_rows in partitions of 6 hours beside the old table and swaps it in:
every row is kept, a row the views write while the rows are copied is kept, the views on spans and
scores write into the new table after the swap, a migration run again does not swap back, and the
reads take a block held by one part without FINAL.

The store is put back to version 19 first: trace_rows rebuilt partitioned by day.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from driftline.store import Store
from driftline.store.cluster import fill
from driftline.store.queries import traces as trace_queries
from driftline.store.queries._summary import merged
from driftline.store.schema import ROW_BLOCK, _stored_columns, _trace_rows_now
from tests.support.sql import admin_client, admin_rows
from tests.test_small_granules import DAY1, DAY2, TENANT, _score, _spans

T1, T2, T3, LATE, AFTER = "b1" * 16, "b2" * 16, "b3" * 16, "b4" * 16, "b5" * 16
# DAY1 is 10:00: T1 and T3 in two blocks of one day (06:00 and 12:00), T2 on the next day.
STARTS = {T1: DAY1, T2: DAY2, T3: DAY1 + timedelta(hours=3)}


def _by_day(store: Store, name: str) -> str:
    """CREATE TABLE `name` as trace_rows is, partitioned by day as before migration 20."""
    db = store.cfg.database
    with admin_client(store) as c:
        ddl = str(c.query(f"SHOW CREATE TABLE {db}.trace_rows").result_rows[0][0])
    assert f"PARTITION BY {ROW_BLOCK}" in ddl
    return re.sub(rf"\b{db}\.trace_rows\b", f"{db}.{name}", ddl, count=1).replace(
        f"PARTITION BY {ROW_BLOCK}", "PARTITION BY toDate(hour)"
    )


def _partition_key(store: Store) -> str:
    rows = admin_rows(
        store,
        "SELECT partition_key FROM system.tables WHERE database = {d:String} AND name = 'trace_rows'",
        {"d": store.cfg.database},
    )
    return str(rows[0]["partition_key"])


def _back_to_version_19(store: Store) -> None:
    db = store.cfg.database
    with admin_client(store) as c:
        c.command(_by_day(store, "trace_rows_old"))
        c.command(f"EXCHANGE TABLES {db}.trace_rows AND {db}.trace_rows_old")
        c.command(f"DROP TABLE {db}.trace_rows_old SYNC")
        c.command(f"DELETE FROM {db}.schema_migrations WHERE version = 20")
    assert _partition_key(store) == "toDate(hour)"


def _rows(store: Store) -> list[dict[str, Any]]:
    """Every trace's row, merged (FINAL), without the order the rows were merged in."""
    rows = admin_rows(store, "SELECT * FROM {db}.trace_rows FINAL ORDER BY hour, trace_id")
    for r in rows:
        for k, v in r.items():
            if isinstance(v, list):
                r[k] = sorted(v, key=repr)
    return rows


def _listed(store: Store, trace: str) -> dict[str, Any]:
    lo, hi = DAY1 - timedelta(days=1), DAY2 + timedelta(days=1)
    return trace_queries.trace_summaries(store, TENANT, [trace], lo, hi)[trace]


def _written_at_version_19(store: Store) -> list[dict[str, Any]]:
    """The store put back to version 19, STARTS' traces written (spans and a score each): their rows."""
    _back_to_version_19(store)
    for trace, start in STARTS.items():
        store.insert_arrow("spans", _spans(trace, start))
        store.insert_arrow("scores", _score(trace, start, 0.8))
    return _rows(store)


def test_the_rebuild_keeps_every_row_and_the_views_write_into_the_new_table(store: Store) -> None:
    before = _written_at_version_19(store)
    assert len(before) == 3

    def write_meanwhile(step: int, total: int, name: str) -> None:
        # Steps: 0-1 what a crash left, 2 the new table, 3 its projection, 4 the copying view, 5 the
        # copy by day, 6 the swap, 7-8 the old table dropped, 9-12 the merges: written before the
        # copy, its row reaches the new table through both.
        if step == 5:
            store.insert_arrow("spans", _spans(LATE, DAY2))
            store.insert_arrow("scores", _score(LATE, DAY2, 0.6))

    assert store.migrate(on_step=write_meanwhile) == [20]
    assert _partition_key(store) == ROW_BLOCK
    left = admin_rows(store, "SELECT name FROM system.tables WHERE database = {d:String} AND name LIKE '%v20%'",
                      {"d": store.cfg.database})  # fmt: skip
    assert left == []
    assert [r for r in _rows(store) if r["trace_id"] != LATE] == before
    # Each block copied is merged (a part of merge level 0 the sessions list would not read alone).
    levels = {b: level for b, _, level in merged(store, TENANT)}
    assert levels and all(level > 0 for level in levels.values()), levels
    assert (_listed(store, LATE)["spans"], _listed(store, LATE)["hallucination_score"]) == (3, 0.6)
    assert _listed(store, T3)["hallucination_score"] == 0.8  # hallucination_max computed again on copy

    # Written after the swap: listed (the views write into the new table), its block apart.
    store.insert_arrow("spans", _spans(AFTER, DAY2 + timedelta(hours=7)))
    store.insert_arrow("scores", _score(AFTER, DAY2 + timedelta(hours=7), 0.9))
    assert (_listed(store, AFTER)["spans"], _listed(store, AFTER)["hallucination_score"]) == (3, 0.9)
    blocks = admin_rows(
        store,
        "SELECT DISTINCT partition FROM system.parts WHERE database = {d:String} AND table = 'trace_rows' AND active "
        "ORDER BY partition",
        {"d": store.cfg.database},
    )
    day1, day2 = DAY1.date(), DAY2.date()
    expected = [f"{day1} 06:00:00", f"{day1} 12:00:00", f"{day2} 06:00:00", f"{day2} 12:00:00"]
    assert [r["partition"] for r in blocks] == expected

    # A block in one part is read without FINAL, the same page as with it.
    query = trace_queries.TraceQuery(since=DAY1 - timedelta(hours=1), until=DAY2 + timedelta(hours=9), limit=10)
    with_final = trace_queries.search_traces(store, TENANT, query)
    with admin_client(store) as c:
        c.command(f"OPTIMIZE TABLE {store.cfg.database}.trace_rows PARTITION '{day1} 12:00:00' FINAL")
    assert f"{day1} 12:00:00" in {b for b, _, _ in merged(store, TENANT)}
    assert trace_queries.search_traces(store, TENANT, query) == with_final
    assert [r["trace_id"] for r in with_final[0]] == [AFTER, LATE, T2, T3, T1]

    # A crash after the swap, before the old table was dropped: it is still there, by the rebuilt
    # table's name, partitioned by day. Run again: the new table stays, its rows as they were.
    rows = _rows(store)
    with admin_client(store) as c:
        c.command(_by_day(store, "trace_rows_v20"))
        c.command(f"DELETE FROM {store.cfg.database}.schema_migrations WHERE version = 20")
    assert store.migrate() == [20]
    assert _partition_key(store) == ROW_BLOCK
    assert _rows(store) == rows


def test_a_copy_a_crash_left_before_the_swap_is_started_over(store: Store) -> None:
    before = _written_at_version_19(store)
    db = store.cfg.database
    with admin_client(store) as c:  # the new table, and the copy of the first day in it
        c.command(fill(_trace_rows_now("trace_rows_v20"), db=db, ttl_days=30))
        cols = ", ".join(f"`{name}`" for name in _stored_columns(_trace_rows_now("trace_rows")))
        c.command(f"INSERT INTO {db}.trace_rows_v20 ({cols}) SELECT {cols} FROM {db}.trace_rows WHERE hour < {{d:DateTime}}",
                  parameters={"d": DAY2.replace(hour=0)})  # fmt: skip
    assert store.migrate() == [20]
    assert _partition_key(store) == ROW_BLOCK
    assert _rows(store) == before  # each row once: not the first day's twice
