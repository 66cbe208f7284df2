"""Trace search: the trace list's filters, sorts and keyset pages, and one trace's spans and scores.

The list reads `trace_summaries` (schema.py, migration 7): one row per (tenant, hour, trace) kept by
materialized views on spans and scores. A trace is listed by its root span (the span without a
parent): its start time is the trace's; a filter on span fields matches a trace when any of its
spans matches, a score filter when any of its latest scores does.

A page is found in two steps, so a sort over a week never aggregates the week:
1. candidates: rows holding a root in the range, filtered and sorted on the row's own figures,
   the first `limit + 1`; plus every trace whose figures one row cannot give exactly: a trace
   with rows in two hours, or a row where a retried span or a replaced score was counted twice
   (the row's key sets say so). All other traces are one row, whose figures are the trace's.
2. those traces aggregated exactly over all their rows, filtered and sorted again.
Every value is a bound parameter (`Where.bind`); only column names and operators chosen from
fixed sets here become SQL text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

from driftline.store.columns import SPAN_STORED_READ_COLUMNS, with_texts
from driftline.store.queries._summary import (
    COST,
    FINAL,
    TRACE_SPAN,
    Merged,
    aggregates,
    around,
    final_or_not,
    hours,
    keys_near,
    latest,
    merged,
)
from driftline.store.queries._where import Where

if TYPE_CHECKING:
    from driftline.store.store import Store

__all__ = ["SORTS", "TRACE_SPAN", "TraceQuery", "get_trace", "search_traces", "trace_scores", "trace_summaries"]

Sort = Literal["time", "cost", "duration", "score"]
SORTS: Final = ("time", "cost", "duration", "score")
# How far from its root's start a trace's spans may start and still count for it.
# The newest page is searched in widening windows first: a common filter finds a page in the
# last hour without reading the week behind it.
_WINDOWS: Final = (timedelta(hours=1), timedelta(hours=8), timedelta(days=2))
# Up to this long a page's rows are read by trace id over the range, beyond it by key (trace_rows'
# sorting key): the key reads a granule per trace, the range every granule the bloom filter passes.
_NARROW: Final = timedelta(hours=8)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# Filters on span fields: the query's field -> the summary's set of that field's values.
_SPAN_SETS: Final = {
    "service": "services",
    "release": "releases",
    "environment": "environments",
    "operation": "operations",
    "session_id": "session_ids",
    "user_id": "user_ids",
    "model": "models",
}
_FAILURE_OK: Final = "('ok', 'error', 'no_context')"  # tool_failure labels that are not a failure
# Text a JSON writer never escapes: printable ASCII but for " and \ (always escaped), / (some
# writers), < > & (Go's encoding/json); anything else may be written as \uXXXX.
_RAW_SAFE: Final = re.compile(r"[ !#-%'-.0-;=?-\[\]-~]+")


@dataclass(frozen=True)
class TraceQuery:
    since: datetime
    until: datetime
    service: str | None = None
    model: str | None = None
    release: str | None = None
    environment: str | None = None
    operation: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    status: Literal["error", "ok"] | None = None
    scorer: str | None = None
    label: str | None = None
    min_score: float | None = None
    max_score: float | None = None
    feedback: Literal["any", "negative", "positive", "none"] | None = None
    text: str | None = None
    sort: Sort = "time"
    descending: bool = True
    limit: int = 50
    after: tuple[int | float, str] | None = None  # the previous page's last (sort key, trace_id)


def _filters(w: Where, q: TraceQuery, p: str, other: list[str]) -> list[str]:
    """The conditions of `q` on a trace's figures, named with prefix `p` ('' for a row of the
    table, 'a_' for a trace aggregated from its rows), then `other` (_other_filters)."""
    out: list[str] = []
    for field, column in _SPAN_SETS.items():
        value = getattr(q, field)
        if value is not None:
            out.append(f"has({p}{column}, {w.bind(value, 'String')})")
    if q.status is not None:
        out.append(f"{p}error = {1 if q.status == 'error' else 0}")
    if q.scorer is not None or q.label is not None or q.min_score is not None or q.max_score is not None:
        cond = []
        scorer = q.scorer if q.scorer is not None else ("hallucination" if q.label is None else None)
        if scorer is not None:
            cond.append(f"e.3 = {w.bind(scorer, 'String')}")
        if q.label is not None:
            cond.append(f"e.5 = {w.bind(q.label, 'String')}")
        if q.min_score is not None:
            cond.append(f"e.4 >= {w.bind(q.min_score, 'Float64')}")
        if q.max_score is not None:
            cond.append(f"e.4 <= {w.bind(q.max_score, 'Float64')}")
        if not p and scorer == "hallucination" and q.min_score is not None:
            # A row's highest hallucination score of any version (migration 17), one number per row:
            # none of the row's scores is `min_score` or more unless it is. The rows it rules out
            # skip the array scan below.
            out.append(f"hallucination_max >= {w.bind(q.min_score, 'Float64')}")
        out.append(f"arrayExists(e -> {' AND '.join(cond)}, {latest(p + 'scores')})")
    return out + other


def _other_filters(w: Where, q: TraceQuery, lo: datetime, hi: datetime, within: str = "") -> list[str]:
    """The conditions of `q` on other tables: on the trace id alone, the same for a row and a trace.
    `within` (a query of trace ids) narrows the spans searched for text to those traces'."""
    out: list[str] = []
    if q.feedback is not None:
        fb = "SELECT trace_id FROM {db}.feedback FINAL WHERE tenant = {tenant:String}"
        if q.feedback == "negative":
            fb += " AND negative = 1"
        elif q.feedback == "positive":
            fb += " AND negative = 0"
        out.append(f"trace_id {'NOT IN' if q.feedback == 'none' else 'IN'} ({fb})")
    if q.text:
        t = w.bind(q.text, "String")
        # input_text / output_text are extracted from the stored message JSON when read. Text that
        # no JSON writer escapes is found in the stored JSON (or the stored text) wherever it is in
        # the extracted text, so a plain search there first spares the extraction on most spans.
        raw = ""
        if _RAW_SAFE.fullmatch(q.text):
            raw = (
                f"AND (positionCaseInsensitiveUTF8(input_messages, {t}) > 0 "
                f"OR positionCaseInsensitiveUTF8(input_text_fallback, {t}) > 0 "
                f"OR positionCaseInsensitiveUTF8(output_messages, {t}) > 0 "
                f"OR positionCaseInsensitiveUTF8(output_text_fallback, {t}) > 0) "
            )
        out.append(
            f"trace_id IN (SELECT trace_id FROM {{db}}.spans WHERE tenant = {{tenant:String}} "
            f"AND start_time >= {w.bind(lo, 'DateTime64(9)')} "
            f"AND start_time < {w.bind(hi + TRACE_SPAN, 'DateTime64(9)')} {raw}"
            + (f"AND trace_id IN ({within}) " if within else "")
            + f"AND (positionCaseInsensitiveUTF8(input_text, {t}) > 0 "
            f"OR positionCaseInsensitiveUTF8(output_text, {t}) > 0))"
        )
    return out


