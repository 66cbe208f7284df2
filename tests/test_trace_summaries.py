"""trace_summaries (migration 7, trace_rows since migration 14): the list's figures stay exact when OTLP retries send a span twice,
a scorer replaces a score, a trace's spans fall in two hours, or the rows come from the backfill.

Each test writes through the store's own insert path (the materialized views run on it) and reads
through the query functions the API calls; the expectations are worked out by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest

from driftline.collector.batch import rows_to_table
from driftline.scorers.runner import SCORE_SCHEMA
from driftline.store import Store
from driftline.store.queries import sessions as session_queries
from driftline.store.queries import traces as trace_queries
from tests.support.sql import admin_client, admin_rows

TENANT = "tenant-a"
# Half a second before an hour starts: a trace's child spans fall in the next hour.
EDGE = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2, milliseconds=500)
T1, T2, T3 = "c1" * 16, "c2" * 16, "c3" * 16


def _ns(dt: datetime) -> int:
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


def _span(trace: str, n: int, start: datetime, ms: float, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "trace_id": trace,
        "span_id": f"{trace[:14]}{n:02x}",
        "parent_span_id": "" if n == 0 else f"{trace[:14]}00",
        "start_time": _ns(start),
        "end_time": _ns(start + timedelta(milliseconds=ms)),
        "duration_ms": ms,
        "name": "agent" if n == 0 else "chat",
        "service": "shop",
        "status_code": "unset",
    }
    row.update(kw)
    return row


def _score(trace: str, n: int, start: datetime, value: float, label: str, at: datetime) -> dict[str, Any]:
    return {
        "tenant": TENANT, "trace_id": trace, "span_id": f"{trace[:14]}{n:02x}", "scorer": "hallucination",
        "scorer_version": "v1", "value": value, "label": label, "explanation": "", "service": "shop",
        "operation": "chat", "model": "gpt-4o", "release": "1.0", "environment": "prod",
        "span_start_time": start, "scored_at": at, "details": "{}",
    }  # fmt: skip


def _scores(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.table({f.name: [r[f.name] for r in rows] for f in SCORE_SCHEMA}, schema=SCORE_SCHEMA)


def _t1() -> list[dict[str, Any]]:
    """Root and a priced chat span in one hour, a second priced span (an error) in the next."""
    return [
        _span(T1, 0, EDGE, 900.0),
        _span(T1, 1, EDGE + timedelta(milliseconds=100), 50.0, operation="chat", request_model="gpt-4o",
              cost_usd=0.01, input_tokens=100, output_tokens=10, session_id="s1", user_id="u1",
              input_text="first question", output_text="first answer"),
        _span(T1, 2, EDGE + timedelta(milliseconds=700), 100.0, operation="execute_tool", status_code="error",
              cost_usd=0.02, input_tokens=5, output_tokens=5, service="tools", output_text="last answer"),
    ]  # fmt: skip


def _t2() -> list[dict[str, Any]]:
    """One hour only; its chat span priced at exactly zero (priced: cost 0.0, not null)."""
    start = EDGE - timedelta(minutes=30)
    return [
        _span(T2, 0, start, 2000.0),
        _span(T2, 1, start + timedelta(milliseconds=5), 10.0, request_model="free-model", cost_usd=0.0),
    ]


def _t3() -> list[dict[str, Any]]:
    """No span priced: cost is unknown (null), and sorts as 0."""
    start = EDGE - timedelta(minutes=20)
    return [_span(T3, 0, start, 100.0), _span(T3, 1, start + timedelta(milliseconds=1), 10.0, request_model="m")]


def _summaries(store: Store) -> dict[str, dict[str, Any]]:
    lo, hi = EDGE - timedelta(hours=2), EDGE + timedelta(hours=2)
    return trace_queries.trace_summaries(store, TENANT, [T1, T2, T3], lo, hi)


def _page(store: Store, **kw: Any) -> list[str]:
    q = trace_queries.TraceQuery(since=EDGE - timedelta(days=1), until=EDGE + timedelta(hours=3), **kw)
    rows, _ = trace_queries.search_traces(store, TENANT, q)
    return [r["trace_id"] for r in rows]


def _write_all(store: Store, times: int) -> None:
    spans = _t1() + _t2() + _t3()
    for _ in range(times):  # an OTLP retry: the same spans in another request, another INSERT
        store.insert_arrow("spans", rows_to_table(TENANT, spans))
        # and the child spans once more, on their own, as a retried later export would
        store.insert_arrow("spans", rows_to_table(TENANT, [s for s in spans if s["parent_span_id"]]))


def _check_figures(store: Store) -> None:
    got = _summaries(store)
    t1, t2, t3 = got[T1], got[T2], got[T3]
    assert (t1["spans"], t1["errors"], t1["error"]) == (3, 1, True)
    assert t1["cost_usd"] == pytest.approx(0.03)
    assert (t1["input_tokens"], t1["output_tokens"]) == (105, 15)
    assert (t1["session_id"], t1["user_id"], t1["duration_ms"], t1["service"]) == ("s1", "u1", 900.0, "shop")
    assert (t1["input_preview"], t1["output_preview"]) == ("first question", "last answer")
    assert t1["models"] == ["gpt-4o"]
    assert t2["cost_usd"] == 0.0 and t3["cost_usd"] is None
    assert (t2["spans"], t3["spans"]) == (2, 2)
    # sorts and filters over the same figures
    assert _page(store, sort="cost") == [T1, T3, T2]  # 0.03, then 0 and unpriced tie: by trace id
    assert _page(store, sort="duration") == [T2, T1, T3]
    assert _page(store, service="tools") == [T1]  # matched by a span in the root's next hour only
    assert _page(store, status="error") == [T1]
    assert _page(store, status="ok") == [T3, T2]
    assert _page(store, model="free-model") == [T2]


def test_retried_spans_are_counted_once(store: Store) -> None:
    _write_all(store, times=2)
    _check_figures(store)
    # T4 costs more than T1 (0.03) but less than T1 counted twice: a page of one must be T4.
    t4 = "c4" * 16
    start = EDGE - timedelta(minutes=10)
    store.insert_arrow("spans", rows_to_table(TENANT, [_span(t4, 0, start, 5.0, cost_usd=0.05)]))
    assert _page(store, sort="cost", limit=1) == [t4]
    assert _page(store, sort="cost", descending=False, limit=2) == [T2, T3]


def test_replaced_scores_count_as_the_latest_only(store: Store) -> None:
    _write_all(store, times=1)
    at = datetime.now(UTC).replace(microsecond=0)
    child = EDGE + timedelta(milliseconds=100)
    first = [_score(T1, 1, child, 0.9, "hallucinated", at), _score(T2, 1, EDGE, 0.5, "hallucinated", at)]
    store.insert_arrow("scores", _scores(first))
    store.insert_arrow("scores", _scores(first))  # the same scores again: a scorer's retry
    assert _page(store, sort="score") == [T1, T2]
    assert _page(store, label="hallucinated") == [T1, T2]
    # T1 re-scored later, now grounded and lower than T2: the old score no longer counts
    store.insert_arrow("scores", _scores([_score(T1, 1, child, 0.1, "grounded", at + timedelta(seconds=5))]))
    got = _summaries(store)
    assert (got[T1]["hallucination_score"], got[T1]["hallucination_label"]) == (pytest.approx(0.1), "grounded")
    assert _page(store, sort="score") == [T2, T1]
    assert _page(store, label="hallucinated") == [T2]
    assert _page(store, min_score=0.8) == []
    assert _page(store, max_score=0.2) == [T1]
    assert _page(store, min_score=0.4, max_score=0.6) == [T2]
    # Merged, each day is one part read without FINAL: a merged row's hallucination_max (migration
    # 17, a row's key for the sort by score) spans every version of its scores; the pages stay.
    with admin_client(store) as c:
        c.command(f"OPTIMIZE TABLE {store.cfg.database}.trace_rows FINAL")
    assert _page(store, sort="score") == [T2, T1]
    assert _page(store, sort="score", descending=False) == [T1, T2]
    assert _page(store, min_score=0.8) == []
    assert _page(store, max_score=0.2) == [T1]
    assert _page(store, min_score=0.4, max_score=0.6) == [T2]


def test_sessions_count_each_trace_once(store: Store) -> None:
    _write_all(store, times=2)
    lo, hi = EDGE - timedelta(days=1), EDGE + timedelta(hours=3)
    rows, nxt = session_queries.list_sessions(store, TENANT, lo, hi)
    assert nxt is None and [(r["session_id"], r["traces"], r["errors"]) for r in rows] == [("s1", 1, 1)]
    assert rows[0]["cost_usd"] == pytest.approx(0.03) and rows[0]["user_id"] == "u1"
    assert [r["trace_id"] for r in session_queries.session_trace_ids(store, TENANT, "s1", lo, hi)] == [T1]


def test_session_figures_are_the_same_before_and_after_the_rows_are_merged(store: Store) -> None:
    """Before a merge a session's traces are aggregated from all their rows; after it, a trace in one
    hour is read from its one row (the by_session projection), a trace in two hours still from all."""
    t4 = "c4" * 16
    start = EDGE - timedelta(minutes=40)
    chat = [
        _span(t4, 0, start, 300.0, session_id="s1", user_id="u0"),
        _span(t4, 1, start + timedelta(milliseconds=5), 20.0, session_id="s1", cost_usd=0.5, status_code="error"),
    ]
    tool = [_span(t4, 2, start + timedelta(milliseconds=30), 10.0, cost_usd=0.25, status_code="error")]  # no session
    _write_all(store, times=1)
    store.insert_arrow("spans", rows_to_table(TENANT, chat))
    store.insert_arrow("spans", rows_to_table(TENANT, tool + chat[1:]))  # a later export, and a retry
    lo, hi = EDGE - timedelta(days=1), EDGE + timedelta(hours=3)

    def figures() -> list[tuple[Any, ...]]:
        rows, _ = session_queries.list_sessions(store, TENANT, lo, hi)
        return [(r["session_id"], r["traces"], r["errors"], round(r["cost_usd"], 9), r["user_id"]) for r in rows]

    # T1: 0.03 and one error (its tool span, next hour); T4: 0.75 and two errors, started first
    expected = [("s1", 2, 3, 0.78, "u0")]
    assert figures() == expected
    with admin_client(store) as c:
        c.command(f"OPTIMIZE TABLE {store.cfg.database}.trace_rows FINAL")
        merged = c.query(
            "SELECT count() FROM system.parts WHERE database = {db:String} AND table = 'trace_rows' AND active "
            "AND level > 0",
            parameters={"db": store.cfg.database},
        ).result_rows
    assert merged[0][0] >= 1
    assert figures() == expected
    # An engine without materialized CTEs (an older server) reads the rows found twice: the same.
    assert store._reader.engine_has_setting("enable_materialized_cte")
    store._reader._known_settings["enable_materialized_cte"] = False
    assert figures() == expected


def test_a_session_trace_with_a_row_of_scores_only_in_another_hour_is_counted_whole(store: Store) -> None:
    """A score of a span the trace has no row for in its hour (a span never stored) gives the trace a
    row of scores only there, without the root. It adds nothing to a session's figures, so on a
    merged day the trace is still read from its root's row, and the figures are the same."""
    t5 = "c5" * 16
    start = EDGE - timedelta(minutes=20)
    spans = [
        _span(t5, 0, start, 300.0, session_id="s5", user_id="u5"),
        _span(t5, 1, start + timedelta(milliseconds=5), 20.0, session_id="s5", cost_usd=0.5, status_code="error"),
    ]
    store.insert_arrow("spans", rows_to_table(TENANT, spans))
    late = start + timedelta(minutes=50)  # the next hour: no span of the trace there
    store.insert_arrow("scores", _scores([_score(t5, 9, late, 0.9, "hallucinated", datetime.now(UTC))]))
    lo, hi = EDGE - timedelta(days=1), EDGE + timedelta(hours=3)

    def figures() -> list[tuple[Any, ...]]:
        rows, _ = session_queries.list_sessions(store, TENANT, lo, hi)
        return [
            (r["session_id"], r["traces"], r["errors"], round(r["cost_usd"], 9), r["user_id"], r["service"])
            for r in rows
        ]

    expected = [("s5", 1, 1, 0.5, "u5", "shop")]
    assert figures() == expected
    with admin_client(store) as c:
        c.command(f"OPTIMIZE TABLE {store.cfg.database}.trace_rows FINAL")
    rows = admin_rows(
        store,
        "SELECT hour, root.child AS lacking, span_rows FROM {db}.trace_rows WHERE trace_id = {t:String} ORDER BY hour",
        {"t": t5},
    )
    assert [(r["lacking"], r["span_rows"]) for r in rows] == [(0, 2), (1, 0)]
    assert figures() == expected
    started = session_queries.list_sessions(store, TENANT, lo, hi)[0][0]["started"]
    assert started.replace(tzinfo=UTC) == start


