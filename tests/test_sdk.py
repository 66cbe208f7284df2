"""The app-side SDK (driftline.sdk) against the real OpenTelemetry SDK.

Spans go to an InMemorySpanExporter through `init(span_exporter=...)`, or over real OTLP
(http/protobuf and gRPC) to small loopback servers that record what arrives. The only fake is
the OpenAI provider endpoint (tests/support/fake_openai.py), at the outer boundary.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator, Generator, Iterator, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import driftline.sdk as dl
from driftline.sdk import _state, exporters, instrumentors, messages
from tests.support.fake_openai import (
    ANSWER_TEXT,
    CACHED_TOKENS,
    COMPLETION_TOKENS,
    PROMPT_TOKENS,
    REASONING_TOKENS,
    fake_openai,
    response_model_for,
)

REPO = Path(__file__).resolve().parents[1]


# Fixtures and helpers -------------------------------------------------------------------------


@pytest.fixture
def clean_env() -> Iterator[None]:
    """init() sets the instrumentors' content switches in os.environ; undo that afterwards."""
    saved = dict(os.environ)
    yield
    dl.shutdown()
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def mem(clean_env: None) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    dl.init(
        span_exporter=exporter,
        batch=False,
        instrument=False,
        set_global=False,  # keep the test process's global provider untouched
        service="support-bot",
        release="1.2.3",
        environment="test",
    )
    return exporter


def by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {span.name: span for span in exporter.get_finished_spans()}


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def seconds(span: ReadableSpan) -> float:
    assert span.start_time is not None and span.end_time is not None
    return (span.end_time - span.start_time) / 1e9


def ids(span: ReadableSpan) -> tuple[int, int]:
    """(trace id, span id)."""
    assert span.context is not None
    return span.context.trace_id, span.context.span_id


