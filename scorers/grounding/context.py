"""What the scorer needs to know about a context, computed once per (context, question).

Per sentence: the word forms it contains, the senses of its content words and whether it is negated;
for the whole context: the numbers it states and an inverted index used to align answer sentences.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from driftline.scorers.grounding.lexicon import Lexicon
from driftline.scorers.grounding.text import (
    NEGATION_CUES,
    NEGATION_VERBS,
    NUMBER_WORDS,
    STOPWORDS,
    split_sentences,
    split_sources,
    terms,
    tokenize,
)

__all__ = ["ContextIndex", "number_key"]

# A sentence that has one of these among its first few words speaks of something named before it
# ("He was born in 1941", "Popularly known as the Desert Fox, he served ..."); so does one that opens
# with a definite description ("The event took place in Uniondale"). A singular pronoun cannot mean
# one name of a list ("Otto Stern and Max Volmer"; "A, B and C"): it inherits the names outside lists.
_SINGULAR = frozenset({"he", "she", "it", "his", "her", "its", "this"})
_PLURAL = frozenset({"they", "their", "these", "those"})
_REFERRING_REACH = 8
_NAME_RUN = re.compile(r"[A-Z][\w'’.-]*(?:\s+(?:(?:of|de|van|von|the|for|and|&)\s+)?[A-Z][\w'’.-]*)*")
_LIST_GLUE = frozenset({",", "and", ", and", "or", ", or", "&"})


def _reference(words: Sequence[tuple[str, float | None]], sentence: str) -> str:
    """ "singular", "plural" or "" (the sentence does not refer back)."""
    for low, _ in words[:_REFERRING_REACH]:
        if low in _SINGULAR:
            return "singular"
        if low in _PLURAL:
            return "plural"
    # "The event ...", "The band ...": "the" and a common (lowercase) noun.
    head = sentence.lstrip(" \"'“‘(")
    return "singular" if head.startswith("The ") and head[4:5].islower() else ""


def _names(sentence: str, lexicon: Lexicon, singular: bool) -> frozenset[str]:
    """The forms of the names in a sentence: runs of capitalised words, the first word of the sentence
    only if it is a name or starts one; for a singular pronoun, none that stands in a list."""
    runs = list(_NAME_RUN.finditer(sentence))
    listed = [False] * len(runs)
    for k in range(len(runs) - 1):
        if sentence[runs[k].end() : runs[k + 1].start()].strip() in _LIST_GLUE:
            listed[k] = listed[k + 1] = True
    forms: set[str] = set()
    for k, m in enumerate(runs):
        if singular and listed[k]:
            continue
        first = k == 0 and not sentence[: m.start()].strip(" \"'“‘(")
        for j, (low, value) in enumerate(terms(m.group(0))):
            info = lexicon.word(low)
            if value is None and low not in STOPWORDS:
                if j == 0 and first and " " not in m.group(0) and info.known and not info.proper:
                    continue  # "Originally it was ...": a capital only because the sentence starts
                forms |= info.forms
    return frozenset(forms)


def _follows(words: Sequence[str], a: str, b: str) -> bool:
    """Whether `b` comes one or two places after `a` in `words`."""
    return any(w == a and b in words[i + 1 : i + 3] for i, w in enumerate(words))


_ROUNDING = 0.05  # a rounded number is never more than 5% off: "10" does not round 14


def number_key(value: float) -> str:
    return f"#{value:g}"


def _is_year(value: float) -> bool:
    return value == int(value) and 1000 <= value <= 2100


def _precision(value: float) -> float:
    """The place of the last significant digit: 95e6 -> 1e6, 94.8e6 -> 1e5, 2600 -> 100, 0.5 -> 0.1."""
    magnitude = abs(value)
    if magnitude == 0:
        return 1.0
    for k in range(15, -7, -1):
        scaled = magnitude / 10.0**k
        if scaled >= 1 and abs(scaled - round(scaled)) <= 1e-6 * scaled:
            return 10.0**k
    return 1e-6


@dataclass
class ContextIndex:
    sentences: list[str] = field(default_factory=list)
    sentence_forms: list[set[str]] = field(default_factory=list)
    sentence_senses: list[set[int]] = field(default_factory=list)
    sentence_negated: list[bool] = field(default_factory=list)
    forms: set[str] = field(default_factory=set)
    senses: set[int] = field(default_factory=set)
    hypernyms: set[int] = field(default_factory=set)
    numbers: set[float] = field(default_factory=set)
    postings: dict[str, list[int]] = field(default_factory=dict)
    idf: dict[str, float] = field(default_factory=dict)
    question_forms: set[str] = field(default_factory=set)
    question: str = ""
    # A sentence that refers back ("Alf Clausen is a composer. He was born in 1941.") states its facts
    # about something the sentence before names: the forms of those names, per sentence (empty for
    # most), and the sentences each form is inherited by.
    inherited: list[frozenset[str]] = field(default_factory=list)
    inherited_postings: dict[str, list[int]] = field(default_factory=dict)
    # The words of each sentence (lowercased, function words left out), and of the question: a name of
    # several words must be found as a phrase.
    sentence_words: list[list[str]] = field(default_factory=list)
    question_words: list[str] = field(default_factory=list)
    _new_source: bool = False

    @classmethod
    def build(cls, context: str, question: str, lexicon: Lexicon) -> ContextIndex:
        index = cls()
        for source in split_sources(context):
            # A pronoun opening a pasted piece refers to something outside it: no link back.
            index._new_source = True
            for sentence in split_sentences(source):
                index._add_sentence(sentence, lexicon)
        n = max(1, len(index.sentences))
        index.idf = {form: math.log(1.0 + n / len(ids)) for form, ids in index.postings.items()}
        # The question is premise, not evidence: its words may be repeated without being
        # hallucinated, but it takes no part in aligning answer sentences to the context.
        index.question = question
        index.question_words = [low for low, _ in terms(question) if low not in STOPWORDS]
        for token in tokenize(question):
            if token.value is not None:
                index.numbers.add(token.value)
                index.question_forms.add(number_key(token.value))
            else:
                index.question_forms |= lexicon.word(token.low).forms
        index.forms |= index.question_forms
        return index

    def _add_sentence(self, sentence: str, lexicon: Lexicon) -> None:
        sid = len(self.sentences)
        forms: set[str] = set()
        senses: set[int] = set()
        negated = False
        words = terms(sentence)
        inherited: frozenset[str] = frozenset()
        reference = _reference(words, sentence) if sid > 0 and not self._new_source else ""
        if reference:
            # Whom the pronoun means is not known: any name of the sentence before may be it.
            inherited = self.inherited[-1] | _names(self.sentences[-1], lexicon, reference == "singular")
            for form in inherited:
                self.inherited_postings.setdefault(form, []).append(sid)
        self._new_source = False
        self.inherited.append(inherited)
        self.sentence_words.append([low for low, _ in words if low not in STOPWORDS])
        for low, value in words:
            if value is not None:
                self.numbers.add(value)
                forms.add(number_key(value))
                continue
            if low in NEGATION_CUES or low in NEGATION_VERBS:
                negated = True
            info = lexicon.word(low)
            forms |= info.forms
            if "-" in low:
                for part in low.split("-"):
                    forms.add(part)
                    if part in NUMBER_WORDS:  # "a four-time nominee" states "four"
                        self.numbers.add(NUMBER_WORDS[part])
                        forms.add(number_key(NUMBER_WORDS[part]))
            if low not in STOPWORDS:
                senses |= info.senses
                self.hypernyms |= info.hypernyms
        self.sentences.append(sentence)
        self.sentence_forms.append(forms)
        self.sentence_senses.append(senses)
        self.sentence_negated.append(negated)
        self.forms |= forms
        self.senses |= senses
        for form in forms:
            self.postings.setdefault(form, []).append(sid)

    def sentences_with(self, form: str) -> list[int]:
        """The sentences that state `form`, or state something about a subject named by it."""
        inherited = self.inherited_postings.get(form)
        found = self.postings.get(form, [])
        return found + inherited if inherited else found

    def claim_forms(self, sid: int) -> set[str]:
        """The forms of sentence `sid`, with the subject it inherits from the sentence before."""
        return self.sentence_forms[sid] | self.inherited[sid]

    def has_phrase(self, words: Sequence[str]) -> bool:
        """Whether the words (function words left out) stand in this order, each at most one word
        after the one before ("Neil LaBute" in "Neil N. LaBute"), in a sentence of the context or in
        the question."""
        kept = [w for w in words if w not in STOPWORDS]
        return all(self._adjacent(a, b) for a, b in pairwise(kept))

    def _adjacent(self, a: str, b: str) -> bool:
        if _follows(self.question_words, a, b):
            return True
        both = set(self.postings.get(a, ())) & set(self.postings.get(b, ()))
        return any(_follows(self.sentence_words[s], a, b) for s in sorted(both))

    def has_number(self, value: float) -> bool:
        """Stated in the context, allowing the rounding a summary does (94.8 million -> 95 million,
        2,586 -> about 2,600) but not a changed last digit (743 -> 730, 1941 -> 1942): the answer's
        number must be the context's rounded to the answer's own precision."""
        if value in self.numbers:
            return True
        if _is_year(value):
            return False
        step = _precision(value)
        return any(v and abs(v - value) <= min(step / 2, _ROUNDING * abs(v)) + 1e-9 * abs(v) for v in self.numbers)

    def align(self, form_sets: list[frozenset[str]]) -> int:
        """Index of the context sentence sharing the most (idf-weighted) words with the given ones."""
        scores: dict[int, float] = {}
        for forms in form_sets:
            best: dict[int, float] = {}
            for form in forms:
                weight = self.idf.get(form)
                if weight is None:
                    continue
                for sid in self.postings[form]:
                    if weight > best.get(sid, 0.0):
                        best[sid] = weight
            for sid, weight in best.items():
                scores[sid] = scores.get(sid, 0.0) + weight
        if not scores:
            return -1
        # Ties go to the earliest sentence so that the result never depends on dict order.
        return min(scores, key=lambda sid: (-scores[sid], sid))

    def window(self, sid: int, radius: int = 1) -> range:
        if sid < 0:
            return range(0)
        return range(max(0, sid - radius), min(len(self.sentences), sid + radius + 1))