def _key(q: TraceQuery, w: Where, p: str) -> tuple[str, list[str], str]:
    """(sort key expression, conditions for a trace to have one, its cursor type) on a row (p='')
    or on an aggregated trace (p='a_')."""
    if q.sort == "time":
        return f"toUnixTimestamp64Nano({p}root.start)", [], "Int64"
    if q.sort == "duration":
        return f"{p}root.duration_ms", [], "Float64"
    if q.sort == "cost":
        return ("cost" if not p else f"arraySum({p}spans.2)"), [], "Float64"
    if not p and (q.scorer or "hallucination") == "hallucination":
        # The row's highest hallucination score (migration 17): score_max's, one number per row.
        return "hallucination_max", ["hallucination_max IS NOT NULL"], "Float64"
    scorer = w.bind(q.scorer or "hallucination", "String")
    if not p:
        return f"score_max.2[indexOf(score_max.1, {scorer})]", [f"has(score_max.1, {scorer})"], "Float64"
    values = f"arrayMap(e -> e.4, arrayFilter(e -> e.3 = {scorer}, {latest('a_scores')}))"
    return f"arrayMax({values})", [f"notEmpty({values})"], "Float64"


def _page_sql(q: TraceQuery, w: Where, lo: datetime, hi: datetime, merged_blocks: Merged = ()) -> str:
    """SELECT trace_id, started, k (the sort key) for one page (limit + 1 rows) of root spans
    started in [lo, hi); the blocks of hours in `merged_blocks` are read without FINAL (see _summary.merged)."""
    desc = "DESC" if q.descending else "ASC"
    cmp = "<" if q.descending else ">"
    limit = w.bind(q.limit + 1, "UInt32")
    lo_p, hi_p = w.bind(lo, "DateTime64(9)"), w.bind(hi, "DateTime64(9)")
    trace_hours = hours(w, lo, hi)
    other = _other_filters(w, q, lo, hi)

    def page(p: str) -> list[str]:
        k, has_k, k_type = _key(q, w, p)
        conds = [f"{p}root.child = 0", f"{p}root.start >= {lo_p}", f"{p}root.start < {hi_p}", *has_k]
        conds += _filters(w, q, p, other if not p else [])
        if q.after is not None:
            after_k, after_id = w.bind(q.after[0], k_type), w.bind(q.after[1], "String")
            conds.append(f"({k}, trace_id) {cmp} ({after_k}, {after_id})")
        return [k, " AND ".join(conds)]

    k_row, row_conds = page("")
    candidates = (
        f"SELECT hour, trace_id FROM {{db}}.trace_rows FINAL WHERE tenant = {{tenant:String}} "
        f"AND {hours(w, lo, hi, pad=timedelta(0))} AND {row_conds} ORDER BY {k_row} {desc}, trace_id {desc} "
        f"LIMIT {limit}"
    )
    # Traces whose rows alone do not give their figures (see the module's docstring): those with
    # rows in other hours (a key whose merged row lacks the root), and for a cost or score sort the
    # rows that counted a span or a score twice (a doubled figure could push the right traces off
    # the candidates); filters and the root's time and duration are exact anyway. FINAL on the blocks
    # not yet merged: there, the scores view's row of a key lacks the root until a merge joins it to
    # the spans view's, and read as it is, every scored trace of those blocks would be inexact.
    lacking = "root.child = 1"
    if q.sort in ("cost", "score"):
        lacking = "(root.child = 1 OR span_rows != length(span_keys) OR length(score_values) != length(score_keys))"
    inexact = (
        f"SELECT hour, trace_id FROM {{db}}.trace_rows FINAL WHERE tenant = {{tenant:String}} AND {trace_hours} "
        f"AND {lacking}"
    )
    # The conditions on other tables hold for the candidates already; an inexact trace is checked
    # on its own (the text searched in its spans only), so no subquery over the spans runs twice.
    if other:
        narrowed = _other_filters(w, q, lo, hi, within=f"SELECT trace_id FROM ({inexact})")
        inexact = f"SELECT hour, trace_id FROM ({inexact}) WHERE {' AND '.join(narrowed)}"
    k_agg, agg_conds = page("a_")
    # Every row of those traces, by its sorting key: a candidate's rows are within an hour of its
    # root's, an inexact row's trace has its root within an hour of it and so its rows within two.
    # Split by block, the candidates are the first `limit + 1` of each part: more, never fewer.
    wide = (lo - TRACE_SPAN, hi + TRACE_SPAN)
    candidates = final_or_not(w, merged_blocks, candidates, *wide)
    inexact = final_or_not(w, merged_blocks, inexact, *wide)
    keys = f"(hour, trace_id) IN ({keys_near(candidates, 1)} UNION ALL {keys_near(inexact, 2)})"
    if hi - lo <= _NARROW:  # a few hours: their rows by trace id (the bloom filter) cost less than by key
        keys = f"trace_id IN (SELECT trace_id FROM ({candidates})) OR trace_id IN (SELECT trace_id FROM ({inexact}))"
    # GROUP BY merges a trace's rows as FINAL would (every aggregate is one a merge applies).
    return (
        f"SELECT trace_id, a_root.start AS started, {k_agg} AS k "
        f"FROM (SELECT trace_id, {aggregates('a_root', k_agg, agg_conds)} "
        f"FROM {{db}}.trace_rows PREWHERE {keys} "
        f"WHERE tenant = {{tenant:String}} AND {trace_hours} GROUP BY trace_id) "
        f"WHERE {agg_conds} ORDER BY k {desc}, trace_id {desc} LIMIT {limit}{FINAL}"
    )