def run_python(code: str) -> str:
    """Run code in a fresh interpreter (global OTel state, sys.modules) and return its stdout."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


# Span helpers: names, kinds and GenAI attributes ----------------------------------------------


def test_llm_call_context_manager_writes_current_genai_attributes(mem: InMemorySpanExporter) -> None:
    with dl.llm_call(model="gpt-4o", provider="openai", temperature=0.2, max_tokens=256) as call:
        call.set_system_instructions("Answer briefly.")
        call.set_input_messages(
            [
                {"role": "user", "content": "Weather in Paris?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "rainy, 14C"},
            ]
        )
        call.mark_first_chunk()
        call.set_output_text("Rainy, 14C.", finish_reason="stop")
        call.set_response(model="gpt-4o-2024-08-06", response_id="chatcmpl-9")
        call.set_usage(
            input_tokens=120,
            output_tokens=30,
            cache_read_input_tokens=100,
            cache_creation_input_tokens=0,
            reasoning_output_tokens=12,
        )

    span = by_name(mem)["chat gpt-4o"]
    a = attrs(span)
    assert span.kind is SpanKind.CLIENT
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-4o"
    assert a["gen_ai.request.temperature"] == 0.2
    assert a["gen_ai.request.max_tokens"] == 256
    assert a["gen_ai.response.model"] == "gpt-4o-2024-08-06"
    assert a["gen_ai.response.id"] == "chatcmpl-9"
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["gen_ai.usage.input_tokens"] == 120
    assert a["gen_ai.usage.output_tokens"] == 30
    assert a["gen_ai.usage.cache_read.input_tokens"] == 100
    assert a["gen_ai.usage.cache_creation.input_tokens"] == 0
    assert a["gen_ai.usage.reasoning.output_tokens"] == 12
    assert 0 <= a["gen_ai.response.time_to_first_chunk"] <= seconds(span)
    assert json.loads(a["gen_ai.system_instructions"]) == [{"type": "text", "content": "Answer briefly."}]
    assert json.loads(a["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}],
        },
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": "rainy, 14C"}]},
    ]
    assert json.loads(a["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Rainy, 14C."}], "finish_reason": "stop"}
    ]
    resource = dict(span.resource.attributes)
    assert resource["service.name"] == "support-bot"
    assert resource["service.version"] == "1.2.3"
    assert resource["deployment.environment.name"] == "test"
    assert resource["telemetry.sdk.language"] == "python"


def test_llm_call_decorator_records_prompt_and_returned_text_sync_and_async(
    mem: InMemorySpanExporter,
) -> None:
    @dl.llm_call(model="small", provider="anthropic")
    def ask(prompt: str, temperature: float = 0.0) -> str:
        return f"echo: {prompt}"

    @dl.llm_call(model="big", provider="anthropic")
    async def ask_async(messages: list[dict[str, str]]) -> str:
        await asyncio.sleep(0)
        return "async answer"

    assert ask("hi") == "echo: hi"
    assert ask.__name__ == "ask"  # functools.wraps keeps the function's identity
    assert asyncio.run(ask_async([{"role": "user", "content": "hello"}])) == "async answer"

    spans = by_name(mem)
    small, big = attrs(spans["chat small"]), attrs(spans["chat big"])
    assert json.loads(small["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "hi"}]}
    ]
    assert json.loads(small["gen_ai.output.messages"])[0]["parts"] == [{"type": "text", "content": "echo: hi"}]
    assert "gen_ai.response.finish_reasons" not in small  # a bare string does not say why it stopped
    assert json.loads(big["gen_ai.input.messages"])[0]["parts"][0]["content"] == "hello"
    assert json.loads(big["gen_ai.output.messages"])[0]["parts"][0]["content"] == "async answer"


def test_llm_call_decorator_reads_an_openai_chat_completion(mem: InMemorySpanExporter) -> None:
    from openai.types.chat import ChatCompletion

    completion = ChatCompletion.model_validate(
        {
            "id": "chatcmpl-7",
            "object": "chat.completion",
            "created": 0,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": 50,
                "completion_tokens": 9,
                "total_tokens": 59,
                "prompt_tokens_details": {"cached_tokens": 32},
                "completion_tokens_details": {"reasoning_tokens": 4},
            },
        }
    )

    @dl.llm_call(model="gpt-4o-mini", provider="openai")
    def create(messages: list[dict[str, str]]) -> ChatCompletion:
        return completion

    create([{"role": "user", "content": "Capital of France?"}])
    a = attrs(by_name(mem)["chat gpt-4o-mini"])
    assert a["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert a["gen_ai.response.id"] == "chatcmpl-7"
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (50, 9)
    assert a["gen_ai.usage.cache_read.input_tokens"] == 32
    assert a["gen_ai.usage.reasoning.output_tokens"] == 4
    assert json.loads(a["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Paris."}], "finish_reason": "stop"}
    ]


def test_streaming_generators_record_time_to_first_chunk_and_joined_output(mem: InMemorySpanExporter) -> None:
    @dl.llm_call(model="stream-sync")
    def stream(prompt: str) -> Iterator[str]:
        yield "Hel"
        yield "lo"

    @dl.llm_call(model="stream-async")
    async def astream(prompt: str) -> AsyncIterator[str]:
        for piece in ("Bon", "jour"):
            await asyncio.sleep(0)
            yield piece

    async def consume() -> list[str]:
        return [piece async for piece in astream("hi")]

    assert list(stream("hi")) == ["Hel", "lo"]
    assert asyncio.run(consume()) == ["Bon", "jour"]
    for name, text in (("chat stream-sync", "Hello"), ("chat stream-async", "Bonjour")):
        span = by_name(mem)[name]
        a = attrs(span)
        assert a["gen_ai.request.stream"] is True
        assert 0 < a["gen_ai.response.time_to_first_chunk"] <= seconds(span)
        assert json.loads(a["gen_ai.output.messages"])[0]["parts"] == [{"type": "text", "content": text}]


def test_streamed_openai_chunks_give_output_usage_and_finish_reason(mem: InMemorySpanExporter) -> None:
    import openai

    @dl.llm_call(model="gpt-4o-mini", provider="openai")
    def stream_answer(base_url: str, prompt: str) -> Iterator[Any]:
        client = openai.OpenAI(base_url=base_url, api_key="test-key", max_retries=0)
        yield from client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": prompt}],
            stream=True,
            stream_options={"include_usage": True},
        )
        client.close()

    with fake_openai() as fake:
        chunks = list(stream_answer(fake.base_url, "Capital of France?"))
    assert len(chunks) > 3
    a = attrs(by_name(mem)["chat gpt-4o-mini"])
    assert a["gen_ai.request.stream"] is True
    assert a["gen_ai.response.model"] == response_model_for("gpt-4o-mini")
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (
        PROMPT_TOKENS,
        COMPLETION_TOKENS,
    )
    assert a["gen_ai.usage.cache_read.input_tokens"] == CACHED_TOKENS
    assert a["gen_ai.usage.reasoning.output_tokens"] == REASONING_TOKENS
    assert a["gen_ai.response.time_to_first_chunk"] > 0
    assert json.loads(a["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": ANSWER_TEXT}], "finish_reason": "stop"}
    ]


def test_stream_closed_early_ends_the_span_without_error(mem: InMemorySpanExporter) -> None:
    @dl.llm_call(model="partial")
    def stream() -> Generator[str, None, None]:
        yield "a"
        yield "b"

    gen = stream()
    assert next(gen) == "a"
    gen.close()
    span = by_name(mem)["chat partial"]
    assert span.status.status_code is StatusCode.UNSET
    assert trace.get_current_span() is trace.INVALID_SPAN  # nothing left attached


def test_tool_call_records_arguments_and_result(mem: InMemorySpanExporter) -> None:
    @dl.tool_call()
    def get_weather(city: str, unit: str = "celsius", **extra: str) -> dict[str, Any]:
        return {"city": city, "temp": 14, "unit": unit}

    @dl.tool_call("lookup_order", call_id="call_42", description="Find an order")
    async def lookup(order_id: str) -> str:
        return f"order {order_id}: shipped"

    get_weather("Paris", region="eu")
    asyncio.run(lookup("A-7"))
    with dl.tool_call("calculator", call_id="call_9", arguments={"expr": "2+2"}) as tool:
        tool.set_result(4)

    spans = by_name(mem)
    weather = attrs(spans["execute_tool get_weather"])
    assert spans["execute_tool get_weather"].kind is SpanKind.INTERNAL
    assert weather["gen_ai.operation.name"] == "execute_tool"
    assert weather["gen_ai.tool.name"] == "get_weather"
    assert weather["gen_ai.tool.type"] == "function"
    assert json.loads(weather["gen_ai.tool.call.arguments"]) == {
        "city": "Paris",
        "unit": "celsius",
        "region": "eu",
    }
    assert json.loads(weather["gen_ai.tool.call.result"]) == {"city": "Paris", "temp": 14, "unit": "celsius"}
    order = attrs(spans["execute_tool lookup_order"])
    assert order["gen_ai.tool.call.id"] == "call_42"
    assert order["gen_ai.tool.description"] == "Find an order"
    assert order["gen_ai.tool.call.result"] == "order A-7: shipped"  # strings are kept as they are
    calc = attrs(spans["execute_tool calculator"])
    assert (calc["gen_ai.tool.call.arguments"], calc["gen_ai.tool.call.result"]) == ('{"expr":"2+2"}', "4")


@dataclass
class LangChainLikeDocument:
    """The shape of langchain_core.documents.Document (page_content, metadata, id)."""

    page_content: str
    metadata: dict[str, Any] = field(default_factory=dict)
    id: str | None = None


@dataclass
class LlamaIndexLikeNode:
    """The shape of llama_index TextNode inside a NodeWithScore."""

    text: str
    node_id: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class LlamaIndexLikeNodeWithScore:
    node: LlamaIndexLikeNode
    score: float | None = None


def test_retrieval_records_query_and_documents(mem: InMemorySpanExporter) -> None:
    @dl.retrieval(data_source="kb-products", top_k=4)
    def search(query: str) -> list[Any]:
        return [
            {"id": 17, "content": "Returns are free for 30 days.", "score": 0.91},
            (LangChainLikeDocument("Shipping takes 2 days.", {"source": "faq.md"}, "doc-2"), 0.72),
            LlamaIndexLikeNodeWithScore(LlamaIndexLikeNode("Gift cards never expire.", "node-9"), 0.5),
            "A bare string chunk.",
        ]

    search("return policy?")
    span = by_name(mem)["retrieval kb-products"]
    a = attrs(span)
    assert span.kind is SpanKind.CLIENT
    assert a["gen_ai.operation.name"] == "retrieval"
    assert a["gen_ai.data_source.id"] == "kb-products"
    assert a["gen_ai.retrieval.top_k"] == 4
    assert a["gen_ai.retrieval.query.text"] == "return policy?"
    assert json.loads(a["gen_ai.retrieval.documents"]) == [
        {"id": "17", "score": 0.91, "content": "Returns are free for 30 days."},
        {"id": "doc-2", "score": 0.72, "content": "Shipping takes 2 days.", "metadata": {"source": "faq.md"}},
        {"id": "node-9", "score": 0.5, "content": "Gift cards never expire."},
        {"content": "A bare string chunk."},
    ]


def test_current_call_without_a_kind_is_the_innermost_call(mem: InMemorySpanExporter) -> None:
    @dl.llm_call(model="m", provider="openai")
    def ask(messages: list[dict[str, str]]) -> str:
        call = dl.current_call()
        assert isinstance(call, dl.LLMCall)
        call.set_attribute("app.step", "ask")
        with dl.tool_call("lookup") as tool:
            assert dl.current_call() is tool and dl.current_call(dl.LLMCall) is call
        assert dl.current_call() is call
        return "ok"

    ask([{"role": "user", "content": "hi"}])
    assert dl.current_call() is None
    assert attrs(by_name(mem)["chat m"])["app.step"] == "ask"


def test_agent_step_parents_the_spans_inside_and_current_call_finds_them(mem: InMemorySpanExporter) -> None:
    @dl.tool_call()
    def refund(order_id: str) -> str:
        return "ok"

    @dl.agent_step()
    def support_agent(question: str) -> str:
        agent = dl.current_call(dl.AgentStep)
        assert agent is not None
        with dl.llm_call(model="m", provider="openai") as call:
            assert dl.current_call(dl.LLMCall) is call
            assert dl.current_call(dl.AgentStep) is agent  # found through the inner call
            call.set_usage(input_tokens=5, output_tokens=1)
        refund("A-1")
        return "Refunded."

    assert dl.current_call(dl.GenAISpan) is None and dl.current_call() is None
    support_agent("Refund order A-1")
    spans = by_name(mem)
    agent = spans["invoke_agent support_agent"]
    assert agent.kind is SpanKind.INTERNAL
    assert attrs(agent)["gen_ai.agent.name"] == "support_agent"
    assert attrs(agent)["gen_ai.operation.name"] == "invoke_agent"
    assert json.loads(attrs(agent)["gen_ai.input.messages"])[0]["parts"][0]["content"] == "Refund order A-1"
    for child in ("chat m", "execute_tool refund"):
        parent = spans[child].parent
        assert parent is not None
        assert (parent.trace_id, parent.span_id) == ids(agent)


def test_exceptions_are_recorded_and_reraised(mem: InMemorySpanExporter) -> None:
    class ProviderTimeoutError(Exception):
        pass

    @dl.llm_call(model="flaky")
    def sync_call() -> str:
        raise ProviderTimeoutError("timed out after 30s")

    @dl.tool_call()
    async def async_tool() -> str:
        raise ValueError("bad input")

    with pytest.raises(ProviderTimeoutError):
        sync_call()
    with pytest.raises(ValueError, match="bad input"):
        asyncio.run(async_tool())
    with pytest.raises(KeyError), dl.retrieval(data_source="kb"):
        raise KeyError("missing")

    spans = by_name(mem)
    flaky = spans["chat flaky"]
    assert flaky.status.status_code is StatusCode.ERROR
    assert flaky.status.description == "ProviderTimeoutError: timed out after 30s"
    error_type = attrs(flaky)["error.type"]
    assert error_type.endswith("ProviderTimeoutError")
    [event] = [e for e in flaky.events if e.name == "exception"]
    assert (event.attributes or {})["exception.type"] == error_type  # the two spellings agree
    assert attrs(spans["execute_tool async_tool"])["error.type"] == "ValueError"
    assert "gen_ai.tool.call.result" not in attrs(spans["execute_tool async_tool"])
    assert attrs(spans["retrieval kb"])["error.type"] == "KeyError"
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_capture_content_off_keeps_counts_and_ids_but_no_text(clean_env: None) -> None:
    exporter = InMemorySpanExporter()
    dl.init(span_exporter=exporter, batch=False, instrument=False, set_global=False, capture_content=False)

    @dl.llm_call(model="m")
    def ask(prompt: str) -> str:
        return "secret answer"

    @dl.tool_call()
    def tool(x: int) -> int:
        return x

    @dl.retrieval(data_source="kb")
    def search(query: str) -> list[dict[str, Any]]:
        return [{"id": "d1", "score": 0.5, "content": "private text"}]

    ask("secret prompt")
    tool(1)
    search("secret query")
    with dl.llm_call(model="n") as call:
        call.set_output_text("secret", finish_reason="length")
        call.set_usage(input_tokens=3, output_tokens=4)

    spans = by_name(exporter)
    everything = json.dumps([attrs(s) for s in spans.values()], default=list)
    assert "secret" not in everything and "private" not in everything
    assert json.loads(attrs(spans["retrieval kb"])["gen_ai.retrieval.documents"]) == [{"id": "d1", "score": 0.5}]
    assert attrs(spans["chat n"])["gen_ai.response.finish_reasons"] == ("length",)
    assert attrs(spans["chat n"])["gen_ai.usage.output_tokens"] == 4


# The disabled fast path ----------------------------------------------------------------------


def test_disabled_or_never_initialised_creates_no_spans(clean_env: None) -> None:
    exporter = InMemorySpanExporter()
    dl.init(span_exporter=exporter, batch=False, instrument=False, set_global=False)
    dl.shutdown()  # from here on: as if init() was never called

    @dl.llm_call(model="m")
    def ask(prompt: str) -> str:
        assert trace.get_current_span() is trace.INVALID_SPAN  # no context work either
        return prompt.upper()

    assert ask("hi") == "HI"
    with dl.llm_call(model="m") as call:
        call.set_usage(input_tokens=1)  # the no-op helper takes every call
        call.set_input_messages("ignored")
        call.mark_first_chunk()
        assert not call.is_recording
    handle = dl.init(disabled=True)
    assert not handle.enabled and not _state.enabled
    assert ask("again") == "AGAIN"
    assert dl.flush() is True
    os.environ["OTEL_SDK_DISABLED"] = "true"
    assert not dl.init(span_exporter=exporter).enabled  # the standard OTel kill switch
    assert exporter.get_finished_spans() == ()


def test_init_again_replaces_the_previous_setup(clean_env: None) -> None:
    first, second = InMemorySpanExporter(), InMemorySpanExporter()
    handle = dl.init(span_exporter=first, batch=False, instrument=False, set_global=False)
    with dl.tool_call("one"):
        pass
    dl.init(span_exporter=second, batch=False, instrument=False, set_global=False)
    assert not handle.enabled
    with dl.tool_call("two"):
        pass
    assert [s.name for s in first.get_finished_spans()] == ["execute_tool one"]
    assert [s.name for s in second.get_finished_spans()] == ["execute_tool two"]
    dl.shutdown()
    dl.shutdown()  # idempotent


# GenAI instrumentors ---------------------------------------------------------------------------


def _openai_states() -> dict[str, bool]:
    """Which OpenAI instrumentor family is on. Read from the singletons without constructing
    them: Traceloop's constructor resets its global configuration."""
    from openinference.instrumentation.openai import OpenAIInstrumentor as OpenInference
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor as Traceloop
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as Contrib

    classes = {"opentelemetry": Contrib, "openinference": OpenInference, "traceloop": Traceloop}
    return {
        family: bool(getattr(getattr(cls, "_instance", None), "is_instrumented_by_opentelemetry", False))
        for family, cls in classes.items()
    }


