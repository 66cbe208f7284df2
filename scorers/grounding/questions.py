"""Questions that offer a choice: "Who was born first, A or B?", "Which species, A or B, is native to
South America?", "Are both A and B American rock bands?", "What profession do A and B have in common?".

Every word of a wrong answer to such a question ("B was born first", "Yes, both are American") is in
the context; what gives it away is which option the context ties the asked-about fact to. So the
options are read from the question, each is located in the context, and:
- for a question about time (first, older, later), the year the context gives next to each option
  decides which one the answer should pick;
- otherwise the option whose sentence states clearly more of the question's other words is the one
  the context supports (questions about a measure, "which has more members", are left alone: a count
  is not a word beside the option);
- for a yes/no question about two names ("Are both A and B ...?"), "yes" needs the context to state
  the rest of the question about each of them, and "no" needs it to fall clearly short for one;
- for what two names have in common, what the answer adds must be stated of both.
(Version 2 also read who did what in "who directed ...?" questions and flagged an answer that only
repeated the question's names. Those rules were written from misses on the dev set and did not carry
over to unseen questions, so they are gone.)
Only the question itself is parsed (the last sentence ending in "?"), not a prompt around it. The
checks stay silent (None) when the question is of none of these kinds or the context cannot decide.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from driftline.scorers.grounding.checks import forms_of, is_content
from driftline.scorers.grounding.context import ContextIndex
from driftline.scorers.grounding.lexicon import Lexicon
from driftline.scorers.grounding.relations import Node, nodes, sentences_of
from driftline.scorers.grounding.text import STOPWORDS, Token, split_sentences, tokenize

__all__ = ["TIME_WORDS", "Verdict", "check_question"]

_EARLY = frozenset({"first", "earlier", "earliest", "older", "oldest", "before", "sooner"})
_LATE = frozenset({"younger", "youngest", "later", "latest", "newer", "newest", "last", "after", "recent"})
TIME_WORDS = _EARLY | _LATE
_MEASURES = frozenset(
    {"more", "most", "less", "least", "fewer", "larger", "largest", "bigger", "biggest", "smaller",
     "smallest", "higher", "highest", "lower", "lowest", "longer", "longest", "shorter", "shortest",
     "closer", "closest", "farther", "further", "taller", "tallest"}
)  # fmt: skip
_YEAR = re.compile(r"\b(1[0-9]{3}|20[0-9]{2})\b")
_AUXILIARIES = frozenset(
    {"is", "are", "was", "were", "do", "does", "did", "can", "could", "has", "have", "had", "will", "would"}
)
# A yes/no question comparing two things on a measure ("the same nationality", "different sizes")
# needs that measure read for each; these are left to the other checks.
_SAME = frozenset({"same", "different", "similar", "both", "common", "either"})
# "What profession do A and B have in common?", "What genre do A and B share?"
_IN_COMMON = frozenset({"common", "share", "shared"})
_YES, _NO = frozenset({"yes"}), frozenset({"no", "neither", "not"})
# Words inside a name that are not themselves capitalised: "First for Women", "Bank of America".
_INNER = frozenset({"of", "for", "the", "and", "de", "da", "del", "van", "von", "la", "le", "du", "&"})
# The better option's passage must state at least this share of the question's other words (by idf
# weight), and the other option's passage at most this share of what the better one states.
_DECISIVE = 0.5
# "Are both A and B ...?" is false when one name's passage states less than this share of the rest.
_FAILS = 0.75


@dataclass(frozen=True)
class Verdict:
    kind: str  # time | choice | yes_no | in_common
    option: str  # what the answer picks (for yes/no: "yes" or "no")
    supported: bool  # whether the context agrees with the pick


def check_question(answer: str, ctx: ContextIndex, lexicon: Lexicon) -> Verdict | None:
    asked = _asked(ctx.question)
    if not asked:
        return None
    q_tokens = tokenize(asked)
    options = _options(asked)
    if options is not None:
        return _check_choice(answer, options, q_tokens, ctx, lexicon)
    if q_tokens and q_tokens[0].low in _AUXILIARIES:
        return _check_yes_no(answer, asked, q_tokens, ctx, lexicon)
    if {t.low for t in q_tokens} & _IN_COMMON:
        return _check_in_common(answer, asked, q_tokens, ctx, lexicon)
    return None


def _asked(question: str) -> str:
    """The question itself: the last sentence that ends with a question mark, or the whole text if it
    is one sentence. A prompt with instructions and documents around the question is not parsed."""
    sentences = split_sentences(question)
    for sentence in reversed(sentences):
        if sentence.rstrip().endswith("?"):
            return sentence.strip()
    return sentences[0].strip() if len(sentences) == 1 else ""


# -- choosing between two options ---------------------------------------------------------------


def _name_suffix(words: list[str]) -> list[str]:
    """The trailing name of a run of words: capitalised words and the small words inside names."""
    out: list[str] = []
    for word in reversed(words):
        if word[:1].isupper() or (word.lower() in _INNER and out):
            out.append(word)
        else:
            break
    while out and out[-1].lower() in _INNER:
        out.pop()
    return list(reversed(out))


def _name_prefix(words: list[str]) -> list[str]:
    out: list[str] = []
    for word in words:
        if word[:1].isupper() or word[:1].isdigit() or (word.lower() in _INNER and out):
            out.append(word)
        else:
            break
    while out and out[-1].lower() in _INNER:
        out.pop()
    return out


def _options(question: str) -> tuple[str, str] | None:
    """The two options of "..., A or B?" (or "between A and B"), each a name."""
    text = question.strip().rstrip("?").strip()
    m = re.search(r"\s+or\s+", text)
    if m is None:
        m2 = re.search(r"\bbetween\s+(.+?)\s+and\s+([^,?]+)", text, re.IGNORECASE)
        if m2 is None:
            return None
        a = " ".join(_name_suffix(m2.group(1).split()))
        b = " ".join(_name_prefix(m2.group(2).split()))
        return (a, b) if a and b else None
    before, after = text[: m.start()], text[m.end() :]
    a = ""
    for segment in reversed(before.split(",")):
        a = " ".join(_name_suffix(segment.split()))
        if a:
            break
    b = " ".join(_name_prefix(after.split(",")[0].split()))
    return (a, b) if a and b else None


def _option_words(option: str) -> list[str]:
    return [t.low for t in tokenize(option) if t.low not in STOPWORDS and t.value is None]


def _pick(answer_tokens: Sequence[Token], options: Sequence[list[str]], asked_early: bool | None) -> int | None:
    """Which option the answer picks: the one it names first, unless it says the reverse of what was
    asked ("B is younger than A" answers "who was born first?" with A)."""
    lows = [t.low for t in answer_tokens]
    positions = []
    for words in options:
        hits = [i for i, w in enumerate(lows) if w in words]
        positions.append(min(hits) if hits else len(lows) + 1)
    if positions[0] == positions[1]:
        return None
    first = 0 if positions[0] < positions[1] else 1
    if asked_early is not None and set(lows) & (_LATE if asked_early else _EARLY):
        return 1 - first
    return first


def _check_choice(
    answer: str, options: tuple[str, str], q_tokens: Sequence[Token], ctx: ContextIndex, lexicon: Lexicon
) -> Verdict | None:
    words = [_option_words(o) for o in options]
    if not words[0] or not words[1]:
        return None
    # Words shared by both options ("Airport", "College") tell them apart no better than nothing.
    shared = set(words[0]) & set(words[1])
    words = [[w for w in ws if w not in shared] or ws for ws in words]
    q_words = {t.low for t in q_tokens}
    early, late = bool(q_words & _EARLY), bool(q_words & _LATE)
    asked_early = early if early != late else None
    pick = _pick(tokenize(answer), words, asked_early)
    if pick is None:
        return None
    if asked_early is None and q_words & _MEASURES:
        return None  # "which has more members": a count, not a fact stated beside one option
    if asked_early is not None:
        years = [_year_of(ws, ctx) for ws in words]
        if years[0] is None or years[1] is None or years[0] == years[1]:
            return None
        right = 0 if (years[0] < years[1]) == asked_early else 1
        return Verdict("time", options[pick], pick == right)
    # The rest of the question, without the options: what is asked about them.
    option_forms: set[str] = set()
    for ws in words:
        for w in ws:
            option_forms |= lexicon.word(w).forms
    asked = [forms_of(t, lexicon) for t in q_tokens if is_content(t) and t.value is None]
    asked = [f for f in asked if not f & option_forms]
    # A person named in full in the question may be cited by surname alone in the context.
    a, b = (_support(_locate(ws, ctx, lexicon) or _locate(ws[-1:], ctx, lexicon), asked, ctx) for ws in words)
    if a is None or b is None:
        return None
    right = 0 if a > b else 1
    better, worse = max(a, b), min(a, b)
    # Decisive only when one option's passage states most of what is asked and the other's much less.
    if better < _DECISIVE * _weight(asked, ctx) or worse > _DECISIVE * better:
        return None
    return Verdict("choice", options[pick], pick == right)


def _locate(words: list[str], ctx: ContextIndex, lexicon: Lexicon) -> set[int]:
    """The sentences that name the option."""
    node = Node(" ".join(words), tuple(lexicon.word(w).forms for w in words), tuple(words), "name", 0)
    return sentences_of(node, ctx, lexicon)


def _support(sentences: set[int], asked: list[frozenset[str]], ctx: ContextIndex) -> float | None:
    """The idf weight of the asked-about words that the option's best sentence states."""
    if not sentences:
        return None
    best = 0.0
    for sid in sentences:
        forms = ctx.claim_forms(sid)
        best = max(best, _weight([fs for fs in asked if fs & forms], ctx))
    return best