PageKey = tuple[int | float, str]


def search_traces(store: Store, tenant: str, q: TraceQuery) -> tuple[list[dict[str, Any]], PageKey | None]:
    """One page of (trace_id, started, k) rows in order, and the key to pass as `after` for the next."""
    hi = q.until
    if q.sort == "time" and q.after is not None and q.descending:
        # The cursor's time in ns, rounded up to the microsecond a datetime holds.
        hi = min(hi, _EPOCH + timedelta(microseconds=int(q.after[0]) // 1000 + 1))
    # A session or a user is a handful of traces in the range, found by the bloom filters on the
    # summaries in one read; a window would almost never hold a page of them.
    if not (q.sort == "time" and q.descending and q.session_id is None and q.user_id is None):
        rows = _page_rows(store, tenant, q, q.since, hi)
    else:
        # Newest first in widening windows: each window's roots are older than every root found
        # before it, so its rows follow them, and the next window is only [since, lo), asked for
        # what the page still lacks. The older windows are mostly closed blocks, read without FINAL.
        windows = [hi - d for d in _WINDOWS if hi - d > q.since] + [q.since]
        top, rows = hi, []
        while windows and len(rows) <= q.limit:
            lo = windows.pop(0)
            rows += _page_rows(store, tenant, replace(q, limit=q.limit - len(rows)), lo, hi)
            hi = lo
            # A sparse filter: skip the windows that at the rate so far would not fill the page either.
            while len(windows) > 1 and len(rows) * (top - windows[0]) < (q.limit + 1) * (top - lo):
                windows.pop(0)
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    return rows, ((rows[-1]["k"], rows[-1]["trace_id"]) if more else None)


def _page_rows(store: Store, tenant: str, q: TraceQuery, lo: datetime, hi: datetime) -> list[dict[str, Any]]:
    """The first `q.limit + 1` rows of roots started in [lo, hi), in the page's order."""
    merged_blocks = merged(store, tenant) if hi - lo > _NARROW else ()  # FINAL over a few hours costs little
    w = Where(tenant)
    rows = store._reader.rows(tenant, _page_sql(q, w, lo, hi, merged_blocks), w.params)
    if not set(merged_blocks) <= set(merged(store, tenant)):  # one of them changed while it read: FINAL throughout
        w = Where(tenant)
        rows = store._reader.rows(tenant, _page_sql(q, w, lo, hi), w.params)
    return rows


def trace_summaries(
    store: Store,
    tenant: str,
    trace_ids: list[str],
    lo: datetime,
    hi: datetime,
    starts: list[datetime] | None = None,
) -> dict[str, dict[str, Any]]:
    """The list's columns for each trace with spans started in [lo, hi). Given each trace's start
    (`starts`, in the order of `trace_ids`), only its rows within TRACE_SPAN of it are read, by key."""
    if not trace_ids:
        return {}
    w = Where(tenant)
    if starts is None or max(starts) - min(starts) <= _NARROW:
        which = f"trace_id IN {w.bind(trace_ids, 'Array(String)')}"
    else:
        which = around(w, zip(trace_ids, starts, strict=True))
    worst = "arrayFilter(e -> e.3 = 'hallucination', a_latest)"
    rows = store._reader.rows(
        tenant,
        "SELECT trace_id, a_root.start AS started, a_root.duration_ms AS duration_ms, length(a_spans.1) AS spans, "
        "a_errors AS errors, a_root.service AS service, a_root.release AS release, "
        "a_root.environment AS environment, a_root.name AS root_name, a_session.4 AS session_id, "
        f"a_user.4 AS user_id, a_models AS models, {COST} AS cost_usd, arraySum(a_spans.4) AS input_tokens, "
        "arraySum(a_spans.5) AS output_tokens, a_input_preview.4 AS input_preview, "
        "a_output_preview.3 AS output_preview, "
        f"if(empty({worst}), NULL, arrayMax(arrayMap(e -> e.4, {worst}))) AS hallucination_score, "
        f"if(empty({worst}), NULL, arraySort(e -> -e.4, {worst})[1].5) AS hallucination_label, "
        f"length(arrayFilter(e -> e.3 = 'tool_failure' AND e.5 NOT IN {_FAILURE_OK}, a_latest)) AS tool_failures "
        f"FROM (SELECT trace_id, {aggregates()}, {latest('groupUniqArrayArray(scores)')} AS a_latest "
        f"FROM {{db}}.trace_rows PREWHERE {which} "
        f"WHERE tenant = {{tenant:String}} AND {hours(w, lo, hi, pad=timedelta(0))} "
        f"GROUP BY trace_id) WHERE length(a_spans.1) > 0{FINAL}",
        w.params,
    )
    out = {r["trace_id"]: r | {"error": r["errors"] > 0, "feedback_count": 0, "negative_feedback": 0} for r in rows}
    for r in store._reader.rows(
        tenant,
        "SELECT trace_id, count() AS n, sum(negative) AS neg FROM {db}.feedback FINAL "
        "WHERE tenant = {tenant:String} AND trace_id IN {ids:Array(String)} GROUP BY trace_id",
        {"tenant": tenant, "ids": trace_ids},
    ):
        if r["trace_id"] in out:
            out[r["trace_id"]].update(feedback_count=r["n"], negative_feedback=r["neg"])
    return out


def get_trace(store: Store, tenant: str, trace_id: str) -> list[dict[str, Any]]:
    """Every span of the trace, by start time, in one query of two steps: the trace's span start
    range from `trace_index` (sorted by trace id in small granules, a scalar subquery the engine
    runs before it picks granules), then the spans in that range only, found by the primary key:
    one granule of the spans table instead of one in every part. The message texts are computed
    from the stored columns here (`with_texts`), not by the ALIAS columns' SQL."""
    cols = ", ".join(f"`{c}`" for c in SPAN_STORED_READ_COLUMNS)
    rows = store._reader.rows(
        tenant,
        "WITH (SELECT (min(first_start), max(last_start)) FROM {db}.trace_index "
        "WHERE tenant = {tenant:String} AND trace_id = {trace_id:String}) AS bounds "
        # PREWHERE on sorting key columns only, so FINAL still sees every copy of a span it keeps;
        # one thread: the read is a granule or two.
        f"SELECT {cols} FROM {{db}}.spans FINAL PREWHERE tenant = {{tenant:String}} AND trace_id = {{trace_id:String}} "
        "AND start_time >= bounds.1 AND start_time <= bounds.2 ORDER BY start_time, span_id "
        "SETTINGS max_threads = 1",
        {"trace_id": trace_id},
    )
    return [with_texts(r) for r in rows]


def trace_scores(store: Store, tenant: str, trace_id: str) -> list[dict[str, Any]]:
    """Every score of the trace and of each of its spans."""
    return store._reader.rows(
        tenant,
        "SELECT trace_id, span_id, scorer, scorer_version, value, label, explanation, details, scored_at "
        "FROM {db}.scores FINAL PREWHERE tenant = {tenant:String} AND trace_id = {trace_id:String} "
        "ORDER BY span_start_time, span_id, scorer, scorer_version SETTINGS max_threads = 1",
        {"tenant": tenant, "trace_id": trace_id},
    )
