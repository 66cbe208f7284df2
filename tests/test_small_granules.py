"""Migration 18 rebuilds spans and scores in small granules beside the old tables and swaps them in:
every row is kept, a row written while the rows are copied is kept, the views on the tables (trace
index, trace list rows) see writes into the new tables, and a migration run again does not swap back.

The store is put back to version 17 first: both tables rebuilt with the engine's default granules.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
from clickhouse_connect.driver.client import Client

from driftline.collector.batch import rows_to_table
from driftline.scorers.runner import SCORE_SCHEMA
from driftline.store import Store
from driftline.store.queries import traces as trace_queries
from tests.support.sql import admin_client, admin_rows

TENANT = "tenant-a"
# Two days of data: the copy runs a day at a time.
DAY1 = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0) - timedelta(days=2)
DAY2 = DAY1 + timedelta(days=1)
T1, T2, LATE, AFTER = "d1" * 16, "d2" * 16, "d3" * 16, "d4" * 16
SMALL = "index_granularity = 1024"


def _ns(dt: datetime) -> int:
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


def _spans(trace: str, start: datetime) -> pa.Table:
    rows: list[dict[str, Any]] = [
        {"trace_id": trace, "span_id": f"{trace[:14]}{n:02x}", "parent_span_id": "" if n == 0 else f"{trace[:14]}00",
         "start_time": _ns(start + timedelta(seconds=n)), "end_time": _ns(start + timedelta(seconds=n + 1)),
         "duration_ms": 1000.0, "name": "chat", "service": "shop", "status_code": "unset", "operation": "chat",
         "input_messages": json.dumps([{"role": "user", "content": f"question {n}"}]), "input_text_fallback": "",
         "output_text": f"answer {n}", "attributes": {"k": str(n)}}
        for n in range(3)
    ]  # fmt: skip
    return rows_to_table(TENANT, rows)


def _score(trace: str, start: datetime, value: float) -> pa.Table:
    row = {
        "tenant": TENANT, "trace_id": trace, "span_id": f"{trace[:14]}01", "scorer": "hallucination",
        "scorer_version": "v1", "value": value, "label": "hallucinated", "explanation": "why", "service": "shop",
        "operation": "chat", "model": "m", "release": "1.0", "environment": "prod",
        "span_start_time": start + timedelta(seconds=1), "scored_at": datetime.now(UTC), "details": "{}",
    }  # fmt: skip
    return pa.table({f.name: [row[f.name]] for f in SCORE_SCHEMA}, schema=SCORE_SCHEMA)


def _old_granules(c: Client, table: str, name: str) -> str:
    """CREATE TABLE `name` as `table` is, in the engine's default granules."""
    db = c.database
    ddl = str(c.query(f"SHOW CREATE TABLE {db}.{table}").result_rows[0][0])
    assert SMALL in ddl
    return re.sub(rf"\b{db}\.{table}\b", f"{db}.{name}", ddl, count=1).replace(SMALL, "index_granularity = 8192")


def _back_to_version_17(store: Store) -> None:
    db = store.cfg.database
    with admin_client(store) as c:
        for table in ("spans", "scores"):
            c.command(_old_granules(c, table, f"{table}_old"))
            c.command(f"EXCHANGE TABLES {db}.{table} AND {db}.{table}_old")
            c.command(f"DROP TABLE {db}.{table}_old SYNC")
        c.command(f"DELETE FROM {db}.schema_migrations WHERE version = 18")
    assert _granules(store) == {"spans": False, "scores": False}


def _granules(store: Store) -> dict[str, bool]:
    """Per table: has it the small granules."""
    rows = admin_rows(
        store,
        "SELECT name, position(engine_full, {small:String}) > 0 AS small FROM system.tables "
        "WHERE database = {database:String} AND name IN ('spans', 'scores')",
        {"small": SMALL, "database": store.cfg.database},
    )
    return {r["name"]: bool(r["small"]) for r in rows}


def _stored(store: Store) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    spans = admin_rows(store, "SELECT *, input_text, output_text FROM {db}.spans FINAL ORDER BY trace_id, span_id")
    scores = admin_rows(store, "SELECT * FROM {db}.scores FINAL ORDER BY trace_id, span_id")
    return spans, scores


def _listed(store: Store, trace: str) -> dict[str, Any]:
    lo, hi = DAY1 - timedelta(days=1), DAY2 + timedelta(days=1)
    return trace_queries.trace_summaries(store, TENANT, [trace], lo, hi)[trace]


def test_the_rebuild_keeps_every_row_and_the_views_follow_the_new_tables(store: Store) -> None:
    _back_to_version_17(store)
    store.insert_arrow("spans", _spans(T1, DAY1))
    store.insert_arrow("spans", _spans(T2, DAY2))
    store.insert_arrow("scores", _score(T1, DAY1, 0.8))
    before_spans, before_scores = _stored(store)
    assert len(before_spans) == 6 and len(before_scores) == 1

    def write_meanwhile(step: int, total: int, name: str) -> None:
        # Steps 0-5 rebuild spans (3: the swap, after the copy), 6 the ALIAS, 7-12 rebuild scores.
        if step == 3:
            store.insert_arrow("spans", _spans(LATE, DAY2))
        if step == 10:
            store.insert_arrow("scores", _score(LATE, DAY2, 0.6))

    assert store.migrate(on_step=write_meanwhile) == [18]
    assert _granules(store) == {"spans": True, "scores": True}
    left = admin_rows(store, "SELECT name FROM system.tables WHERE database = {d:String} AND name LIKE '%v18%'",
                      {"d": store.cfg.database})  # fmt: skip
    assert left == []

    spans, scores = _stored(store)
    assert [r for r in spans if r["trace_id"] != LATE] == before_spans
    assert [r for r in scores if r["trace_id"] != LATE] == before_scores
    late = [r["span_id"] for r in trace_queries.get_trace(store, TENANT, LATE)]
    assert late == [f"{LATE[:14]}{n:02x}" for n in range(3)]
    assert [r["value"] for r in trace_queries.trace_scores(store, TENANT, LATE)] == [0.6]
    assert _listed(store, LATE)["hallucination_score"] == 0.6

    # Written after the swap: found by id (trace_index's view) and listed (trace_rows' views).
    store.insert_arrow("spans", _spans(AFTER, DAY2 + timedelta(hours=1)))
    store.insert_arrow("scores", _score(AFTER, DAY2 + timedelta(hours=1), 0.9))
    got = trace_queries.get_trace(store, TENANT, AFTER)
    assert [(r["input_text"], r["output_text"]) for r in got] == [(f"question {n}", f"answer {n}") for n in range(3)]
    assert (_listed(store, AFTER)["spans"], _listed(store, AFTER)["hallucination_score"]) == (3, 0.9)

    # A crash after the swaps, before the old tables were dropped: they are still there, by the
    # rebuilt tables' names, with the old granules. Run again: the new tables stay.
    spans, scores = _stored(store)
    with admin_client(store) as c:
        for table in ("spans", "scores"):
            c.command(_old_granules(c, table, f"{table}_v18"))
        c.command(f"DELETE FROM {store.cfg.database}.schema_migrations WHERE version = 18")
    assert store.migrate() == [18]
    assert _granules(store) == {"spans": True, "scores": True}
    assert _stored(store) == (spans, scores)
