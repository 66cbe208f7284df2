"""What the trace list and the sessions read of `trace_rows` (schema.py, migrations 7 and 14): the
exact figures of a trace aggregated from its rows, the rows of a time range, and the rows of given
traces, found by their (hour, trace_id) sorting key: a granule of 128 rows each."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from driftline.store.queries._where import Where
from driftline.store.schema import ROW_BLOCK, ROW_BLOCK_HOURS

if TYPE_CHECKING:
    from driftline.store.store import Store

__all__ = [
    "COST",
    "FINAL",
    "TRACE_SPAN",
    "Merged",
    "aggregates",
    "around",
    "final_or_not",
    "hours",
    "in_blocks",
    "keys_near",
    "latest",
    "merged",
    "unmerged_in",
]

# How far from its root's start a trace's spans may start and still count for it.
TRACE_SPAN: Final = timedelta(hours=1)
# A key's rows never span two partitions (blocks of hours), so FINAL merges within each only.
FINAL: Final = " SETTINGS do_not_merge_across_partitions_select_final = 1"


def latest(scores: str) -> str:
    """The (key, scored_at, scorer, value, label) tuples of `scores` that no later score of the
    same key replaced: what `scores FINAL` reads."""
    return f"arrayFilter(e -> NOT arrayExists(f -> f.1 = e.1 AND f.2 > e.2, {scores}), {scores})"


# The exact figures of each trace from all its rows (a subquery over trace_rows, GROUP BY
# trace_id): every name is prefixed with a_ so it never shadows a column.
_AGGREGATES: Final = {
    "a_root": "min(root)",
    "a_spans": "maxMap(spans)",
    "a_errors": "length(groupUniqArrayArray(error_keys))",
    "a_error": "max(error)",
    "a_first_span": "min(first_span)",
    "a_ended": "max(ended)",
    "a_models": "arraySort(groupUniqArrayArray(models))",
    "a_services": "groupUniqArrayArray(services)",
    "a_releases": "groupUniqArrayArray(releases)",
    "a_environments": "groupUniqArrayArray(environments)",
    "a_operations": "groupUniqArrayArray(operations)",
    "a_session_ids": "groupUniqArrayArray(session_ids)",
    "a_user_ids": "groupUniqArrayArray(user_ids)",
    "a_session": "min(session)",
    "a_user": "min(user)",
    "a_session_last": "max(session_last)",
    "a_input_preview": "min(input_preview)",
    "a_output_preview": "max(output_preview)",
    "a_scores": "groupUniqArrayArray(scores)",
}


def aggregates(*uses: str) -> str:
    """The aggregates that the SQL texts `uses` name (a column not named is not read); all of
    them without `uses`."""
    return ", ".join(
        f"{expr} AS {name}" for name, expr in _AGGREGATES.items() if not uses or any(name in u for u in uses)
    )


COST: Final = "if(arraySum(a_spans.3) = 0, NULL, arraySum(a_spans.2))"


def hours(w: Where, lo: datetime, hi: datetime, *, pad: timedelta = TRACE_SPAN) -> str:
    """Rows of spans started in [lo - pad, hi + pad)."""
    return f"hour >= toStartOfHour({w.bind(lo - pad, 'DateTime64(9)')}) AND hour < {w.bind(hi + pad, 'DateTime64(9)')}"


def _hour(t: datetime) -> datetime:
    t = t if t.tzinfo is not None else t.replace(tzinfo=UTC)
    return t.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def around(w: Where, traces: Iterable[tuple[str, datetime]]) -> str:
    """`(hour, trace_id) IN <keys>`: the rows of each (trace id, start) whose hour holds spans started
    within TRACE_SPAN of it (a condition on the sorting key: a granule per row)."""
    keys = []
    for trace_id, start in traces:
        h, end = _hour(start - TRACE_SPAN), start + TRACE_SPAN
        end = end if end.tzinfo is not None else end.replace(tzinfo=UTC)
        while h < end:
            keys.append((h, trace_id))
            h += timedelta(hours=1)
    return f"(hour, trace_id) IN {w.bind(keys, _KEYS)}"


def keys_near(rows: str, spread: int) -> str:
    """The (hour, trace_id) keys of the rows `rows` selects (a query with columns hour, trace_id)
    and of the `spread` hours either side: a trace's other rows, for `(hour, trace_id) IN (...)`."""
    return (
        f"SELECT arrayJoin(arrayMap(d -> hour + toIntervalHour(d), {list(range(-spread, spread + 1))})) AS h, trace_id "
        f"FROM ({rows})"
    )