def _openai_entries(instrumented: list[str]) -> list[str]:
    return [name for name in instrumented if name.startswith("openai:")]


def _openai_create_layers() -> int:
    """How many wrapt wrappers instrumentors have put around `Completions.create`.

    Counted, not just detected: Traceloop's uninstrument() leaves a layer behind, so another
    test that used it may have left one already.
    """
    import openai
    import wrapt

    layers, method = 0, openai.resources.chat.completions.Completions.__dict__["create"]
    while isinstance(method, wrapt.FunctionWrapper):
        layers, method = layers + 1, method.__wrapped__
    return layers


def _ask_openai(base_url: str) -> str:
    import openai

    client = openai.OpenAI(base_url=base_url, api_key="test-key", max_retries=0)
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Capital of France?"}]
    )
    client.close()
    return str(reply.choices[0].message.content)


def test_instrument_turns_on_exactly_one_openai_instrumentor(clean_env: None) -> None:
    layers_before = _openai_create_layers()
    exporter = InMemorySpanExporter()
    handle = dl.init(span_exporter=exporter, batch=False, set_global=False, capture_content=True)
    # Other installed GenAI instrumentors (the framework tests' LangChain one) are turned on too.
    assert _openai_entries(handle.instrumented) == ["openai:opentelemetry-instrumentation-openai-v2"]
    assert _openai_states() == {"opentelemetry": True, "openinference": False, "traceloop": False}
    assert _openai_create_layers() == layers_before + 1
    assert os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] == "SPAN_ONLY"

    with fake_openai() as fake, dl.agent_step("support"):
        assert _ask_openai(fake.base_url) == ANSWER_TEXT
    chats = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert len(chats) == 1  # one instrumentor, one span per call
    chat, agent = chats[0], by_name(exporter)["invoke_agent support"]
    assert attrs(chat)["gen_ai.provider.name"] == "openai"
    assert "Capital of France?" in attrs(chat)["gen_ai.input.messages"]
    assert chat.parent is not None and (chat.parent.trace_id, chat.parent.span_id) == ids(agent)

    dl.shutdown()
    assert not any(_openai_states().values())
    assert _openai_create_layers() == layers_before


