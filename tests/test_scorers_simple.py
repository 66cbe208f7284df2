"""Cost, latency, critical path, refusal and PII scorers.

Cost is checked on REAL spans: the real `openai` client through the real OpenInference
instrumentor against the fake provider (tests/support/fake_openai.py, the only fake), encoded
to OTLP and normalized (with genai-prices) like the collector does. The other scorers read only
plain columns, so their rows are built by hand (marked `row(...)`), which lets each case state
exactly the one thing it is about.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import openai
import pytest

import driftline.sdk as dl
from driftline.collector.normalize import Normalizer
from driftline.pricing import Pricer
from driftline.scorers.base import Score, Scorer, SpanRow, TraceContext
from driftline.scorers.cost import CostScorer, TraceCostScorer
from driftline.scorers.latency import CriticalPathScorer, LatencyScorer, critical_path
from driftline.scorers.pii import PIIScorer, find_pii, iban_valid, luhn_valid
from driftline.scorers.refusal import RefusalScorer
from tests.support.fake_openai import fake_openai
from tests.support.otel_capture import Capture, Instrumentor, capture, instrumented, iter_spans

NO_TRACE = TraceContext()
T0 = 1_760_000_000_000_000_000  # ns


def row(**columns: Any) -> dict[str, Any]:
    """A hand-built `spans` row: only the columns a case is about, plus ids."""
    base: dict[str, Any] = {"trace_id": "a" * 32, "span_id": "b" * 16, "parent_span_id": "", "attributes": {}}
    return {**base, **columns}


def scored(scorer: Scorer, span: SpanRow, trace: TraceContext = NO_TRACE) -> Score:
    assert scorer.applies(span)
    result = scorer.score(span, trace)
    assert result is not None
    return result


def test_every_scorer_meets_the_protocol() -> None:
    for scorer in (
        CostScorer(),
        TraceCostScorer(),
        LatencyScorer(),
        CriticalPathScorer(),
        RefusalScorer(),
        PIIScorer(),
    ):
        assert isinstance(scorer, Scorer)


# Cost: real spans -----------------------------------------------------------------------------


def _openinference() -> Instrumentor:
    from openinference.instrumentation.openai import OpenAIInstrumentor

    return OpenAIInstrumentor()


def _rows(cap: Capture) -> list[dict[str, object]]:
    norm = Normalizer(pricer=Pricer())
    return [norm.span(s, norm.resource(res), scope) for res, scope, s in iter_spans(cap.otlp_request())]


@pytest.fixture(scope="module")
def agent_trace() -> Iterator[list[dict[str, object]]]:
    """One agent trace (SDK root span) holding two real chat calls: one priced, one whose model
    the price table does not know, plus an embeddings call."""
    with fake_openai() as fake, capture() as cap:
        dl.init(span_exporter=cap.exporter, batch=False, instrument=False, set_global=False)
        try:
            with instrumented(_openinference(), cap):
                client = openai.OpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0)
                with dl.agent_step("support"):
                    messages: list[Any] = [{"role": "user", "content": "hi"}]
                    client.chat.completions.create(model="gpt-4o-mini", messages=messages)
                    client.chat.completions.create(model="house-model-7", messages=messages)
                    client.embeddings.create(model="text-embedding-3-small", input=["hi"])
        finally:
            dl.shutdown()
        yield _rows(cap)


def _by_model(rows: list[dict[str, object]], model: str) -> dict[str, object]:
    return next(r for r in rows if r.get("request_model") == model)


def test_cost_of_a_priced_and_an_unpriced_call(agent_trace: list[dict[str, object]]) -> None:
    priced = scored(CostScorer(), _by_model(agent_trace, "gpt-4o-mini"))
    assert priced.label == "priced"
    assert priced.value == _by_model(agent_trace, "gpt-4o-mini")["cost_usd"] and priced.value > 0
    assert priced.details["cost_source"] == "price_table"

    missing = scored(CostScorer(), _by_model(agent_trace, "house-model-7"))
    assert (missing.value, missing.label) == (0.0, "missing_price")
    assert "openai" in missing.explanation and "house-model-7" in missing.explanation

    embedding = scored(CostScorer(), _by_model(agent_trace, "text-embedding-3-small"))
    assert embedding.label == "priced"
    agent = next(r for r in agent_trace if r["operation"] == "invoke_agent")
    assert not CostScorer().applies(agent)  # agent spans would count their children twice


def test_trace_cost_sums_model_calls_and_counts_unpriced(agent_trace: list[dict[str, object]]) -> None:
    root = next(r for r in agent_trace if r["parent_span_id"] == "")
    assert root["operation"] == "invoke_agent"
    assert not TraceCostScorer().applies(_by_model(agent_trace, "gpt-4o-mini"))
    result = scored(TraceCostScorer(), root, TraceContext(agent_trace))
    costs = [r["cost_usd"] for r in agent_trace if isinstance(r.get("cost_usd"), float)]
    assert len(costs) == 2
    assert result.value == pytest.approx(sum(c for c in costs if isinstance(c, float)))
    assert result.label == "partially_priced"
    assert result.details["model_calls"] == 3 and result.details["unpriced_calls"] == 1


def test_cost_skips_calls_without_usage() -> None:
    assert not CostScorer().applies(row(operation="chat"))  # e.g. a failed call: nothing billed
    assert CostScorer().applies(row(operation="chat", output_tokens=3))


def test_trace_without_model_calls_is_left_unscored() -> None:
    root = row(operation="workflow")
    assert TraceCostScorer().score(root, TraceContext([root, row(span_id="c" * 16, operation="retrieval")])) is None


# Latency -------------------------------------------------------------------------------------


def test_latency_thresholds_per_operation() -> None:
    scorer = LatencyScorer()
    slow_chat = scored(scorer, row(operation="chat", duration_ms=12_000.0, ttft_ms=850.0))
    assert (slow_chat.value, slow_chat.label) == (12_000.0, "slow")
    assert slow_chat.details == {"threshold_ms": 10_000.0, "ttft_ms": 850.0}
    assert "first token after 850 ms" in slow_chat.explanation
    assert scored(scorer, row(operation="chat", duration_ms=9_000.0)).label == "ok"
    assert scored(scorer, row(operation="execute_tool", duration_ms=2_500.0)).label == "slow"
    assert scored(scorer, row(operation="other", duration_ms=29_000.0)).label == "ok"  # default 30 s
    assert not scorer.applies(row(operation="", duration_ms=99_000.0))  # not a GenAI span

    custom = LatencyScorer({"execute_tool": 5_000.0}, default_threshold_ms=1_000.0)
    assert scored(custom, row(operation="execute_tool", duration_ms=2_500.0)).label == "ok"
    assert scored(custom, row(operation="other", duration_ms=1_500.0)).label == "slow"
    with pytest.raises(ValueError):
        LatencyScorer({"chat": 0.0})


def test_latency_from_start_and_end_when_duration_is_missing() -> None:
    span = row(operation="chat", start_time=T0, end_time=T0 + 3_000_000_000)
    assert scored(LatencyScorer(), span).value == 3_000.0


# Critical path: a hand-made tree with parallel children -----------------------------------------


def tree_span(span_id: str, parent: str, start_ms: int, end_ms: int, operation: str = "") -> dict[str, Any]:
    return row(
        span_id=span_id,
        parent_span_id=parent,
        name=f"span {span_id}",
        operation=operation,
        start_time=T0 + start_ms * 1_000_000,
        end_time=T0 + end_ms * 1_000_000,
        duration_ms=float(end_ms - start_ms),
    )


# root R [0,100]: plan A [0,20]; tools T1 [20,60] and T2 [20,80] in parallel (T2 waits on an HTTP
# call H [30,75]); answer B [85,100]. End-to-end time is set by B, then T2 (and inside it H), then A.
PARALLEL_TREE = [
    tree_span("R", "", 0, 100, "invoke_agent"),
    tree_span("A", "R", 0, 20, "chat"),
    tree_span("T1", "R", 20, 60, "execute_tool"),
    tree_span("T2", "R", 20, 80, "execute_tool"),
    tree_span("H", "T2", 30, 75),
    tree_span("B", "R", 85, 100, "chat"),
]


def test_critical_path_through_parallel_children() -> None:
    path = critical_path(PARALLEL_TREE[0], PARALLEL_TREE)
    assert [(p.span_id, p.self_ns // 1_000_000) for p in path] == [
        ("R", 5),  # the gap 80..85 between T2 and B
        ("A", 20),
        ("T2", 15),  # 20..30 and 75..80 around its HTTP call
        ("H", 45),
        ("B", 15),
    ]  # T1 ran in parallel with T2 and finished first: not on the path
    assert sum(p.self_ns for p in path) == 100 * 1_000_000

    result = scored(CriticalPathScorer(), PARALLEL_TREE[0], TraceContext(PARALLEL_TREE))
    assert result.value == 100.0
    assert result.label == "non_genai"  # H, the slowest, is a plain HTTP span
    assert "'span H'" in result.explanation and "45 ms of 100 ms" in result.explanation
    assert [p["span_id"] for p in result.details["path"]] == ["R", "A", "T2", "H", "B"]
    assert not CriticalPathScorer().applies(PARALLEL_TREE[1])


def test_critical_path_cuts_children_to_their_parent_and_reads_datetimes() -> None:
    """A fire-and-forget child outliving the root is cut at the root's end; ClickHouse hands back
    datetimes instead of nanosecond ints; a span whose parent is missing is left out."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)

    def as_datetime(span: dict[str, Any]) -> dict[str, Any]:
        start = epoch + timedelta(microseconds=span["start_time"] // 1000)
        end = epoch + timedelta(microseconds=span["end_time"] // 1000)
        return {**span, "start_time": start, "end_time": end}

    spans = [
        tree_span("R", "", 0, 100, "invoke_agent"),
        tree_span("A", "R", 10, 40, "chat"),
        tree_span("Q", "R", 60, 400, "execute_tool"),  # ends after the root
        tree_span("X", "gone", 0, 100, "chat"),  # parent never arrived
    ]
    path = critical_path(as_datetime(spans[0]), [as_datetime(s) for s in spans])
    assert [(p.span_id, p.self_ns // 1_000_000) for p in path] == [("R", 30), ("A", 30), ("Q", 40)]
    result = scored(CriticalPathScorer(), spans[0], TraceContext(spans))
    assert result.label == "execute_tool"


def test_critical_path_root_self_time_dominating() -> None:
    spans = [tree_span("R", "", 0, 100, "workflow"), tree_span("A", "R", 0, 10, "chat")]
    result = scored(CriticalPathScorer(), spans[0], TraceContext(spans))
    assert result.label == "self"
    assert "the root 'span R' itself" in result.explanation


def test_critical_path_of_a_deep_chain_needs_no_recursion() -> None:
    depth = 5_000  # deeper than Python's default recursion limit
    spans = [tree_span("0", "", 0, 2 * depth, "workflow")]
    spans += [tree_span(str(i), str(i - 1), i, 2 * depth - i) for i in range(1, depth)]
    path = critical_path(spans[0], spans)
    assert len(path) == depth and sum(p.self_ns for p in path) == 2 * depth * 1_000_000


# Refusal ---------------------------------------------------------------------------------------

REFUSALS = [
    "I'm sorry, but I can't assist with that.",
    "I can't help with that.",
    "I’m unable to comply with this request.",  # curly apostrophe
    "I'm sorry. I cannot provide instructions for making weapons.",
    "As an AI language model, I cannot provide medical diagnoses.",
    "I must decline this request.",
    "Unfortunately, I'm not able to share that information.",
    "That's not something I can help with.",
    "I won't be able to help with that request.",
    "This request goes against my usage policies.",
    "I'm just a language model, so I can't help you with that.",
    "I apologize, but I cannot fulfill this request. If you are in danger, call 112.",
]
ANSWERS = [
    "Sorry for the wait! The capital of France is Paris.",
    "The capital of France is Paris. I'm sorry, but I can't help with anything else today.",
    "I can't help but notice that your loop never ends: add a break.",
    "I cannot stress enough how important backups are.",
    "I'm sorry to hear about your loss. Here are some resources that might help.",
    "I can't believe how easy this is: run pip install.",
    "You can't do that in Python 2, but in Python 3 you can.",
    "I can't give medical advice, but generally ibuprofen is taken every 6 to 8 hours.",
    "Paris is the capital. Sorry, I cannot be more precise.",
    "Here is the summary. The vendor said: 'I cannot provide a refund.'",
]


@pytest.mark.parametrize("text", REFUSALS)
def test_refusals_are_flagged(text: str) -> None:
    result = scored(RefusalScorer(), row(operation="chat", output_text=text))
    assert (result.value, result.label) == (1.0, "refused"), text
    assert result.details == {"signal": "pattern"}


@pytest.mark.parametrize("text", ANSWERS)
def test_answers_mentioning_sorry_or_cannot_are_not_refusals(text: str) -> None:
    result = scored(RefusalScorer(), row(operation="chat", output_text=text))
    assert (result.value, result.label) == (0.0, "answered"), text


def test_refusal_from_finish_reason_and_refusal_field() -> None:
    filtered = scored(RefusalScorer(), row(operation="chat", finish_reason="content_filter"))
    assert filtered.label == "refused" and filtered.details == {"signal": "content_filter"}
    # OpenLLMetry records OpenAI's message.refusal as a "refusal" part (content None, no output_text).
    messages = '[{"role":"assistant","parts":[{"type":"refusal","content":"I can not do this."}]}]'
    field = row(operation="chat", attributes={"gen_ai.output.messages": messages})
    result = scored(RefusalScorer(), field)
    assert result.label == "refused" and result.details == {"signal": "refusal_field"}
    assert not RefusalScorer().applies(row(operation="execute_tool", output_text="I can't help with that."))
    assert not RefusalScorer().applies(row(operation="chat"))


# PII -------------------------------------------------------------------------------------------


def kinds(text: str) -> list[str]:
    return [f.kind for f in find_pii(text)]


def test_pii_kinds() -> None:
    assert kinds("write to jane.doe@acme.io") == ["email"]
    assert kinds("docs use bob@example.com and x@mail.test") == []  # RFC 2606 placeholders
    assert kinds("call +1 415 555 2671, (415) 555-2671 or +44 20 7946 0958") == ["phone"] * 3
    assert kinds("card 4111 1111 1111 1111 and 5500-0000-0000-0004") == ["credit_card"] * 2
    assert kinds("card 4111 1111 1111 1112") == []  # fails the Luhn check
    assert kinds("order 1234567890123456") == []  # no card network starts with 1
    assert kinds("ssn 123-45-6789 but 000-12-3456 is not valid, nor is 2024-07-18") == ["us_ssn"]
    assert kinds("IBAN DE89 3704 0044 0532 0130 00 / GB82WEST12345698765432") == ["iban", "iban"]
    assert kinds("IBAN DE89 3704 0044 0532 0130 01") == []  # fails mod 97
    assert kinds("server 8.8.8.8. local 127.0.0.1, docs 192.0.2.4, version v1.2.3.4, 1.2.3.4.5") == ["ipv4"]
    key = "sk-proj-" + "Ab3" * 10
    assert kinds(f"{key} AKIAIOSFODNN7EXAMPLE ghp_{'x' * 36}") == ["api_key"] * 3
    assert kinds("meeting at 10:30, version 3.11.2, total 1,234,567.89, order #12345") == []
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")
    assert iban_valid("DE89370400440532013000") and not iban_valid("DE00370400440532013000")


def test_pii_score_names_kinds_never_values() -> None:
    answer = "Sure: reach Jane at jane.doe@acme.io or +1 415 555 2671; her card is 4111-1111-1111-1111."
    result = scored(PIIScorer(), row(operation="chat", output_text=answer, input_text="How do I reach Jane?"))
    assert (result.value, result.label) == (3.0, "pii")
    assert result.details == {
        "kinds": {"email": 1, "phone": 1, "credit_card": 1},
        "fields": ["output_text"],
        "echoed": 0,
    }
    for secret in ("jane.doe", "415", "4111"):
        assert secret not in result.explanation and secret not in str(result.details)
    assert result.explanation == "1 credit_card, 1 email, 1 phone in output_text"


def test_pii_echo_of_the_users_own_input_is_not_an_exposure() -> None:
    span = row(
        operation="chat",
        input_text="My card is 4111 1111 1111 1111 and my phone 4155552671, update my account.",
        output_text="Done: card 4111-1111-1111-1111 and phone (415) 555-2671 are saved. Contact ops@acme.io.",
    )
    result = scored(PIIScorer(), span)
    assert (result.value, result.label) == (1.0, "pii")  # only the new email
    assert result.details["kinds"] == {"email": 1} and result.details["echoed"] == 2
    assert "2 echoed from the user's input" in result.explanation

    history = '[{"role":"user","content":"I am ann@corp.io"},{"role":"user","content":"what is my email?"}]'
    echo = row(operation="chat", input_messages=history, output_text="Your email is ann@corp.io.")
    assert scored(PIIScorer(), echo).label == "clean"


def test_pii_in_tool_results() -> None:
    tool = row(
        operation="execute_tool",
        tool_arguments='{"customer": "C-17"}',
        input_text='{"customer": "C-17"}',
        tool_result='{"ssn": "123-45-6789", "ip": "81.2.69.160"}',
        output_text='{"ssn": "123-45-6789", "ip": "81.2.69.160"}',  # the normalizer's fallback copy
    )
    result = scored(PIIScorer(), tool)
    assert result.details["kinds"] == {"us_ssn": 1, "ipv4": 1} and result.details["fields"] == ["tool_result"]
    assert scored(PIIScorer(), row(operation="chat", output_text="Paris.")).label == "clean"
    assert not PIIScorer().applies(row(operation="retrieval", output_text="a@b.io"))
