"""Driftline's app-side SDK: OpenTelemetry set up for Driftline, plus GenAI span helpers.

    import driftline.sdk as dl

    dl.init(endpoint="http://driftline:4318", api_key="...", service="support-bot", release="1.4.2")

    @dl.tool_call()
    def lookup_order(order_id: str) -> dict: ...

    with dl.llm_call(model="gpt-4o", provider="openai") as call:
        call.set_input_messages(messages)
        ...
        call.set_usage(input_tokens=812, output_tokens=64)

    @dl.llm_call(model="gpt-4o", provider="openai")
    def ask(messages: list[dict[str, str]]) -> str:
        call = dl.current_call(dl.LLMCall)  # this function's span (None while tracing is off)
        ...

Spans follow the OpenTelemetry GenAI semantic conventions
(https://opentelemetry.io/docs/specs/semconv/gen-ai/). This package depends only on the
OpenTelemetry API, SDK and OTLP exporters: nothing from Driftline's server side is imported.
"""

from __future__ import annotations

from driftline.sdk.bootstrap import Driftline, flush, init, shutdown
from driftline.sdk.decorators import agent_step, llm_call, retrieval, tool_call
from driftline.sdk.feedback import FeedbackError, feedback, feedback_batch
from driftline.sdk.llm_spans import AgentStep, LLMCall
from driftline.sdk.operation import Operation
from driftline.sdk.spans import GenAISpan, Retrieval, ToolCall, current_call

__all__ = [
    "AgentStep",
    "Driftline",
    "FeedbackError",
    "GenAISpan",
    "LLMCall",
    "Operation",
    "Retrieval",
    "ToolCall",
    "agent_step",
    "current_call",
    "feedback",
    "feedback_batch",
    "flush",
    "init",
    "llm_call",
    "retrieval",
    "shutdown",
    "tool_call",
]
