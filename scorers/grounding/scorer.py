"""GroundednessScorer: is an answer supported by the context it was given? No LLM involved.

The value is a probability-like score that the answer is hallucinated (says something the context
does not), from a small logistic model over lexical and relational evidence (see features.py). It is
meant as the cheap first pass: `confident` marks the results a paid LLM judge would add little to.
On the hallucinated side that is a score far above the threshold. On the grounded side, finding
nothing against an answer is not proof that it is grounded (a swapped pairing of context words can
slip through), so an answer is confidently grounded only with positive evidence: the context decides
the question's choice ("A or B?", "are both ...?") the way the answer does, and nothing else in the
answer is unsupported.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Literal

from driftline.scorers.grounding.context import ContextIndex, forget_sentences
from driftline.scorers.grounding.evidence import is_empty_answer
from driftline.scorers.grounding.features import FEATURE_NAMES, Analysis, Finding, analyse
from driftline.scorers.grounding.lexicon import Lexicon, default_lexicon
from driftline.scorers.grounding.model import DEFAULT_MODEL_PATH, LogisticModel

__all__ = ["GroundednessScorer", "GroundingResult", "Label"]

Label = Literal["grounded", "hallucinated", "no_context"]

_CONTEXTS_KEPT = 16  # the latest contexts whose index is kept: a 3 KB context's takes about 160 KB
_EXPLAINED_ITEMS = 5  # the explanation is for a person skimming a list: name the first few only


@dataclass(frozen=True)
class GroundingResult:
    value: float  # in [0, 1]: how likely the answer is NOT supported by the context
    label: Label
    confident: bool
    explanation: str


class GroundednessScorer:
    name = "hallucination_offline"
    version = "3"  # 3: no question-role rules; judged against evidence only (not instructions)

    def __init__(self, model: LogisticModel | None = None, lexicon: Lexicon | None = None) -> None:
        self.model = model if model is not None else LogisticModel.load(DEFAULT_MODEL_PATH)
        if self.model.features != FEATURE_NAMES:
            raise ValueError(f"model features {self.model.features} do not match the scorer's {FEATURE_NAMES}")
        self.lexicon = lexicon if lexicon is not None else default_lexicon()
        # The same documents are checked again and again: by every answer of a trace after its
        # retrieval, by each turn of a conversation, by every summary of one document. Their index is
        # kept for the most recent contexts (lru_cache is thread-safe; an index is never changed).
        self._context_index = lru_cache(maxsize=_CONTEXTS_KEPT)(partial(ContextIndex.of_context, lexicon=self.lexicon))

    def forget(self) -> None:
        """Drop the indexes of the contexts and the sentences read so far (the per-word caches stay):
        what scoring an answer costs when its context is new, as bench/grounding_bench.py measures."""
        self._context_index.cache_clear()
        forget_sentences(self.lexicon)

    @property
    def threshold(self) -> float:
        return self.model.threshold

    def analyse(self, answer: str, context: str, question: str = "") -> Analysis:
        ctx = self._context_index(context).with_question(question, self.lexicon)
        return analyse(answer, ctx, self.lexicon)

    def score(self, answer: str, context: str, question: str = "") -> GroundingResult:
        if is_empty_answer(answer):
            # Nothing was said (or only a role tag, "assistant: "): nothing can be unsupported.
            return GroundingResult(0.0, "grounded", False, "no answer to check")
        if not context.strip():
            # Nothing to check against: saying "grounded" or "hallucinated" would be a guess.
            return GroundingResult(0.5, "no_context", False, "no context to check the answer against")
        analysis = self.analyse(answer, context, question)
        p = self.model.probability(analysis.vector())
        if p >= self.model.threshold:
            return GroundingResult(p, "hallucinated", p >= self.model.confident_high, _explain(analysis))
        confident = analysis.verified or p <= self.model.confident_low
        return GroundingResult(p, "grounded", confident, _explain(analysis))


_HEADINGS = {
    "numbers": "unsupported",
    "names": "unsupported",
    "novel": "unsupported",
    "antonyms": "opposite of the context",
    "negations": "negation not in the context",
    "unlinked": "not stated together in the context",
    "choice": "contradicts the context",
}


def _item(finding: Finding) -> str:
    if finding.kind == "unlinked":
        return f"'{finding.text}'" + (f" + '{finding.context_word}'" if finding.context_word else "")
    if finding.kind == "choice":
        return f"'{finding.text}' ({finding.note})"
    return f"'{finding.text}'" + (f" (context: '{finding.context_word}')" if finding.context_word else "")


def _explain(analysis: Analysis) -> str:
    """Short, and naming the answer's own words, e.g. "unsupported: 'Mumbai', '1997'"."""
    groups: dict[str, list[str]] = {}
    for finding in analysis.findings:
        items = groups.setdefault(_HEADINGS[finding.kind], [])
        item = _item(finding)
        if item not in items:
            items.append(item)
    if not groups:
        if analysis.verified and analysis.verdict is not None:
            return f"the context supports the answer's choice: '{analysis.verdict.option}'"
        return "no unsupported words found"
    parts = []
    for heading in dict.fromkeys(_HEADINGS.values()):
        items = groups.get(heading, [])
        if items:
            more = f" and {len(items) - _EXPLAINED_ITEMS} more" if len(items) > _EXPLAINED_ITEMS else ""
            parts.append(f"{heading}: {', '.join(items[:_EXPLAINED_ITEMS])}{more}")
    return "; ".join(parts)
