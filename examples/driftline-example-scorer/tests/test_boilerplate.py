"""The example scorer on its own, and as Driftline sees it (the Scorer protocol)."""

from __future__ import annotations

from driftline_example_scorer import BoilerplateScorer

from driftline.scorers.base import Scorer, TraceContext


def _span(answer: str, operation: str = "chat") -> dict[str, object]:
    return {"operation": operation, "output_text": answer, "trace_id": "t", "span_id": "s"}


def test_it_is_a_driftline_scorer() -> None:
    s = BoilerplateScorer()
    assert isinstance(s, Scorer)
    assert s.name == "boilerplate" and s.version == "1" and s.needs_trace is False


def test_stock_phrases_are_flagged_with_their_share() -> None:
    out = BoilerplateScorer().score(
        _span("As an AI language model, I cannot know. Canberra is the capital. I hope this helps!"), TraceContext()
    )
    assert out is not None and out.label == "boilerplate"
    assert out.value == 2 / 3 and "2 of 3 sentences" in out.explanation


def test_a_plain_answer_is_ok() -> None:
    out = BoilerplateScorer().score(_span("Canberra is the capital of Australia."), TraceContext())
    assert out is not None and (out.label, out.value) == ("ok", 0.0)


def test_only_llm_answers_apply() -> None:
    s = BoilerplateScorer()
    assert s.applies(_span("x"))
    assert not s.applies(_span("x", operation="execute_tool"))
    assert not s.applies(_span(""))
