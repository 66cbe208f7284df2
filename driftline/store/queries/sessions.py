"""Sessions: the traces of one conversation (spans sharing a `session_id`), newest sessions first."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from driftline.store.queries._where import Where

if TYPE_CHECKING:
    from driftline.store.store import Store

__all__ = ["list_sessions", "session_trace_ids"]

_TAIL = timedelta(hours=1)  # spans of a trace may start this long after the session window


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
    (last span start in ns, session_id)."""
    w = Where(tenant)
    w.add("session_id != ''")
    w.add(f"start_time >= {w.bind(since, 'DateTime64(9)')}")
    w.add(f"start_time < {w.bind(until, 'DateTime64(9)')}")
    if service is not None:
        w.add(f"service = {w.bind(service, 'String')}")
    if user_id is not None:
        w.add(f"user_id = {w.bind(user_id, 'String')}")
    having = ""
    if after is not None:
        having = f" HAVING (k, session_id) < ({w.bind(after[0], 'Int64')}, {w.bind(after[1], 'String')})"
    page = store._reader.rows(
        tenant,
        "SELECT session_id, toUnixTimestamp64Nano(max(start_time)) AS k "
        f"FROM {{db}}.spans WHERE {w.sql()} GROUP BY session_id{having} "
        f"ORDER BY k DESC, session_id DESC LIMIT {w.bind(limit + 1, 'UInt32')}",
        w.params,
    )
    more = len(page) > limit
    page = page[:limit]
    if not page:
        return [], None
    # The session's numbers cover every span of its traces: tool and retrieval spans often carry
    # no session id of their own. A trace belongs to the session of its first span that names one.
    in_sessions = (
        "SELECT trace_id, session_id FROM {db}.spans WHERE tenant = {tenant:String} "
        "AND session_id IN {ids:Array(String)} AND start_time >= {since:DateTime64(9)} "
        "AND start_time < {until:DateTime64(9)} ORDER BY start_time LIMIT 1 BY trace_id"
    )
    stats = store._reader.rows(
        tenant,
        "SELECT s.session_id AS session_id, min(start_time) AS started, max(end_time) AS ended, "
        "uniqExact(sp.trace_id) AS traces, argMinIf(user_id, start_time, user_id != '') AS user_id, "
        "argMin(service, start_time) AS service, countIf(status_code = 'error') AS errors, "
        "sum(cost_usd) AS cost_usd "
        f"FROM {{db}}.spans AS sp FINAL INNER JOIN ({in_sessions}) AS s ON sp.trace_id = s.trace_id "
        "WHERE sp.tenant = {tenant:String} AND sp.start_time >= {since:DateTime64(9)} "
        "AND sp.start_time < {hi:DateTime64(9)} "
        f"AND sp.trace_id IN (SELECT trace_id FROM ({in_sessions})) GROUP BY s.session_id",
        {"tenant": tenant, "ids": [r["session_id"] for r in page], "since": since, "until": until, "hi": until + _TAIL},
    )
    by_id = {r["session_id"]: r for r in stats}
    rows = [by_id[r["session_id"]] | {"k": r["k"]} for r in page if r["session_id"] in by_id]
    return rows, ((page[-1]["k"], page[-1]["session_id"]) if more else None)


def session_trace_ids(
    store: Store, tenant: str, session_id: str, since: datetime, until: datetime, limit: int = 1000
) -> list[dict[str, Any]]:
    """(trace_id, started) of the session's traces in [since, until), oldest first."""
    return store._reader.rows(
        tenant,
        "SELECT trace_id, min(start_time) AS started FROM {db}.spans WHERE tenant = {tenant:String} "
        "AND trace_id IN (SELECT trace_id FROM {db}.spans WHERE tenant = {tenant:String} "
        "AND session_id = {session_id:String} AND start_time >= {since:DateTime64(9)} "
        "AND start_time < {until:DateTime64(9)}) AND start_time >= {since:DateTime64(9)} "
        "AND start_time < {until:DateTime64(9)} GROUP BY trace_id ORDER BY started, trace_id LIMIT {limit:UInt32}",
        {"tenant": tenant, "session_id": session_id, "since": since, "until": until, "limit": limit},
    )
