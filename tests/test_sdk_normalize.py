"""The SDK's own spans normalize to the same columns as the instrumentors' spans of the same call,
and its retrieval, tool and agent spans fill the columns the scorers read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

import driftline.sdk as dl
from driftline.collector.normalize import Normalizer
from driftline.pricing import Pricer
from tests.support.engine_check import normalize_span
from tests.support.fake_openai import (
    ANSWER_TEXT,
    CACHED_TOKENS,
    COMPLETION_TOKENS,
    PROMPT_TOKENS,
    REASONING_TOKENS,
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
SAME = ["operation", "provider", "request_model", "response_model", "input_tokens", "output_tokens",
        "cache_read_tokens", "reasoning_tokens", "cost_usd", "cost_source", "input_text", "output_text",
        "system_prompt", "finish_reason", "kind"]  # fmt: skip


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with fake_openai() as server:
        yield server


def _rows(cap: Capture) -> list[dict[str, Any]]:
    n = Normalizer(pricer=Pricer())
    return [normalize_span(n, r, sc, s) for r, sc, s in iter_spans(cap.otlp_request())]


def test_sdk_llm_call_equals_instrumentor(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "span_only")
    client = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
    with capture() as cap, instrumented(INSTRUMENTORS["openinference"](), cap):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
        (inst,) = _rows(cap)
    with capture() as cap:
        dl.init(service="sdk-app", span_exporter=cap.exporter, batch=False, instrument=False, set_global=False)
        try:
            with dl.llm_call(MODEL, provider="openai") as call:
                call.set_input_messages(MESSAGES)
                call.set_response(model=response_model_for(MODEL), finish_reasons=["stop"])
                call.set_usage(PROMPT_TOKENS, COMPLETION_TOKENS, cache_read_input_tokens=CACHED_TOKENS,
                               reasoning_output_tokens=REASONING_TOKENS)  # fmt: skip
                call.set_output_text(ANSWER_TEXT)
            dl.flush()
            sdk_rows = [_normalize(s) for s in cap.exporter.get_finished_spans()]
        finally:
            dl.shutdown()
    (sdk,) = sdk_rows
    inst["kind"] = "client"  # OpenInference marks its LLM spans INTERNAL; the SDK follows the spec's CLIENT
    for col in SAME:
        assert sdk.get(col) == inst.get(col), col
    # OpenInference sets status OK on success; the SDK leaves it unset, as OTel asks of libraries
    assert sdk["status_code"] in ("unset", "ok") and inst["status_code"] in ("unset", "ok")
    assert [m["role"] for m in json.loads(sdk["input_messages"])] == [
        m["role"] for m in json.loads(inst["input_messages"])
    ]


def _normalize(span: Any) -> dict[str, Any]:
    from tests.support.otel_capture import to_otlp_request

    n = Normalizer(pricer=Pricer())
    ((r, sc, s),) = list(iter_spans(to_otlp_request([span])))
    return normalize_span(n, r, sc, s)


def test_sdk_retrieval_tool_and_agent_fill_scorer_columns() -> None:
    with capture() as cap:
        dl.init(service="sdk-app", span_exporter=cap.exporter, batch=False, instrument=False, set_global=False)
        try:
            with dl.agent_step("helper"):
                with dl.retrieval(query="capital of France", data_source="kb") as r:
                    r.set_documents([{"id": "d1", "score": 0.9, "content": "Paris is the capital of France."}])
                with dl.tool_call("lookup", call_id="c1", arguments={"q": "France"}) as t:
                    t.set_result({"capital": "Paris"})
                with pytest.raises(TimeoutError), dl.tool_call("slow_tool"):
                    raise TimeoutError("took 30 s")
                with dl.llm_call(MODEL, provider="openai") as call:
                    call.set_time_to_first_chunk(0.25)
                    call.set_output_text("Paris.")
            dl.flush()
            rows = {r["name"]: r for r in (_normalize(s) for s in cap.exporter.get_finished_spans())}
        finally:
            dl.shutdown()
    ret = rows["retrieval kb"]
    assert ret["operation"] == "retrieval"
    assert json.loads(ret["retrieved_documents"])[0]["content"] == "Paris is the capital of France."
    tool = rows["execute_tool lookup"]
    assert tool["tool_name"] == "lookup" and tool["tool_call_id"] == "c1"
    assert json.loads(tool["tool_arguments"]) == {"q": "France"} and "Paris" in tool["tool_result"]
    slow = rows["execute_tool slow_tool"]
    assert slow["status_code"] == "error" and slow["error_type"].endswith("TimeoutError")
    chat = rows[f"chat {MODEL}"]
    assert chat["ttft_ms"] == pytest.approx(250.0) and chat["output_text"] == "Paris."
    agent = rows["invoke_agent helper"]
    assert agent["operation"] == "invoke_agent" and agent["agent_name"] == "helper"
