"""Real instrumentors -> real OTLP/HTTP exporter -> the real collector -> chDB -> the trace API.

The real `openai` client talks to a FAKE OpenAI-compatible server (tests/support/fake_openai.py:
it stands in for the provider, nothing else). What the collector stores must be what the
normalizer makes of the same spans, and carry the model, tokens, cost, messages, tools and status.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from driftline.collector.normalize import Normalizer
from driftline.pricing import Pricer
from driftline.store.columns import column_defaults
from tests.conftest import KEY_A, LiveServer
from tests.otlp_helpers import http_exporter
from tests.support.fake_openai import ANSWER_TEXT, PROMPT_TOKENS, TOOL_NAME, FakeOpenAI, fake_openai
from tests.support.otel_capture import capture, instrumented, iter_spans
from tests.test_normalize_instrumented import LIBS, MESSAGES, TOOLS

DEFAULTS = column_defaults()
COMPARED = [
    "trace_id", "span_id", "parent_span_id", "operation", "provider", "request_model", "response_model",
    "input_tokens", "output_tokens", "cache_read_tokens", "reasoning_tokens", "cost_usd", "cost_source",
    "input_messages", "output_messages", "input_text", "output_text", "tool_calls", "finish_reason",
    "status_code", "error_type", "service", "release", "environment", "kind",
]  # fmt: skip


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with fake_openai() as server:
        yield server


@pytest.mark.parametrize("name", list(LIBS))
def test_instrumented_calls_arrive_as_normalized(
    name: str, live: LiveServer, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "span_only")
    monkeypatch.setenv("TRACELOOP_TRACE_CONTENT", "true")
    client = openai.OpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0)
    with capture() as cap:
        cap.provider.add_span_processor(SimpleSpanProcessor(http_exporter(live.url, KEY_A)))
        with instrumented(LIBS[name]["make"](), cap):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=TOOLS)
            stream = client.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
            for _ in stream:
                pass
            with pytest.raises(openai.RateLimitError):
                client.chat.completions.create(model="fail-429", messages=MESSAGES)
        norm = Normalizer(pricer=Pricer())
        expected = [norm.span(s, norm.resource(r), sc) for r, sc, s in iter_spans(cap.otlp_request())]
    assert live.runtime.flush(20)
    assert len(expected) == 4
    stored: dict[str, dict[str, Any]] = {}
    for trace_id in {e["trace_id"] for e in expected}:
        r = httpx.get(f"{live.url}/api/v1/traces/{trace_id}", headers={"Authorization": f"Bearer {KEY_A}"})
        assert r.status_code == 200
        stored.update({s["span_id"]: s for s in r.json()["spans"]})
    for e in expected:
        s = stored[str(e["span_id"])]
        for col in COMPARED:
            assert s[col] == e.get(col, DEFAULTS[col]), (name, col)
    plain, tool, streamed, failed = (stored[str(e["span_id"])] for e in expected)
    assert plain["output_text"] == ANSWER_TEXT and plain["input_tokens"] == PROMPT_TOKENS
    assert plain["cost_usd"] and plain["cost_usd"] > 0 and plain["cost_source"] == "price_table"
    assert TOOL_NAME in tool["tool_calls"] and tool["finish_reason"] == "tool_call"  # semconv value
    assert streamed["output_text"] == ANSWER_TEXT
    assert failed["status_code"] == "error" and "RateLimitError" in failed["error_type"]
