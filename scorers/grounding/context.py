"""What the scorer needs to know about a context, computed once per (context, question).

Per sentence: the word forms it contains, the senses of its content words and whether it is negated;
for the whole context: the numbers it states and an inverted index used to align answer sentences.
"""

from __future__ import annotations

import copy
import math
import re
import weakref
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain, pairwise, repeat
from operator import attrgetter
from typing import cast

from driftline.scorers.grounding.lexicon import Lexicon
from driftline.scorers.grounding.text import (
    NEGATION_CUES,
    NEGATION_VERBS,
    NUMBER_WORDS,
    STOPWORDS,
    normalize,
    number_value,
    raw_tokens,
    source_sentences,
    split_sources,
    terms,
    tokenize,
)

__all__ = ["ContextIndex", "forget_sentences", "number_key"]

# A sentence that has one of these among its first few words speaks of something named before it
# ("He was born in 1941", "Popularly known as the Desert Fox, he served ..."); so does one that opens
# with a definite description ("The event took place in Uniondale"). A singular pronoun cannot mean
# one name of a list ("Otto Stern and Max Volmer"; "A, B and C"): it inherits the names outside lists.
_SINGULAR = frozenset({"he", "she", "it", "his", "her", "its", "this"})
_PLURAL = frozenset({"they", "their", "these", "those"})
_REFERRING = _SINGULAR | _PLURAL
_REFERRING_REACH = 8
_NAME_RUN = re.compile(r"[A-Z][\w'’.-]*(?:\s+(?:(?:of|de|van|von|the|for|and|&)\s+)?[A-Z][\w'’.-]*)*")
_LIST_GLUE = frozenset({",", "and", ", and", "or", ", or", "&"})


def _reference(words: Sequence[str], sentence: str) -> str:
    """ "singular", "plural" or "" (the sentence does not refer back)."""
    first = words[:_REFERRING_REACH]
    if not _REFERRING.isdisjoint(first):
        for low in first:
            if low in _SINGULAR:
                return "singular"
            if low in _PLURAL:
                return "plural"
    # "The event ...", "The band ...": "the" and a common (lowercase) noun.
    head = sentence.lstrip(" \"'“‘(")
    return "singular" if head.startswith("The ") and head[4:5].islower() else ""


def _names(sentence: str, singular: bool, lexicon: Lexicon) -> frozenset[str]:
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


@dataclass(frozen=True, slots=True, eq=False)
class _Term:
    """What one token, as written, adds to the sentence it stands in: worked out once per token (the
    same words recur across sentences and documents), not once per occurrence."""

    low: str
    lower: str  # the token as written, lowercased: what a numeral before it reads ("5 million")
    forms: frozenset[str]  # its forms, the parts of a compound, the numbers it names ("four-time")
    numbers: tuple[float, ...]  # the numbers it names: a number word, or a compound's parts
    senses: frozenset[int]  # none for a function word or a number (a numeral that is one too)
    hypernyms: frozenset[int]
    negates: bool
    # A numeral, whose value depends on the token after it ("5 million"), is read in the sentence
    # (these forms and senses are what it adds if it turns out to be no number: "3d", "mp3"); so is a
    # token that adds anything to the context's numbers, or nothing at all.
    special: bool


_NO_INTS: frozenset[int] = frozenset()
_LOW, _FORMS, _SENSES = attrgetter("low"), attrgetter("forms"), attrgetter("senses")
_HYPERNYMS, _NEGATES, _SPECIAL = attrgetter("hypernyms"), attrgetter("negates"), attrgetter("special")


def _term(raw: str, lexicon: Lexicon) -> _Term:
    low = normalize(raw)
    if not low:  # a token that normalises to nothing: skipped
        return _Term("", raw.lower(), frozenset(), (), _NO_INTS, _NO_INTS, False, True)
    digits = low[0].isdigit() or low[0] in "$€£"
    if not digits and low in NUMBER_WORDS:
        value = NUMBER_WORDS[low]
        return _Term(low, raw.lower(), frozenset({number_key(value)}), (value,), _NO_INTS, _NO_INTS, False, True)
    info = lexicon.word(low)
    forms = set(info.forms)
    numbers: list[float] = []
    # A numeral that is a number adds no senses; whether it is one does not depend on the token
    # after it ("5 million"), only its value does (see _read).
    senseless = low in STOPWORDS or (digits and number_value(low, "") is not None)
    if "-" in low:
        for part in low.split("-"):
            forms.add(part)
            if part in NUMBER_WORDS:  # "a four-time nominee" states "four"
                numbers.append(NUMBER_WORDS[part])
                forms.add(number_key(NUMBER_WORDS[part]))
    return _Term(
        low,
        raw.lower(),
        frozenset(forms),
        tuple(numbers),
        _NO_INTS if senseless else info.senses,
        _NO_INTS if senseless else info.hypernyms,
        low in NEGATION_CUES or low in NEGATION_VERBS,
        digits or bool(numbers),
    )


