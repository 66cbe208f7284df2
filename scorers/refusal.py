"""RefusalScorer: did the model decline to answer?

Signals, strongest first:
1. finish_reason `content_filter` (the normalizer folds safety / recitation / refusal stop
   reasons onto it: docs/columns.md "finish_reason");
2. an explicit refusal part in the output messages: OpenAI's `message.refusal` field, which
   OpenLLMetry and GenAI-semconv emitters record as a `{"type": "refusal"}` part of
   gen_ai.output.messages (the normalizer leaves such parts out of output_text);
3. the answer *opens* with a refusal (curated English patterns below).

Only the opening is read: the first sentence, or the second when the first is a bare apology
("I'm sorry."). "Sorry" or "I can't" later in a helpful answer ("Paris. Sorry for the
confusion earlier.") is not a refusal. A disclaimer that pivots into an answer in the same
sentence ("I can't give medical advice, but generally ...") counts as answered.

Pattern list (case-insensitive, curly apostrophes folded):
- "I can't / cannot / won't / am unable to / am not able to" + help, assist, provide, comply,
  fulfil, answer, share, create, generate, write, engage, discuss, do that, ... ("I can't help
  but ..." excluded)
- "I must / have to decline", "I'm not comfortable", "I don't feel comfortable"
- "that's not something I can help with", "this request goes against my guidelines/policies"
- "As an AI (language model), I can't / am not able ..."
- "I'm just / only a language model"
"""

from __future__ import annotations

import json
import re
from typing import Final

from driftline.scorers.base import LLM_OPERATIONS, Score, SpanRow, TraceContext

__all__ = ["RefusalScorer", "is_refusal_text"]

_VERBS: Final = (
    r"(?:help(?! but)|assist|provide|comply|fulfil+|complete|answer|respond|share|give|offer|create"
    r"|generate|write|produce|engage|discuss|participate|support|do that|do this|go along|continue"
    r"|make|tell|recommend|advise|process|accommodate)"
)
# Follows "I": "I can't", "I cannot", "I won't be able to", "I'm unable to", "I am not allowed to", ...
_CANNOT: Final = (
    r"(?:(?:'m|\s+am)\s+(?:not able|unable|not allowed|not permitted|not in a position) to"
    r"|\s+(?:can ?not|can't|won't|will not)(?: be able to)?)"
)
_REFUSAL: Final = re.compile(
    "|".join(
        (
            rf"\bi{_CANNOT} (?:\w+ )?{_VERBS}\b",
            r"\bi (?:must|have to|need to) (?:respectfully )?(?:decline|refuse)\b",
            r"\bi(?:'m| am) not comfortable\b|\bi (?:don't|do not) feel comfortable\b",
            r"\b(?:that's|that is|this is|it's|it is) not something i(?:'m| am)?"
            r" (?:can|able to|going to|will)\b",
            r"\b(?:goes|is) against (?:my|the|our) (?:\w+ )?(?:guidelines|policies|policy|principles)\b",
            rf"\bas an ai(?: language model| assistant| model)?, i{_CANNOT}",
            r"\bi(?:'m| am) (?:just|only) an? (?:ai|language model|text-based)",
        )
    ),
    re.IGNORECASE,
)
# "..., but generally / here is / as of ..." right after the refusal phrase: a disclaimer, then an answer.
_PIVOT: Final = re.compile(
    r"\b(?:but|however)\b,?\s+(?:here|as of|based on|generally|typically|in general|usually|the |it's |it is "
    r"|you can|i can (?:tell|give|share|offer|explain|provide|say|suggest))",
    re.IGNORECASE,
)
_BARE_APOLOGY: Final = re.compile(
    r"^(?:i'm |i am )?(?:so |really |very |truly )?(?:sorry|apologies|i apologi[sz]e)[.!]?$", re.IGNORECASE
)
_SENTENCE_END: Final = re.compile(r"(?<=[.!?])\s+|\n+")
_OPENING_CHARS: Final = 400  # a refusal says so up front; reading further only adds false positives


def _sentences(text: str) -> list[str]:
    opening = text.strip().replace("\u2019", "'").replace("\u2018", "'")[:_OPENING_CHARS]
    return [s.strip() for s in _SENTENCE_END.split(opening) if s.strip()][:2]


def is_refusal_text(text: str) -> str | None:
    """The refusal phrase the answer opens with, or None."""
    sentences = _sentences(text)
    if not sentences:
        return None
    opening = sentences[0]
    if _BARE_APOLOGY.match(opening) and len(sentences) > 1:
        opening = f"{opening} {sentences[1]}"
    match = _REFUSAL.search(opening)
    if match is None or _PIVOT.search(opening, match.end()):
        return None
    return match.group(0)


def _refusal_part(span: SpanRow) -> str | None:
    attrs = span.get("attributes") or {}
    raw = attrs.get("gen_ai.output.messages", "")
    if '"refusal"' not in raw:  # cheap test before parsing
        return None
    try:
        messages = json.loads(raw)
    except ValueError:
        return None
    for message in messages if isinstance(messages, list) else ():
        parts = message.get("parts") if isinstance(message, dict) else None
        for part in parts if isinstance(parts, list) else ():
            if isinstance(part, dict) and part.get("type") == "refusal":
                return str(part.get("content") or part.get("refusal") or "")
    return None


class RefusalScorer:
    """Value 1.0 / label `refused`, or 0.0 / `answered`, for model calls with an answer."""

    name = "refusal"
    version = "1"
    needs_trace = False

    def applies(self, span: SpanRow) -> bool:
        if span.get("operation") not in LLM_OPERATIONS:
            return False
        if span.get("output_text") or span.get("finish_reason") == "content_filter":
            return True
        return '"refusal"' in (span.get("attributes") or {}).get("gen_ai.output.messages", "")

    def score(self, span: SpanRow, trace: TraceContext) -> Score | None:
        if span.get("finish_reason") == "content_filter":
            return Score(1.0, "refused", "finish_reason content_filter", {"signal": "content_filter"})
        part = _refusal_part(span)
        if part is not None:
            return Score(1.0, "refused", f"refusal field: {part[:120]!r}", {"signal": "refusal_field"})
        text = str(span.get("output_text") or "")
        if not text.strip():
            return None
        phrase = is_refusal_text(text)
        if phrase is None:
            return Score(0.0, "answered", "the answer does not open with a refusal", {})
        return Score(1.0, "refused", f"opens with a refusal: {phrase!r}", {"signal": "pattern"})