def _weight(terms: Sequence[frozenset[str]], ctx: ContextIndex) -> float:
    """Summed idf; a word the context never uses weighs as much as the rarest one it does."""
    rarest = math.log(1.0 + max(1, len(ctx.sentences)))
    return sum(max((ctx.idf.get(f, rarest) for f in fs), default=0.0) for fs in terms)


def _year_of(words: list[str], ctx: ContextIndex) -> int | None:
    """The first year after the option's name in the context sentence that names it soonest: a
    person or work is introduced by a sentence that starts with the name and dates it, and is cited
    by surname alone, so the last word finds both ("Allan Dwan (3 April 1885 - ...)")."""
    pattern = re.compile(rf"\b{re.escape(words[-1])}\b", re.IGNORECASE)
    best: tuple[int, str] | None = None
    for sentence in ctx.sentences:
        m = pattern.search(sentence)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), sentence)
    if best is None:
        return None
    year = _YEAR.search(best[1], best[0])
    return int(year.group(1)) if year else None


# -- what two names have in common ------------------------------------------------------------


def _subjects(q_tokens: Sequence[Token], question: str, lexicon: Lexicon) -> tuple[list[Node], list[Node]]:
    """The first group of at least two coordinated names in the question, and its other nodes."""
    q_nodes = nodes(q_tokens, question, lexicon)
    groups: dict[int, list[Node]] = {}
    for n in q_nodes:
        if n.kind == "name":
            groups.setdefault(n.group, []).append(n)
    subjects = next((g for g in groups.values() if len(g) >= 2), [])
    return subjects, [n for n in q_nodes if n not in subjects]


