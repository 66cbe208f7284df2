"""Sessions: the traces of one conversation (spans sharing a `session_id`), newest sessions first."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from driftline.store.queries._summary import COST, hours, in_blocks, keys_near, merged
from driftline.store.queries._where import Where

if TYPE_CHECKING:
    from driftline.store.store import Store

__all__ = ["list_sessions", "session_trace_ids"]

_WINDOWS: Final = (timedelta(hours=1), timedelta(hours=8), timedelta(days=2))


def list_sessions(
    store: Store,
    tenant: str,
    since: datetime,
    until: datetime,
    *,
    service: str | None = None,
    user_id: str | None = None,
    limit: int = 50,
    after: tuple[int, str] | None = None,
) -> tuple[list[dict[str, Any]], tuple[int, str] | None]:
    """Sessions active in [since, until), the most recently active first; keyset pages on
    (last span start in ns, session_id). Read from trace_rows: a trace belongs to the session its
    first span naming one names."""
    w = Where(tenant)
    w.add("session.1 = 0")
    w.add(hours(w, since, until, pad=timedelta(0)))
    w.add(f"session_last >= {w.bind(since, 'DateTime64(9)')}")
    w.add(f"session_last < {w.bind(until, 'DateTime64(9)')}")
    if service is not None:
        w.add(f"has(services, {w.bind(service, 'String')})")
    if user_id is not None:
        w.add(f"has(user_ids, {w.bind(user_id, 'String')})")
    having = ""
    if after is not None:
        having = f" HAVING (k, session_id) < ({w.bind(after[0], 'Int64')}, {w.bind(after[1], 'String')})"
    # The newest sessions first in widening windows: a row's session_last lies in its own hour, so
    # the sessions with a row from hour L on are exactly those last active from L on, with the same
    # last activity; when they fill the page, nothing before L can be on it.
    page: list[dict[str, Any]] = []
    for lo in [until - d for d in _WINDOWS if until - d > since] + [since]:
        window = "" if lo == since else f" AND hour >= toStartOfHour({w.bind(lo, 'DateTime64(9)')})"
        page = store._reader.rows(
            tenant,
            "SELECT session.4 AS session_id, toUnixTimestamp64Nano(max(session_last)) AS k "
            f"FROM {{db}}.trace_rows WHERE {w.sql()}{window} GROUP BY session_id{having} "
            f"ORDER BY k DESC, session_id DESC LIMIT {w.bind(limit + 1, 'UInt32')}",
            w.params,
        )
        if len(page) > limit:
            break
    more = len(page) > limit
    page = page[:limit]
    if not page:
        return [], None
    stats = store._reader.rows(tenant, *_stats(store, tenant, [r["session_id"] for r in page], since, until))
    by_id = {r["session_id"]: r for r in stats}
    rows = [by_id[r["session_id"]] | {"k": r["k"]} for r in page if r["session_id"] in by_id]
    return rows, ((page[-1]["k"], page[-1]["session_id"]) if more else None)


def _stats(store: Store, tenant: str, ids: list[str], since: datetime, until: datetime) -> tuple[str, dict[str, Any]]:
    """The figures of the sessions `ids`, over every span of their traces: tool and retrieval spans
    often carry no session id of their own. A trace belongs to a session by its earliest session
    tuple, which one of its rows holds, so the rows whose own earliest session is one of `ids` find
    every such trace; the by_session projection (migration 16) keeps them together.

    Such a row is the whole trace when it holds the root, no row of the range with spans lacks its
    trace's root (a trace in two hours has one), and its block of hours is one merged part (no other copy of
    the row waits to be merged): its figures are read from it alone. A row of scores only (the
    scores view's) adds nothing to these figures: every column they read is at its neutral default
    there, so such rows are not counted as lacking, which on a day not yet merged is every scored
    trace's. Every other trace found is aggregated from all its rows, read by key (within two hours
    of the row found)."""
    s = Where(tenant)
    ids_p, span = s.bind(ids, "Array(String)"), hours(s, since, until)
    blocks = in_blocks(s, [d for d, _, level in merged(store, tenant) if level > 0])
    whole = (
        f"root.child = 0 AND {blocks} AND trace_id NOT IN "
        f"(SELECT trace_id FROM {{db}}.trace_rows WHERE tenant = {{tenant:String}} AND {span} AND root.child = 1 "
        "AND span_rows > 0)"
    )
    # The rows found are read once (the by_session projection) and used twice: the whole traces'
    # figures, and the keys of the others. Where the engine has materialized CTEs, that is one read.
    materialized = store._reader.engine_has_setting("enable_materialized_cte")
    others = "SELECT hour, trace_id FROM found WHERE NOT whole"
    sql = (
        f"WITH found AS {'MATERIALIZED ' if materialized else ''}("
        f"SELECT hour, trace_id, session, first_span, ended, user, error_keys, spans, {whole} AS whole "
        f"FROM {{db}}.trace_rows WHERE tenant = {{tenant:String}} AND {span} AND session.1 = 0 "
        f"AND session.4 IN {ids_p}) "
        "SELECT a_session.4 AS session_id, min(a_first_span.1) AS started, max(a_ended) AS ended, "
        "count() AS traces, min(a_user).4 AS user_id, min(a_first_span).3 AS service, sum(a_errors) AS errors, "
        f"sum({COST}) AS cost_usd FROM ("
        "SELECT trace_id, session AS a_session, first_span AS a_first_span, ended AS a_ended, user AS a_user, "
        "length(error_keys) AS a_errors, spans AS a_spans FROM found WHERE whole "
        "UNION ALL "
        "SELECT trace_id, min(session) AS a_session, min(first_span) AS a_first_span, max(ended) AS a_ended, "
        "min(user) AS a_user, length(groupUniqArrayArray(error_keys)) AS a_errors, maxMap(spans) AS a_spans "
        f"FROM {{db}}.trace_rows PREWHERE (hour, trace_id) IN ({keys_near(others, 2)}) "
        f"WHERE tenant = {{tenant:String}} AND {span} GROUP BY trace_id) "
        f"WHERE a_session.1 = 0 AND a_session.4 IN {ids_p} GROUP BY session_id"
        # session.4 as written, so the projection's sorting key matches it
        " SETTINGS optimize_functions_to_subcolumns = 0" + (", enable_materialized_cte = 1" if materialized else "")
    )
    return sql, s.params


def session_trace_ids(
    store: Store, tenant: str, session_id: str, since: datetime, until: datetime, limit: int = 1000
) -> list[dict[str, Any]]:
    """(trace_id, started) of the session's traces in [since, until), oldest first."""
    w = Where(tenant)
    span = hours(w, since, until, pad=timedelta(0))
    # The rows naming the session, then every row of their traces (within two hours of one), by key.
    named = (
        f"SELECT hour, trace_id FROM {{db}}.trace_rows WHERE tenant = {{tenant:String}} AND {span} "
        f"AND has(session_ids, {w.bind(session_id, 'String')})"
    )
    return store._reader.rows(
        tenant,
        "SELECT trace_id, min(first_span.1) AS started FROM {db}.trace_rows "
        f"WHERE tenant = {{tenant:String}} AND {span} AND (hour, trace_id) IN ({keys_near(named, 2)}) "
        f"GROUP BY trace_id HAVING started >= {w.bind(since, 'DateTime64(9)')} "
        f"ORDER BY started, trace_id LIMIT {w.bind(limit, 'UInt32')}",
        w.params,
    )
