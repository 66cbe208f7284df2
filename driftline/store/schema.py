"""Versioned, idempotent migrations: the DDL of every Driftline table.

Each migration is a list of statements that are themselves idempotent (IF NOT EXISTS), so a
migration interrupted halfway is simply run again. `schema_migrations` records what ran.
The same DDL serves chDB and a ClickHouse server; cluster mode renders it for a ClickHouse cluster
by rule (store/cluster.py), so a migration is written once, for one node.
"""

from __future__ import annotations

from dataclasses import dataclass

from driftline.store.columns import INPUT_TEXT_EXPR, OUTPUT_TEXT_EXPR, SPAN_COLUMNS

__all__ = ["MIGRATIONS", "SCHEMA_MIGRATIONS", "TTL_TABLES", "Guarded", "Migration"]


@dataclass(frozen=True)
class Guarded:
    """A statement that is not idempotent by itself: it runs only while `when` (a query) returns
    a non-zero count."""

    sql: str
    when: str


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str | Guarded, ...]


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

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "spans, scores, review_items", (_SPANS, _SCORES, _REVIEW_ITEMS)),
    Migration(2, "scorer_state", (_SCORER_STATE,)),
    Migration(3, "message texts stored once: input_text / output_text as ALIAS columns", _TEXT_ALIASES),
    Migration(4, "feedback", (_FEEDBACK,)),
    Migration(5, "trace, session and user lookups: by_trace projection, bloom filters", _READ_INDEXES),
    Migration(6, "drift_state: the SLI job's last drift verdicts", (_DRIFT_STATE,)),
    Migration(
        8,
        "review queues: definitions, items, events, labels, datasets",
        (_REVIEW_QUEUES, _REVIEW_QUEUE_ITEMS, _REVIEW_EVENTS, _REVIEW_LABELS, _REVIEW_DATASETS),
    ),
    Migration(
        9, "judge_cache, judge_canary: LLM judges' verdict cache and canary baselines", (_JUDGE_CACHE, _JUDGE_CANARY)
    ),
)

# Tables whose TTL follows `retention_days`: (table, TTL expression column).
TTL_TABLES: tuple[tuple[str, str], ...] = (
    ("spans", "start_time"),
    ("scores", "span_start_time"),
    ("feedback", "created_at"),
    ("judge_cache", "created_at"),
)
