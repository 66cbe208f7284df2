"""Review queues: queue definitions, items, workflow events, labels, datasets, and the filling job's
candidate reads. Every read is tenant-scoped through the Reader; every write is one Arrow INSERT."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import pyarrow as pa

if TYPE_CHECKING:
    from driftline.store.store import Store

__all__ = [
    "EVENT_SCHEMA",
    "ITEM_SCHEMA",
    "LABEL_SCHEMA",
    "auto_items_since",
    "candidates",
    "claimable_items",
    "dataset_records",
    "datasets",
    "events",
    "existing_items",
    "held_items",
    "insert_dataset_records",
    "insert_events",
    "insert_items",
    "insert_labels",
    "insert_queue",
    "items",
    "labels",
    "scores_for_traces",
    "stored_queues",
    "trace_facts",
]

_MS = pa.timestamp("ms", tz="UTC")
_US = pa.timestamp("us", tz="UTC")
_S = pa.string()

QUEUE_SCHEMA = pa.schema(
    [("tenant", _S), ("name", _S), ("definition", _S), ("deleted", pa.uint8()), ("updated_at", _MS)]
)
ITEM_SCHEMA = pa.schema(
    [
        ("tenant", _S), ("queue", _S), ("trace_id", _S), ("span_id", _S), ("rule", _S), ("reason", _S),
        ("scorer", _S), ("score_value", pa.float64()), ("score_label", _S), ("service", _S), ("release", _S),
        ("trace_start", _MS), ("added_by", _S), ("created_at", _MS),
    ]
)  # fmt: skip
EVENT_SCHEMA = pa.schema(
    [("tenant", _S), ("queue", _S), ("trace_id", _S), ("event_id", _S), ("kind", _S), ("reviewer", _S),
     ("at", _US), ("expires_at", _US)]
)  # fmt: skip
LABEL_SCHEMA = pa.schema(
    [("tenant", _S), ("queue", _S), ("trace_id", _S), ("kind", _S), ("reviewer", _S), ("fields", _S),
     ("note", _S), ("corrected_answer", _S), ("labeled_at", _US)]
)  # fmt: skip
DATASET_SCHEMA = pa.schema(
    [("tenant", _S), ("dataset", _S), ("queue", _S), ("trace_id", _S), ("record", _S), ("added_at", _MS)]
)

# A score that is a failure (the trace view's rules, and a slow call): the control rule's "passing
# traffic" has none of these.
_FAILURE: Final = (
    "(label IN ('hallucinated', 'refused', 'pii') OR (scorer = 'latency' AND label = 'slow') "
    "OR (scorer = 'tool_failure' AND label NOT IN ('ok', 'error', 'no_context')))"
)


def _insert(store: Store, table: str, schema: pa.Schema, tenant: str, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    cols: dict[str, list[Any]] = {f.name: [] for f in schema}
    for r in rows:
        for name, values in cols.items():
            values.append(tenant if name == "tenant" else r[name])
    store.insert_arrow(table, pa.table(cols, schema=schema))


# -- queues -----------------------------------------------------------------------------------
def stored_queues(store: Store, tenant: str) -> list[dict[str, Any]]:
    """The tenant's queue definitions written through the API (deleted ones included), by name."""
    return store._reader.rows(
        tenant,
        "SELECT name, definition, deleted, updated_at FROM {db}.review_queues FINAL "
        "WHERE tenant = {tenant:String} ORDER BY name",
    )


def insert_queue(store: Store, tenant: str, name: str, definition: str, deleted: bool, now: datetime) -> None:
    row = {"name": name, "definition": definition, "deleted": 1 if deleted else 0, "updated_at": now}
    _insert(store, "review_queues", QUEUE_SCHEMA, tenant, [row])


# -- items ------------------------------------------------------------------------------------
_ITEM_COLS = (
    "queue, trace_id, span_id, rule, reason, scorer, score_value, score_label, service, release, "
    "trace_start, added_by, created_at"
)


