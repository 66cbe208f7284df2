-- connect: the client creates the database on the node it reaches
CREATE DATABASE IF NOT EXISTS driftline;

-- before the migrations
CREATE TABLE IF NOT EXISTS driftline.schema_migrations (version UInt32, name String, applied_at DateTime64(3, 'UTC')) ENGINE = ReplacingMergeTree ORDER BY version;

-- migration 1: spans, scores, review_items
CREATE TABLE IF NOT EXISTS driftline.spans (
    `tenant` LowCardinality(String),
    `trace_id` String,
    `span_id` String,
    `parent_span_id` String,
    `start_time` DateTime64(9, 'UTC'),
    `end_time` DateTime64(9, 'UTC'),
    `duration_ms` Float64,
    `name` String,
    `kind` LowCardinality(String),
    `status_code` LowCardinality(String),
    `status_message` String CODEC(ZSTD(3)),
    `service` LowCardinality(String),
    `release` LowCardinality(String),
    `environment` LowCardinality(String),
    `scope_name` LowCardinality(String),
    `operation` LowCardinality(String),
    `provider` LowCardinality(String),
    `request_model` LowCardinality(String),
    `response_model` LowCardinality(String),
    `input_tokens` Nullable(Int64),
    `output_tokens` Nullable(Int64),
    `total_tokens` Nullable(Int64),
    `cache_read_tokens` Nullable(Int64),
    `cache_creation_tokens` Nullable(Int64),
    `reasoning_tokens` Nullable(Int64),
    `cost_usd` Nullable(Float64),
    `cost_source` LowCardinality(String),
    `input_messages` String CODEC(ZSTD(3)),
    `output_messages` String CODEC(ZSTD(3)),
    `input_text_fallback` String CODEC(ZSTD(3)),
    `output_text_fallback` String CODEC(ZSTD(3)),
    `input_text` String ALIAS if(input_text_fallback != '', input_text_fallback, JSONExtractString(arrayLast(m -> JSONExtractString(m, 'role') IN ('user') AND JSONExtractString(m, 'content') != '', JSONExtractArrayRaw(input_messages)), 'content')),
    `output_text` String ALIAS if(output_text_fallback != '', output_text_fallback, JSONExtractString(arrayLast(m -> JSONExtractString(m, 'role') IN ('assistant', 'model') AND JSONExtractString(m, 'content') != '', JSONExtractArrayRaw(output_messages)), 'content')),
    `system_prompt` String CODEC(ZSTD(3)),
    `tool_calls` String CODEC(ZSTD(3)),
    `tool_name` LowCardinality(String),
    `tool_call_id` String,
    `tool_arguments` String CODEC(ZSTD(3)),
    `tool_result` String CODEC(ZSTD(3)),
    `tool_error` String CODEC(ZSTD(3)),
    `retrieved_documents` String CODEC(ZSTD(3)),
    `finish_reason` LowCardinality(String),
    `error_type` LowCardinality(String),
    `user_id` String,
    `session_id` String,
    `conversation_id` String,
    `agent_name` LowCardinality(String),
    `ttft_ms` Nullable(Float64),
    `events` String CODEC(ZSTD(3)),
    `attributes` Map(String, String) CODEC(ZSTD(3)),
    `resource_attributes` Map(String, String) CODEC(ZSTD(3)),
    `ingested_at` DateTime64(3, 'UTC'),
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toDate(start_time)
ORDER BY (tenant, start_time, trace_id, span_id)
TTL toDateTime(start_time) + INTERVAL 30 DAY;

-- migration 1: spans, scores, review_items
CREATE TABLE IF NOT EXISTS driftline.scores (
    tenant LowCardinality(String),
    trace_id String,
    span_id String,
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
ENGINE = ReplacingMergeTree(scored_at)
PARTITION BY toDate(span_start_time)
ORDER BY (tenant, scorer, scorer_version, trace_id, span_id)
TTL toDateTime(span_start_time) + INTERVAL 30 DAY;

-- migration 1: spans, scores, review_items
CREATE TABLE IF NOT EXISTS driftline.review_items (
    tenant LowCardinality(String),
    queue LowCardinality(String),
    trace_id String,
    span_id String,
    reason String,
    scorer LowCardinality(String),
    score_value Nullable(Float64),
    status LowCardinality(String),
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
ORDER BY (tenant, queue, trace_id, span_id);

-- migration 2: scorer_state
CREATE TABLE IF NOT EXISTS driftline.scorer_state (
    tenant LowCardinality(String),
    scorer LowCardinality(String),
    scorer_version LowCardinality(String),
    shard LowCardinality(String),
    watermark DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (tenant, scorer, scorer_version, shard);

-- migration 3: message texts stored once: input_text / output_text as ALIAS columns (runs only if: SELECT count() FROM system.columns WHERE database = 'driftline' AND table = 'spans' AND name = 'input_text' AND default_kind = '')
ALTER TABLE driftline.spans RENAME COLUMN input_text TO input_text_fallback, RENAME COLUMN output_text TO output_text_fallback;

-- migration 3: message texts stored once: input_text / output_text as ALIAS columns
ALTER TABLE driftline.spans ADD COLUMN IF NOT EXISTS input_text String ALIAS if(input_text_fallback != '', input_text_fallback, JSONExtractString(arrayLast(m -> JSONExtractString(m, 'role') IN ('user') AND JSONExtractString(m, 'content') != '', JSONExtractArrayRaw(input_messages)), 'content')), ADD COLUMN IF NOT EXISTS output_text String ALIAS if(output_text_fallback != '', output_text_fallback, JSONExtractString(arrayLast(m -> JSONExtractString(m, 'role') IN ('assistant', 'model') AND JSONExtractString(m, 'content') != '', JSONExtractArrayRaw(output_messages)), 'content'));

-- migration 4: feedback
CREATE TABLE IF NOT EXISTS driftline.feedback (
    tenant LowCardinality(String),
    id String,
    trace_id String,
    span_id String,
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
TTL toDateTime(created_at) + INTERVAL 30 DAY;

-- migration 5: trace, session and user lookups: by_trace projection, bloom filters
ALTER TABLE driftline.spans MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild';

-- migration 5: trace, session and user lookups: by_trace projection, bloom filters
ALTER TABLE driftline.spans ADD PROJECTION IF NOT EXISTS by_trace (SELECT tenant, trace_id, start_time ORDER BY tenant, trace_id);

-- migration 5: trace, session and user lookups: by_trace projection, bloom filters
ALTER TABLE driftline.spans ADD INDEX IF NOT EXISTS idx_session_id session_id TYPE bloom_filter(0.01) GRANULARITY 1;

-- migration 5: trace, session and user lookups: by_trace projection, bloom filters
ALTER TABLE driftline.spans ADD INDEX IF NOT EXISTS idx_user_id user_id TYPE bloom_filter(0.01) GRANULARITY 1;

-- migration 5: trace, session and user lookups: by_trace projection, bloom filters
ALTER TABLE driftline.spans MATERIALIZE PROJECTION by_trace;

-- migration 5: trace, session and user lookups: by_trace projection, bloom filters
ALTER TABLE driftline.spans MATERIALIZE INDEX idx_session_id;

-- migration 5: trace, session and user lookups: by_trace projection, bloom filters
ALTER TABLE driftline.spans MATERIALIZE INDEX idx_user_id;

-- migration 6: drift_state: the SLI job's last drift verdicts
CREATE TABLE IF NOT EXISTS driftline.drift_state (
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
TTL toDateTime(computed_at) + INTERVAL 7 DAY;

-- migration 8: review queues: definitions, items, events, labels, datasets
CREATE TABLE IF NOT EXISTS driftline.review_queues (
    tenant LowCardinality(String),
    name String,
    definition String CODEC(ZSTD(3)),
    deleted UInt8,
    updated_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (tenant, name);

-- migration 8: review queues: definitions, items, events, labels, datasets
CREATE TABLE IF NOT EXISTS driftline.review_queue_items (
    tenant LowCardinality(String),
    queue String,
    trace_id String,
    span_id String,
    rule LowCardinality(String),
    reason String,
    scorer LowCardinality(String),
    score_value Nullable(Float64),
    score_label LowCardinality(String),
    service LowCardinality(String),
    release LowCardinality(String),
    trace_start DateTime64(3, 'UTC'),
    added_by String,
    created_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(created_at)
ORDER BY (tenant, queue, trace_id);

-- migration 8: review queues: definitions, items, events, labels, datasets
CREATE TABLE IF NOT EXISTS driftline.review_events (
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
ORDER BY (tenant, queue, trace_id, event_id);

-- migration 8: review queues: definitions, items, events, labels, datasets
CREATE TABLE IF NOT EXISTS driftline.review_labels (
    tenant LowCardinality(String),
    queue String,
    trace_id String,
    kind LowCardinality(String),
    reviewer String,
    fields String CODEC(ZSTD(3)),
    note String CODEC(ZSTD(3)),
    corrected_answer String CODEC(ZSTD(3)),
    labeled_at DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(labeled_at)
ORDER BY (tenant, queue, trace_id, kind, reviewer);

-- migration 8: review queues: definitions, items, events, labels, datasets
CREATE TABLE IF NOT EXISTS driftline.review_datasets (
    tenant LowCardinality(String),
    dataset String,
    queue String,
    trace_id String,
    record String CODEC(ZSTD(3)),
    added_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(added_at)
ORDER BY (tenant, dataset, queue, trace_id);

-- migration 9: judge_cache, judge_canary: LLM judges' verdict cache and canary baselines
CREATE TABLE IF NOT EXISTS driftline.judge_cache (
    tenant LowCardinality(String),
    judge LowCardinality(String),
    judge_version LowCardinality(String),
    input_hash String,
    value Float64,
    label LowCardinality(String),
    reasoning String CODEC(ZSTD(3)),
    created_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(created_at)
ORDER BY (tenant, judge, judge_version, input_hash)
TTL toDateTime(created_at) + INTERVAL 30 DAY;

-- migration 9: judge_cache, judge_canary: LLM judges' verdict cache and canary baselines
CREATE TABLE IF NOT EXISTS driftline.judge_canary (
    tenant LowCardinality(String),
    judge LowCardinality(String),
    judge_version LowCardinality(String),
    kind LowCardinality(String),
    item_id String,
    label LowCardinality(String),
    value Float64,
    reasoning String CODEC(ZSTD(3)),
    run_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(run_at)
ORDER BY (tenant, judge, judge_version, kind, item_id);