def test_instrument_preference_can_choose_another_family(clean_env: None) -> None:
    exporter = InMemorySpanExporter()
    handle = dl.init(
        span_exporter=exporter,
        batch=False,
        set_global=False,
        instrument_preference=("openinference", "traceloop"),
    )
    assert _openai_entries(handle.instrumented) == ["openai:openinference-instrumentation-openai"]
    assert _openai_states() == {"opentelemetry": False, "openinference": True, "traceloop": False}
    with fake_openai() as fake:
        _ask_openai(fake.base_url)
    [span] = exporter.get_finished_spans()
    assert attrs(span)["openinference.span.kind"] == "LLM"


def test_a_target_the_app_already_instrumented_is_left_alone(clean_env: None) -> None:
    # The app's choice is played by OpenInference: unlike Traceloop's, its uninstrument() undoes
    # every patch, so the test leaves the process as it found it.
    from openinference.instrumentation.openai import OpenAIInstrumentor
    from opentelemetry.sdk.trace import TracerProvider

    layers_before = _openai_create_layers()
    app_provider = TracerProvider()
    app_instrumentor = OpenAIInstrumentor()
    app_instrumentor.instrument(tracer_provider=app_provider)
    try:
        handle = dl.init(span_exporter=InMemorySpanExporter(), batch=False, set_global=False)
        assert _openai_entries(handle.instrumented) == []
        assert _openai_states() == {"opentelemetry": False, "openinference": True, "traceloop": False}
    finally:
        dl.shutdown()
        app_instrumentor.uninstrument()
        app_provider.shutdown()
    assert _openai_create_layers() == layers_before


