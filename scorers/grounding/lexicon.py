"""The shipped WordNet-derived lexicon: lemmas, senses, related senses and antonyms of a word.

Read from `data/wordnet.tsv.gz` (built by `tools/grounding/build_lexicon.py`); nothing is fetched at run time.
Word look-ups are memoised per `Lexicon` instance, since the same few thousand words recur.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

__all__ = [
    "DEFAULT_ANTONYMS_PATH",
    "DEFAULT_LEXICON_PATH",
    "Lexicon",
    "WordInfo",
    "default_lexicon",
    "light_stem",
]

DEFAULT_LEXICON_PATH = Path(__file__).with_name("data") / "wordnet.tsv.gz"
DEFAULT_ANTONYMS_PATH = Path(__file__).with_name("data") / "antonyms.txt"

# WordNet's "morphy" detachment rules: inflected ending -> base ending, per part of speech.
_RULES: dict[str, tuple[tuple[str, str], ...]] = {
    "n": (("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"),
          ("men", "man"), ("ies", "y")),
    "v": (("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"),
          ("ing", "")),
    "a": (("er", ""), ("est", ""), ("er", "e"), ("est", "e")),
    "r": (),
}  # fmt: skip
_STEM_SUFFIXES = ("ingly", "edly", "ing", "ed", "es", "s", "ly", "er", "est")
# The per-word memo is cleared when it reaches this size: a long-running scorer sees an endless stream
# of new names and typos, and an unbounded cache would grow with them.
_CACHE_LIMIT = 200_000
# WordNet lexicographer files of verbs that report speech or thought ("asks", "suggests", "believes"):
# summaries add them freely, so they are weak evidence of anything.
REPORTING_LEXFILES = frozenset({31, 32})


def light_stem(word: str) -> str:
    """A crude suffix strip for words WordNet does not know (names, jargon)."""
    for suffix in _STEM_SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


@dataclass(frozen=True, slots=True)
class WordInfo:
    forms: frozenset[str]  # the word, its lemmas and a light stem: any of them in the context supports it
    senses: frozenset[int]  # most frequent senses of its lemmas
    related: frozenset[int]  # senses one relation away (similar-to, derivation, pertainym, ...)
    hypernyms: frozenset[int]  # senses up to two levels more general
    antonyms: frozenset[str]
    pos: str  # part of speech of its most frequent reading, "" if WordNet does not know the word
    lexfile: int  # WordNet lexicographer file of that reading, -1 if unknown
    proper: bool  # WordNet only knows it as a name ("Mumbai"), so capitalised it is one even first in a sentence

    @property
    def known(self) -> bool:
        return self.pos != ""


@dataclass(frozen=True, slots=True)
class _Lemma:
    count: int
    senses: tuple[int, ...]
    antonyms: tuple[str, ...]
    proper: bool


class Lexicon:
    def __init__(
        self,
        lemmas: dict[tuple[str, str], _Lemma],
        exceptions: dict[tuple[str, str], tuple[str, ...]],
        synsets: list[tuple[int, frozenset[int], frozenset[int]]],
        pos_of: list[str],
        extra_antonyms: dict[str, frozenset[str]] | None = None,
    ) -> None:
        self._lemmas = lemmas
        self._extra_antonyms = extra_antonyms or {}
        self._exceptions = exceptions
        self._synsets = synsets  # id -> (lexfile, related ids, hypernym ids)
        self._pos_of = pos_of
        self._cache: dict[str, WordInfo] = {}

    @classmethod
    def load(cls, path: Path = DEFAULT_LEXICON_PATH, antonyms_path: Path | None = DEFAULT_ANTONYMS_PATH) -> Lexicon:
        lemmas: dict[tuple[str, str], _Lemma] = {}
        exceptions: dict[tuple[str, str], tuple[str, ...]] = {}
        synsets: list[tuple[int, frozenset[int], frozenset[int]]] = []
        pos_of: list[str] = []
        empty: frozenset[int] = frozenset()
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                kind = line[0]
                if kind == "S":
                    _, _sid, pos, lexfile, rel, hyp = line.rstrip("\n").split("\t")
                    synsets.append(
                        (
                            int(lexfile),
                            frozenset(map(int, rel.split(","))) if rel else empty,
                            frozenset(map(int, hyp.split(","))) if hyp else empty,
                        )
                    )
                    pos_of.append(pos)
                elif kind == "L":
                    _, lemma, pos, count, senses, ants, proper = line.rstrip("\n").split("\t")
                    lemmas[(lemma, pos)] = _Lemma(
                        int(count),
                        tuple(map(int, senses.split(","))),
                        tuple(ants.split(",")) if ants else (),
                        proper == "P",
                    )
                elif kind == "X":
                    _, pos, form, bases = line.rstrip("\n").split("\t")
                    exceptions[(form, pos)] = tuple(bases.split(","))
        extra: dict[str, set[str]] = {}
        if antonyms_path is not None:
            for raw in antonyms_path.read_text(encoding="utf-8").splitlines():
                pair = raw.split("#", 1)[0].split()
                if len(pair) == 2:
                    extra.setdefault(pair[0], set()).add(pair[1])
                    extra.setdefault(pair[1], set()).add(pair[0])
        return cls(lemmas, exceptions, synsets, pos_of, {k: frozenset(v) for k, v in extra.items()})

    def lemmas(self, word: str) -> list[tuple[str, str]]:
        """(lemma, part of speech) readings of `word`, as WordNet's morphy finds them."""
        out: list[tuple[str, str]] = []
        for pos in "nvar":
            candidates = {word, *self._exceptions.get((word, pos), ())}
            # Comparative rules only for a word that is no lemma itself: "offer" is not "off" + "er".
            if pos != "a" or not any((word, p) in self._lemmas for p in "nvar"):
                for suffix, base in _RULES[pos]:
                    if word.endswith(suffix) and len(word) > len(suffix) + 1:
                        candidates.add(word[: len(word) - len(suffix)] + base)
            out.extend((c, pos) for c in sorted(candidates) if (c, pos) in self._lemmas)
        return out

    def word(self, word: str) -> WordInfo:
        info = self._cache.get(word)
        if info is None:
            info = self._analyse(word)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[word] = info
        return info

    def _analyse(self, word: str) -> WordInfo:
        readings = self.lemmas(word)
        forms = {word, light_stem(word)}
        senses: set[int] = set()
        antonyms: set[str] = set()
        best: tuple[int, str, int] = (-1, "", -1)
        proper = bool(readings)
        for lemma, pos in readings:
            entry = self._lemmas[(lemma, pos)]
            proper = proper and entry.proper
            forms.add(lemma)
            senses.update(entry.senses)
            antonyms.update(entry.antonyms)
            if entry.count > best[0]:
                best = (entry.count, pos, self._synsets[entry.senses[0]][0])
        for form in forms:
            antonyms |= self._extra_antonyms.get(form, frozenset())
        related: set[int] = set()
        hypernyms: set[int] = set()
        for sid in senses:
            _lexfile, rel, hyp = self._synsets[sid]
            related |= rel
            hypernyms |= hyp
        return WordInfo(
            frozenset(forms),
            frozenset(senses),
            frozenset(related),
            frozenset(hypernyms),
            frozenset(antonyms),
            best[1],
            best[2],
            proper,
        )


@lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    """The shipped lexicon, read once per process: it is immutable, so sharing it is safe."""
    return Lexicon.load()