def _check_in_common(
    answer: str, question: str, q_tokens: Sequence[Token], ctx: ContextIndex, lexicon: Lexicon
) -> Verdict | None:
    """What the answer says the two have in common must be stated of each of them."""
    subjects, _ = _subjects(q_tokens, question, lexicon)
    where = [sentences_of(n, ctx, lexicon) for n in subjects]
    if not subjects or not all(where):
        return None
    new = [n for n in nodes(tokenize(answer), answer, lexicon) if not all(f & ctx.question_forms for f in n.forms)]
    located = [(n, sentences_of(n, ctx, lexicon)) for n in new]
    located = [(n, sents) for n, sents in located if sents]
    if not located:
        return None
    for node, sents in located:
        hits = [bool(sents & w) or _stem_in(node, w, ctx) for w in where]
        if any(hits) and not all(hits):
            return Verdict("in_common", node.text, False)
    if all(sents & w for _, sents in located for w in where):
        return Verdict("in_common", located[0][0].text, True)
    return None


def _stem_in(node: Node, sentences: set[int], ctx: ContextIndex) -> bool:
    """Whether a word of those sentences shares the node's stem: "Australia" and "Australian"."""
    stems = [w[: max(4, len(w) - 2)] for w in node.words]
    return any(form.startswith(stem) for sid in sentences for form in ctx.sentence_forms[sid] for stem in stems)


# -- yes/no about two names ----------------------------------------------------------------------


def _check_yes_no(
    answer: str, question: str, q_tokens: Sequence[Token], ctx: ContextIndex, lexicon: Lexicon
) -> Verdict | None:
    a_tokens = tokenize(answer)
    if not a_tokens:
        return None
    first = a_tokens[0].low
    if first not in _YES and first not in _NO:
        return None
    if {t.low for t in q_tokens} & (_SAME - {"both"}):
        return None
    subjects, others = _subjects(q_tokens[1:], question, lexicon)
    if not subjects:
        return None
    asked = [f for n in others for f in n.forms]
    if not asked:
        return None
    total = _weight(asked, ctx)
    if total <= 0:
        return None
    coverage = []
    for subject in subjects:
        support = _support(sentences_of(subject, ctx, lexicon), asked, ctx)
        if support is None:
            return None
        coverage.append(support / total)
    holds = min(coverage) >= 0.999
    # One name's passage states all that is asked, the other's clearly less (by idf weight). A single
    # asked-about word is too thin to call it false for one name: a paraphrase may stand for it.
    fails = len(asked) >= 2 and min(coverage) < _FAILS and max(coverage) >= 0.999
    if not holds and not fails:
        return None
    says_yes = first in _YES
    return Verdict("yes_no", "yes" if says_yes else "no", says_yes == holds)