def test_the_migration_backfills_spans_and_scores_written_before_it(store: Store) -> None:
    db = store.cfg.database
    with admin_client(store) as c:  # back to version 6: no summaries, no views
        for name in ("trace_rows_spans", "trace_rows_scores", "trace_rows"):
            c.command(f"DROP TABLE {db}.{name}")
        c.command(f"DELETE FROM {db}.schema_migrations WHERE version IN (7, 14)")
    _write_all(store, times=2)
    at = datetime.now(UTC).replace(microsecond=0)
    store.insert_arrow("scores", _scores([_score(T1, 1, EDGE + timedelta(milliseconds=100), 0.7, "hallucinated", at)]))
    # migration 7 backfills trace_summaries from the spans and scores, 14 copies it into trace_rows
    assert store.migrate() == [7, 14]
    _check_figures(store)
    assert _summaries(store)[T1]["hallucination_score"] == pytest.approx(0.7)


def test_the_score_sort_migration_covers_rows_merged_before_it(store: Store) -> None:
    """Migration 17 computes hallucination_max of existing rows from their `scores`, where a
    merged row holds every version of a replaced score: its max spans them all. T2 (one hour, one
    row once merged) is found by its row alone; T1 (two hours) from all its rows."""
    db = store.cfg.database
    _write_all(store, times=1)
    at = datetime.now(UTC).replace(microsecond=0)
    store.insert_arrow("scores", _scores([_score(T2, 1, EDGE, 0.9, "hallucinated", at)]))
    store.insert_arrow("scores", _scores([_score(T2, 1, EDGE, 0.1, "grounded", at + timedelta(seconds=5))]))
    store.insert_arrow("scores", _scores([_score(T1, 1, EDGE + timedelta(milliseconds=100), 0.5, "hallucinated", at)]))
    with admin_client(store) as c:  # back to version 16, the rows merged without the column
        c.command(f"ALTER TABLE {db}.trace_rows DROP COLUMN hallucination_max")
        c.command(f"DELETE FROM {db}.schema_migrations WHERE version = 17")
        c.command(f"OPTIMIZE TABLE {db}.trace_rows FINAL")
    assert store.migrate() == [17]
    assert _page(store, max_score=0.2) == [T2]
    assert _page(store, min_score=0.8) == []
    assert _page(store, min_score=0.4, max_score=0.6) == [T1]
    assert _page(store, sort="score") == [T1, T2]
    assert _page(store, sort="score", descending=False) == [T2, T1]


