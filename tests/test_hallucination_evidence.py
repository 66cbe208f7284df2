"""The offline hallucination scorer judges an answer only against evidence (retrieved documents, tool
results, documents pasted into the prompt), never against instructions; and an empty or role-only
answer is never labelled hallucinated."""

from __future__ import annotations

import pytest

from driftline.scorers.base import TraceContext
from driftline.scorers.grounding import GroundednessScorer
from driftline.scorers.grounding.evidence import is_empty_answer, split_prompt
from driftline.scorers.hallucination import OfflineHallucinationScorer, grounding_context, grounding_question

PASSAGE = "The Eiffel Tower was completed in March 1889 for the World's Fair in Paris."


@pytest.fixture(scope="module")
def scorer() -> OfflineHallucinationScorer:
    return OfflineHallucinationScorer()


def _chat(answer: str, system: str = "", user: str = "", **more: str) -> dict[str, object]:
    return {"span_id": "s", "operation": "chat", "output_text": answer, "input_text": user, "system_prompt": system,
            "start_time": 1, **more}  # fmt: skip


def test_a_plain_chat_call_gets_no_context_not_a_verdict(scorer: OfflineHallucinationScorer) -> None:
    # The system prompt is an instruction: nothing in it can support or contradict "30 days".
    span = _chat("You have 30 days to return an item.", "You are a support agent.", "How long can I return things?")
    s = scorer.score(span, TraceContext())
    assert s is not None and s.label == "no_context", s
    assert grounding_context(span, TraceContext()) == ""


@pytest.mark.parametrize(
    "system",
    [
        "You are a helpful assistant.\nAnswer questions from customers.\nBe brief.",
        "You are Acme's assistant. Answer the following question:\nWhat is our refund window?",
        'Reply in JSON. Output format:\n```json\n{"answer": "..."}\n```',
        "You are X.\n---\nRules:\n- be nice\n- never swear\n---\n",
        "Follow these rules. Always be polite. Never discuss pricing. Refer billing questions to the team.",
        # A document's label over instructions: still instructions.
        "Background: You are a travel assistant for Globetrek. Help users plan trips.\nTone: warm and brief.",
        "<context>You are a support agent. Always answer in English.</context>",
    ],
)
def test_instructions_are_not_evidence(system: str) -> None:
    assert split_prompt(system)[0] == []


@pytest.mark.parametrize(
    ("prompt", "where"),
    [
        (f"Answer from: {PASSAGE}", "system_prompt"),  # the demo's prompt
        ("Use the following pieces of context to answer the question at the end. If you don't know the answer, "
         f"just say that you don't know.\n\n{PASSAGE}\n\nQuestion: When was it completed?\nHelpful Answer:",
         "system_prompt"),  # LangChain's question-answering prompt
        (f"Context information is below.\n---------------------\n{PASSAGE}\n---------------------\nGiven the "
         "context information and not prior knowledge, answer the query.\nQuery: When?\nAnswer: ", "input_text"),
        (f'<documents><document index="1">{PASSAGE}</document></documents>\nWhen was it completed?', "input_text"),
        (f"Given the context please answer the question.\nContext: {PASSAGE}\nQuestion: When?\nAnswer:",
         "input_text"),  # Haystack's
        (f"Summarize the following article:\n\n{PASSAGE}", "input_text"),
        (f"You are a tour guide. Here is some background on the tower: {PASSAGE}", "system_prompt"),
    ],
)  # fmt: skip
def test_documents_pasted_into_the_prompt_are_evidence(
    scorer: OfflineHallucinationScorer, prompt: str, where: str
) -> None:
    docs, rest = split_prompt(prompt)
    assert docs == [PASSAGE] and PASSAGE not in rest
    right, wrong = "It was completed in March 1889.", "It was completed in 1925, in Berlin."
    for answer, label in ((right, "grounded"), (wrong, "hallucinated")):
        span = _chat(answer, **{where: prompt})
        s = scorer.score(span, TraceContext())
        assert s is not None and s.label == label, (answer, s)
    # The pasted document is evidence, not part of the question.
    assert PASSAGE not in grounding_question(_chat(right, user=prompt))


def test_retrieved_documents_still_count(scorer: OfflineHallucinationScorer) -> None:
    trace = TraceContext([{"span_id": "r", "start_time": 0, "retrieved_documents": f'[{{"content": "{PASSAGE}"}}]'}])
    s = scorer.score(_chat("It was completed in 1925.", "You are a support agent.", "When?"), trace)
    assert s is not None and s.label == "hallucinated"


@pytest.mark.parametrize("answer", ["", "   \n", "assistant: ", "assistant:", "Assistant:  \n", "AI: ", "..."])
def test_an_empty_or_role_only_answer_is_never_hallucinated(scorer: OfflineHallucinationScorer, answer: str) -> None:
    # A tool-calling step stored as "assistant: " (no text, only a tool call) said nothing to check.
    span = _chat(answer, f"Answer from: {PASSAGE}", "What was completed in 1889?")
    assert is_empty_answer(answer)
    assert not scorer.applies(span)
    assert scorer.score(span, TraceContext()) is None
    direct = GroundednessScorer().score(answer, PASSAGE, "What was completed in 1889?")
    assert direct.label != "hallucinated" and direct.explanation == "no answer to check"


def test_a_role_tag_before_a_real_answer_is_not_part_of_it(scorer: OfflineHallucinationScorer) -> None:
    span = _chat("assistant: It was completed in March 1889.", f"Answer from: {PASSAGE}", "When was it completed?")
    s = scorer.score(span, TraceContext())
    assert s is not None and s.label == "grounded" and "assistant" not in s.explanation


def test_what_counts_against_an_answer_is_named(scorer: OfflineHallucinationScorer) -> None:
    """A high score never comes with "no unsupported words found"."""
    g = GroundednessScorer()
    for answer in ("assistant", "The tower is a landmark.", "It opened in 1925.", "Berlin"):
        r = g.score(answer, PASSAGE, "What is the Eiffel Tower?")
        if r.label == "hallucinated":
            assert r.explanation != "no unsupported words found", (answer, r)
