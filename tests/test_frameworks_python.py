"""Golden traces of the real agent frameworks: LangChain with a LangGraph agent, and LlamaIndex (a
query engine, the same streaming, a FunctionAgent), each instrumented the usual way with
OpenInference, exported with the OTLP/HTTP exporter and a BatchSpanProcessor into the real
collector, read back through the trace API and held field by field to rows written by hand.

Only the model provider is faked (tests/support/fake_openai.py, on loopback): it asks for the
`get_weather` tool once when tools are offered, then answers, and always reports 57 prompt tokens
(20 cached) and 17 completion tokens (5 reasoning).
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from tests.conftest import KEY_A, LiveServer
from tests.otlp_helpers import http_exporter
from tests.support.fake_openai import (
    ANSWER_TEXT,
    CACHED_TOKENS,
    COMPLETION_TOKENS,
    PROMPT_TOKENS,
    REASONING_TOKENS,
    TOOL_CALL_ID,
    FakeOpenAI,
    fake_openai,
)
from tests.support.golden import GPT_4O_MINI_CALL_USD, Json, Row, assert_trace, stored_traces
from tests.support.otel_capture import capture

QUESTION = "What is the weather in Paris?"
SYSTEM = "You answer weather questions."
WEATHER = "Sunny in Paris, 21 C"
CALL = {"id": TOOL_CALL_ID, "name": "get_weather", "arguments": '{"city": "Paris"}'}
USAGE: dict[str, Any] = {
    "input_tokens": PROMPT_TOKENS,
    "output_tokens": COMPLETION_TOKENS,
    "cache_read_tokens": CACHED_TOKENS,
    "reasoning_tokens": REASONING_TOKENS,
    "cost_usd": GPT_4O_MINI_CALL_USD,
    "cost_source": "price_table",
}
IDS = {"user_id": "user-7", "session_id": "session-42"}


def get_weather(city: str) -> str:
    """Weather of a city."""
    return f"Sunny in {city}, 21 C"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with fake_openai() as server:
        yield server


def _trace_ids(spans: list[Any]) -> list[str]:
    """Trace ids of finished SDK spans, in the order their roots started."""
    roots = sorted((s for s in spans if s.parent is None), key=lambda s: s.start_time)
    return [f"{s.context.trace_id:032x}" for s in roots]


def test_langgraph_agent(live: LiveServer, fake: FakeOpenAI) -> None:
    from langchain.agents import create_agent
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI
    from openinference.instrumentation import using_attributes
    from openinference.instrumentation.langchain import LangChainInstrumentor

    with capture() as cap:
        cap.provider.add_span_processor(BatchSpanProcessor(http_exporter(live.url, KEY_A)))
        instrumentor = LangChainInstrumentor()
        instrumentor.instrument(tracer_provider=cap.provider)
        try:
            llm = ChatOpenAI(model="gpt-4o-mini", base_url=fake.base_url, api_key="test-key", max_retries=0)
            agent = create_agent(llm, tools=[tool(get_weather)], system_prompt=SYSTEM)
            with using_attributes(user_id="user-7", session_id="session-42"):
                result = agent.invoke({"messages": [{"role": "user", "content": QUESTION}]})
        finally:
            instrumentor.uninstrument()
        assert cap.provider.force_flush()
        (trace_id,) = _trace_ids(cap.spans())
    assert result["messages"][-1].content == ANSWER_TEXT
    spans = stored_traces(live, [trace_id])[trace_id]

    user = {"role": "user", "content": QUESTION}
    asked = {"role": "assistant", "content": "", "tool_calls": [CALL]}
    chat = {"operation": "chat", "provider": "openai", "request_model": "gpt-4o-mini"}
    chat |= {"response_model": "gpt-4o-mini-2024-07-18", **USAGE, **IDS}
    assert_trace(
        spans,
        [
            # The root: its input is the LangGraph state {"messages": [...]}; the instrumentor also
            # writes a role-only llm.input_messages.0.message.role, which is no message.
            Row("LangGraph", None, {"operation": "workflow", "input_messages": Json([user]), **IDS}),
            Row("model", "LangGraph", {"operation": "workflow", "input_messages": Json([user]), **IDS}),
            Row(
                "ChatOpenAI",
                "model",
                chat
                | {
                    "input_messages": Json([{"role": "system", "content": SYSTEM}, user]),
                    "output_messages": Json([asked]),
                    "tool_calls": Json([CALL]),
                    "finish_reason": "tool_call",
                    "output_text": "",
                },
            ),
            Row("tools", "LangGraph", {"operation": "workflow", "output_text": WEATHER, **IDS}),
            Row(
                "get_weather",
                "tools",
                {
                    "operation": "execute_tool",
                    "tool_name": "get_weather",
                    # input.value is "Paris" (a one-argument tool); the arguments object is the
                    # model's call with this id, which came in the same export.
                    "tool_arguments": '{"city": "Paris"}',
                    "tool_result": WEATHER,  # not the ToolMessage around it
                    "tool_call_id": TOOL_CALL_ID,  # from inside output.value
                    "output_text": WEATHER,
                    **IDS,
                },
            ),
            Row("model", "LangGraph", {"operation": "workflow", "input_messages": Json([user]), **IDS}),
            Row(
                "ChatOpenAI",
                "model",
                chat
                | {
                    "input_messages": Json(
                        [
                            {"role": "system", "content": SYSTEM},
                            user,
                            asked,
                            {"role": "tool", "content": WEATHER, "tool_call_id": TOOL_CALL_ID},
                        ]
                    ),
                    "output_messages": Json([{"role": "assistant", "content": ANSWER_TEXT}]),
                    "finish_reason": "stop",
                    "output_text": ANSWER_TEXT,
                },
            ),
        ],
    )
    root = spans[0]
    assert root["input_text"] == QUESTION and root["output_text"] == ANSWER_TEXT


# Third-party: llama-index's workflows read pydantic's deprecated `__fields__` and instance
# `model_computed_fields` when an agent runs.
@pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince20")
@pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince211")
def test_llamaindex_query_engine_streaming_and_agent(live: LiveServer, fake: FakeOpenAI) -> None:
    from llama_index.core import VectorStoreIndex
    from llama_index.core.agent.workflow import FunctionAgent
    from llama_index.core.base.response.schema import StreamingResponse
    from llama_index.core.prompts.chat_prompts import TEXT_QA_SYSTEM_PROMPT
    from llama_index.core.schema import TextNode
    from llama_index.core.tools import FunctionTool
    from llama_index.embeddings.openai import OpenAIEmbedding
    from llama_index.llms.openai import OpenAI
    from openinference.instrumentation import using_attributes
    from openinference.instrumentation.llama_index import LlamaIndexInstrumentor

    question = "What is the capital of France?"
    llm = OpenAI(model="gpt-4o-mini", api_base=fake.base_url, api_key="test-key", max_retries=0)
    embed = OpenAIEmbedding(model="text-embedding-3-small", api_base=fake.base_url, api_key="test-key", max_retries=0)
    paris, berlin = "Paris is the capital of France.", "Berlin is the capital of Germany."
    # The fake embeds input i of a request as [0.1 * (i + 1), 0.2, -0.3]; the query is input 0.
    index = VectorStoreIndex(
        [TextNode(id_="paris", text=paris), TextNode(id_="berlin", text=berlin)], embed_model=embed
    )
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(get_weather)], llm=llm, system_prompt=SYSTEM)

    async def run_agent() -> Any:
        return await agent.run(QUESTION)

    # LlamaIndex's sync calls run coroutines on the thread's current loop (asyncio.get_event_loop()),
    # which Python creates implicitly when there is none and nobody closes: that loop's ResourceWarning
    # then fires at some later garbage collection, inside whichever test runs then. The test owns the loop.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    with capture() as cap:
        cap.provider.add_span_processor(BatchSpanProcessor(http_exporter(live.url, KEY_A)))
        instrumentor = LlamaIndexInstrumentor()
        instrumentor.instrument(tracer_provider=cap.provider)
        try:
            with using_attributes(user_id="user-7", session_id="session-42"):
                answer = index.as_query_engine(llm=llm, similarity_top_k=2).query(question)
                streamed = index.as_query_engine(llm=llm, similarity_top_k=1, streaming=True).query(question)
                assert isinstance(streamed, StreamingResponse)
                text = "".join(streamed.response_gen)
                reply = loop.run_until_complete(run_agent())
        finally:
            instrumentor.uninstrument()
            asyncio.set_event_loop(None)
            loop.close()
            gc.collect()  # anything else left unclosed warns here, in this test
        assert cap.provider.force_flush()
        query_id, stream_id, agent_id = _trace_ids(cap.spans())
    assert str(answer) == text == str(reply) == ANSWER_TEXT
    traces = stored_traces(live, [query_id, stream_id, agent_id])

    qa_user = (
        f"Context information is below.\n---------------------\n{{}}\n---------------------\nGiven the context "
        f"information and not prior knowledge, answer the query.\nQuery: {question}\nAnswer: "
    )
    answer_msg = {"role": "assistant", "content": ANSWER_TEXT}
    # LlamaIndex's llm.model_name is the model the app configured (its LLMMetadata), a request:
    # the span has no response model.
    call = {"operation": "chat", "provider": "openai", "request_model": "gpt-4o-mini", **IDS}
    wrapper = call  # OpenAI.predict / .stream / ._prepare_chat_with_tools: the model, nothing else
    workflow = {"operation": "workflow", **IDS}
    embedding = {"operation": "embeddings", "response_model": "text-embedding-3-small", **IDS}
    query_in = Json([{"role": "user", "content": question}])
    docs = [{"id": "paris", "content": paris, "score": 1.0}]
    second = {"id": "berlin", "content": berlin, "score": pytest.approx(0.15 / (0.14 * 0.17) ** 0.5)}

    def retrieval(documents: list[dict[str, Any]]) -> list[Row]:
        return [
            Row(
                "VectorIndexRetriever.retrieve",
                "RetrieverQueryEngine._query",
                {"operation": "retrieval", "retrieved_documents": Json(documents), "input_text": question, **IDS},
            ),
            Row(
                "VectorIndexRetriever._retrieve",
                "VectorIndexRetriever.retrieve",
                {"operation": "retrieval", "input_text": question, **IDS},  # not {"query_bundle": ...}
            ),
            Row(
                "OpenAIEmbedding.get_query_embedding",
                "VectorIndexRetriever._retrieve",
                embedding | {"input_messages": query_in},
            ),
            Row("OpenAIEmbedding._get_query_embedding", "OpenAIEmbedding.get_query_embedding", embedding),
        ]

    system = {"role": "system", "content": TEXT_QA_SYSTEM_PROMPT.content}
    answered = {"input_text": question, "output_text": ANSWER_TEXT}
    asked_qa = {"input_text": question}  # not {"query_str": ..., "text_chunks": [...]}
    assert_trace(
        traces[query_id],
        [
            Row("RetrieverQueryEngine.query", None, workflow | {"input_text": question, "output_text": ANSWER_TEXT}),
            # its output is the Response {"response", "source_nodes", ...}: the text is the response
            Row("RetrieverQueryEngine._query", "RetrieverQueryEngine.query", workflow | answered),
            *retrieval([docs[0], second]),
            Row("CompactAndRefine.synthesize", "RetrieverQueryEngine._query", workflow | {"output_text": ANSWER_TEXT}),
            Row("CompactAndRefine.get_response", "CompactAndRefine.synthesize", workflow | asked_qa),
            Row("TokenTextSplitter.split_text", "CompactAndRefine.get_response", workflow),
            Row("CompactAndRefine.get_response", "CompactAndRefine.get_response", workflow),
            Row("TokenTextSplitter.split_text", "CompactAndRefine.get_response", workflow),
            Row("DefaultRefineProgram.__call__", "CompactAndRefine.get_response", workflow),
            Row("OpenAI.predict", "DefaultRefineProgram.__call__", wrapper | {"output_text": ANSWER_TEXT}),
            Row(
                "OpenAI.chat",
                "OpenAI.predict",
                call
                | USAGE
                | {
                    "input_messages": Json(
                        [system, {"role": "user", "content": qa_user.format(f"{paris}\n\n{berlin}")}]
                    ),
                    "output_messages": Json([answer_msg]),
                    "finish_reason": "stop",
                    "output_text": ANSWER_TEXT,  # not output.value "assistant: The capital ..."
                },
            ),
        ],
    )

    # Streaming: LlamaIndex's OpenAI streaming asks for no usage, so the call has no tokens and
    # no cost (an unpriced call, counted as such), and the trace's cost is unknown, not 0.
    stream_user = qa_user.format(paris)
    assert_trace(
        traces[stream_id],
        [
            # a StreamingResponse not yet drained has no text: the streamed call holds it
            Row("RetrieverQueryEngine.query", None, workflow | {"input_text": question, "output_text": ""}),
            Row("RetrieverQueryEngine._query", "RetrieverQueryEngine.query", workflow | {"input_text": question}),
            *retrieval(docs),
            Row("CompactAndRefine.synthesize", "RetrieverQueryEngine._query", workflow | {"output_text": ""}),
            Row("CompactAndRefine.get_response", "CompactAndRefine.synthesize", workflow | asked_qa),
            Row("TokenTextSplitter.split_text", "CompactAndRefine.get_response", workflow),
            Row("CompactAndRefine.get_response", "CompactAndRefine.get_response", workflow),
            Row("TokenTextSplitter.split_text", "CompactAndRefine.get_response", workflow),
            Row("OpenAI.stream", "CompactAndRefine.get_response", wrapper),
            Row(
                "OpenAI.stream_chat",
                "OpenAI.stream",
                call
                | {
                    "input_messages": Json([system, {"role": "user", "content": stream_user}]),
                    "output_messages": Json([answer_msg]),
                    "finish_reason": "stop",
                    "output_text": ANSWER_TEXT,
                },
            ),
        ],
    )

    # The agent: the step that only asks for the tool has no output text (output.value is
    # "assistant: "), and the tool span holds the arguments object and the tool's text.
    user, system_msg = {"role": "user", "content": QUESTION}, {"role": "system", "content": SYSTEM}
    asked = {"role": "assistant", "content": "", "tool_calls": [CALL]}
    step = "BaseWorkflowAgent.run_agent_step"
    assert_trace(
        traces[agent_id],
        [
            Row("FunctionAgent.run", None, workflow),
            Row("BaseWorkflowAgent.init_run", "FunctionAgent.run", workflow),
            Row("BaseWorkflowAgent.setup_agent", "FunctionAgent.run", workflow),
            Row(step, "FunctionAgent.run", workflow),
            Row("OpenAI._prepare_chat_with_tools", step, wrapper),
            Row(
                "OpenAI.astream_chat",
                step,
                call
                | {
                    "input_messages": Json([system_msg, user]),
                    "output_messages": Json([asked]),
                    "tool_calls": Json([CALL]),
                    "finish_reason": "tool_call",
                    "output_text": "",
                },
            ),
            Row("BaseWorkflowAgent.parse_agent_output", "FunctionAgent.run", workflow),
            Row("BaseWorkflowAgent.call_tool", "FunctionAgent.run", workflow),
            Row(
                "FunctionTool.acall",
                "BaseWorkflowAgent.call_tool",
                {
                    "operation": "execute_tool",
                    "tool_name": "get_weather",
                    "tool_arguments": '{"city":"Paris"}',  # not {"kwargs": {...}}
                    "tool_result": WEATHER,  # not the ToolOutput JSON
                    "output_text": WEATHER,
                    **IDS,
                },
            ),
            Row("BaseWorkflowAgent.aggregate_tool_results", "FunctionAgent.run", workflow),
            Row("BaseWorkflowAgent.setup_agent", "FunctionAgent.run", workflow),
            Row(step, "FunctionAgent.run", workflow),
            Row("OpenAI._prepare_chat_with_tools", step, wrapper),
            Row(
                "OpenAI.astream_chat",
                step,
                call
                | {
                    "input_messages": Json(
                        [system_msg, user, asked, {"role": "tool", "content": WEATHER, "tool_call_id": TOOL_CALL_ID}]
                    ),
                    "output_messages": Json([answer_msg]),
                    "finish_reason": "stop",
                    "output_text": ANSWER_TEXT,
                },
            ),
            Row("BaseWorkflowAgent.parse_agent_output", "FunctionAgent.run", workflow),
        ],
    )

    # The trace list: the query engine's trace costs its one priced call; the streaming and agent
    # traces have no priced span, so their cost is unknown (null), not 0.
    r = httpx.get(f"{live.url}/api/v1/traces", headers={"Authorization": f"Bearer {KEY_A}"}, params={"limit": 10})
    assert r.status_code == 200
    costs = {t["trace_id"]: t["cost_usd"] for t in r.json()["traces"]}
    assert costs[query_id] == pytest.approx(GPT_4O_MINI_CALL_USD)
    assert costs[stream_id] is None and costs[agent_id] is None
    for trace_id in (stream_id, agent_id):
        r = httpx.get(f"{live.url}/api/v1/traces/{trace_id}", headers={"Authorization": f"Bearer {KEY_A}"})
        assert r.json()["summary"]["cost_usd"] is None
    # Unpriced model calls: the two query embeddings (LlamaIndex records no tokens for them), the
    # streamed call and the agent's two calls. The wrappers, with a model and nothing else, are not calls.
    assert "driftline_collector_unpriced_spans_total 5.0" in httpx.get(f"{live.url}/metrics").text