@dataclass(slots=True, eq=False)  # never changed once read (not frozen: made faster so)
class _Sentence:
    """What a sentence adds to the index, whatever the context it stands in."""

    forms: frozenset[str]
    # Its terms: what else an answer may need of the sentence (its senses, words, negation, whether it
    # refers back) is worked out from them only when one does.
    terms: list[_Term]
    numbers: tuple[float, ...]


class _Memo:
    """Tokens and sentences already read, per lexicon: documents and their sentences recur (the same
    retrieved passages, a conversation's context growing by a turn), so each is read once. Both are
    cleared when full, as the lexicon's own memo is."""

    def __init__(self) -> None:
        self.terms: dict[str, _Term] = {}
        self.pieces: dict[str, tuple[_Term, ...]] = {}  # the terms of a piece of text between spaces
        self.sentences: dict[str, _Sentence] = {}
        self.names: dict[tuple[str, bool], frozenset[str]] = {}  # _names of a sentence

    def trim(self) -> None:
        if len(self.terms) >= _TERMS_KEPT:
            self.terms = {}
        if len(self.pieces) >= _TERMS_KEPT:
            self.pieces = {}
        if len(self.sentences) >= _SENTENCES_KEPT:
            self.sentences = {}
        if len(self.names) >= _SENTENCES_KEPT:
            self.names = {}


_TERMS_KEPT = 200_000
_SENTENCES_KEPT = 4096  # a sentence's entry takes a few KB (its forms and senses)
_MEMOS: weakref.WeakKeyDictionary[Lexicon, _Memo] = weakref.WeakKeyDictionary()
_NUMBERS, _TERMS = attrgetter("numbers"), attrgetter("terms")


def forget_sentences(lexicon: Lexicon) -> None:
    """Drop the sentences read with `lexicon` (the tokens stay known)."""
    memo = _MEMOS.get(lexicon)
    if memo is not None:
        memo.sentences, memo.names = {}, {}


def _piece(piece: str, lexicon: Lexicon, memo: _Memo) -> tuple[_Term, ...]:
    terms_ = memo.terms
    return tuple(terms_.get(raw) or terms_.setdefault(raw, _term(raw, lexicon)) for raw in raw_tokens(piece))


def _read(sentence: str, lexicon: Lexicon, memo: _Memo) -> _Sentence:
    # raw_tokens(sentence) is the tokens of its pieces between white space, one after the other: the
    # terms of each piece are found once ("word,", "(1984)" recur as they are written).
    pieces = sentence.split()
    found = list(map(memo.pieces.get, pieces))
    if None in found:
        found = [
            terms_ if terms_ is not None else memo.pieces.setdefault(piece, _piece(piece, lexicon, memo))
            for piece, terms_ in zip(pieces, found, strict=True)
        ]
    terms_ = list(chain.from_iterable(cast(list[tuple[_Term, ...]], found)))
    form_sets: list[Iterable[str]] = list(map(_FORMS, terms_))
    numbers: list[float] = []
    if any(map(_SPECIAL, terms_)):
        for k, term in enumerate(terms_):
            if not term.special:
                continue
            if term.low[:1].isdigit() or term.low[:1] in ("$", "€", "£"):
                value = number_value(term.low, terms_[k + 1].lower if k + 1 < len(terms_) else "")
                if value is not None:  # a number: nothing of the word
                    numbers.append(value)
                    form_sets[k] = (number_key(value),)
                    continue
            numbers.extend(term.numbers)
    return _Sentence(frozenset().union(*form_sets), terms_, tuple(numbers))


def _words(terms_: Iterable[_Term]) -> list[str]:
    """The words of a sentence, lowercased (a token that normalises to nothing left out)."""
    return list(filter(None, map(_LOW, terms_)))


