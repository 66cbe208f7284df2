"""A Driftline scorer plugin: flags LLM answers padded with stock boilerplate."""

from __future__ import annotations

import re
from typing import ClassVar

from driftline.scorers.base import LLM_OPERATIONS, Score, SpanRow, TraceContext

__all__ = ["STOCK_PHRASES", "BoilerplateScorer"]

STOCK_PHRASES = (
    "as an ai language model",
    "as an ai developed by",
    "i hope this helps",
    "i don't have personal opinions",
    "it is important to note that",
    "feel free to ask",
)

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


class BoilerplateScorer:
    """Implements driftline.scorers.base.Scorer. Bump `version` whenever the logic changes: scores
    are keyed by (span, scorer, version), so old and new never mix."""

    name: ClassVar[str] = "boilerplate"
    version: ClassVar[str] = "1"
    needs_trace: ClassVar[bool] = False  # it reads the answer only

    def applies(self, span: SpanRow) -> bool:
        return span.get("operation") in LLM_OPERATIONS and bool(span.get("output_text"))

    def score(self, span: SpanRow, trace: TraceContext) -> Score | None:
        sentences = [s for s in _SENTENCE.split(str(span.get("output_text") or "").strip()) if s]
        if not sentences:
            return None
        stock = [s for s in sentences if any(p in s.lower() for p in STOCK_PHRASES)]
        share = len(stock) / len(sentences)
        if not stock:
            return Score(0.0, "ok", "no stock phrases")
        return Score(share, "boilerplate", f"{len(stock)} of {len(sentences)} sentences are stock phrases",
                     {"sentences": stock[:5]})  # fmt: skip