def test_a_sort_by_score_finds_a_trace_by_its_highest_hallucination_score(store: Store) -> None:
    """Each trace's worst (highest) hallucination score sorts it; a page of one trace reads the
    row keys of a few (hallucination_max, migration 17), so a trace whose other scores are low is
    still found by its highest one."""
    start = EDGE - timedelta(minutes=50)
    ids = {name: name * 32 for name in "abcd"}
    scored = {"a": [0.2, 0.95], "b": [0.6], "c": [0.5], "d": [0.4]}
    at = datetime.now(UTC).replace(microsecond=0)
    spans, scores = [], []
    for i, (name, values) in enumerate(scored.items()):
        t0 = start + timedelta(minutes=i)
        spans.append(_span(ids[name], 0, t0, 500.0))
        for n, v in enumerate(values, start=1):
            when = t0 + timedelta(milliseconds=10 * n)
            spans.append(_span(ids[name], n, when, 5.0, operation="chat"))
            scores.append(_score(ids[name], n, when, v, "hallucinated" if v > 0.5 else "grounded", at))
    store.insert_arrow("spans", rows_to_table(TENANT, spans))
    store.insert_arrow("scores", _scores(scores))
    assert _page(store, sort="score", limit=1) == [ids["a"]]
    assert _page(store, sort="score", descending=False, limit=1) == [ids["d"]]
    assert _page(store, sort="score") == [ids[n] for n in "abcd"]