_KEYS: Final = "Array(Tuple(DateTime('UTC'), String))"
_BLOCKS: Final = "Array(DateTime('UTC'))"


# FINAL costs a scan its PREWHERE: every row's sorting key and every column read, filtered after.
# A block of hours (a partition, schema.ROW_BLOCK) held by one part has each (hour, trace) once, so
# FINAL changes nothing there: those blocks are read without it, the others with it. The parts are
# looked up before and after the read; if they changed in between (an insert or a merge), the read
# is done again with FINAL.
Merged = tuple[tuple[str, str, int], ...]  # (block's start, part, its merge level) of each block in one part
_BLOCK: Final = timedelta(hours=ROW_BLOCK_HOURS)


def merged(store: Store, tenant: str) -> Merged:
    """The blocks of trace_rows held by one active part each, with that part (none on a cluster:
    its parts are per shard)."""
    if store.cfg.cluster is not None:
        return ()
    rows = store._reader.rows(
        tenant,
        "SELECT partition AS block, any(name) AS part, any(level) AS level FROM system.parts "
        "WHERE database = {database:String} AND table = 'trace_rows' AND active "
        "GROUP BY partition HAVING count() = 1 ORDER BY block",
        {"database": store.cfg.database},
    )
    return tuple((r["block"], r["part"], r["level"]) for r in rows)


def in_blocks(w: Where, blocks: Iterable[str], negate: bool = False) -> str:
    """A row's block is (not) one of `blocks` (merged()'s partition names, a block's start)."""
    return f"{ROW_BLOCK} {'NOT IN' if negate else 'IN'} {w.bind(sorted(blocks), _BLOCKS)}"


def unmerged_in(merged_blocks: Merged, lo: datetime, hi: datetime) -> bool:
    """Whether a block that hours [lo, hi) touch is not in `merged_blocks` (is read with FINAL)."""
    first, last = _hour(lo), _hour(hi)
    start = first.replace(hour=first.hour - first.hour % ROW_BLOCK_HOURS)
    spanned = set()
    while start <= last:
        spanned.add(start.strftime("%Y-%m-%d %H:%M:%S"))
        start += _BLOCK
    return not spanned <= {d for d, _, _ in merged_blocks}


def final_or_not(w: Where, merged_blocks: Merged, select: str, lo: datetime, hi: datetime) -> str:
    """`select` (a read of trace_rows written with `FROM {db}.trace_rows FINAL WHERE `, of rows in
    hours [lo, hi)) on the blocks of `merged_blocks` without FINAL, UNION ALL the other blocks with it;
    without the second part when every block of the range is in `merged_blocks` (its subqueries would run
    for nothing)."""
    marker = "FROM {db}.trace_rows FINAL WHERE "
    if not merged_blocks or marker not in select:
        return select
    if not unmerged_in(merged_blocks, lo, hi):
        return select.replace(marker, "FROM {db}.trace_rows WHERE ")
    blocks = [d for d, _, _ in merged_blocks]
    plain = select.replace(marker, f"FROM {{db}}.trace_rows WHERE {in_blocks(w, blocks)} AND ")
    final = select.replace(marker, f"{marker}{in_blocks(w, blocks, negate=True)} AND ")
    return f"SELECT * FROM ({plain}) UNION ALL SELECT * FROM ({final})"
