"""INSERTs never depend on how rows spread over day partitions.

ClickHouse refuses an INSERT touching more than 100 partitions (max_partitions_per_insert_block),
and `spans` and `scores` are partitioned by day: a backfill, a re-score of an old window or a client
with a bad clock would otherwise fail the same way on every retry. The store's insert path splits
every INSERT into a table listed here; the collector's writer splits first, so that it can bisect
and quarantine part by part.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["DAY_PARTITIONED", "MAX_DAYS_PER_INSERT", "split_by_days"]

# An INSERT into spans or scores also writes trace_rows through the views, in blocks of 6 UTC hours
# (schema.ROW_BLOCK): 24 UTC days are 96 of those, under the limit of 100; and in spans and scores
# 48 days at most in any server time zone (toDate shifts a day boundary by less than one day, so
# one UTC day touches at most two local days).
MAX_DAYS_PER_INSERT: Final = 24
# table -> the column its PARTITION BY toDate(...) reads (store/schema.py).
DAY_PARTITIONED: Final[Mapping[str, str]] = {"spans": "start_time", "scores": "span_start_time"}
_NS_PER_DAY: Final = 86_400 * 10**9


def split_by_days(
    table: pa.Table, max_days: int = MAX_DAYS_PER_INSERT, column: str = "start_time"
) -> Iterator[pa.Table]:
    """`table` as-is when its `column` (a timestamp) falls on at most `max_days` UTC days; else sorted
    by day and cut into parts of at most `max_days` days each. Nothing for an empty table."""
    if table.num_rows == 0:
        return
    ns = table.column(column).cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64())
    days = pc.divide(ns, _NS_PER_DAY)
    if len(pc.unique(days)) <= max_days:
        yield table
        return
    order = pc.sort_indices(days)
    table, day_list = table.take(order), days.take(order).to_pylist()
    start = 0
    for first_day in sorted(set(day_list))[max_days::max_days]:
        end = bisect.bisect_left(day_list, first_day, lo=start)
        yield table.slice(start, end - start)
        start = end
    yield table.slice(start)
