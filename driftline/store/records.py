"""Typed records at the store's read boundary: what a span read returns, by key and type.

A `SpanRecord` is one `spans` row as the query methods return it (driftline/store/columns.py has
each column's meaning). Reads return the columns they select, so every key is optional to the
type checker; `ScoringQueries.candidates` returns all of them, `tenant` and `ingested_at`
included (the runner's watermark moves by `ingested_at`). A test holds the keys and types to the
column list.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

__all__ = ["SpanRecord"]


class SpanRecord(TypedDict, total=False):
    tenant: str
    trace_id: str
    span_id: str
    parent_span_id: str
    start_time: datetime
    end_time: datetime
    duration_ms: float
    name: str
    kind: str
    status_code: str
    status_message: str
    service: str
    release: str
    environment: str
    scope_name: str
    operation: str
    provider: str
    request_model: str
    response_model: str
    input_tokens: int | None
    output_tokens: int | None
    total_tokens: int | None
    cache_read_tokens: int | None
    cache_creation_tokens: int | None
    reasoning_tokens: int | None
    cost_usd: float | None
    cost_source: str
    input_messages: str
    output_messages: str
    input_text: str
    output_text: str
    system_prompt: str
    tool_calls: str
    tool_name: str
    tool_call_id: str
    tool_arguments: str
    tool_result: str
    tool_error: str
    retrieved_documents: str
    finish_reason: str
    error_type: str
    user_id: str
    session_id: str
    conversation_id: str
    agent_name: str
    ttft_ms: float | None
    events: str
    attributes: dict[str, str]
    resource_attributes: dict[str, str]
    ingested_at: datetime
