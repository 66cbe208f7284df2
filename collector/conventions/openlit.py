"""OpenLIT additions on top of GenAI semconv.

OpenLIT writes gen_ai.* attributes (handled by `genai.py`, including gen_ai.prompt /
gen_ai.completion and its gen_ai.content.* events in `events.py`) plus a computed cost and a
server-side time to first token, both outside the semconv registry:
gen_ai.usage.cost (USD) and gen_ai.server.time_to_first_token (seconds).
Source: https://docs.openlit.io/latest/sdk/features/tracing (attribute list).
"""

from __future__ import annotations

from typing import Final

from driftline.collector.conventions._common import (
    Attrs,
    Fields,
    put,
    to_float,
)
from driftline.store.ingest_spec import FAMILIES

__all__ = ["MARKERS", "extract"]

MARKERS: Final = FAMILIES["OL"]


def extract(a: Attrs, f: Fields) -> None:
    put(f, "_span_cost", to_float(a.get("gen_ai.usage.cost")))
    ttft = to_float(a.get("gen_ai.server.time_to_first_token"))
    if ttft is not None:
        put(f, "ttft_ms", ttft * 1000.0)
    # llm.time_to_first_token has no agreed unit across emitters: values under 100 are read
    # as seconds (no real model answers in under 100 ms-as-seconds), larger ones as milliseconds.
    raw = to_float(a.get("llm.time_to_first_token"))
    if raw is not None:
        put(f, "ttft_ms", raw * 1000.0 if raw < 100 else raw)