def test_discover_and_plan_rank_the_installed_families() -> None:
    found = instrumentors.discover({})
    openai_families = {c.family: c.distribution for c in found if c.target == "openai"}
    assert openai_families == {
        "opentelemetry": "opentelemetry-instrumentation-openai-v2",
        "openinference": "openinference-instrumentation-openai",
        "traceloop": "opentelemetry-instrumentation-openai",
    }
    assert [c.family for c in instrumentors.plan(found)["openai"]] == [
        "opentelemetry",
        "openinference",
        "traceloop",
    ]
    assert [c.family for c in instrumentors.plan(found, ("traceloop",))["openai"]] == ["traceloop"]
    assert not [
        c for c in instrumentors.discover({"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai"}) if c.target == "openai"
    ]
    # An unknown family counts only when its entry point names a GenAI library.
    other = [
        EntryPoint("anthropic", "some_vendor.anthropic:Instrumentor", "opentelemetry_instrumentor"),
        EntryPoint("requests", "some_vendor.requests:Instrumentor", "opentelemetry_instrumentor"),
    ]
    assert [(c.target, c.family) for c in instrumentors.discover({}, other)] == [("anthropic", "other")]
    assert [instrumentors.target_key(n) for n in ("llama_index", "llama-index", "openai_v2", "google-genai")] == [
        "llamaindex",
        "llamaindex",
        "openai",
        "googlegenai",
    ]


