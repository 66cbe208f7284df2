"""Evidence that an answer says something its context does not: the scorer's features.

Word by word: each answer sentence is aligned to the context sentence it shares the most rare words
with. Its content words are checked against the whole context (is the word, a lemma or a synonym of it
there at all?), its words against their opposites near the same neighbours in the context, and its
negations against the sentences that state the negated claim. A name of several words must be found as
a phrase ("Lord Black of London" is not "Lord Black of Crossharbour ... London").

Relation by relation (relations.py, questions.py), when the answer answers a question: names and
numbers that one clause of the answer puts together must be stated together by the context, and an
answer to a choice ("A or B?", "are both ...?", "what do A and B have in common?") must pick what the
context supports. These are question-only because a summary sentence speaks of the whole document
(its topic, its speakers) and gathers facts from all over it; measured on SummEdits, the pairing check
fires on faithful summaries as often as on edited ones.

The checks point at the ways answers go wrong (a changed number or name, an opposite, an added
negation, an unexplained new word, a swapped pairing, a wrong pick) rather than at the quirks of one
benchmark. Answer length is deliberately not a feature: long, fully supported answers must score as
grounded as short ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from driftline.scorers.grounding.checks import (
    classify,
    forms_of,
    is_content,
    is_negation,
    negation_unsupported,
    opposite_in_context,
)
from driftline.scorers.grounding.context import ContextIndex
from driftline.scorers.grounding.lexicon import Lexicon
from driftline.scorers.grounding.questions import TIME_WORDS, Verdict, check_question
from driftline.scorers.grounding.relations import broken_names, isolated_names, names, nodes, split_pairs
from driftline.scorers.grounding.text import Token, split_sentences, tokenize

__all__ = ["FEATURE_NAMES", "Analysis", "Finding", "analyse"]

FEATURE_NAMES = (
    "numbers",
    "names",
    "antonyms",
    "negations",
    "new_unsupported",
    "unlinked",
    "wrong_choice",
)
# How much each kind of word counts against what an answer adds to its question. A paraphrase or a
# verb of saying may well be faithful: it counts for nothing.
_UNSUPPORTED = {"novel": 1.0, "names": 1.0, "numbers": 1.0, "related": 1.0}
_VERDICT_NOTES = {
    "time": "the context's dates point to the other option",
    "choice": "the context ties what was asked to the other option",
    "yes_no": "the context says otherwise",
    "in_common": "the context does not say it of both",
}


@dataclass(frozen=True)
class Finding:
    kind: str  # numbers | names | novel | antonyms | negations | unlinked | choice
    text: str  # the answer's words
    # For an antonym: the context word it is the opposite of; for an unlinked pair: the other name.
    context_word: str = ""
    note: str = ""  # for a choice: why the context disagrees


@dataclass
class Analysis:
    findings: list[Finding] = field(default_factory=list)
    content_words: int = 0
    has_question: bool = False
    new_words: int = 0  # content words the question does not already contain
    new_unsupported: float = 0.0  # how many of those the context does not support (see _UNSUPPORTED)
    verdict: Verdict | None = None  # on an answer to a choice question, if the context can decide

    def count(self, kind: str) -> int:
        return sum(1 for f in self.findings if f.kind == kind)

    @property
    def verified(self) -> bool:
        """Positive evidence, not just no evidence against: the context decides the question's choice
        the answer's way, and nothing in the answer is unsupported."""
        return self.verdict is not None and self.verdict.supported and not self.findings

    def vector(self) -> list[float]:
        """The feature values, in FEATURE_NAMES order."""
        # Counts are capped: the third changed number is hardly more telling than the second.
        return [
            float(min(self.count("numbers"), 2)),
            float(min(self.count("names"), 2)),
            float(min(self.count("antonyms"), 2)),
            float(min(self.count("negations"), 2)),
            self.new_unsupported / max(1, self.new_words) if self.has_question else 0.0,
            float(min(self.count("unlinked"), 2)),
            float(self.count("choice") > 0),
        ]