def insert_items(store: Store, tenant: str, rows: Sequence[dict[str, Any]]) -> None:
    _insert(store, "review_queue_items", ITEM_SCHEMA, tenant, rows)


def items(store: Store, tenant: str, queue: str, trace_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The queue's items (or these of them), oldest first."""
    where = "" if trace_ids is None else " AND trace_id IN {ids:Array(String)}"
    return store._reader.rows(
        tenant,
        f"SELECT {_ITEM_COLS} FROM {{db}}.review_queue_items FINAL "
        f"WHERE tenant = {{tenant:String}} AND queue = {{queue:String}}{where} ORDER BY created_at, trace_id",
        {"queue": queue, "ids": list(trace_ids or [])},
    )


def existing_items(store: Store, tenant: str, queue: str, trace_ids: Sequence[str]) -> set[str]:
    if not trace_ids:
        return set()
    rows = store._reader.rows(
        tenant,
        "SELECT DISTINCT trace_id FROM {db}.review_queue_items WHERE tenant = {tenant:String} "
        "AND queue = {queue:String} AND trace_id IN {ids:Array(String)}",
        {"queue": queue, "ids": list(trace_ids)},
    )
    return {str(r["trace_id"]) for r in rows}


def auto_items_since(store: Store, tenant: str, queue: str, since: datetime) -> int:
    """Items the filling job added to the queue at or after `since` (the hourly cap's count)."""
    rows = store._reader.rows(
        tenant,
        "SELECT count() AS n FROM {db}.review_queue_items FINAL WHERE tenant = {tenant:String} "
        "AND queue = {queue:String} AND added_by = '' AND created_at >= {since:DateTime64(3)}",
        {"queue": queue, "since": since},
    )
    return int(rows[0]["n"]) if rows else 0


def trace_facts(store: Store, tenant: str, trace_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """For each trace the store holds: its root's start, service and release, and its last answer's
    span (the span a review is about when none is named)."""
    if not trace_ids:
        return {}
    root = "(parent_span_id != '', start_time)"
    rows = store._reader.rows(
        tenant,
        f"SELECT trace_id, argMin(start_time, {root}) AS trace_start, argMin(service, {root}) AS service, "
        f"argMin(release, {root}) AS release, argMaxIf(span_id, end_time, output_text != '') AS answer_span "
        "FROM {db}.spans WHERE tenant = {tenant:String} AND trace_id IN {ids:Array(String)} GROUP BY trace_id",
        {"ids": list(trace_ids)},
    )
    return {str(r["trace_id"]): r for r in rows}


# -- workflow -----------------------------------------------------------------------------------
def insert_events(store: Store, tenant: str, rows: Sequence[dict[str, Any]]) -> None:
    _insert(store, "review_events", EVENT_SCHEMA, tenant, rows)


def events(
    store: Store, tenant: str, queue: str, trace_ids: Sequence[str] | None = None, since: datetime | None = None,
    recent: datetime | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Workflow events of the queue (of these items; at or after `since`; at or after `recent` or
    skips of any age), oldest first."""
    where = ""
    if trace_ids is not None:
        where += " AND trace_id IN {ids:Array(String)}"
    if since is not None:
        where += " AND at >= {since:DateTime64(6)}"
    if recent is not None:
        where += " AND (at >= {recent:DateTime64(6, 'UTC')} OR kind = 'skip')"
    return store._reader.rows(
        tenant,
        "SELECT trace_id, event_id, kind, reviewer, at, expires_at FROM {db}.review_events FINAL "
        f"WHERE tenant = {{tenant:String}} AND queue = {{queue:String}}{where} ORDER BY at, reviewer, event_id",
        {"queue": queue, "ids": list(trace_ids or []), "since": since, "recent": recent},
    )


def held_items(store: Store, tenant: str, queue: str, reviewer: str, now: datetime) -> list[str]:
    """Items of the queue on which `reviewer` has a claim live at `now` (started at or before it,
    expiring after it), oldest first: the items the reviewer may hold. Whether a claim stands, or
    was ended by a release, skip or label, is the workflow's fold to say (driftline/review/desk.py)."""
    rows = store._reader.rows(
        tenant,
        "SELECT trace_id FROM {db}.review_queue_items FINAL WHERE tenant = {tenant:String} "
        "AND queue = {queue:String} AND trace_id IN (SELECT trace_id FROM {db}.review_events FINAL "
        "WHERE tenant = {tenant:String} AND queue = {queue:String} AND kind = 'claim' "
        "AND reviewer = {reviewer:String} AND at <= {now:DateTime64(6, 'UTC')} "
        "AND expires_at > {now:DateTime64(6, 'UTC')}) ORDER BY created_at, trace_id",
        {"queue": queue, "reviewer": reviewer, "now": now},
    )
    return [str(r["trace_id"]) for r in rows]


def claimable_items(
    store: Store, tenant: str, queue: str, reviewer: str, reviewers_needed: int, now: datetime,
    after: tuple[datetime, str] | None, limit: int,
) -> list[dict[str, Any]]:  # fmt: skip
    """Up to `limit` items of the queue that `reviewer` may be able to claim at `now`, oldest first
    (as `items`), after the (created_at, trace_id) key `after`: no adjudication, no label by the
    reviewer, labels by fewer than `reviewers_needed` reviewers, no skip by the reviewer at or
    before `now`. Every item these rules leave out is one the workflow's fold refuses the reviewer;
    others' live claims are left to the fold, which confirms each item (driftline/review/desk.py)."""
    p: dict[str, Any] = {"queue": queue, "reviewer": reviewer, "needed": reviewers_needed, "now": now, "limit": limit}
    where = ""
    if after is not None:
        where = " AND (created_at, trace_id) > ({after_at:DateTime64(3, 'UTC')}, {after_id:String})"
        p["after_at"], p["after_id"] = after
    return store._reader.rows(
        tenant,
        f"SELECT {_ITEM_COLS} FROM {{db}}.review_queue_items FINAL "
        f"WHERE tenant = {{tenant:String}} AND queue = {{queue:String}}{where} "
        "AND trace_id NOT IN (SELECT trace_id FROM {db}.review_labels FINAL WHERE tenant = {tenant:String} "
        "AND queue = {queue:String} GROUP BY trace_id HAVING countIf(kind = 'adjudication') > 0 "
        "OR countIf(kind = 'label' AND reviewer = {reviewer:String}) > 0 "
        "OR uniqExactIf(reviewer, kind = 'label') >= {needed:UInt32}) "
        "AND trace_id NOT IN (SELECT trace_id FROM {db}.review_events FINAL WHERE tenant = {tenant:String} "
        "AND queue = {queue:String} AND kind = 'skip' AND reviewer = {reviewer:String} "
        "AND at <= {now:DateTime64(6, 'UTC')}) "
        "ORDER BY created_at, trace_id LIMIT {limit:UInt32}",
        p,
    )


def insert_labels(store: Store, tenant: str, rows: Sequence[dict[str, Any]]) -> None:
    _insert(store, "review_labels", LABEL_SCHEMA, tenant, rows)


def labels(
    store: Store, tenant: str, queue: str | None, trace_ids: Sequence[str] | None = None,
    since: datetime | None = None, until: datetime | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Labels and adjudications (of one queue or all; of these items; labeled in [since, until))."""
    where = ""
    if queue is not None:
        where += " AND queue = {queue:String}"
    if trace_ids is not None:
        where += " AND trace_id IN {ids:Array(String)}"
    if since is not None:
        where += " AND labeled_at >= {since:DateTime64(6)}"
    if until is not None:
        where += " AND labeled_at < {until:DateTime64(6)}"
    return store._reader.rows(
        tenant,
        "SELECT queue, trace_id, kind, reviewer, fields, note, corrected_answer, labeled_at "
        f"FROM {{db}}.review_labels FINAL WHERE tenant = {{tenant:String}}{where} "
        "ORDER BY queue, trace_id, labeled_at, reviewer",
        {"queue": queue or "", "ids": list(trace_ids or []), "since": since, "until": until},
    )


def scores_for_traces(
    store: Store, tenant: str, trace_ids: Sequence[str], scorers: Sequence[str]
) -> list[dict[str, Any]]:
    """The latest score of each (span, scorer, version) of these traces, for these scorers."""
    if not trace_ids or not scorers:
        return []
    return store._reader.rows(
        tenant,
        "SELECT trace_id, span_id, scorer, scorer_version, argMax(value, scored_at) AS value, "
        "argMax(label, scored_at) AS label FROM {db}.scores WHERE tenant = {tenant:String} "
        "AND trace_id IN {ids:Array(String)} AND scorer IN {scorers:Array(String)} "
        "GROUP BY trace_id, span_id, scorer, scorer_version",
        {"ids": list(trace_ids), "scorers": list(scorers)},
    )


# -- datasets -------------------------------------------------------------------------------
def insert_dataset_records(store: Store, tenant: str, rows: Sequence[dict[str, Any]]) -> None:
    _insert(store, "review_datasets", DATASET_SCHEMA, tenant, rows)


def datasets(store: Store, tenant: str) -> list[dict[str, Any]]:
    return store._reader.rows(
        tenant,
        "SELECT dataset, count() AS records, groupUniqArray(queue) AS queues, max(added_at) AS updated_at "
        "FROM {db}.review_datasets FINAL WHERE tenant = {tenant:String} GROUP BY dataset ORDER BY dataset",
    )


def dataset_records(store: Store, tenant: str, dataset: str) -> list[str]:
    """The dataset's records (JSON text), in a stable order."""
    rows = store._reader.rows(
        tenant,
        "SELECT record FROM {db}.review_datasets FINAL WHERE tenant = {tenant:String} "
        "AND dataset = {dataset:String} ORDER BY queue, trace_id",
        {"dataset": dataset},
    )
    return [str(r["record"]) for r in rows]


# -- the filling job ----------------------------------------------------------------------------
def candidates(
    store: Store,
    tenant: str,
    *,
    queue: str,
    rule: dict[str, Any],
    salt: str,
    sample_ppm: int,
    since: datetime,
    until: datetime,
    limit: int,
) -> list[dict[str, Any]]:
    """Traces a rule sends to `queue` from what was scored (or fed back) in (since, until], not yet in
    the queue, sampled by a hash of (trace id, `salt`): trace_id, m_span, m_scorer, m_value, m_label
    (the matching span, scorer, value, label) and trace_start, oldest first. `rule` is a QueueRule as
    a dict. (The m_ names keep the output apart from the columns the conditions name.)"""
    kind = rule["kind"]
    p: dict[str, Any] = {
        "queue": queue, "since": since, "until": until, "salt": salt, "ppm": sample_ppm, "limit": limit,
        "scorer": rule.get("scorer", ""), "other": rule.get("other_scorer", ""),
    }  # fmt: skip

    def not_queued(col: str) -> str:
        """Not in the queue yet, and in the sample."""
        return (
            f"{col} NOT IN (SELECT trace_id FROM {{db}}.review_queue_items WHERE tenant = {{tenant:String}} "
            f"AND queue = {{queue:String}}) AND cityHash64({col}, {{salt:String}}) % 1000000 < {{ppm:UInt32}}"
        )

    fresh = not_queued("trace_id")
    scored = "scored_at > {since:DateTime64(3)} AND scored_at <= {until:DateTime64(3)}"
    if kind in ("score", "uncertain", "outlier"):
        conds = ["scorer = {scorer:String}", scored, fresh]
        if kind == "score":
            if rule.get("labels"):
                p["labels"] = list(rule["labels"])
                conds.append("label IN {labels:Array(String)}")
            if rule.get("not_labels"):
                p["not_labels"] = list(rule["not_labels"])
                conds.append("label NOT IN {not_labels:Array(String)}")
            for key, op in (("min_value", ">="), ("max_value", "<=")):
                if rule.get(key) is not None:
                    p[key] = float(rule[key])
                    conds.append(f"value {op} {{{key}:Float64}}")
        elif kind == "uncertain":
            either = []
            if rule.get("threshold") is not None:
                p["threshold"], p["margin"] = float(rule["threshold"]), float(rule.get("margin", 0.1))
                either.append("abs(value - {threshold:Float64}) <= {margin:Float64}")
            if rule.get("unconfident"):
                either.append("JSONExtractRaw(details, 'confident') = 'false'")
            conds.append(" OR ".join(f"({c})" for c in either))
        else:
            p["q"], p["window_s"] = float(rule.get("quantile", 0.99)), int(float(rule.get("window_hours", 24)) * 3600)
            conds.append(
                "value > (SELECT quantile({q:Float64})(value) FROM {db}.scores WHERE tenant = {tenant:String} "
                "AND scorer = {scorer:String} AND scored_at <= {until:DateTime64(3)} "
                "AND scored_at > {until:DateTime64(3)} - toIntervalSecond({window_s:UInt32}))"
            )
        sql = (
            "SELECT trace_id, argMin(span_id, span_start_time) AS m_span, any(scorer) AS m_scorer, "
            "argMin(value, span_start_time) AS m_value, argMin(label, span_start_time) AS m_label, "
            "min(span_start_time) AS trace_start FROM {db}.scores FINAL WHERE tenant = {tenant:String} AND "
            + " AND ".join(f"({c})" for c in conds)
            + " GROUP BY trace_id"
        )
    elif kind == "disagreement":
        p["ignore"] = list(rule.get("ignore_labels") or [])
        pair = (
            "SELECT trace_id, span_id, scorer, label, value, span_start_time, scored_at FROM {db}.scores FINAL "
            "WHERE tenant = {tenant:String} AND scorer IN ({scorer:String}, {other:String}) "
            "AND label NOT IN {ignore:Array(String)}"
        )
        sql = (
            "SELECT a.trace_id AS trace_id, any(a.span_id) AS m_span, any(a.scorer) AS m_scorer, "
            "any(a.value) AS m_value, any(concat(a.label, ' vs ', b.label)) AS m_label, "
            "min(a.span_start_time) AS trace_start "
            f"FROM ({pair} AND scorer = {{scorer:String}}) AS a INNER JOIN ({pair} AND scorer = {{other:String}}) AS b "
            "ON a.trace_id = b.trace_id AND a.span_id = b.span_id WHERE a.label != b.label "
            "AND greatest(a.scored_at, b.scored_at) > {since:DateTime64(3)} "
            "AND greatest(a.scored_at, b.scored_at) <= {until:DateTime64(3)} "
            f"AND {not_queued('a.trace_id')} "
            "GROUP BY a.trace_id"
        )
    elif kind == "feedback":
        sql = (
            "SELECT trace_id, argMin(span_id, created_at) AS m_span, '' AS m_scorer, "
            "argMin(value, created_at) AS m_value, argMin(label, created_at) AS m_label, "
            "min(created_at) AS trace_start FROM {db}.feedback FINAL "
            "WHERE tenant = {tenant:String} AND negative = 1 AND source != 'review' "
            "AND updated_at > {since:DateTime64(3)} AND updated_at <= {until:DateTime64(3)} AND "
            + fresh
            + " GROUP BY trace_id"
        )
    elif kind == "control":
        sql = (
            "SELECT trace_id, '' AS m_span, '' AS m_scorer, CAST(NULL, 'Nullable(Float64)') AS m_value, '' AS m_label, "
            "min(span_start_time) AS trace_start FROM {db}.scores FINAL WHERE tenant = {tenant:String} "
            f"AND {scored} AND {fresh} GROUP BY trace_id HAVING countIf({_FAILURE}) = 0 "
            "AND trace_id NOT IN (SELECT trace_id FROM {db}.feedback FINAL WHERE tenant = {tenant:String} "
            "AND negative = 1 AND source != 'review')"
        )
    else:
        raise ValueError(f"unknown rule kind {kind!r}")
    return store._reader.rows(tenant, f"{sql} ORDER BY trace_start, trace_id LIMIT {{limit:UInt32}}", p)
