"""Logfire / pydantic-ai additions on top of GenAI semconv.

pydantic-ai instruments with gen_ai.* attributes (handled by `genai.py`) and adds:
operation.cost (USD, from genai-prices at the source), agent_name, final_result,
pydantic_ai.all_messages on agent runs, tool_arguments / tool_response on tool spans of
instrumentation versions 1-2, and in event_mode="attributes" the per-message GenAI events
as one JSON span attribute `events` (or all_messages_events on agent runs).
Source: https://ai.pydantic.dev/logfire/ and pydantic_ai/models/instrumented.py.
"""

from __future__ import annotations

from typing import Final

from driftline.collector.conventions._common import (
    Attrs,
    Fields,
    first_text,
    maybe_json,
    put,
    to_float,
)
from driftline.collector.conventions.events import message_events
from driftline.collector.conventions.messages import messages
from driftline.store.ingest_spec import FAMILIES

__all__ = ["MARKERS", "extract"]

MARKERS: Final = FAMILIES["LFI"]


def extract(a: Attrs, f: Fields) -> None:
    put(f, "_span_cost", to_float(a.get("operation.cost")))
    put(f, "agent_name", first_text(a, ("agent_name",)))
    put(f, "tool_arguments", first_text(a, ("tool_arguments",)))
    put(f, "tool_result", first_text(a, ("tool_response",)))
    if "_in" not in f and a.get("pydantic_ai.all_messages") is not None:
        put(f, "_in", messages(a.get("pydantic_ai.all_messages")))
    put(f, "_output_raw", first_text(a, ("final_result",)))
    for key in ("events", "all_messages_events"):
        items = maybe_json(a.get(key))
        if isinstance(items, list):
            message_events(
                [(str(e.get("event.name", "")), e) for e in items if isinstance(e, dict)],
                f,
            )
