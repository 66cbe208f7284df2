"""Hallucination scorers: offline groundedness on every sampled answer, and an LLM judge behind it.

The context an answer must be grounded in is what the application itself had in the trace:
documents its retrievals returned, results of its tool calls, its system prompt and the user's
input. An answer with none of that around it gets `no_context` rather than a guess.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from driftline.scorers.base import LLM_OPERATIONS, Score, SpanRow, TraceContext
from driftline.scorers.grounding import GroundednessScorer

__all__ = ["OfflineHallucinationScorer", "grounding_context"]

_MAX_CONTEXT_CHARS = 60_000  # bounds the scorer's work per span; retrieval payloads can be huge


def _documents(raw: Any) -> list[str]:
    if not raw:
        return []
    try:
        docs = json.loads(raw)
    except (TypeError, ValueError):
        return [str(raw)]
    out: list[str] = []
    for d in docs if isinstance(docs, list) else [docs]:
        if isinstance(d, dict):
            text = d.get("content") or d.get("text") or ""
            out.append(str(text))
        elif d:
            out.append(str(d))
    return [t for t in out if t]


def grounding_context(span: SpanRow, trace: TraceContext) -> str:
    """Retrieved documents, tool results and the system prompt, in the order they happened."""
    parts: list[str] = []
    start = span.get("start_time")
    for other in trace.spans:
        if other.get("span_id") == span.get("span_id"):
            continue
        # Only what the app knew before the answer was produced can ground it.
        if start is not None and other.get("start_time") is not None and other["start_time"] > start:
            continue
        parts.extend(_documents(other.get("retrieved_documents")))
        if other.get("operation") == "execute_tool" and other.get("tool_result"):
            parts.append(str(other["tool_result"]))
    parts.extend(_documents(span.get("retrieved_documents")))
    if span.get("system_prompt"):
        parts.append(str(span["system_prompt"]))
    text = "\n".join(p.strip() for p in parts if p and p.strip())
    return text[:_MAX_CONTEXT_CHARS]


class OfflineHallucinationScorer:
    """Groundedness of an LLM answer against its trace's context; needs no LLM."""

    name: ClassVar[str] = "hallucination"
    version: ClassVar[str] = "offline-" + GroundednessScorer.version
    needs_trace: ClassVar[bool] = True

    def __init__(self, scorer: GroundednessScorer | None = None) -> None:
        self._g = scorer if scorer is not None else GroundednessScorer()

    def applies(self, span: SpanRow) -> bool:
        return span.get("operation") in LLM_OPERATIONS and bool(span.get("output_text"))

    def score(self, span: SpanRow, trace: TraceContext) -> Score | None:
        context = grounding_context(span, trace)
        # The user's own words count as support too (the grounding scorer reads the question).
        question = str(span.get("input_text") or "")
        r = self._g.score(str(span["output_text"]), context, question)
        return Score(
            value=r.value,
            label=r.label,
            explanation=r.explanation,
            details={"confident": r.confident, "context_chars": len(context)},
        )