def test_content_switches_follow_capture_content() -> None:
    env: dict[str, str] = {
        "OTEL_SEMCONV_STABILITY_OPT_IN": "http",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true",
    }
    instrumentors.configure_content_capture(True, env)
    assert env["OTEL_SEMCONV_STABILITY_OPT_IN"] == "http,gen_ai_latest_experimental"
    assert env["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] == "SPAN_ONLY"  # "true" is legacy-only
    assert env["TRACELOOP_TRACE_CONTENT"] == "true"
    instrumentors.configure_content_capture(False, env)
    assert env["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] == "NO_CONTENT"
    assert env["TRACELOOP_TRACE_CONTENT"] == "false"
    assert env["OPENINFERENCE_HIDE_INPUTS"] == env["OPENINFERENCE_HIDE_OUTPUTS"] == "true"


# Import weight --------------------------------------------------------------------------------


def test_importing_the_sdk_pulls_in_no_server_dependency() -> None:
    out = run_python(
        """
        import json, sys
        import driftline
        import driftline.sdk
        heavy = ["chdb", "clickhouse_connect", "fastapi", "pydantic_settings", "opentelemetry.sdk", "grpc"]
        print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
        """
    )
    assert json.loads(out) == []


# Real export ----------------------------------------------------------------------------------


@dataclass
class Received:
    paths: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)


@pytest.fixture
def otlp_http() -> Iterator[tuple[str, Received]]:
    """A minimal OTLP/HTTP receiver on loopback that records each POST."""
    got = Received()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            got.paths.append(self.path)
            got.headers.append({k.lower(): v for k, v in self.headers.items()})
            got.bodies.append(body)
            reply = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", got
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _span_names(requests: Sequence[ExportTraceServiceRequest]) -> list[str]:
    return [s.name for r in requests for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans]


def test_exports_otlp_http_protobuf_with_the_bearer_key(
    clean_env: None, otlp_http: tuple[str, Received], caplog: pytest.LogCaptureFixture
) -> None:
    endpoint, got = otlp_http
    caplog.set_level(logging.DEBUG)
    handle = dl.init(
        endpoint=endpoint,
        api_key="dl-secret-key",
        service="checkout",
        release="2.0.0",
        instrument=False,
        set_global=False,
    )
    with dl.llm_call(model="gpt-4o", provider="openai") as call:
        call.set_usage(input_tokens=3, output_tokens=5)
    assert dl.flush(10)

    assert got.paths == ["/v1/traces"]
    assert got.headers[0]["authorization"] == "Bearer dl-secret-key"
    assert got.headers[0]["content-type"] == "application/x-protobuf"
    request = ExportTraceServiceRequest.FromString(got.bodies[0])
    assert _span_names([request]) == ["chat gpt-4o"]
    resource = {kv.key: kv.value.string_value for kv in request.resource_spans[0].resource.attributes}
    assert (resource["service.name"], resource["service.version"]) == ("checkout", "2.0.0")
    span = request.resource_spans[0].scope_spans[0].spans[0]
    assert {kv.key: kv.value.int_value for kv in span.attributes}["gen_ai.usage.output_tokens"] == 5
    assert "dl-secret-key" not in caplog.text
    assert "dl-secret-key" not in repr(handle)


def test_spans_still_queued_at_exit_are_exported(otlp_http: tuple[str, Received]) -> None:
    endpoint, got = otlp_http
    run_python(
        f"""
        import driftline.sdk as dl
        dl.init(endpoint={endpoint!r}, api_key="k", instrument=False)
        with dl.agent_step("nightly-batch"):
            pass
        # no flush(): the batch processor still holds the span when the interpreter exits
        """
    )
    assert _span_names([ExportTraceServiceRequest.FromString(b) for b in got.bodies]) == ["invoke_agent nightly-batch"]


def test_exports_otlp_grpc_with_the_bearer_key(clean_env: None) -> None:
    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

    got: list[tuple[ExportTraceServiceRequest, dict[str, str]]] = []

    class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(
            self, request: ExportTraceServiceRequest, context: grpc.ServicerContext
        ) -> ExportTraceServiceResponse:
            got.append((request, dict(context.invocation_metadata())))
            return ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Receiver(), server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        dl.init(
            endpoint=f"127.0.0.1:{port}",
            protocol="grpc",
            api_key="grpc-secret",
            instrument=False,
            set_global=False,
        )
        with dl.tool_call("lookup"):
            pass
        assert dl.flush(10)
        dl.shutdown()
    finally:
        server.stop(grace=None)
    [(request, metadata)] = got
    assert _span_names([request]) == ["execute_tool lookup"]
    assert metadata["authorization"] == "Bearer grpc-secret"


def test_endpoint_protocol_and_header_resolution() -> None:
    assert exporters.http_traces_url("http://dl:4318") == "http://dl:4318/v1/traces"
    assert exporters.http_traces_url("http://dl:4318/v1/traces/") == "http://dl:4318/v1/traces"
    assert exporters.grpc_endpoint("http://collector") == "http://collector:4317"
    assert exporters.grpc_endpoint("collector:5000") == "http://collector:5000"
    assert exporters.grpc_endpoint("https://collector.example.com") == "https://collector.example.com:4317"
    env = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_HEADERS": "X-Tenant=a,Authorization=old",
    }
    assert exporters.resolve_protocol(None, env) == "grpc"
    assert exporters.resolve_protocol("http/protobuf", env) == "http/protobuf"
    assert exporters.resolve_protocol(None, {**env, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}) == (
        "http/protobuf"
    )
    assert exporters.resolve_protocol(None, {}) == "http/protobuf"
    with pytest.raises(ValueError, match="http/json"):
        exporters.resolve_protocol("http/json", {})
    assert exporters.resolve_headers("k1", None, env) == {"x-tenant": "a", "authorization": "Bearer k1"}
    assert exporters.resolve_headers(None, {"X-Extra": "1"}, {}) == {"x-extra": "1"}


