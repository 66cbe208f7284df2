"""The individual checks behind the features: is a word supported, swapped for its opposite, negated?"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from driftline.scorers.grounding.context import ContextIndex, number_key
from driftline.scorers.grounding.lexicon import REPORTING_LEXFILES, Lexicon
from driftline.scorers.grounding.text import NEGATION_CUES, NEGATION_VERBS, STOPWORDS, Token, tokenize

__all__ = [
    "WordKind",
    "classify",
    "forms_of",
    "is_content",
    "is_negation",
    "negation_unsupported",
    "opposite_in_context",
]

# supported: the word (or a lemma of it) is in the context; paraphrase: a synonym is; related: a more
# general word or a close relative is; reporting: a verb of saying or thinking; the other three are
# unsupported.
WordKind = Literal["supported", "paraphrase", "related", "reporting", "novel", "names", "numbers"]

_HAS_LETTER_AND_DIGIT = re.compile(r"(?=.*[a-z])(?=.*\d)")
_PREFIXES = frozenset({"non", "un", "co", "re", "pre", "anti", "well"})
_RANK: dict[WordKind, int] = {
    "supported": 0,
    "paraphrase": 1,
    "related": 1,
    "reporting": 1,
    "novel": 2,
    "names": 3,
    "numbers": 3,
}
# How many content words on each side of a negation cue make up the claim it negates.
_SCOPE_AFTER, _SCOPE_BEFORE = 4, 2
# An opposite in the context counts only if it sits this close (in tokens) to one of the words around
# the answer's word: "raising the dividend" is no swap for "reducing debt" a clause away.
_ANTONYM_NEIGHBOURS, _ANTONYM_DISTANCE = 2, 4


def is_negation(token: Token) -> bool:
    return token.low in NEGATION_CUES or token.low in NEGATION_VERBS


def is_content(token: Token) -> bool:
    return token.low not in STOPWORDS and not is_negation(token)


def forms_of(token: Token, lexicon: Lexicon) -> frozenset[str]:
    if token.value is not None:
        return frozenset({number_key(token.value)})
    return lexicon.word(token.low).forms


def classify(token: Token, ctx: ContextIndex, lexicon: Lexicon) -> WordKind:
    if token.value is not None:
        return "supported" if ctx.has_number(token.value) else "numbers"
    low = token.low
    info = lexicon.word(low)
    if info.forms & ctx.forms:
        return "supported"
    if "-" in low:
        return _classify_compound(token, ctx, lexicon)
    if _HAS_LETTER_AND_DIGIT.match(low):
        return "names"  # Q3, A320: identifiers must match exactly
    # A capital letter marks a name, except first in a sentence where only WordNet can tell.
    if token.capitalized and (not token.sentence_initial or not info.known or info.proper):
        return "names"
    # A word with no senses (or no relatives) asks nothing of the context's: they are not united for it.
    if info.senses and not ctx.senses.isdisjoint(info.senses):
        return "paraphrase"
    if (info.senses and not ctx.hypernyms.isdisjoint(info.senses)) or (
        info.related and not ctx.senses.isdisjoint(info.related)
    ):
        return "related"
    if info.pos == "v" and info.lexfile in REPORTING_LEXFILES:
        return "reporting"
    return "novel"


def _classify_compound(token: Token, ctx: ContextIndex, lexicon: Lexicon) -> WordKind:
    low = token.low
    if low.replace("-", "") in ctx.forms:
        return "supported"
    if _HAS_LETTER_AND_DIGIT.search(low):
        return "names"  # SARS-CoV-2 against SARS-CoV-3
    worst: WordKind = "supported"
    for i, part in enumerate(p for p in low.split("-") if p):
        if part in STOPWORDS or part in _PREFIXES:
            continue
        first = i == 0
        kind = classify(
            Token(part, part, None, token.capitalized and first, token.sentence_initial and first),
            ctx,
            lexicon,
        )
        if _RANK[kind] > _RANK[worst]:
            worst = kind
    return worst


def opposite_in_context(
    k: int,
    content: Sequence[Token],
    form_sets: Sequence[frozenset[str]],
    answer_forms: set[str],
    ctx: ContextIndex,
    lexicon: Lexicon,
) -> str | None:
    """The context word that content[k] looks swapped for its opposite of, if any: an antonym that
    the context uses next to the same neighbouring words, and that the answer itself never uses."""
    info = lexicon.word(content[k].low)
    candidates = sorted(a for a in info.antonyms if a in ctx.forms and a not in answer_forms)
    if not candidates:
        return None
    lo, hi = max(0, k - _ANTONYM_NEIGHBOURS), min(len(content), k + _ANTONYM_NEIGHBOURS + 1)
    neighbours: set[str] = set().union(*(form_sets[n] for n in range(lo, hi) if n != k))
    for word in candidates:
        if any(_near(ctx.sentences[s], word, neighbours, lexicon) for s in ctx.postings.get(word, ())):
            return word
    return None


def _near(sentence: str, word: str, neighbours: set[str], lexicon: Lexicon) -> bool:
    """Whether `word` occurs in `sentence` within a few tokens of a content word from `neighbours`."""
    forms = [forms_of(t, lexicon) if is_content(t) else frozenset() for t in tokenize(sentence)]
    for i, f in enumerate(forms):
        if word in f:
            lo, hi = max(0, i - _ANTONYM_DISTANCE), min(len(forms), i + _ANTONYM_DISTANCE + 1)
            if any(forms[j] & neighbours for j in range(lo, hi) if j != i):
                return True
    return False


def negation_unsupported(
    i: int,
    tokens: Sequence[Token],
    positions: Sequence[int],
    form_sets: Sequence[frozenset[str]],
    ctx: ContextIndex,
) -> bool:
    """Whether the negation at tokens[i] is new: the context states the words it applies to (the few
    content words around it, at `positions` with `form_sets`) in sentences that are not negated."""
    after = [f for j, f in zip(positions, form_sets, strict=True) if j > i][:_SCOPE_AFTER]
    before = [f for j, f in zip(positions, form_sets, strict=True) if j < i][-_SCOPE_BEFORE:]
    sid = ctx.align(before + after)
    return sid >= 0 and not any(ctx.sentence_negated[s] for s in ctx.window(sid))
