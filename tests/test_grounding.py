"""The offline groundedness scorer: behaviour on hand-made cases, metrics, and a floor on real data.

The dev-set test reads ../shared/data beside the repository. Without it the test is skipped, except
under CI=true, where a missing data set must fail the build rather than pass it silently.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from driftline.scorers.evaluate import FAITHFUL_PATH, Metrics, auroc, compute_metrics, evaluate
from driftline.scorers.grounding import GroundednessScorer, GroundingResult
from driftline.scorers.grounding.dataset import load_examples
from driftline.scorers.grounding.features import FEATURE_NAMES
from driftline.scorers.grounding.model import DEFAULT_MODEL_PATH, LogisticModel
from driftline.scorers.grounding.text import split_sentences

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

HOTEL = (
    "The Oberoi family is an Indian family famous for its hotels. The Oberoi Group is a hotel company "
    "with its head office in Delhi. It was founded in 1934 by Mohan Singh Oberoi."
)
ARREST = (
    "Police arrested the founder of the start-up on Thursday on fraud charges. "
    "The company had lost millions of dollars before it shut down in 2021."
)
BUDGET = "The committee approved the new budget on Monday after a long debate. The vote was unanimous."
REVENUE = "Revenue increased by 5 percent in the second quarter, the company said. Profit margins were stable."
# Two pasted encyclopedia paragraphs, the second glued to the first without a space (as retrieved
# passages often are): every word of a swapped answer is somewhere in here.
COLLEGES = (
    "Boston College is a private Jesuit research university located in the village of Chestnut Hill, "
    "Massachusetts, 6 mi west of downtown Boston.Stanford University is a private research university "
    "in Stanford, California, adjacent to Palo Alto."
)
DIRECTORS = (
    "Allan Dwan (3 April 1885 – 28 December 1981) was a pioneering Canadian-born American film director. "
    "George E. Marshall (December 29, 1891 – February 17, 1975) was an American film and television "
    "director."
)
GENERA = (
    "Ochagavia is a genus of the family Bromeliaceae, endemic to central Chile. "
    "Cardwellia is a genus of trees of the family Proteaceae, native to Queensland, Australia."
)
BANDS = (
    "The New Pornographers is a Canadian indie rock band formed in 1997 in Vancouver. "
    "Kings of Leon is an American rock band that formed in Nashville, Tennessee, in 1999."
)
COMPOSER = (
    "The theme music of the series was re-arranged in its third season by Alf Clausen. "
    "Alf Heiberg Clausen is an American film and television composer. He was born in 1941 in Minnesota."
)


@pytest.fixture(scope="module")
def scorer() -> GroundednessScorer:
    return GroundednessScorer()


def test_identity(scorer: GroundednessScorer) -> None:
    assert scorer.name == "hallucination_offline"
    assert scorer.version == "3"


def test_swapped_entity_is_flagged_and_named(scorer: GroundednessScorer) -> None:
    result = scorer.score("The Oberoi Group has its head office in Mumbai.", HOTEL)
    assert result.label == "hallucinated"
    assert "'Mumbai'" in result.explanation
    assert result.explanation.startswith("unsupported:")


def test_changed_number_is_flagged_and_named(scorer: GroundednessScorer) -> None:
    result = scorer.score("The Oberoi Group was founded in 1997.", HOTEL)
    assert result.label == "hallucinated"
    assert "'1997'" in result.explanation


def test_inserted_negation_is_flagged(scorer: GroundednessScorer) -> None:
    result = scorer.score("The committee did not approve the new budget.", BUDGET)
    assert result.label == "hallucinated"
    assert "negation" in result.explanation and "'not approve'" in result.explanation


def test_antonym_swap_is_flagged(scorer: GroundednessScorer) -> None:
    result = scorer.score("Revenue decreased by 5 percent in the second quarter.", REVENUE)
    assert result.label == "hallucinated"
    assert "'decreased' (context: 'increase')" in result.explanation


def test_faithful_paraphrase_is_grounded(scorer: GroundednessScorer) -> None:
    # "apprehended" is a WordNet synonym of "arrested"; the rest is reordered context.
    for answer in (
        "The founder of the start-up was apprehended by police on fraud charges.",
        "The committee approved the budget unanimously on Monday.",
        "The Oberoi Group, a hotel company, has its head office in Delhi.",
    ):
        result = scorer.score(answer, ARREST + " " + BUDGET + " " + HOTEL)
        assert result.label == "grounded", (answer, result)


def test_rounded_number_and_scale_words_are_supported(scorer: GroundednessScorer) -> None:
    context = "Net income was $94.8 million in the quarter, up from $88.5 million."
    assert scorer.score("Net income was about $95 million.", context).label == "grounded"
    assert scorer.score("Net income was $94.8 billion.", context).label == "hallucinated"


def test_question_words_are_not_counted_as_unsupported(scorer: GroundednessScorer) -> None:
    question = "The Oberoi family is part of a hotel company that has a head office in what city?"
    assert scorer.score("Delhi", HOTEL, question).label == "grounded"
    assert scorer.score("Mumbai, the financial capital of India.", HOTEL, question).label == "hallucinated"


@pytest.mark.parametrize("context", ["", "   \n\t"])
def test_no_context_does_not_guess(scorer: GroundednessScorer, context: str) -> None:
    result = scorer.score("Mumbai", context, "Where is the head office?")
    assert result == GroundingResult(0.5, "no_context", False, result.explanation)
    assert "no context" in result.explanation


def test_value_is_a_probability_and_confident_means_far_from_threshold(scorer: GroundednessScorer) -> None:
    many = scorer.score("The Oberoi Group, founded in 1997 by Ratan Tata, has its head office in Mumbai.", HOTEL)
    one = scorer.score("The Oberoi Group has its head office in Mumbai.", HOTEL)
    none = scorer.score("The Oberoi Group has its head office in Delhi.", HOTEL)
    for r in (many, one, none):
        assert 0.0 <= r.value <= 1.0
    assert many.value > one.value > none.value
    assert many.confident and many.label == "hallucinated"
    # No evidence against an answer is not proof that it is grounded: that case goes to the judge.
    assert not none.confident


def test_empty_answer_is_not_flagged(scorer: GroundednessScorer) -> None:
    result = scorer.score("", HOTEL)
    assert result.label == "grounded" and not result.confident


def test_scores_are_deterministic() -> None:
    cases = [("The Oberoi Group has its head office in Mumbai.", HOTEL, ""), ("Delhi", HOTEL, "Which city?")]
    first = [GroundednessScorer().score(*c) for c in cases]
    second = GroundednessScorer()
    assert [second.score(*c) for c in cases] == first
    assert [second.score(*c) for c in cases] == first  # warm caches change nothing


def test_scores_do_not_depend_on_the_hash_seed() -> None:
    # Set iteration order changes with PYTHONHASHSEED; replicas must still agree on every score.
    code = (
        "from driftline.scorers.grounding import GroundednessScorer\n"
        "from tests.test_grounding import ARREST, HOTEL\n"
        "s = GroundednessScorer()\n"
        "print(repr(s.score('The Oberoi Group, founded in 1997, has its head office in Mumbai.', HOTEL)))\n"
        "print(repr(s.score('The founder was not arrested by police; he was acquitted.', ARREST)))\n"
    )
    root = Path(__file__).resolve().parents[1]
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(root)},
            capture_output=True,
            text=True,
            check=True,
            cwd=root,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1


def test_explanation_is_short_when_much_is_unsupported(scorer: GroundednessScorer) -> None:
    answer = "Alpha Beta Gamma Delta Epsilon Zeta Eta went to Paris in 1990."
    explanation = scorer.score(answer, HOTEL).explanation
    assert "more" in explanation and len(explanation) < 200


# -- relational checks: every word is in the context, the pairing or the pick is not -----------------


def test_swapped_pairing_of_context_words_is_flagged(scorer: GroundednessScorer) -> None:
    question = "Which private research university is located in Chestnut Hill, Boston College or Stanford?"
    result = scorer.score("Stanford University is located in Chestnut Hill.", COLLEGES, question)
    assert result.label == "hallucinated"
    assert "not stated together in the context: 'Stanford University' + 'Chestnut Hill'" in (result.explanation)
    assert scorer.score("Boston College", COLLEGES, question).label == "grounded"


def test_facts_merged_from_two_sentences_are_linked_through_a_pronoun(scorer: GroundednessScorer) -> None:
    question = "When was the composer of the current theme arrangement born?"
    for answer in ("Alf Clausen was born in 1941.", "1941"):
        result = scorer.score(answer, COMPOSER, question)
        assert result.label == "grounded", (answer, result)
    assert scorer.score("Alf Clausen was born in 1942.", COMPOSER, question).label == "hallucinated"


def test_a_year_must_match_exactly(scorer: GroundednessScorer) -> None:
    # Rounding applies to amounts ("about $95 million"), never to years or a changed last digit.
    assert scorer.score("The Oberoi Group was founded in 1935.", HOTEL).label == "hallucinated"
    context = "The village had a population of 743 at the 2010 census."
    assert scorer.score("The population was 730.", context).label == "hallucinated"
    assert scorer.score("The population was about 740.", context).label == "grounded"


def test_a_name_must_be_found_as_a_phrase(scorer: GroundednessScorer) -> None:
    context = "Conrad Black, Lord Black of Crossharbour, is a former newspaper publisher. He grew up in Toronto."
    result = scorer.score("He is Lord Black of Toronto.", context)
    assert result.label == "hallucinated" and "'Lord Black of Toronto'" in result.explanation
    assert scorer.score("He is Lord Black of Crossharbour.", context).label == "grounded"


def test_time_comparison_must_follow_the_context_dates(scorer: GroundednessScorer) -> None:
    question = "Who was born first, George Marshall or Allan Dwan?"
    wrong = scorer.score("George Marshall was born first.", DIRECTORS, question)
    assert wrong.label == "hallucinated"
    assert "contradicts the context: 'George Marshall'" in wrong.explanation
    right = scorer.score("Allan Dwan", DIRECTORS, question)
    # Positive evidence, not just none against: the context's dates decide it the answer's way.
    assert right.label == "grounded" and right.confident
    assert right.explanation == "the context supports the answer's choice: 'Allan Dwan'"
    reversed_wording = scorer.score("George Marshall was born later than Allan Dwan.", DIRECTORS, question)
    assert reversed_wording.label == "grounded"


def test_choice_must_be_the_option_the_context_ties_the_question_to(scorer: GroundednessScorer) -> None:
    question = "Which genus, Cardwellia or Ochagavia, is endemic to central Chile?"
    assert scorer.score("Cardwellia is endemic to central Chile.", GENERA, question).label == "hallucinated"
    right = scorer.score("Ochagavia", GENERA, question)
    assert right.label == "grounded" and right.confident


def test_yes_to_a_both_question_needs_the_fact_for_each(scorer: GroundednessScorer) -> None:
    question = "Are both The New Pornographers and Kings of Leon American rock bands?"
    result = scorer.score("Yes, both are American rock bands.", BANDS, question)
    assert result.label == "hallucinated" and "contradicts the context: 'yes'" in result.explanation
    assert scorer.score("no", BANDS, question).label == "grounded"


def test_what_two_have_in_common_must_hold_for_both(scorer: GroundednessScorer) -> None:
    question = "What profession do Allan Dwan and George Marshall have in common?"
    assert scorer.score("director", DIRECTORS, question).label == "grounded"
    assert scorer.score("Both were Canadian-born.", DIRECTORS, question).label == "hallucinated"


def test_a_long_prompt_is_not_parsed_as_a_choice_question(scorer: GroundednessScorer) -> None:
    # In production the "question" may be a whole prompt; only its last question is read as one.
    prompt = (
        "You are a helpful assistant. Answer from the documents, in one or two sentences, or say you do "
        "not know.\nDocuments: see below.\nWhere is the Oberoi Group's head office?"
    )
    result = scorer.score("The Oberoi Group has its head office in Delhi.", HOTEL, prompt)
    assert result.label == "grounded" and "contradicts" not in result.explanation


def test_run_on_passages_are_split_into_sentences() -> None:
    text = "It was published in the 19th century.First for Women is a magazine. Mark L. Lester directed it."
    assert split_sentences(text) == [
        "It was published in the 19th century.",
        "First for Women is a magazine.",
        "Mark L. Lester directed it.",
    ]


# -- long answers that only restate the context stay grounded ----------------------------------------

LONG_FAITHFUL = [
    (
        COLLEGES,
        "Which private research university is located in Chestnut Hill?",
        "Boston College is the private Jesuit research university located in Chestnut Hill, "
        "Massachusetts, about 6 mi west of downtown Boston. Stanford University, by contrast, is in "
        "Stanford, California, adjacent to Palo Alto.",
    ),
    (
        DIRECTORS,
        "Who was born first, George Marshall or Allan Dwan?",
        "Allan Dwan was born first, on 3 April 1885, while George E. Marshall was born on December 29, "
        "1891. Both were American film directors.",
    ),
    (
        COMPOSER,
        "Who re-arranged the theme music?",
        "The theme music was re-arranged in the third season by Alf Clausen, an American film and "
        "television composer who was born in 1941 in Minnesota.",
    ),
    (
        HOTEL,
        "Where is the head office of the Oberoi Group?",
        "The Oberoi Group, a hotel company founded in 1934 by Mohan Singh Oberoi, has its head office in "
        "Delhi. The Oberoi family is an Indian family famous for its hotels.",
    ),
    (
        ARREST + " " + BUDGET,
        "",
        "Police arrested the founder of the start-up on Thursday on fraud charges; the company had lost "
        "millions of dollars before it shut down in 2021. Separately, the committee approved the new "
        "budget on Monday after a long debate, in a unanimous vote.",
    ),
]


@pytest.mark.parametrize(("context", "question", "answer"), LONG_FAITHFUL)
def test_long_faithful_answers_are_grounded(
    scorer: GroundednessScorer, context: str, question: str, answer: str
) -> None:
    result = scorer.score(answer, context, question)
    assert result.label == "grounded", result


def test_most_shipped_long_faithful_answers_are_grounded(scorer: GroundednessScorer) -> None:
    # 44 faithful answers written for HaluEval dev questions, 8 of them paraphrased; today 35 are
    # labelled grounded (the misses are paraphrases with words the lexicon cannot tie to the passage).
    m = evaluate(scorer, FAITHFUL_PATH)
    assert m.n == 44
    assert m.accuracy >= 0.79, m


def test_shipped_model_matches_the_features() -> None:
    default = LogisticModel.load(DEFAULT_MODEL_PATH)
    assert default.features == FEATURE_NAMES
    # Answer length is no evidence of anything: it is not a feature at all.
    assert not any("length" in name for name in FEATURE_NAMES)
    assert all(w >= 0 for w in default.weights)


def test_model_round_trip(tmp_path: Path) -> None:
    model = LogisticModel(FEATURE_NAMES, tuple(float(i) for i in range(len(FEATURE_NAMES))), -1.0, 0.5, 0.1, 0.9)
    model.save(tmp_path / "m.json")
    assert LogisticModel.load(tmp_path / "m.json") == model
    assert model.probability([0.0] * len(FEATURE_NAMES)) == pytest.approx(1 / (1 + 2.718281828459045))


def test_auroc_is_rank_based_with_ties_averaged() -> None:
    assert auroc([False, True], [0.1, 0.9]) == 1.0
    assert auroc([True, False], [0.1, 0.9]) == 0.0
    assert auroc([False, True], [0.5, 0.5]) == 0.5
    # One positive above both negatives, one tied with a negative: (2 + 1.5) / 4.
    assert auroc([True, True, False, False], [0.9, 0.4, 0.4, 0.1]) == pytest.approx(0.875)


def test_compute_metrics() -> None:
    m = compute_metrics(
        [True, True, False, False],
        [0.9, 0.2, 0.6, 0.1],
        [True, False, True, False],
        0.5,
        ["a", "a", "b", "b"],
    )
    assert (m.n, m.accuracy, m.precision, m.recall, m.f1) == (4, 0.5, 0.5, 0.5, 0.5)
    assert m.balanced_accuracy == 0.5
    assert m.balanced_accuracy_by_domain == {"a": 0.5, "b": 0.5}


def test_evaluate_on_a_small_file(tmp_path: Path, scorer: GroundednessScorer) -> None:
    rows = [
        {"id": "q0-right", "knowledge": HOTEL, "question": "Where?", "answer": "Delhi",
         "hallucinated": False},
        {"id": "q0-h1", "knowledge": HOTEL, "question": "Where?", "answer": "Mumbai",
         "hallucinated": True},
        {"id": "s1", "context": BUDGET, "question": "", "answer": "The committee did not approve the budget.",
         "hallucinated": True, "domain": "news", "seed_summary_id": "x"},
        {"id": "s2", "context": BUDGET, "question": "", "answer": "The committee approved the budget.",
         "hallucinated": False, "domain": "news", "seed_summary_id": "x"},
    ]  # fmt: skip
    path = tmp_path / "set.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    m = evaluate(scorer, path)
    assert isinstance(m, Metrics)
    assert (m.n, m.accuracy, m.auroc, m.threshold) == (4, 1.0, 1.0, scorer.threshold)
    assert m.spans_per_second > 0


def _slice_or_skip(name: str) -> Path:
    path = DATA / name / "dev.jsonl"
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} is missing: CI must measure the scorer on real data")
        pytest.skip(f"{path} is absent (shared/data not beside the repository)")
    return path


# Floors sit about 5-7 points under what this slice gives today (accuracy 0.947 / 0.687, AUROC 0.947 /
# 0.697; in-sample on the full dev sets 0.937 / 0.695), so a real regression trips them and small tuning
# noise does not. These rows were fitted on: the held-out figures are in test_grounding_cv.py.
@pytest.mark.parametrize(
    ("name", "floor", "auroc_floor"),
    [("halueval-qa", 0.89, 0.89), ("summedits", 0.63, 0.59)],
)
def test_accuracy_floor_on_a_fixed_dev_slice(tmp_path: Path, name: str, floor: float, auroc_floor: float) -> None:
    path = _slice_or_skip(name)
    lines = path.read_text(encoding="utf-8").splitlines()
    # Every 4th pair of rows (HaluEval keeps a question's right and wrong answer next to each other):
    # a fixed slice of 150 rows across every domain and document, scored in about a second.
    sliced = tmp_path / "slice.jsonl"
    sliced.write_text("\n".join(line for i, line in enumerate(lines) if (i // 2) % 4 == 0) + "\n", encoding="utf-8")
    assert len(load_examples(sliced)) == 150
    m = evaluate(GroundednessScorer(), sliced)
    assert m.accuracy >= floor, m
    assert m.auroc >= auroc_floor, m