# The global tracer provider (fresh interpreters: OpenTelemetry lets it be set once) ------------


def test_init_becomes_the_global_provider_when_the_app_has_none() -> None:
    out = run_python(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        import driftline.sdk as dl

        mem = InMemorySpanExporter()
        handle = dl.init(span_exporter=mem, batch=False, instrument=False)
        assert handle.is_global_provider and trace.get_tracer_provider() is handle.tracer_provider
        with trace.get_tracer("app").start_as_current_span("app work"):
            pass
        print(sorted(s.name for s in mem.get_finished_spans()))
        """
    )
    assert out.strip() == "['app work']"


def test_init_leaves_the_apps_own_global_provider_alone() -> None:
    out = run_python(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        import driftline.sdk as dl

        app_mem, dl_mem = InMemorySpanExporter(), InMemorySpanExporter()
        app_provider = TracerProvider()
        app_provider.add_span_processor(SimpleSpanProcessor(app_mem))
        trace.set_tracer_provider(app_provider)
        handle = dl.init(span_exporter=dl_mem, batch=False, instrument=False)
        assert not handle.is_global_provider and trace.get_tracer_provider() is app_provider
        with trace.get_tracer("app").start_as_current_span("request") as parent:
            with dl.llm_call(model="m"):
                pass
        [chat] = dl_mem.get_finished_spans()
        assert chat.parent.span_id == parent.get_span_context().span_id  # still one trace
        print([s.name for s in app_mem.get_finished_spans()], [s.name for s in dl_mem.get_finished_spans()])
        """
    )
    assert out.strip() == "['request'] ['chat m']"


