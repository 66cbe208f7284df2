"""The scorer's fast text handling against the plain regular expressions it stands for, and what it
keeps between answers against a fresh reading.

tokenize/split_sentences read every context sentence, so they are written for speed (a pattern that
opens with a character class, a split on white space before any pattern runs); these are the plain
patterns they must agree with, token for token and sentence for sentence, on any text.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline.scorers.grounding import GroundednessScorer
from driftline.scorers.grounding.lexicon import Lexicon
from driftline.scorers.grounding.text import raw_tokens, split_sentences, split_sources, terms

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

TOKEN = re.compile(r"(?:[A-Za-z]\.){2,}|[$€£]?\d+(?:[.,]\d+)*(?:%|[A-Za-z]+)?|[A-Za-z0-9]+(?:[-'’][A-Za-z0-9]+)*")
SENTENCE_END = re.compile(
    r"(?<=[.!?])(?<!\b[A-Z]\.)(?<!\b(?:Mr|Ms|Dr|St|Jr|Sr|vs)\.)(?<!\bMrs\.)[\"'”’)\]]*\s+|\s*\n\s*"
)
RUN_ON = re.compile(r"(?<=[a-z0-9)\"”’][.!?])(?=[A-Z][a-z])|(?<= [.!?])(?=[A-Z][a-z])")

# Pieces that make the patterns' edge cases likely: stops after initials and titles, quotes after a
# stop, run-on passages, acronyms, numbers with units, non-ASCII digits and spaces.
PIECES = [
    *"aAbZz09.,!?$€£%'’-\"”“‘)]([ \n\t_é٣\u00a0",
    *["Mr.", "Mrs.", "Dr.", "vs.", "St.", "U.S.", "e.g.", " The ", "5bn", "1,200.5", "n't", "\r\n"],
    *[". ", ".A", " .Th", "x.Ab", "word", "Word", "12", "  ", " \n", "\u2028", "\x1c", "\v"],
]
texts = st.lists(st.sampled_from(PIECES), max_size=30).map("".join)


def reference_sentences(text: str) -> list[str]:
    return [s for part in RUN_ON.split(text) for s in SENTENCE_END.split(part) if s and not s.isspace()]


@settings(max_examples=3000, deadline=None)
@given(texts)
def test_tokens_and_sentences_match_the_plain_patterns(text: str) -> None:
    assert raw_tokens(text) == TOKEN.findall(text)
    assert split_sources(text) == RUN_ON.split(text)
    assert split_sentences(text) == reference_sentences(text)


def test_tokens_and_sentences_match_the_plain_patterns_on_the_dev_sets() -> None:
    paths = [DATA / "halueval-qa" / "dev.jsonl", DATA / "summedits" / "dev.jsonl"]
    for path in paths:
        if not path.exists():
            if os.environ.get("CI") == "true":
                pytest.fail(f"{path} is missing: CI must check the text handling on real data")
            pytest.skip(f"{path} is missing")
    checked = 0
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            for text in json.loads(line).values():
                if isinstance(text, str):
                    assert raw_tokens(text) == TOKEN.findall(text)
                    assert split_sentences(text) == reference_sentences(text)
                    checked += 1
    assert checked > 2000


def test_a_piece_with_punctuation_around_it_is_one_token() -> None:
    tokens = raw_tokens('("Hello," she said.) U.S. 1,200 (1984) it’s')
    assert tokens == ["Hello", "she", "said", "U.S.", "1,200", "1984", "it’s"]
    assert [low for low, _ in terms("The U.S. didn't.")] == ["the", "us", "not"]


def test_a_kept_index_and_sentences_read_before_give_what_a_fresh_reading_gives() -> None:
    """The scorer keeps the index of recent contexts and what it read of each sentence: a context
    scored again, or grown by a turn, must be judged as if it were read for the first time."""
    first = (
        "Alf Heiberg Clausen is an American film and television composer. He was born in 1941 in Minnesota. "
        "The theme music of the series was re-arranged in its third season by Alf Clausen."
    )
    grown = first + " Revenue increased by 5 percent in the second quarter, the company said. It fell 2 million."
    question = "When was the composer born?"
    answers = ["Alf Clausen was born in 1942 in Minnesota.", "He was born in 1941.", "Revenue fell by 5 percent."]
    warm = GroundednessScorer()
    seen = [warm.analyse(a, first, question) for a in answers]  # reads the sentences of `first`
    again = [warm.analyse(a, first, question) for a in answers]  # the kept index of `first`
    on_grown = [warm.analyse(a, grown, question) for a in answers]  # its sentences read before
    fresh = GroundednessScorer(lexicon=Lexicon.load())  # a lexicon of its own: nothing read before
    assert seen == again == [fresh.analyse(a, first, question) for a in answers]
    assert on_grown == [GroundednessScorer(lexicon=Lexicon.load()).analyse(a, grown, question) for a in answers]
    assert [warm.score(a, grown, question) for a in answers] == [fresh.score(a, grown, question) for a in answers]
    assert any(r.label == "hallucinated" for r in (fresh.score(a, grown, question) for a in answers))