def analyse(answer: str, ctx: ContextIndex, lexicon: Lexicon) -> Analysis:
    result = Analysis(has_question=bool(ctx.question.strip()))
    texts = split_sentences(answer)
    sentences = [tokenize(s) for s in texts]
    answer_forms: set[str] = set()
    for tokens in sentences:
        for token in tokens:
            answer_forms |= forms_of(token, lexicon)
    if result.has_question:
        result.verdict = check_question(answer, ctx, lexicon)
    # Comparative words ("later", "older") are the answer's reading of the context's dates: when the
    # dates bear the answer out, they are supported.
    explained = (
        TIME_WORDS if result.verdict and result.verdict.kind == "time" and result.verdict.supported else frozenset()
    )
    for text, tokens in zip(texts, sentences, strict=True):
        _analyse_sentence(tokens, ctx, lexicon, answer_forms, explained, result)
        # Only an answer to a question has its pairings checked: else its names are all that is read.
        answer_nodes = nodes(tokens, text, lexicon) if result.has_question else names(tokens, text, lexicon)
        for node in broken_names(answer_nodes, ctx):
            result.findings.append(Finding("names", node.text))
        if result.has_question:
            for a, b in split_pairs(answer_nodes, ctx, lexicon):
                result.findings.append(Finding("unlinked", a.text, b.text))
            for node in isolated_names(answer_nodes, ctx, lexicon):
                result.findings.append(Finding("unlinked", node.text))
    if result.verdict is not None and not result.verdict.supported:
        note = _VERDICT_NOTES[result.verdict.kind]
        result.findings.append(Finding("choice", result.verdict.option, note=note))
    return result


def _analyse_sentence(
    tokens: list[Token],
    ctx: ContextIndex,
    lexicon: Lexicon,
    answer_forms: set[str],
    explained: frozenset[str],
    result: Analysis,
) -> None:
    positions = [i for i, t in enumerate(tokens) if is_content(t)]
    content = [tokens[i] for i in positions]
    form_sets = [forms_of(t, lexicon) for t in content]
    window = ctx.window(ctx.align(form_sets))
    window_forms: set[str] = set().union(*(ctx.sentence_forms[s] for s in window))
    window_senses: set[int] | None = None  # united only if a word is not in the passage as written
    for k, (token, forms) in enumerate(zip(content, form_sets, strict=True)):
        result.content_words += 1
        kind = "supported" if token.low in explained else classify(token, ctx, lexicon)
        new = not forms & ctx.question_forms
        if new:
            result.new_words += 1
            result.new_unsupported += _UNSUPPORTED.get(kind, 0.0)
        if token.value is None and not forms & window_forms:
            if window_senses is None:
                window_senses = set().union(*(ctx.sentence_senses(s) for s in window))
            # Not in the aligned passage, nor a synonym of a word there: perhaps swapped for its opposite.
            opposite = (
                None
                if lexicon.word(token.low).senses & window_senses
                else opposite_in_context(k, content, form_sets, answer_forms, ctx, lexicon)
            )
            if opposite is not None:
                result.findings.append(Finding("antonyms", token.raw, opposite))
                continue
        if kind in ("numbers", "names", "novel"):
            result.findings.append(Finding(kind, token.raw))
        elif kind == "related" and new and result.has_question:
            # Counted against an answer to a question (new_unsupported), so named in the explanation.
            result.findings.append(Finding("novel", token.raw))
    for i, token in enumerate(tokens):
        if is_negation(token) and negation_unsupported(i, tokens, positions, form_sets, ctx):
            # Name the cue and the word it negates: "not arrested", "did not approve".
            end = next((j for j in positions if j > i), i)
            result.findings.append(Finding("negations", " ".join(t.raw for t in tokens[i : end + 1])))
