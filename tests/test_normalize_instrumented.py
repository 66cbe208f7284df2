"""Golden tests: REAL spans from the REAL instrumentation libraries through the normalizer.

The real `openai` client calls a fake OpenAI-compatible server on loopback (the only fake, at
the provider boundary: tests/support/fake_openai.py) while each installed instrumentor records
spans; the spans are encoded to OTLP protobuf by the SDK's own encoder, parsed back, and
normalized. Instrumentors covered:
- opentelemetry-instrumentation-openai-v2 (GenAI semconv; content on spans with span_only),
- openinference-instrumentation-openai (OpenInference),
- opentelemetry-instrumentation-openai (OpenLLMetry / Traceloop).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from genai_prices import Usage, calc_price

from driftline.collector.normalize import Normalizer
from driftline.pricing import Pricer
from driftline.store.columns import NORMALIZED_COLUMNS
from tests.support.engine_check import normalize_span
from tests.support.fake_openai import (
    ANSWER_TEXT,
    CACHED_TOKENS,
    COMPLETION_TOKENS,
    EMBEDDING_TOKENS,
    PROMPT_TOKENS,
    REASONING_TOKENS,
    TOOL_CALL_ID,
    TOOL_NAME,
    FakeOpenAI,
    fake_openai,
    response_model_for,
)
from tests.support.instrumentors import INSTRUMENTORS
from tests.support.otel_capture import Capture, capture, instrumented, iter_spans

MODEL = "gpt-4o-mini"
MESSAGES: list[Any] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Capital of France?"},
]
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": TOOL_NAME,
            "description": "Weather.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


# What each library reports (checked against the library, see the module docstring):
# cache/reasoning: whether it records cached / reasoning token details; kind: OTel span kind;
# message_finish: whether its output messages carry their own finish_reason (GenAI semconv's
# output messages do, and Traceloop's gen_ai.completion.N.finish_reason).
LIBS: dict[str, dict[str, Any]] = {
    "openai-v2": {
        "make": INSTRUMENTORS["openai-v2"], "cache": False, "reasoning": False, "kind": "client",
        "message_finish": True,
    },
    "openinference": {
        "make": INSTRUMENTORS["openinference"], "cache": True, "reasoning": True, "kind": "internal",
        "message_finish": False,
    },
    "traceloop": {
        "make": INSTRUMENTORS["traceloop"], "cache": True, "reasoning": True, "kind": "client",
        "message_finish": True,
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with fake_openai() as server:
        yield server


@pytest.fixture(params=list(LIBS))
def lib(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Capture]]:
    # Content capture on spans: util-genai reads this per call (span_only = span attributes).
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "span_only")
    monkeypatch.setenv("TRACELOOP_TRACE_CONTENT", "true")
    name: str = request.param
    with capture() as cap, instrumented(LIBS[name]["make"](), cap):
        yield name, cap


def _rows(cap: Capture, pricer: Pricer | None = None) -> list[dict[str, object]]:
    norm = Normalizer(pricer=pricer or Pricer())
    return [normalize_span(norm, res, scope, span) for res, scope, span in iter_spans(cap.otlp_request())]


def _client(fake: FakeOpenAI) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0)


def _expected_cost(row: dict[str, object]) -> float:
    def n(key: str) -> int | None:
        v = row.get(key)
        return v if isinstance(v, int) else None

    usage = Usage(
        input_tokens=n("input_tokens"),
        output_tokens=n("output_tokens"),
        cache_read_tokens=n("cache_read_tokens"),
        output_reasoning_tokens=n("reasoning_tokens"),
    )
    return float(calc_price(usage, str(row["response_model"]), provider_id="openai").total_price)


def _only(rows: list[dict[str, object]], pred: Callable[[dict[str, object]], bool]) -> dict[str, object]:
    found = [r for r in rows if pred(r)]
    assert len(found) == 1, rows
    return found[0]


def _check_common(row: dict[str, object], name: str) -> None:
    assert set(row) <= set(NORMALIZED_COLUMNS)
    assert row["provider"] == "openai"
    assert row["kind"] == LIBS[name]["kind"]
    assert row["service"] == "driftline-test-app"
    assert row["release"] == "1.2.3"
    assert row["environment"] == "test"
    assert len(str(row["trace_id"])) == 32 and len(str(row["span_id"])) == 16


def _check_usage(row: dict[str, object], name: str, *, stream: bool = False) -> None:
    assert row["input_tokens"] == PROMPT_TOKENS
    assert row["output_tokens"] == COMPLETION_TOKENS
    assert row["total_tokens"] == PROMPT_TOKENS + COMPLETION_TOKENS
    assert row.get("cache_read_tokens") == (CACHED_TOKENS if LIBS[name]["cache"] else None)
    reasoning = LIBS[name]["reasoning"] and not (stream and name == "traceloop")
    assert row.get("reasoning_tokens") == (REASONING_TOKENS if reasoning else None)
    assert row["cost_source"] == "price_table"
    assert row["cost_usd"] == _expected_cost(row)


def test_chat(lib: tuple[str, Capture], fake: FakeOpenAI) -> None:
    name, cap = lib
    answer = _client(fake).chat.completions.create(model=MODEL, messages=MESSAGES)
    assert answer.choices[0].message.content == ANSWER_TEXT
    row = _only(_rows(cap), lambda r: r["operation"] == "chat")
    _check_common(row, name)
    _check_usage(row, name)
    assert row["request_model"] == MODEL
    assert row["response_model"] == response_model_for(MODEL)
    assert row["status_code"] in ("unset", "ok")
    assert row["finish_reason"] == "stop"
    assert row["input_text"] == "Capital of France?"
    assert row["output_text"] == ANSWER_TEXT
    assert row["system_prompt"] == "You are terse."
    assert row["input_messages"] == (
        '[{"role":"system","content":"You are terse."},{"role":"user","content":"Capital of France?"}]'
    )
    finish = ',"finish_reason":"stop"' if LIBS[name]["message_finish"] else ""
    assert row["output_messages"] == f'[{{"role":"assistant","content":"{ANSWER_TEXT}"{finish}}}]'
    assert "tool_calls" not in row
    attributes = row["attributes"]
    assert isinstance(attributes, dict) and all(isinstance(v, str) for v in attributes.values())


def test_chat_with_tool_call(lib: tuple[str, Capture], fake: FakeOpenAI) -> None:
    name, cap = lib
    answer = _client(fake).chat.completions.create(model=MODEL, messages=MESSAGES, tools=TOOLS)
    assert answer.choices[0].finish_reason == "tool_calls"
    row = _only(_rows(cap), lambda r: r["operation"] == "chat")
    _check_common(row, name)
    _check_usage(row, name)
    assert row["finish_reason"] == "tool_call"
    assert "output_text" not in row
    calls = _json(row["tool_calls"])
    assert [(c["id"], c["name"]) for c in calls] == [(TOOL_CALL_ID, TOOL_NAME)]
    assert _json(calls[0]["arguments"]) == {"city": "Paris"}


def test_streaming_with_usage(lib: tuple[str, Capture], fake: FakeOpenAI) -> None:
    name, cap = lib
    stream = _client(fake).chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == ANSWER_TEXT
    row = _only(_rows(cap), lambda r: r["operation"] == "chat")
    _check_common(row, name)
    _check_usage(row, name, stream=True)
    assert row["output_text"] == ANSWER_TEXT
    # openai-v2 sets no gen_ai.response.finish_reasons when streaming: the output message has it.
    assert row["finish_reason"] == "stop"
    if name != "openai-v2":  # first-chunk events give the time to first token
        ttft = row["ttft_ms"]
        assert isinstance(ttft, float) and 0 <= ttft <= float(str(row["duration_ms"]))


def test_error_response(lib: tuple[str, Capture], fake: FakeOpenAI) -> None:
    name, cap = lib
    with pytest.raises(openai.RateLimitError):
        _client(fake).chat.completions.create(model="fail-429", messages=MESSAGES)
    row = _only(_rows(cap), lambda r: r["operation"] == "chat")
    _check_common(row, name)
    assert row["status_code"] == "error"
    assert "429" in str(row["status_message"])
    assert row["error_type"] in ("openai.RateLimitError", "RateLimitError")
    assert row["input_text"] == "Capital of France?"
    assert "cost_usd" not in row and "input_tokens" not in row


def test_embeddings(lib: tuple[str, Capture], fake: FakeOpenAI) -> None:
    name, cap = lib
    _client(fake).embeddings.create(model="text-embedding-3-small", input=["hello", "world"])
    row = _only(_rows(cap), lambda r: r["operation"] == "embeddings")
    _check_common(row, name)
    assert row["response_model"] == "text-embedding-3-small"
    assert row["input_tokens"] == EMBEDDING_TOKENS
    assert row["total_tokens"] == EMBEDDING_TOKENS
    expected = calc_price(Usage(input_tokens=EMBEDDING_TOKENS), "text-embedding-3-small", provider_id="openai")
    assert row["cost_usd"] == float(expected.total_price)
    if name != "openai-v2":  # v2 records no embedding input content
        assert row["input_text"] == "hello\nworld"


def test_no_content_capture_still_gives_usage_and_cost(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    """openai-v2 without OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: no content, same numbers."""
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    with capture() as cap, instrumented(INSTRUMENTORS["openai-v2"](), cap):
        _client(fake).chat.completions.create(model=MODEL, messages=MESSAGES)
    row = _only(_rows(cap), lambda r: r["operation"] == "chat")
    assert "input_text" not in row and "input_messages" not in row
    assert row["input_tokens"] == PROMPT_TOKENS
    assert row["cost_usd"] == _expected_cost(row)


def test_override_price_wins_over_table(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    from driftline.pricing import ModelPrice

    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "span_only")
    with capture() as cap, instrumented(INSTRUMENTORS["openinference"](), cap):
        _client(fake).chat.completions.create(model=MODEL, messages=MESSAGES)
    pricer = Pricer(overrides={response_model_for(MODEL): ModelPrice(input_mtok=1.0, output_mtok=2.0)})
    row = _only(_rows(cap, pricer), lambda r: r["operation"] == "chat")
    assert row["cost_source"] == "override"
    assert row["cost_usd"] == pytest.approx((PROMPT_TOKENS * 1.0 + COMPLETION_TOKENS * 2.0) / 1e6)


def _json(text: object) -> Any:
    assert isinstance(text, str)
    return json.loads(text)
