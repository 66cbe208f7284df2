"""Tokens, sentences and numbers: the light text handling the groundedness scorer needs.

Deliberately regex-based (no tokenizer model) so that scoring stays fast and deterministic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "NEGATION_CUES",
    "NEGATION_VERBS",
    "NUMBER_WORDS",
    "STOPWORDS",
    "Token",
    "normalize",
    "number_value",
    "raw_tokens",
    "source_sentences",
    "split_sentences",
    "split_sources",
    "terms",
    "tokenize",
]

# Function words and the filler of transcripts: they carry no checkable fact.
# A word list reads better as text than as 160 quoted items.
STOPWORDS = frozenset(
    (
        "a an the and or but if then else of to in on at by for with from as is are was were be been being "
        "am do does did done has have had having this that these those it its they them their theirs there "
        "here he she him her his hers we us our ours you your yours i me my mine which who whom whose what "
        "when where why how all any both each few more most other others some such only own same so than too "
        "very can will just should would could may might must shall also into onto over under again further "
        "once about above below up down out off through during before after between while because until "
        "against per via s t let lets get got gets getting make makes made thing things way well yes okay ok "
        "oh um uh yeah hi hello thanks thank please even still really one ones another something anything "
        "everything someone anyone everyone like"
    ).split()
)

# Grammatical negation. Lexical negatives ("lack", "absence", "without") are left out on purpose:
# paraphrases use them freely, so as cues they flag faithful answers.
NEGATION_CUES = frozenset(
    {"not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "cannot", "nowhere", "unable"}
)
# "fail to X" negates X as surely as "not X".
NEGATION_VERBS = frozenset({"fail", "fails", "failed", "failing"})

NUMBER_WORDS: dict[str, float] = {
    "zero": 0, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fifteen": 15, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "hundred": 100, "thousand": 1000,
    # Ordinals from "third" on: "first", "second" and "one" are too often not numbers at all.
    "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10,
}  # fmt: skip
_SCALES: dict[str, float] = {
    "k": 1e3, "thousand": 1e3, "m": 1e6, "mn": 1e6, "mln": 1e6, "million": 1e6, "millions": 1e6,
    "b": 1e9, "bn": 1e9, "billion": 1e9, "billions": 1e9, "tn": 1e12, "trillion": 1e12,
}  # fmt: skip

# Every token starts with a letter, a digit or a currency sign, so the pattern opens with that class
# and the engine skips the rest in one scan instead of trying a match at every character; what follows
# the first character is told apart by what that character was (the lookbehinds).
_TOKEN = re.compile(
    r"[A-Za-z$€£\d](?:"
    r"(?<=[A-Za-z])\.(?:[A-Za-z]\.)+"  # acronyms with dots: U.S., e.g.
    r"|(?<=[$€£])\d+(?:[.,]\d+)*(?:%|[A-Za-z]+)?"  # numbers, with a unit or scale glued on: $5bn, 15%
    r"|(?<=\d)\d*(?:[.,]\d+)*(?:%|[A-Za-z]+)?"
    r"|(?<=[A-Za-z])[A-Za-z0-9]*(?:[-'’][A-Za-z0-9]+)*"  # words, hyphenated compounds, contractions
    r")"
)
_NUMBER = re.compile(r"[$€£]?(\d+(?:\.\d+)?)([a-z%]*)")
# A sentence ends at . ! ? (before any closing quote or bracket) followed by space, or at a line break.
# A stop after an initial or a title ("Mark L. Lester", "Dr. Smith") ends nothing.
# The pattern matches the stop too, and opens with the class of the characters a separator must hold
# (a stop or a line break: not every space), so that the engine scans for it quickly. A line break's
# separator is the whole run of white space around it; the pattern matches from the line break on and
# source_sentences finds where the run starts. split_sentences leaves the stop with its sentence.
_SENTENCE_END = re.compile(
    r"[.!?\n](?:(?<=[.!?])(?<!\b[A-Z]\.)(?<!\b(?:Mr|Ms|Dr|St|Jr|Sr|vs)\.)(?<!\bMrs\.)[\"'”’)\]]*\s+"
    r"|(?<=\n)\s*)"
)
# Text pasted together from two sources often runs on without a space: "19th century.First for Women
# is", "8-6.Anna Kournikova", "on the U55 .The Reichstag". A lowercase letter, a digit, a closing
# bracket or a space before the stop and a capitalised word after it tell it from "U.S.A" or "Mk.II".
# The text is cut right after the stop.
_RUN_ON = re.compile(r"[.!?](?<=[a-z0-9)\"”’ ][.!?])(?=[A-Z][a-z])")


# Never changed once made, but not frozen: a frozen dataclass is made several times slower, and every
# answer is read token by token. Hashed by value, as a frozen one is.
@dataclass(slots=True, unsafe_hash=True)
class Token:
    raw: str
    low: str  # lowercased, acronym dots and possessives removed, "n't" -> "not"
    value: float | None  # numeric value when the token is a number
    capitalized: bool
    sentence_initial: bool
    start: int = -1  # offset in the text it was read from


@lru_cache(maxsize=1 << 16)  # a pure function of two words, which recur
def number_value(low: str, following: str) -> float | None:
    m = _NUMBER.fullmatch(low.replace(",", ""))
    if m is None:
        return None
    value = float(m.group(1))
    unit = m.group(2)
    if unit in _SCALES:
        value *= _SCALES[unit]
    elif unit in ("", "%") and following in _SCALES:
        value *= _SCALES[following]
    elif unit not in ("", "%", "st", "nd", "rd", "th", "s"):
        return None  # "3d", "4g", "mp3": an identifier, not a quantity
    return value


@lru_cache(maxsize=1 << 16)  # a pure function of a word: memoised, since words recur constantly
def normalize(raw: str) -> str:
    low = raw.lower().replace("’", "'")
    if low[-1] == "." and low[0].isalpha():
        return low.replace(".", "")  # an acronym: "U.K." matches "UK"
    if low.endswith("n't"):
        return "not"
    if "'" in low:
        return low.split("'", 1)[0]
    return low


def tokenize(text: str) -> list[Token]:
    matches = list(_TOKEN.finditer(text))
    out: list[Token] = []
    for k, m in enumerate(matches):
        raw = m.group(0)
        low = normalize(raw)
        if not low:
            continue
        value: float | None = None
        if low[0].isdigit() or low[0] in "$€£":
            value = number_value(low, matches[k + 1].group(0).lower() if k + 1 < len(matches) else "")
        elif low in NUMBER_WORDS:
            value = NUMBER_WORDS[low]
        j = m.start() - 1
        while j >= 0 and text[j] in " \t\"'(“‘*-•":
            j -= 1
        out.append(Token(raw, low, value, raw[0].isupper(), j < 0 or text[j] in ".!?:\n", m.start()))
    return out


# No token has, starts or ends with one of these (an acronym's last stop aside: see raw_tokens).
_AROUND_WORDS = ",.;:!?()[]\"'“”‘’"


def raw_tokens(text: str) -> list[str]:
    """The tokens of `text` as written, before `normalize`: what _TOKEN finds, found sooner. No token
    spans white space, and a piece of text between spaces that is one plain word or number with only
    punctuation around it ("word,", "(1984)") is that one token, with no regular expression run."""
    out: list[str] = []
    for piece in text.split():
        core = piece.strip(_AROUND_WORDS)
        if core.isascii() and (core.isalpha() or core.isdecimal()):
            out.append(core)
        elif core:
            out.extend(_TOKEN.findall(piece))
    return out


def terms(text: str) -> list[tuple[str, float | None]]:
    """The (normalised word, numeric value) pairs of `tokenize`, without the rest: the fast path
    for contexts, which are long and need no capitalisation or position."""
    raws = raw_tokens(text)
    out: list[tuple[str, float | None]] = []
    for k, raw in enumerate(raws):
        low = normalize(raw)
        if not low:
            continue
        if low[0].isdigit() or low[0] in "$€£":
            following = raws[k + 1].lower() if k + 1 < len(raws) else ""
            out.append((low, number_value(low, following)))
        else:
            out.append((low, NUMBER_WORDS.get(low)))
    return out


def split_sources(text: str) -> list[str]:
    """The text cut where two pasted pieces run on into each other (see _RUN_ON)."""
    out: list[str] = []
    start = 0
    for m in _RUN_ON.finditer(text):
        out.append(text[start : m.end()])
        start = m.end()
    out.append(text[start:])
    return out


def split_sentences(text: str) -> list[str]:
    out: list[str] = []
    for part in split_sources(text):
        out.extend(source_sentences(part))
    return out


def source_sentences(part: str) -> list[str]:
    """The sentences of one piece of `split_sources`."""
    out: list[str] = []
    start = 0
    for m in _SENTENCE_END.finditer(part):
        end = m.start()
        if part[end] == "\n":
            # The separator starts with the white space before the line break. A separator runs to the
            # end of its white space, so the one before ends short of this: the walk stops after `start`.
            while end > start and part[end - 1].isspace():
                end -= 1
        else:
            end += 1  # the stop ends the sentence
        if start < end and not part[start:end].isspace():
            out.append(part[start:end])
        start = m.end()
    if start < len(part) and not part[start:].isspace():
        out.append(part[start:])
    return out
