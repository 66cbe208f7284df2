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

_TOKEN = re.compile(
    r"(?:[A-Za-z]\.){2,}"  # acronyms with dots: U.S., e.g.
    r"|[$€£]?\d+(?:[.,]\d+)*(?:%|[A-Za-z]+)?"  # numbers, with a unit or scale glued on: $5bn, 15%
    r"|[A-Za-z0-9]+(?:[-'’][A-Za-z0-9]+)*"  # words, hyphenated compounds, contractions
)
_NUMBER = re.compile(r"[$€£]?(\d+(?:\.\d+)?)([a-z%]*)")
# A sentence ends at . ! ? (before any closing quote or bracket) followed by space, or at a line break.
# A stop after an initial or a title ("Mark L. Lester", "Dr. Smith") ends nothing.
_SENTENCE_END = re.compile(
    r"(?<=[.!?])(?<!\b[A-Z]\.)(?<!\b(?:Mr|Ms|Dr|St|Jr|Sr|vs)\.)(?<!\bMrs\.)[\"'”’)\]]*\s+|\s*\n\s*"
)
# Text pasted together from two sources often runs on without a space: "19th century.First for Women
# is", "8-6.Anna Kournikova", "on the U55 .The Reichstag". A lowercase letter, a digit, a closing
# bracket or a space before the stop and a capitalised word after it tell it from "U.S.A" or "Mk.II".
_RUN_ON = re.compile(r"(?<=[a-z0-9)\"”’][.!?])(?=[A-Z][a-z])|(?<= [.!?])(?=[A-Z][a-z])")


@dataclass(frozen=True, slots=True)
class Token:
    raw: str
    low: str  # lowercased, acronym dots and possessives removed, "n't" -> "not"
    value: float | None  # numeric value when the token is a number
    capitalized: bool
    sentence_initial: bool
    start: int = -1  # offset in the text it was read from


def _number_value(low: str, following: str) -> float | None:
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
def _normalize(raw: str) -> str:
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
        low = _normalize(raw)
        if not low:
            continue
        following = matches[k + 1].group(0).lower() if k + 1 < len(matches) else ""
        value: float | None = None
        if low[0].isdigit() or low[0] in "$€£":
            value = _number_value(low, following)
        elif low in NUMBER_WORDS:
            value = NUMBER_WORDS[low]
        j = m.start() - 1
        while j >= 0 and text[j] in " \t\"'(“‘*-•":
            j -= 1
        out.append(Token(raw, low, value, raw[0].isupper(), j < 0 or text[j] in ".!?:\n", m.start()))
    return out


def terms(text: str) -> list[tuple[str, float | None]]:
    """The (normalised word, numeric value) pairs of `tokenize`, without the rest: the fast path
    for contexts, which are long and need no capitalisation or position."""
    raws: list[str] = _TOKEN.findall(text)
    out: list[tuple[str, float | None]] = []
    for k, raw in enumerate(raws):
        low = _normalize(raw)
        if not low:
            continue
        if low[0].isdigit() or low[0] in "$€£":
            following = raws[k + 1].lower() if k + 1 < len(raws) else ""
            out.append((low, _number_value(low, following)))
        else:
            out.append((low, NUMBER_WORDS.get(low)))
    return out


def split_sources(text: str) -> list[str]:
    """The text cut where two pasted pieces run on into each other (see _RUN_ON)."""
    return _RUN_ON.split(text)


def split_sentences(text: str) -> list[str]:
    return [s for part in split_sources(text) for s in _SENTENCE_END.split(part) if s and not s.isspace()]
