"""Relational consistency: does the context state the answer's facts *together*, not just its words?

An answer made only of context words can still be wrong: "Stanford University is located in Chestnut
Hill" when the context puts Boston College in Chestnut Hill. Every word is there; the pairing is not.
So each answer sentence is read as nodes (names, numbers and other content words) in clauses, and
every node is located in the context's sentences (a sentence that refers back with a pronoun also
speaks of what the sentence before names: see ContextIndex.inherited). Then:
- two names or numbers that one clause of the answer puts together, while no sentence of the context
  states them together, are a *split pair*: a likely swap;
- a name or number that no context sentence states with any of the words right beside it in its
  clause (at least two of them, all stated somewhere) is *isolated*: said about the wrong thing;
- a name of several words must be found as a phrase (broken_names).

Only names and numbers are paired, and only within a clause: a faithful answer freely gathers facts
from several sentences ("X, a 2015 film, starred Y"), and verbs and common nouns are paraphrased too
often to demand them. What sits in one clause next to a name is what the answer claims about it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from driftline.scorers.grounding.checks import forms_of, is_content
from driftline.scorers.grounding.context import ContextIndex
from driftline.scorers.grounding.lexicon import Lexicon
from driftline.scorers.grounding.text import STOPWORDS, Token

__all__ = ["Node", "broken_names", "isolated_names", "names", "nodes", "sentences_of", "split_pairs"]

# Function words that may stand inside a name: "Bank of America", "Ludwig van Beethoven".
_NAME_JOINERS = frozenset({"of", "de", "da", "del", "der", "van", "von", "la", "le", "du", "bin", "al"})
# Names separated only by these are coordinated ("A and B", "A, B or C", "A is older than B"): one
# need not co-occur with the other, a comparison or a list names each on its own.
_COORDINATORS = frozenset({"and", "or", "nor", "&", "both", "either", "neither", "between"})
_COMPARATIVES = frozenset({"than", "vs", "versus"})
# Punctuation that separates list items: two capitalised runs with a comma between are two names.
_SEPARATORS = frozenset(',;:()[]"“”')
# What ends a clause: punctuation (a comma before a number is part of a date: "May 2, 1991") and
# the words that open a subordinate or contrasting clause.
_CLAUSE_PUNCTUATION = frozenset(",;:()[]—–")
_MONTH_DAY = re.compile(r"\d{1,2}$")
_CLAUSE_WORDS = frozenset(
    {"while", "whereas", "which", "who", "whom", "whose", "where", "when", "but", "although", "though",
     "because", "after", "before", "since", "until", "unlike", "including", "whereby"}
)  # fmt: skip


@dataclass(frozen=True)
class Node:
    text: str
    forms: tuple[frozenset[str], ...]  # the forms of each of its content tokens
    words: tuple[str, ...]  # its tokens, lowercased (with the joiners of a name: "bank", "of", "america")
    kind: str  # name | number | word
    group: int  # coordinated names share a group; every other node has a group of its own
    clause: int = 0


def _is_name(token: Token, lexicon: Lexicon) -> bool:
    if token.value is not None or not token.capitalized or token.low in STOPWORDS:
        return False
    info = lexicon.word(token.low)
    return not token.sentence_initial or not info.known or info.proper


def nodes(tokens: Sequence[Token], text: str, lexicon: Lexicon) -> list[Node]:
    """The answer sentence `tokens` (read from `text`) as names, numbers and content words."""
    out: list[Node] = []
    group = 0
    clause = 0
    after_name = False  # nothing but function words since the last name
    coordinated = False  # and a coordinator or a comma among them
    compared_to = 0  # the group of the last name, right after "than": "A is older than B"
    last_name_group = 0
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if i > 0 and _clause_break(tokens[i - 1], token, text):
            clause += 1
        if _starts_name(tokens, i, text, lexicon):
            j = _name_end(tokens, i, text, lexicon)
            if compared_to:
                group = compared_to
            elif after_name and (coordinated or _separated(tokens[i - 1], token, text)):
                pass  # "A and B", "A, B": the same group
            else:
                group = max(n.group for n in out) + 1 if out else 1
            out.append(_name(tokens[i:j], lexicon, group, clause))
            after_name, coordinated, compared_to, last_name_group = True, False, 0, group
            i = j
            continue
        if token.low in _COORDINATORS:
            coordinated = True
        elif token.low in _COMPARATIVES:
            compared_to = last_name_group
        elif token.value is not None or is_content(token):
            compared_to = 0
            group = max(n.group for n in out) + 1 if out else 1
            kind = "number" if token.value is not None else "word"
            out.append(Node(token.raw, (forms_of(token, lexicon),), (token.low,), kind, group, clause))
            after_name, coordinated = False, False
        i += 1
    return out


def names(tokens: Sequence[Token], text: str, lexicon: Lexicon) -> list[Node]:
    """The name nodes of `nodes`, without working out clauses or groups: all that broken_names reads."""
    out: list[Node] = []
    i = 0
    while i < len(tokens):
        if tokens[i].capitalized and _starts_name(tokens, i, text, lexicon):  # a name starts with a capital
            j = _name_end(tokens, i, text, lexicon)
            out.append(_name(tokens[i:j], lexicon, 0, 0))
            i = j
        else:
            i += 1
    return out


def _starts_name(tokens: Sequence[Token], i: int, text: str, lexicon: Lexicon) -> bool:
    token = tokens[i]
    return _is_name(token, lexicon) or (
        token.capitalized
        and token.sentence_initial
        and token.low not in STOPWORDS
        and i + 1 < len(tokens)
        and _is_name(tokens[i + 1], lexicon)
        and not _separated(token, tokens[i + 1], text)
    )


def _name(span: Sequence[Token], lexicon: Lexicon, group: int, clause: int) -> Node:
    forms = tuple(forms_of(t, lexicon) for t in span if t.low not in _NAME_JOINERS)
    words = tuple(t.low for t in span)
    return Node(" ".join(t.raw for t in span), forms, words, "name", group, clause)


def _name_end(tokens: Sequence[Token], i: int, text: str, lexicon: Lexicon) -> int:
    j = i + 1
    while j < len(tokens) and not _separated(tokens[j - 1], tokens[j], text):
        if _is_name(tokens[j], lexicon) and not _modifier(tokens, j, lexicon):
            j += 1
        elif (
            tokens[j].low in _NAME_JOINERS
            and j + 1 < len(tokens)
            and _is_name(tokens[j + 1], lexicon)
            and not _separated(tokens[j], tokens[j + 1], text)
        ):
            j += 2
        else:
            break
    return j


def _clause_break(prev: Token, token: Token, text: str) -> bool:
    if token.low in _CLAUSE_WORDS:
        return True
    if prev.start < 0 or token.start < 0:
        return False
    between = text[prev.start + len(prev.raw) : token.start]
    if "," in between and token.value is not None and prev.value is not None:
        return False  # "May 2, 1991", "1,200"
    if "," in between and token.value is not None and _MONTH_DAY.match(prev.raw):
        return False
    return any(c in _CLAUSE_PUNCTUATION for c in between)


def _modifier(tokens: Sequence[Token], j: int, lexicon: Lexicon) -> bool:
    """A capitalised (proper) adjective before a common noun starts a description, not more of the name:
    "Kings of Leon | American rock bands" (but "American Airlines" is one name)."""
    info = lexicon.word(tokens[j].low)
    following = tokens[j + 1] if j + 1 < len(tokens) else None
    return info.pos == "a" and info.proper and following is not None and not following.capitalized


def _separated(a: Token, b: Token, text: str) -> bool:
    if a.start < 0 or b.start < 0:
        return False
    return any(c in _SEPARATORS for c in text[a.start + len(a.raw) : b.start])


def broken_names(answer_nodes: Sequence[Node], ctx: ContextIndex) -> list[Node]:
    """Names of several words whose words the context states, but never together: "Lord Black of
    London" where the context has "Lord Black of Crossharbour" and London nowhere near. Words the
    answer joins with "of" may stand apart in one sentence ("Sunyani West District of Ghana" for
    "Sunyani West District in the Brong-Ahafo Region of Ghana")."""
    out = []
    for node in answer_nodes:
        if node.kind != "name" or not all(forms & ctx.forms for forms in node.forms):
            continue
        words = [w for w in node.words if w not in STOPWORDS and w not in _NAME_JOINERS]
        joined = [False]
        for prev, word in pairwise(node.words):
            if word not in STOPWORDS and word not in _NAME_JOINERS:
                joined.append(prev in _NAME_JOINERS)
        for k in range(1, len(words)):
            if ctx.has_phrase(words[k - 1 : k + 1]):
                continue
            if joined[k] and _together(words[k - 1], words[k], ctx):
                continue
            out.append(node)
            break
    return out


def _together(a: str, b: str, ctx: ContextIndex) -> bool:
    return bool(set(ctx.postings.get(a, ())) & set(ctx.postings.get(b, ())))


def sentences_of(node: Node, ctx: ContextIndex, lexicon: Lexicon | None = None) -> set[int]:
    """The context sentences that state the node: every one of its words (some form of it) is there.
    A name stated in full somewhere is also found where it is cited by its first or last word alone
    ("Thomas Balston ... Balston was educated at Eton"), if that word is itself a name and not a
    common word ("Stanford University" is not every "university")."""
    found = _all_of(node.forms, ctx)
    if lexicon is not None and found and node.kind == "name" and len(node.forms) > 1:
        for word, forms in ((node.words[0], node.forms[0]), (node.words[-1], node.forms[-1])):
            info = lexicon.word(word)
            if not info.known or info.proper:
                found = found | _all_of((forms,), ctx)
    return found


def _all_of(forms_list: Sequence[frozenset[str]], ctx: ContextIndex) -> set[int]:
    found: set[int] | None = None
    for forms in forms_list:
        here: set[int] = set()
        for form in forms:
            here.update(ctx.sentences_with(form))
        found = here if found is None else found & here
        if not found:
            return set()
    return found or set()


def split_pairs(answer_nodes: Sequence[Node], ctx: ContextIndex, lexicon: Lexicon) -> list[tuple[Node, Node]]:
    """Pairs of names or numbers that one clause of the answer states together (coordinated names
    aside), that the context states each, but never in one sentence."""
    entities = [n for n in answer_nodes if n.kind != "word"]
    located = [(n, sentences_of(n, ctx, lexicon)) for n in entities]
    located = [(n, sents) for n, sents in located if sents]
    out: list[tuple[Node, Node]] = []
    for i, (a, a_sents) in enumerate(located):
        for b, b_sents in located[i + 1 :]:
            if a.clause == b.clause and a.group != b.group and not a_sents & b_sents:
                out.append((a, b))
    return out


def isolated_names(answer_nodes: Sequence[Node], ctx: ContextIndex, lexicon: Lexicon, reach: int = 2) -> list[Node]:
    """Names and numbers that the context states, next to at least two words of their clause that it
    states too, but never in a sentence with any of them."""
    located = [(n, sentences_of(n, ctx, lexicon)) for n in answer_nodes]
    out: list[Node] = []
    for k, (node, sents) in enumerate(located):
        if node.kind == "word" or not sents:
            continue
        near = [
            m
            for m in range(max(0, k - reach), min(len(located), k + reach + 1))
            if m != k and located[m][0].clause == node.clause and located[m][0].group != node.group
        ]
        partners = [located[m][1] for m in near if located[m][0].kind == "word"]
        if len(partners) >= 2 and all(partners) and not any(p & sents for p in partners):
            out.append(node)
    return out