def test_a_sparse_filter_pages_through_the_widening_windows_in_order(store: Store) -> None:
    """The newest-first list reads the last hour, 8 hours, 2 days, then the rest, each window only
    for what the page still lacks: a filter matching a trace in each window (and none of the many
    traces of the last hour) gives the same order, page by page, as one read of the week."""
    now = datetime.now(UTC).replace(microsecond=0)
    ages = {"e1": timedelta(minutes=10), "e2": timedelta(hours=3), "e3": timedelta(hours=20),
            "e4": timedelta(days=3), "e5": timedelta(days=6)}  # fmt: skip
    spans = [_span(f"{name}" * 16, 0, now - age, 10.0, status_code="error") for name, age in ages.items()]
    spans += [_span(f"{n:02x}" * 16, 0, now - timedelta(minutes=n + 1), 10.0) for n in range(40)]
    store.insert_arrow("spans", rows_to_table(TENANT, spans))
    newest_first = [f"{name}" * 16 for name in ages]

    def pages(limit: int, descending: bool = True) -> list[list[str]]:
        out, after = [], None
        while True:
            q = trace_queries.TraceQuery(since=now - timedelta(days=7), until=now + timedelta(minutes=1),
                                         status="error", limit=limit, descending=descending, after=after)  # fmt: skip
            rows, after = trace_queries.search_traces(store, TENANT, q)
            out.append([r["trace_id"] for r in rows])
            if after is None:
                return out

    assert pages(10) == [newest_first]
    assert pages(2) == [newest_first[:2], newest_first[2:4], newest_first[4:]]
    assert pages(1) == [[t] for t in newest_first]
    assert pages(10, descending=False) == [newest_first[::-1]]  # ascending reads the week at once
