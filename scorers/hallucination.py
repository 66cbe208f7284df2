"""Hallucination scorers: offline groundedness on every sampled answer, and an LLM judge behind it.

An answer is judged only against evidence the application had in the trace before it answered:
documents its retrievals returned, results of its tool calls, and documents pasted into the prompt
(the system prompt or the user's message; see grounding/evidence.py for how they are recognised).
Instructions are not evidence: a plain chat call ("You are a support agent." and a question) gets
`no_context`, not a verdict, or every answer of the most common kind of LLM call would be flagged.
An empty answer, or one that is only a role tag ("assistant: ", a tool-calling step), is not scored.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from driftline.scorers.base import LLM_OPERATIONS, Score, SpanRow, TraceContext
from driftline.scorers.grounding import GroundednessScorer
from driftline.scorers.grounding.evidence import is_empty_answer, split_prompt, strip_role

__all__ = ["OfflineHallucinationScorer", "grounding_context", "grounding_question"]

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
    """The evidence for the span's answer, in the order it arrived: retrieved documents and tool
    results of the trace, then documents pasted into the span's system prompt or user message.
    Empty when there is none (instructions alone are not evidence)."""
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
    parts.extend(split_prompt(str(span.get("system_prompt") or ""))[0])
    parts.extend(split_prompt(str(span.get("input_text") or ""))[0])
    text = "\n".join(p.strip() for p in parts if p and p.strip())
    return text[:_MAX_CONTEXT_CHARS]


def grounding_question(span: SpanRow) -> str:
    """The user's message without the documents pasted into it: premise, not evidence."""
    return split_prompt(str(span.get("input_text") or ""))[1]


class OfflineHallucinationScorer:
    """Groundedness of an LLM answer against its trace's evidence; needs no LLM."""

    name: ClassVar[str] = "hallucination"
    version: ClassVar[str] = "offline-" + GroundednessScorer.version
    needs_trace: ClassVar[bool] = True

    def __init__(self, scorer: GroundednessScorer | None = None) -> None:
        self._g = scorer if scorer is not None else GroundednessScorer()

    def applies(self, span: SpanRow) -> bool:
        return span.get("operation") in LLM_OPERATIONS and not is_empty_answer(str(span.get("output_text") or ""))

    def score(self, span: SpanRow, trace: TraceContext) -> Score | None:
        answer = strip_role(str(span.get("output_text") or ""))
        if is_empty_answer(answer):
            return None  # nothing was said, so nothing can be unsupported
        context = grounding_context(span, trace)
        # The user's own words count as support too (the grounding scorer reads the question).
        r = self._g.score(answer, context, grounding_question(span))
        return Score(
            value=r.value,
            label=r.label,
            explanation=r.explanation,
            details={"confident": r.confident, "context_chars": len(context)},
        )
