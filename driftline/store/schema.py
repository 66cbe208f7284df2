"""Versioned, idempotent migrations: the DDL of every Driftline table.

Each migration is a list of statements that are themselves idempotent (IF NOT EXISTS), so a
migration interrupted halfway is simply run again. `schema_migrations` records what ran.
The same DDL serves chDB and a ClickHouse server; cluster mode renders it for a ClickHouse cluster
by rule (store/cluster.py), so a migration is written once, for one node.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from driftline.store.columns import INPUT_TEXT_EXPR, OUTPUT_TEXT_EXPR, SPAN_COLUMNS

__all__ = [
    "FORCE_MERGED_TABLES",
    "FORCE_MERGE_AGE_S",
    "MIGRATIONS",
    "ROW_BLOCK",
    "ROW_BLOCK_HOURS",
    "SCHEMA_MIGRATIONS",
    "TTL_TABLES",
    "Guarded",
    "Migration",
    "PerDay",
]


@dataclass(frozen=True)
class Guarded:
    """A statement that is not idempotent by itself: it runs only while `when` (a query) returns
    a non-zero count."""

    sql: str
    when: str


@dataclass(frozen=True)
class PerDay:
    """A statement run once per day of data in `table` (each day a partition of it, named in
    `{day}` as 'YYYY-MM-DD'), so a backfill over a large table is a series of small INSERTs."""

    sql: str
    table: str


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str | Guarded | PerDay, ...]


def _span_columns_ddl() -> str:
    return ",\n    ".join(f"`{name}` {ch_type}" for name, ch_type, _ in SPAN_COLUMNS)


# What ran: the runner creates it before the first migration.
SCHEMA_MIGRATIONS = (
    "CREATE TABLE IF NOT EXISTS {db}.schema_migrations "
    "(version UInt32, name String, applied_at DateTime64(3, 'UTC')) "
    "ENGINE = ReplacingMergeTree ORDER BY version"
)

# Placeholders: {db} database, {ttl_days} retention.
_SPANS = f"""
CREATE TABLE IF NOT EXISTS {{db}}.spans (
    {_span_columns_ddl()},
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1
)
-- OTLP clients retry whole requests, so the same span can arrive twice: ReplacingMergeTree
-- keyed on (tenant, start_time, trace_id, span_id) collapses the copies; readers use FINAL.
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toDate(start_time)
ORDER BY (tenant, start_time, trace_id, span_id)
TTL toDateTime(start_time) + INTERVAL {{ttl_days}} DAY
"""

_SCORES = """
CREATE TABLE IF NOT EXISTS {db}.scores (
    tenant LowCardinality(String),
    trace_id String,
    span_id String,  -- '' for a trace-level score
    scorer LowCardinality(String),
    scorer_version LowCardinality(String),
    value Float64,
    label LowCardinality(String),
    explanation String CODEC(ZSTD(3)),
    service LowCardinality(String),
    operation LowCardinality(String),
    model LowCardinality(String),
    release LowCardinality(String),
    environment LowCardinality(String),
    span_start_time DateTime64(9, 'UTC'),
    scored_at DateTime64(3, 'UTC'),
    details String CODEC(ZSTD(3)),
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1
)
-- A re-run, a restart or a second replica writes the same key again: it replaces.
ENGINE = ReplacingMergeTree(scored_at)
PARTITION BY toDate(span_start_time)
ORDER BY (tenant, scorer, scorer_version, trace_id, span_id)
TTL toDateTime(span_start_time) + INTERVAL {ttl_days} DAY
"""

_REVIEW_ITEMS = """
CREATE TABLE IF NOT EXISTS {db}.review_items (
    tenant LowCardinality(String),
    queue LowCardinality(String),
    trace_id String,
    span_id String,
    reason String,
    scorer LowCardinality(String),
    score_value Nullable(Float64),
    status LowCardinality(String),  -- open, labeled, skipped
    label LowCardinality(String),
    notes String CODEC(ZSTD(3)),
    reviewer String,
    service LowCardinality(String),
    model LowCardinality(String),
    release LowCardinality(String),
    created_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (tenant, queue, trace_id, span_id)
"""

_SCORER_STATE = """
CREATE TABLE IF NOT EXISTS {db}.scorer_state (
    tenant LowCardinality(String),
    scorer LowCardinality(String),
    scorer_version LowCardinality(String),
    shard LowCardinality(String),  -- "index/count" of the replica that owns this watermark
    watermark DateTime64(3, 'UTC'),  -- spans ingested before it are scored (or not sampled)
    updated_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (tenant, scorer, scorer_version, shard)
"""

# Spans tables created before version 3 store input_text / output_text themselves. Their stored
# text becomes the fallback (old rows read exactly as before); the ALIAS columns take the names.
# A table created at version 1 today already has this layout, so both steps are no-ops there.
_TEXT_ALIASES = (
    Guarded(
        "ALTER TABLE {db}.spans RENAME COLUMN input_text TO input_text_fallback, "
        "RENAME COLUMN output_text TO output_text_fallback",
        "SELECT count() FROM system.columns WHERE database = '{db}' AND table = 'spans' "
        "AND name = 'input_text' AND default_kind = ''",
    ),
    f"ALTER TABLE {{db}}.spans ADD COLUMN IF NOT EXISTS input_text String ALIAS {INPUT_TEXT_EXPR}, "
    f"ADD COLUMN IF NOT EXISTS output_text String ALIAS {OUTPUT_TEXT_EXPR}",
)

# Feedback from end users, apps and external evaluators: the shape scores and review labels share
# (name, value, label, comment, source, author, version). The client's id is the key, so posting the
# same item again replaces it. No partition: a replacing key must never span two partitions.
_FEEDBACK = """
CREATE TABLE IF NOT EXISTS {db}.feedback (
    tenant LowCardinality(String),
    id String,
    trace_id String,
    span_id String,  -- '' for feedback on the whole trace
    name LowCardinality(String),
    value Nullable(Float64),
    label LowCardinality(String),
    comment String CODEC(ZSTD(3)),
    source LowCardinality(String),
    author String,
    version LowCardinality(String),
    negative UInt8,
    created_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC'),
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (tenant, id)
TTL toDateTime(created_at) + INTERVAL {ttl_days} DAY
"""

# Reads the API makes by id: a trace by trace_id looks up its time range in a small projection
# sorted by (tenant, trace_id), then reads only those granules of the table; sessions and users
# by bloom filters. MATERIALIZE builds them for existing parts in the background (a mutation).
_READ_INDEXES = (
    "ALTER TABLE {db}.spans MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild'",
    "ALTER TABLE {db}.spans ADD PROJECTION IF NOT EXISTS by_trace "
    "(SELECT tenant, trace_id, start_time ORDER BY tenant, trace_id)",
    "ALTER TABLE {db}.spans ADD INDEX IF NOT EXISTS idx_session_id session_id TYPE bloom_filter(0.01) GRANULARITY 1",
    "ALTER TABLE {db}.spans ADD INDEX IF NOT EXISTS idx_user_id user_id TYPE bloom_filter(0.01) GRANULARITY 1",
    "ALTER TABLE {db}.spans MATERIALIZE PROJECTION by_trace",
    "ALTER TABLE {db}.spans MATERIALIZE INDEX idx_session_id",
    "ALTER TABLE {db}.spans MATERIALIZE INDEX idx_user_id",
)

# The drift tests' verdicts from the SLI job's last run per tenant, so that a process without the
# job (`driftline api` as its own service) can show which tests fire now. Each run writes every
# verdict with its computed_at; a reader keeps the tenant's latest run.
_DRIFT_STATE = """
CREATE TABLE IF NOT EXISTS {db}.drift_state (
    tenant LowCardinality(String),
    sli LowCardinality(String),
    service LowCardinality(String),
    model LowCardinality(String),
    release LowCardinality(String),
    environment LowCardinality(String),
    detected UInt8,
    p_value Float64,
    computed_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(computed_at)
ORDER BY (tenant, sli, service, model, release, environment)
TTL toDateTime(computed_at) + INTERVAL 7 DAY
"""

# One row per (tenant, hour, trace) holding what the trace list needs of the spans of that hour and
# of their scores, kept by materialized views on every insert, so lists, sorts and filters read this
# small table instead of the spans. Every aggregate is idempotent or checkable, because OTLP retries
# send the same span twice and scorers write the same score again (both tables are
# ReplacingMergeTree, read with FINAL):
# - sets (groupUniqArrayArray) and min/max tuples are idempotent: the root span, first session, etc.;
# - the plain sums (cost, tokens) count a retried span twice, so `span_rows` counts rows and
#   `span_keys` the distinct (span_id, start_time) keys: where they differ, readers take the
#   exact figures from `spans` (per span key the max, i.e. the span once);
# - scores likewise: `score_keys` (span, scorer, version) against `score_values` (the same with
#   value and label); where they differ a score was replaced, and readers take the latest per key
#   from `scores` (key, scored_at, scorer, value, label).
# The hour is the span's (the score's span's): rows of one trace in two hours are read together.
# Feedback is not here: that table is small and is read directly.
_NO_TIME = "toDateTime64('2262-01-01 00:00:00', 9, 'UTC')"  # sorts after any span: "none yet"
_TS = "DateTime64(9, 'UTC')"


def _summary_table(name: str, settings: str) -> str:
    return f"""
CREATE TABLE IF NOT EXISTS {{db}}.{name} (
    tenant LowCardinality(String),
    hour DateTime('UTC'),
    trace_id String,
    root SimpleAggregateFunction(min, Tuple(child UInt8, start {_TS}, span_id String, duration_ms Float64,
        service String, release String, environment String, name String))
        DEFAULT (1, {_NO_TIME}, '', 0, '', '', '', ''),
    span_rows SimpleAggregateFunction(sum, UInt64),
    span_keys SimpleAggregateFunction(groupUniqArrayArray, Array(UInt64)),
    error_keys SimpleAggregateFunction(groupUniqArrayArray, Array(UInt64)),
    cost SimpleAggregateFunction(sum, Float64),
    priced SimpleAggregateFunction(sum, UInt64),
    in_tokens SimpleAggregateFunction(sum, Int64),
    out_tokens SimpleAggregateFunction(sum, Int64),
    -- per span key: (key, cost, priced, input tokens, output tokens); max per key = the span once
    spans SimpleAggregateFunction(maxMap, Tuple(Array(UInt64), Array(Float64), Array(UInt8), Array(Int64),
        Array(Int64))),
    first_span SimpleAggregateFunction(min, Tuple({_TS}, String, String)) DEFAULT ({_NO_TIME}, '', ''),
    ended SimpleAggregateFunction(max, {_TS}),
    error SimpleAggregateFunction(max, UInt8),
    models SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    services SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    releases SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    environments SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    operations SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    session_ids SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    user_ids SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    -- (none, start, span_id, value): the earliest span naming one
    session SimpleAggregateFunction(min, Tuple(UInt8, {_TS}, String, String)) DEFAULT (1, {_NO_TIME}, '', ''),
    user SimpleAggregateFunction(min, Tuple(UInt8, {_TS}, String, String)) DEFAULT (1, {_NO_TIME}, '', ''),
    session_last SimpleAggregateFunction(max, {_TS}),
    input_preview SimpleAggregateFunction(min, Tuple(UInt8, {_TS}, String, String))
        DEFAULT (1, {_NO_TIME}, '', ''),
    output_preview SimpleAggregateFunction(max, Tuple(UInt8, {_TS}, String)),
    scores SimpleAggregateFunction(groupUniqArrayArray,
        Array(Tuple(UInt64, DateTime64(3, 'UTC'), String, Float64, String))),
    score_keys SimpleAggregateFunction(groupUniqArrayArray, Array(UInt64)),
    score_values SimpleAggregateFunction(groupUniqArrayArray, Array(UInt64)),
    score_max SimpleAggregateFunction(maxMap, Tuple(Array(String), Array(Float64))),
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_session_ids session_ids TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_user_ids user_ids TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = AggregatingMergeTree
PARTITION BY toDate(hour)
ORDER BY (tenant, hour, trace_id)
TTL hour + INTERVAL {{ttl_days}} DAY
{settings}
"""


_TRACE_SUMMARIES = _summary_table(
    "trace_summaries",
    "-- A page's traces are read by id from all over the week: small granules read little around each.\n"
    "SETTINGS index_granularity = 1024",
)

_FROM_SPANS = """
SELECT tenant, toStartOfHour(start_time) AS hour, trace_id,
    min((parent_span_id != '', start_time, span_id, duration_ms, toString(service), toString(release),
        toString(environment), name)) AS root,
    count() AS span_rows,
    groupUniqArray(sipHash64(span_id, start_time)) AS span_keys,
    groupUniqArrayIf(sipHash64(span_id, start_time), status_code = 'error') AS error_keys,
    sum(ifNull(cost_usd, 0)) AS cost,
    countIf(cost_usd IS NOT NULL) AS priced,
    sum(ifNull(input_tokens, 0)) AS in_tokens,
    sum(ifNull(output_tokens, 0)) AS out_tokens,
    maxMap(([sipHash64(span_id, start_time)], [ifNull(cost_usd, 0)], [toUInt8(cost_usd IS NOT NULL)],
        [ifNull(input_tokens, 0)], [ifNull(output_tokens, 0)])) AS spans,
    min((start_time, span_id, toString(service))) AS first_span,
    max(end_time) AS ended,
    max(status_code = 'error') AS error,
    groupUniqArrayArray(arrayFilter(m -> m != '', [toString(request_model), toString(response_model)])) AS models,
    groupUniqArray(toString(service)) AS services,
    groupUniqArray(toString(release)) AS releases,
    groupUniqArray(toString(environment)) AS environments,
    groupUniqArray(toString(operation)) AS operations,
    groupUniqArrayIf(session_id, session_id != '') AS session_ids,
    groupUniqArrayIf(user_id, user_id != '') AS user_ids,
    min((session_id = '', start_time, span_id, session_id)) AS session,
    min((user_id = '', start_time, span_id, user_id)) AS user,
    maxIf(start_time, session_id != '') AS session_last,
    min((input_text = '', start_time, span_id, substringUTF8(input_text, 1, 200))) AS input_preview,
    max((output_text != '', end_time, substringUTF8(output_text, 1, 200))) AS output_preview
FROM {db}.spans"""

_FROM_SCORES = """
SELECT tenant, toStartOfHour(span_start_time) AS hour, trace_id,
    groupUniqArray((sipHash64(span_id, scorer, scorer_version), scored_at, toString(scorer), value, toString(label)))
        AS scores,
    groupUniqArray(sipHash64(span_id, scorer, scorer_version)) AS score_keys,
    groupUniqArray(sipHash64(span_id, scorer, scorer_version, value, label)) AS score_values,
    maxMap(([toString(scorer)], [value])) AS score_max
FROM {db}.scores"""


def _columns(select: str) -> str:
    """The column list an INSERT ... SELECT of `select` fills (its AS names, in order)."""
    names = ["tenant", "hour", "trace_id", *re.findall(r"\bAS (\w+)(?=,|\n)", select.split("trace_id,", 1)[1])]
    return ", ".join(names)


_GROUP = " GROUP BY tenant, hour, trace_id"
# Views first, then the backfill: a span written in between is counted by both, which the
# key sets above detect (readers then take the exact figures), so nothing is counted twice.
_SUMMARIES = (
    _TRACE_SUMMARIES,
    f"CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.trace_summaries_spans TO {{db}}.trace_summaries "
    f"AS{_FROM_SPANS}{_GROUP}",
    f"CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.trace_summaries_scores TO {{db}}.trace_summaries "
    f"AS{_FROM_SCORES}{_GROUP}",
    PerDay(
        f"INSERT INTO {{db}}.trace_summaries ({_columns(_FROM_SPANS)}){_FROM_SPANS} "
        "WHERE toDate(start_time) = toDate('{day}')" + _GROUP,
        "spans",
    ),
    PerDay(
        f"INSERT INTO {{db}}.trace_summaries ({_columns(_FROM_SCORES)}){_FROM_SCORES} "
        "WHERE toDate(span_start_time) = toDate('{day}')" + _GROUP,
        "scores",
    ),
    # One part per day, each key once: readers' FINAL has nothing left to merge in the old days.
    PerDay("OPTIMIZE TABLE {db}.trace_summaries PARTITION '{day}' FINAL", "trace_summaries"),
)

# trace_rows (migration 14): trace_summaries again, in granules of 128 rows compressed in blocks of
# a few KB. A list page reads its traces' rows by (hour, trace_id) from all over the week; each is a
# granule of its own, and a granule of 1024 rows (about 2.5 MB of columns) in blocks of at least
# 64 KB made those reads cost as much as a scan of a few hundred thousand rows. The old table's
# rows are copied as they are (already aggregated), then the old table and its views go.
_TRACE_ROWS = _summary_table(
    "trace_rows",
    "SETTINGS index_granularity = 128, min_compress_block_size = 4096, max_compress_block_size = 65536",
)
_ROWS = (
    _TRACE_ROWS,
    f"CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.trace_rows_spans TO {{db}}.trace_rows AS{_FROM_SPANS}{_GROUP}",
    f"CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.trace_rows_scores TO {{db}}.trace_rows AS{_FROM_SCORES}{_GROUP}",
    # Views first, then the copy: a span written in between is counted in both, which the key sets
    # detect, as for migration 7's backfill.
    PerDay(
        "INSERT INTO {db}.trace_rows SELECT * FROM {db}.trace_summaries WHERE toDate(hour) = toDate('{day}')",
        "trace_summaries",
    ),
    PerDay("OPTIMIZE TABLE {db}.trace_rows PARTITION '{day}' FINAL", "trace_rows"),
    "DROP VIEW IF EXISTS {db}.trace_summaries_spans",
    "DROP VIEW IF EXISTS {db}.trace_summaries_scores",
    "DROP TABLE IF EXISTS {db}.trace_summaries",
)

# The sessions list (migration 16): a page of sessions finds its traces by the rows' earliest
# session, all over the range; this projection keeps those rows together, with what the list sums.
# A merge rebuilds it from the merged rows.
_BY_SESSION = (
    "ALTER TABLE {db}.trace_rows MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild'",
    "ALTER TABLE {db}.trace_rows ADD PROJECTION IF NOT EXISTS by_session (SELECT tenant, hour, trace_id, root, "
    "session, first_span, ended, user, error_keys, spans ORDER BY tenant, session.4, hour)",
    "ALTER TABLE {db}.trace_rows MATERIALIZE PROJECTION by_session",
)

# The worst hallucination score, the list's headline figure (migration 17): each row's highest
# hallucination score of any version, kept beside `scores` so that a sort by it reads one number
# per row (score_max's hallucination entry is the same figure, read from a tuple of arrays per row).
# Computed from the row's `scores` on insert (the views write those), then max on merge, as
# `scores` is unioned. NULL: no hallucination score.
_HALLUCINATION_VALUES = "arrayMap(e -> e.4, arrayFilter(e -> e.3 = 'hallucination', scores))"
_HALLUCINATION_MAX = (
    "ALTER TABLE {db}.trace_rows "
    "ADD COLUMN IF NOT EXISTS hallucination_max SimpleAggregateFunction(max, Nullable(Float64)) "
    f"MATERIALIZED if(empty({_HALLUCINATION_VALUES}), NULL, arrayMax({_HALLUCINATION_VALUES}))",
    # Existing parts: until the mutation has written them, a read computes it from `scores`.
    "ALTER TABLE {db}.trace_rows MATERIALIZE COLUMN hallucination_max",
)

# Closed days merged by the engine (migration 19). The reads skip FINAL on a day held by one part
# (queries/_summary.py `merged`), and a trace's spans are then one granule; but the engine's merge
# selector leaves a day in several parts of similar size for good (8 on a 10M-span week). With these
# settings it merges a day into one part once every part of it is an hour old: a day an hour after
# its last insert, the current day never while spans keep arriving. A late score reopens its day
# for another hour. Only the day-partitioned tables the reads use FINAL on. The merge costs about
# 14 µs of CPU per span of the day, once (a day of 1.43M spans: spans 10.9 s, trace_rows 8.1 s,
# scores 0.6 s, trace_index 0.1 s on one core); a day bigger than one merge may write
# (max_bytes_to_merge_at_max_space_in_pool) is left to the ordinary merges.
FORCE_MERGE_AGE_S: Final = 3600
FORCE_MERGED_TABLES: Final = ("spans", "scores", "trace_rows", "trace_index")
_MERGE_CLOSED_DAYS = tuple(
    f"ALTER TABLE {{db}}.{table} MODIFY SETTING min_age_to_force_merge_seconds = {FORCE_MERGE_AGE_S}, "
    "min_age_to_force_merge_on_partition_only = 1"
    for table in FORCE_MERGED_TABLES
)

# Review queues (migration 8). The queue definitions a tenant made or changed through the API (the
# configured ones are defaults every tenant has); `deleted` hides a configured queue too.
_REVIEW_QUEUES = """
CREATE TABLE IF NOT EXISTS {db}.review_queues (
    tenant LowCardinality(String),
    name String,
    definition String CODEC(ZSTD(3)),  -- the queue as JSON (driftline/review/models.py QueueDefinition)
    deleted UInt8,
    updated_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (tenant, name)
"""

# One item per trace per queue: the key is (tenant, queue, trace_id), so a re-run of the filling job
# or a second "add" of the same trace replaces instead of duplicating. Supersedes `review_items`
# (migration 1, never written), which is left in place for existing stores.
_REVIEW_QUEUE_ITEMS = """
CREATE TABLE IF NOT EXISTS {db}.review_queue_items (
    tenant LowCardinality(String),
    queue String,
    trace_id String,
    span_id String,  -- the span that sent the trace here ('' for the whole trace)
    rule LowCardinality(String),  -- the rule's kind, or 'manual'
    reason String,
    scorer LowCardinality(String),
    score_value Nullable(Float64),
    score_label LowCardinality(String),
    service LowCardinality(String),
    release LowCardinality(String),
    trace_start DateTime64(3, 'UTC'),
    added_by String,  -- '' for the filling job, else the reviewer who added it
    created_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(created_at)
ORDER BY (tenant, queue, trace_id)
"""

# The workflow's events, append only: claim (a lease until expires_at), release, skip. Who holds an
# item is a fold over these and the labels (driftline/review/workflow.py), the same on every replica.
_REVIEW_EVENTS = """
CREATE TABLE IF NOT EXISTS {db}.review_events (
    tenant LowCardinality(String),
    queue String,
    trace_id String,
    event_id String,
    kind LowCardinality(String),
    reviewer String,
    at DateTime64(6, 'UTC'),
    expires_at DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(at)
ORDER BY (tenant, queue, trace_id, event_id)
"""

# A reviewer's label on an item (kind 'label'), or the adjudicator's verdict (kind 'adjudication');
# labelling again replaces the reviewer's own label.
_REVIEW_LABELS = """
CREATE TABLE IF NOT EXISTS {db}.review_labels (
    tenant LowCardinality(String),
    queue String,
    trace_id String,
    kind LowCardinality(String),
    reviewer String,
    fields String CODEC(ZSTD(3)),  -- JSON object: field name -> value
    note String CODEC(ZSTD(3)),
    corrected_answer String CODEC(ZSTD(3)),
    labeled_at DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(labeled_at)
ORDER BY (tenant, queue, trace_id, kind, reviewer)
"""

# Golden sets: labeled items copied into named datasets (one JSON record per queue and trace).
_REVIEW_DATASETS = """
CREATE TABLE IF NOT EXISTS {db}.review_datasets (
    tenant LowCardinality(String),
    dataset String,
    queue String,
    trace_id String,
    record String CODEC(ZSTD(3)),
    added_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(added_at)
ORDER BY (tenant, dataset, queue, trace_id)
"""

# LLM judges (scorers/judge_custom.py). The cache holds each verdict under the judge's version and a
# hash of exactly what it was asked (the rendered prompt), so a re-run, a backfill or another
# replica asks the endpoint nothing it has already answered; it expires with the scores.
_JUDGE_CACHE = """
CREATE TABLE IF NOT EXISTS {db}.judge_cache (
    tenant LowCardinality(String),
    judge LowCardinality(String),
    judge_version LowCardinality(String),
    input_hash String,  -- sha256 of the rendered prompt
    value Float64,
    label LowCardinality(String),
    reasoning String CODEC(ZSTD(3)),
    created_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(created_at)
ORDER BY (tenant, judge, judge_version, input_hash)
TTL toDateTime(created_at) + INTERVAL {ttl_days} DAY
"""

# A judge's canary verdicts: `kind` 'baseline' is pinned by the first run of a judge version and
# never replaced (the canary job writes it only where none exists); 'latest' is replaced by every
# run. No TTL: a baseline is kept as long as its judge version exists.
_JUDGE_CANARY = """
CREATE TABLE IF NOT EXISTS {db}.judge_canary (
    tenant LowCardinality(String),
    judge LowCardinality(String),
    judge_version LowCardinality(String),
    kind LowCardinality(String),  -- baseline | latest
    item_id String,
    label LowCardinality(String),
    value Float64,
    reasoning String CODEC(ZSTD(3)),
    run_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(run_at)
ORDER BY (tenant, judge, judge_version, kind, item_id)
"""

# LLM judges defined through the API (scorers/judge_book.py), per tenant: the definition as JSON
# (driftline/judge_config.py ApiJudge, without its key) and, apart, the endpoint's key, which is
# never read back to a client. `deleted` keeps a removed judge's name from coming back.
_JUDGE_DEFINITIONS = """
CREATE TABLE IF NOT EXISTS {db}.judge_definitions (
    tenant LowCardinality(String),
    name String,
    definition String CODEC(ZSTD(3)),
    api_key String,
    deleted UInt8,
    updated_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (tenant, name)
"""

# Where a trace's spans are (migration 11): one row per (tenant, day, trace) with the first and last
# span start, sorted by trace id in small granules, kept by a view on spans. A trace by id reads one
# small granule per part here, then only the spans table's granules of that time range (its primary
# key), instead of the by_trace projection's 8192-row granule in every part of the spans table.
_TRACE_INDEX = """
CREATE TABLE IF NOT EXISTS {db}.trace_index (
    tenant LowCardinality(String),
    day Date,
    trace_id String,
    first_start SimpleAggregateFunction(min, DateTime64(9, 'UTC')),
    last_start SimpleAggregateFunction(max, DateTime64(9, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY day
ORDER BY (tenant, trace_id, day)
TTL day + INTERVAL {ttl_days} DAY
SETTINGS index_granularity = 256
"""
_FROM_SPANS_INDEX = """
SELECT tenant, toDate(start_time) AS day, trace_id, min(start_time) AS first_start, max(start_time) AS last_start
FROM {db}.spans"""
_INDEX_GROUP = " GROUP BY tenant, day, trace_id"
# The view first, then the backfill: a span counted by both changes neither min nor max.
_TRACE_LOOKUP = (
    _TRACE_INDEX,
    f"CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.trace_index_spans TO {{db}}.trace_index AS{_FROM_SPANS_INDEX}"
    f"{_INDEX_GROUP}",
    PerDay(
        "INSERT INTO {db}.trace_index (tenant, day, trace_id, first_start, last_start)"
        f"{_FROM_SPANS_INDEX} WHERE toDate(start_time) = toDate('{{day}}')" + _INDEX_GROUP,
        "spans",
    ),
)

# No read uses the by_trace projection since trace_index finds a trace's span range (migration 11):
# it holds only (tenant, trace_id, start_time), so no other read can be served from it, yet every
# insert into spans sorted and wrote it, and merges rebuilt it.
_NO_BY_TRACE = ("ALTER TABLE {db}.spans DROP PROJECTION IF EXISTS by_trace",)

# Spans and scores in granules of 1024 rows compressed in blocks of a few KB (migration 18). A trace
# by id reads one trace's spans (a few rows) and scores: a granule of each column, decompressed
# whole. The tables' default granules of ~6,000 (spans) and 8,192 (scores) rows, in blocks of up to
# 1 MB, made that read decompress megabytes of message text for a few rows. Granule size is fixed
# when a table is created, so each table is rebuilt beside itself and swapped in (_swapped_in) while
# it still has the old granules. A row copied twice is one row: the tables replace by key, and
# readers use FINAL. The views on `spans` and `scores` (trace_rows, trace_index) follow the name, so
# they see every insert into the new table.
_GRANULE_ROWS = "index_granularity = 1024"
_SMALL_GRANULES = f"{_GRANULE_ROWS}, min_compress_block_size = 4096, max_compress_block_size = 65536"


def _with_small_granules(ddl: str, table: str, new: str) -> str:
    out = ddl.replace(f"{{db}}.{table} (", f"{{db}}.{new} (", 1).rstrip() + f"\nSETTINGS {_SMALL_GRANULES}\n"
    assert f"{new} (" in out, table
    return out


def _stored_columns(ddl: str) -> list[str]:
    """The columns a CREATE TABLE stores (not ALIAS or MATERIALIZED, not INDEX or PROJECTION lines).
    Its column list is split at the commas outside parentheses and quotes: a type may run over lines."""
    body = re.sub(r"--[^\n]*", "", ddl[ddl.index("(") + 1 :])
    items, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(body):
        if ch == "'":
            quoted = not quoted
        elif quoted:
            continue
        elif ch == "(":
            depth += 1
        elif ch == ")" and depth == 0:  # the end of the column list
            items.append(body[start:i])
            break
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(body[start:i])
            start = i + 1
    names = []
    for item in items:
        m = re.match(r"`?(\w+)`?\s+(.*)", item.strip(), re.S)
        if m and m.group(1) not in ("INDEX", "PROJECTION") and not re.search(r"\b(ALIAS|MATERIALIZED)\b", m.group(2)):
            names.append(m.group(1))
    return names


def _swapped_in(
    table: str, new: str, ddl: str, day_column: str, still_old: str, prepare: tuple[str, ...] = ()
) -> tuple[str | Guarded | PerDay, ...]:
    """`table` rebuilt as `new` (created by `ddl`, then `prepare`) and swapped in:
    - a view copies what is written meanwhile, so nothing written during the copy is missed;
    - the rows are copied day by day, by column name (an old table's columns may be in another order);
    - EXCHANGE swaps the two names atomically while `still_old` (a count query) says the table that
      stores the rows is the old one, so a migration run again after the swap does not swap back;
      the views on other tables follow the names."""
    cols = ", ".join(f"`{c}`" for c in _stored_columns(ddl))
    copy = f"SELECT {cols} FROM {{db}}.{table}"
    return (
        ddl,
        *prepare,
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.{new}_copy TO {{db}}.{new} AS {copy}",
        PerDay(f"INSERT INTO {{db}}.{new} ({cols}) {copy} WHERE toDate({day_column}) = toDate('{{day}}')", table),
        Guarded(f"EXCHANGE TABLES {{db}}.{table} AND {{db}}.{new}", still_old),
        f"DROP VIEW IF EXISTS {{db}}.{new}_copy",
        f"DROP TABLE IF EXISTS {{db}}.{new}",
    )


def _rebuilt(table: str, ddl: str, day_column: str) -> tuple[str | Guarded | PerDay, ...]:
    # Named for this migration, not `<table>_next`: on a cluster a replicated table's Keeper path
    # holds the name it was created under, and the rebuilt table keeps that path after the swap.
    new = f"{table}_v18"
    # The table that stores the rows (its local table on a cluster) still has the old granules.
    still_old = (
        "SELECT count() FROM system.tables WHERE database = '{db}' "
        f"AND name IN ('{table}', '{table}_local') AND engine LIKE '%MergeTree' "
        f"AND position(engine_full, '{_GRANULE_ROWS}') = 0"
    )
    return _swapped_in(table, new, _with_small_granules(ddl, table, new), day_column, still_old)


# The spans table as migrations 1, 3 and 5 left it (its projection dropped by 15): migration 5's
# indexes beside migration 1's.
_TRACE_ID_INDEX = "    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1\n"
_ADD_INDEX = " ADD INDEX IF NOT EXISTS "
assert _TRACE_ID_INDEX in _SPANS
_SPANS_NOW = _SPANS.replace(
    _TRACE_ID_INDEX,
    ",\n".join(
        [
            _TRACE_ID_INDEX.rstrip("\n"),
            *(f"    INDEX {s.split(_ADD_INDEX, 1)[1]}" for s in _READ_INDEXES if _ADD_INDEX in s),
        ]
    )
    + "\n",
)
_SMALL_GRANULE_TABLES = (
    *_rebuilt("spans", _SPANS_NOW, "start_time"),
    # The rebuilt table has the text columns' ALIAS of today (a message's content must be a string,
    # as the normalizer decides: store/columns.py); on a cluster the Distributed front has its own.
    f"ALTER TABLE {{db}}.spans MODIFY COLUMN input_text String ALIAS {INPUT_TEXT_EXPR}, "
    f"MODIFY COLUMN output_text String ALIAS {OUTPUT_TEXT_EXPR}",
    *_rebuilt("scores", _SCORES, "span_start_time"),
)

# trace_rows in blocks of 6 hours (migration 20). The reads take FINAL on a partition held by more
# than one part (queries/_summary.py): a day partition kept the whole current day there, so a page
# merged every part of up to 24 hours of rows at each read (on a 10M-span week, ~230,000 rows in 12
# parts at 16:00: 84 ms of the sort by cost's 283 on one core, where the same day in one part took 19).
# A block closes when its 6 hours are over, and migration 19's settings merge it an hour after its
# last insert: the current block and the one before it are all FINAL reads, at most 7 hours of rows.
# A trace's rows are per (hour, trace), so no key is in two partitions. An INSERT into spans
# writes its days' blocks here through the views: 4 a day, so store/partitions.py keeps an INSERT
# within 24 days. Rebuilt beside the table and swapped in as migration 18 did; the views on spans
# and scores write into the table by name, so into the new one after the swap.
ROW_BLOCK_HOURS: Final = 6
ROW_BLOCK: Final = f"toStartOfInterval(hour, toIntervalHour({ROW_BLOCK_HOURS}))"  # as the engine writes it


def _trace_rows_now(name: str) -> str:
    """trace_rows as migrations 14, 17 and 19 left it (16's projection is added after), named `name`,
    in blocks of ROW_BLOCK_HOURS."""
    settings = (
        "SETTINGS index_granularity = 128, min_compress_block_size = 4096, max_compress_block_size = 65536, "
        "deduplicate_merge_projection_mode = 'rebuild', "
        f"min_age_to_force_merge_seconds = {FORCE_MERGE_AGE_S}, min_age_to_force_merge_on_partition_only = 1"
    )
    ddl = _summary_table(name, settings)
    column = _HALLUCINATION_MAX[0].split("ADD COLUMN IF NOT EXISTS ", 1)[1]
    index = "    INDEX idx_trace_id "
    out = ddl.replace(index, f"    {column},\n{index}", 1).replace(
        "PARTITION BY toDate(hour)", f"PARTITION BY {ROW_BLOCK}", 1
    )
    assert column in out and ROW_BLOCK in out, name
    return out


_ROWS_NEW = "trace_rows_v20"
# The table that stores the rows (its local table on a cluster) is still partitioned by day.
_ROWS_BY_DAY = (
    "SELECT count() FROM system.tables WHERE database = '{db}' AND name IN ('trace_rows', 'trace_rows_local') "
    "AND engine LIKE '%MergeTree' AND partition_key = 'toDate(hour)'"
)
_ROW_BLOCKS: tuple[str | Guarded | PerDay, ...] = (
    # Run again after a crash before the swap, the copy starts over (a row copied twice would count
    # twice); after the swap this name holds the old table, dropped at the end.
    f"DROP VIEW IF EXISTS {{db}}.{_ROWS_NEW}_copy",
    Guarded(f"DROP TABLE IF EXISTS {{db}}.{_ROWS_NEW}", _ROWS_BY_DAY),
    # A row the views write while the days are copied may be copied twice: its key's sets then say
    # it was counted twice, and readers take that trace's exact figures (as for migration 14's copy).
    *_swapped_in(
        "trace_rows",
        _ROWS_NEW,
        _trace_rows_now(_ROWS_NEW),
        "hour",
        _ROWS_BY_DAY,
        prepare=(_BY_SESSION[1].replace("{db}.trace_rows ", f"{{db}}.{_ROWS_NEW} ", 1),),
    ),
    # Each block copied is one part of an INSERT (merge level 0), which the sessions list does not
    # take as merged (queries/sessions.py) and no merge would ever touch: merged once here.
    *(
        PerDay(f"OPTIMIZE TABLE {{db}}.trace_rows PARTITION '{{day}} {h:02}:00:00' FINAL", "trace_rows")
        for h in range(0, 24, ROW_BLOCK_HOURS)
    ),
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "spans, scores, review_items", (_SPANS, _SCORES, _REVIEW_ITEMS)),
    Migration(2, "scorer_state", (_SCORER_STATE,)),
    Migration(3, "message texts stored once: input_text / output_text as ALIAS columns", _TEXT_ALIASES),
    Migration(4, "feedback", (_FEEDBACK,)),
    Migration(5, "trace, session and user lookups: by_trace projection, bloom filters", _READ_INDEXES),
    Migration(6, "drift_state: the SLI job's last drift verdicts", (_DRIFT_STATE,)),
    Migration(7, "trace_summaries: per-trace list rows kept by materialized views, backfilled", _SUMMARIES),
    Migration(
        8,
        "review queues: definitions, items, events, labels, datasets",
        (_REVIEW_QUEUES, _REVIEW_QUEUE_ITEMS, _REVIEW_EVENTS, _REVIEW_LABELS, _REVIEW_DATASETS),
    ),
    Migration(
        9, "judge_cache, judge_canary: LLM judges' verdict cache and canary baselines", (_JUDGE_CACHE, _JUDGE_CANARY)
    ),
    Migration(11, "trace_index: each trace's span start range by trace id, kept by a view, backfilled", _TRACE_LOOKUP),
    Migration(12, "judge_definitions: LLM judges defined through the API", (_JUDGE_DEFINITIONS,)),
    Migration(14, "trace_rows: trace_summaries in small granules and compression blocks, copied", _ROWS),
    Migration(15, "spans: the by_trace projection dropped (trace_index replaced it)", _NO_BY_TRACE),
    Migration(16, "trace_rows: by_session projection for the sessions list", _BY_SESSION),
    Migration(17, "trace_rows: each row's highest hallucination score", _HALLUCINATION_MAX),
    Migration(18, "spans, scores: rebuilt in small granules and compression blocks", _SMALL_GRANULE_TABLES),
    Migration(19, "spans, scores, trace_rows, trace_index: each closed day merged into one part", _MERGE_CLOSED_DAYS),
    Migration(20, "trace_rows: partitioned in blocks of 6 hours, rebuilt", _ROW_BLOCKS),
)

# Tables whose TTL follows `retention_days`: (table, TTL expression column).
TTL_TABLES: tuple[tuple[str, str], ...] = (
    ("spans", "start_time"),
    ("scores", "span_start_time"),
    ("feedback", "created_at"),
    ("judge_cache", "created_at"),
    ("trace_rows", "hour"),
    ("trace_index", "day"),
)