@dataclass
class ContextIndex:
    sentences: list[str] = field(default_factory=list)
    sentence_forms: list[frozenset[str]] = field(default_factory=list)
    forms: set[str] = field(default_factory=set)
    numbers: set[float] = field(default_factory=set)
    postings: dict[str, list[int]] = field(default_factory=dict)
    idf: dict[str, float] = field(default_factory=dict)
    question_forms: set[str] = field(default_factory=set)
    question: str = ""
    # A sentence that refers back ("Alf Clausen is a composer. He was born in 1941.") states its facts
    # about something the sentence before names (see `inherited`): whether each sentence follows one of
    # the same pasted piece (only then may it refer back), and the lexicon its names are read with.
    # Only answers to a question need those names: they are read once per context when one does, and
    # kept in a cell that the copies made by with_question share.
    continues: list[bool] = field(default_factory=list)
    lexicon: Lexicon | None = None
    _links: list[tuple[list[frozenset[str]], dict[str, list[int]]]] = field(default_factory=list)
    # The words of the question (lowercased, function words left out), and of each sentence (see
    # `sentence_words`): a name of several words must be found as a phrase.
    question_words: list[str] = field(default_factory=list)
    # The senses and more general senses of the context's words, kept as the terms of each sentence:
    # united only if an answer needs them (see `senses`, `sentence_senses` and `hypernyms`), most do
    # not. A union is kept in a cell that the copies made by with_question share, so it is made once
    # per context.
    sentence_terms: list[list[_Term]] = field(default_factory=list)
    _hypernyms: list[set[int]] = field(default_factory=list)
    _senses: list[set[int]] = field(default_factory=list)
    _distinct_terms: list[set[_Term]] = field(default_factory=list)  # the terms of all its sentences
    # Per sentence, its words and whether it is negated: worked out once per context when an answer
    # needs them (a name of several words, a negation), as the cells above.
    _sentence_words: list[list[list[str]]] = field(default_factory=list)
    _sentence_negated: list[list[bool]] = field(default_factory=list)
    _sentence_senses: dict[int, set[int]] = field(default_factory=dict)
    _new_source: bool = False

    @classmethod
    def build(cls, context: str, question: str, lexicon: Lexicon) -> ContextIndex:
        return cls.of_context(context, lexicon).with_question(question, lexicon)

    @classmethod
    def of_context(cls, context: str, lexicon: Lexicon) -> ContextIndex:
        """The index of the context alone. It is never changed afterwards (with_question makes a new
        one), so one may serve every answer checked against the same context."""
        index = cls(lexicon=lexicon)
        memo = _MEMOS.get(lexicon)
        if memo is None:
            memo = _MEMOS[lexicon] = _Memo()
        memo.trim()
        postings: defaultdict[str, list[int]] = defaultdict(list)
        reads: list[_Sentence] = []
        for source in split_sources(context):
            # A pronoun opening a pasted piece refers to something outside it: no link back.
            index._new_source = True
            for sentence in source_sentences(source):
                reads.append(index._add_sentence(sentence, lexicon, memo, postings))
        # What each sentence adds, gathered in one pass each rather than sentence by sentence.
        index.sentence_forms = list(map(_FORMS, reads))
        index.sentence_terms = list(map(_TERMS, reads))
        index.forms = set().union(*index.sentence_forms)
        index.numbers = set().union(*map(_NUMBERS, reads))
        index.postings = dict(postings)
        n = max(1, len(index.sentences))
        # The idf of a form depends only on how many sentences state it: one logarithm per count.
        weight = [0.0, *(math.log(1.0 + n / count) for count in range(1, n + 1))]
        index.idf = dict(zip(index.postings, map(weight.__getitem__, map(len, index.postings.values())), strict=True))
        return index

    def with_question(self, question: str, lexicon: Lexicon) -> ContextIndex:
        """This context's index, with the question that was asked of it. The question is premise, not
        evidence: its words may be repeated without being hallucinated, but it takes no part in
        aligning answer sentences to the context."""
        question_forms: set[str] = set()
        numbers: set[float] = set()
        for token in tokenize(question):
            if token.value is not None:
                numbers.add(token.value)
                question_forms.add(number_key(token.value))
            else:
                question_forms |= lexicon.word(token.low).forms
        # A shallow copy (dataclasses.replace would check and pass every field again): what is shared
        # is never changed, or is a cell meant to be shared.
        index = copy.copy(self)
        index.question = question
        index.question_words = [low for low, _ in terms(question) if low not in STOPWORDS]
        index.question_forms = question_forms
        index.numbers = self.numbers | numbers
        index.forms = self.forms | question_forms
        return index

    def _add_sentence(
        self, sentence: str, lexicon: Lexicon, memo: _Memo, postings: defaultdict[str, list[int]]
    ) -> _Sentence:
        """Reads the sentence (or finds it read), notes whether it may refer back and posts its forms."""
        sid = len(self.sentences)
        read = memo.sentences.get(sentence)
        if read is None:
            read = memo.sentences[sentence] = _read(sentence, lexicon, memo)
        self.continues.append(sid > 0 and not self._new_source)
        self._new_source = False
        self.sentences.append(sentence)
        # postings[form].append(sid) for every form, run by map() rather than a loop of bytecode: it is
        # the commonest step of the whole build. (list.append returns None, so any() runs them all.)
        any(map(list.append, map(postings.__getitem__, read.forms), repeat(sid)))
        return read

    @property
    def senses(self) -> set[int]:
        """The senses of the context's words."""
        if not self._senses:
            # Each distinct set once: the same words (and senses of words) recur all through a context.
            self._senses.append(set().union(*set(map(_SENSES, self._terms()))))
        return self._senses[0]

    def _terms(self) -> set[_Term]:
        """The distinct terms of the context's sentences."""
        if not self._distinct_terms:
            self._distinct_terms.append(set(chain.from_iterable(self.sentence_terms)))
        return self._distinct_terms[0]

    def sentence_senses(self, sid: int) -> set[int]:
        """The senses of the words of sentence `sid`."""
        senses = self._sentence_senses.get(sid)
        if senses is None:
            senses = self._sentence_senses[sid] = set().union(*map(_SENSES, self.sentence_terms[sid]))
        return senses

    @property
    def hypernyms(self) -> set[int]:
        """The senses up to two levels more general than those of the context's words."""
        if not self._hypernyms:
            self._hypernyms.append(set().union(*set(map(_HYPERNYMS, self._terms()))))
        return self._hypernyms[0]

    @property
    def inherited(self) -> list[frozenset[str]]:
        """Per sentence, the forms of the names it inherits from the sentence before (empty for most)."""
        return self._linked()[0]

    @property
    def inherited_postings(self) -> dict[str, list[int]]:
        """The sentences each inherited form is inherited by."""
        return self._linked()[1]

    def _linked(self) -> tuple[list[frozenset[str]], dict[str, list[int]]]:
        if not self._links:
            assert self.lexicon is not None, "an index is built by of_context"
            memo = _MEMOS.get(self.lexicon)
            if memo is None:
                memo = _MEMOS[self.lexicon] = _Memo()
            inherited: list[frozenset[str]] = []
            postings: dict[str, list[int]] = {}
            before: frozenset[str] = frozenset()
            for sid, (sentence, terms_) in enumerate(zip(self.sentences, self.sentence_terms, strict=True)):
                reference = _reference(_words(terms_), sentence) if self.continues[sid] else ""
                if reference:
                    # Whom the pronoun means is not known: any name of the sentence before may be it.
                    key = (self.sentences[sid - 1], reference == "singular")
                    names = memo.names.get(key)
                    if names is None:
                        names = memo.names[key] = _names(*key, self.lexicon)
                    before = before | names
                    for form in before:
                        postings.setdefault(form, []).append(sid)
                else:
                    before = frozenset()
                inherited.append(before)
            self._links.append((inherited, postings))
        return self._links[0]

    @property
    def sentence_words(self) -> list[list[str]]:
        """The words of each sentence, lowercased, without the function words."""
        if not self._sentence_words:
            words = [[w for w in _words(terms_) if w not in STOPWORDS] for terms_ in self.sentence_terms]
            self._sentence_words.append(words)
        return self._sentence_words[0]

    @property
    def sentence_negated(self) -> list[bool]:
        """Whether each sentence has a negation (a cue or a verb like "fail")."""
        if not self._sentence_negated:
            self._sentence_negated.append([any(map(_NEGATES, terms_)) for terms_ in self.sentence_terms])
        return self._sentence_negated[0]

    def sentences_with(self, form: str) -> list[int]:
        """The sentences that state `form`, or state something about a subject named by it."""
        inherited = self.inherited_postings.get(form)
        found = self.postings.get(form, [])
        return found + inherited if inherited else found

    def claim_forms(self, sid: int) -> frozenset[str]:
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
        idf = self.idf
        postings = self.postings
        for forms in form_sets:
            stated = [form for form in forms if form in idf]
            if len(stated) == 1:
                # The commonest case: one form, its weight to each sentence that states it (once each).
                weight = idf[stated[0]]
                for sid in postings[stated[0]]:
                    scores[sid] = scores.get(sid, 0.0) + weight
                continue
            # Each sentence gets the weight of the rarest of the forms it states: with the forms taken
            # commonest first, the last weight a sentence is given is its own.
            best: dict[int, float] = {}
            for weight, form in sorted((idf[form], form) for form in stated):
                best.update(dict.fromkeys(postings[form], weight))
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