# Message conversion ---------------------------------------------------------------------------


def test_messages_convert_anthropic_blocks_and_images_to_parts() -> None:
    converted = messages.input_messages(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Looks like a cat."},
                    {"type": "tool_use", "id": "tu_1", "name": "classify", "input": {"label": "cat"}},
                ],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu_1", "content": "cat"}]},
        ]
    )
    assert [p for m in converted for p in m["parts"]] == [
        {"type": "text", "content": "What is in this picture?"},
        {"type": "blob", "modality": "image", "mime_type": "image/png", "content": "iVBORw0K"},
        {"type": "uri", "modality": "image", "uri": "https://example.com/cat.png"},
        {"type": "reasoning", "content": "Looks like a cat."},
        {"type": "tool_call", "id": "tu_1", "name": "classify", "arguments": {"label": "cat"}},
        {"type": "tool_call_response", "id": "tu_1", "response": "cat"},
    ]
    already = [{"role": "user", "parts": [{"type": "text", "content": "as is"}]}]
    assert messages.input_messages(already) == already
    assert messages.output_messages(
        [{"message": {"role": "assistant", "content": "x"}, "finish_reason": "length"}]
    ) == [{"role": "assistant", "parts": [{"type": "text", "content": "x"}], "finish_reason": "length"}]
