"""OpenInference and OpenLLMetry span kinds beyond an OpenAI call, on spans recorded by the SDK.

The installed instrumentors only make LLM spans; tools, retrievers, workflows and OpenLLMetry's
legacy indexed content keys need their own spans, so their attributes are recorded by hand
through the real OTel SDK, as those libraries document them.
"""

from __future__ import annotations

import json

from genai_prices import Usage, calc_price

from tests.support.recorded import normalize

# OpenInference -------------------------------------------------------------------------------


def test_openinference_tool_span() -> None:
    row = normalize(
        "get_weather",
        {
            "openinference.span.kind": "TOOL",
            "tool.name": "get_weather",
            "tool.parameters": '{"type": "object"}',
            "input.value": '{"city": "Paris"}',
            "output.value": "sunny",
            "tool_call.id": "call_1",
        },
    )
    assert (row["operation"], row["tool_name"], row["tool_call_id"]) == (
        "execute_tool",
        "get_weather",
        "call_1",
    )
    assert (row["tool_arguments"], row["tool_result"]) == ('{"city": "Paris"}', "sunny")
    assert (row["input_text"], row["output_text"]) == ('{"city": "Paris"}', "sunny")


def test_openinference_retriever_documents() -> None:
    row = normalize(
        "retrieve",
        {
            "openinference.span.kind": "RETRIEVER",
            "input.value": "refund policy",
            "retrieval.documents.0.document.id": "doc-1",
            "retrieval.documents.0.document.content": "30 days",
            "retrieval.documents.0.document.score": 0.91,
            "retrieval.documents.1.document.id": "doc-2",
            "retrieval.documents.1.document.content": "no receipts",
            "session.id": "s-1",
            "user.id": "u-1",
        },
    )
    assert row["operation"] == "retrieval"
    assert json.loads(row["retrieved_documents"]) == [
        {"id": "doc-1", "content": "30 days", "score": 0.91},
        {"id": "doc-2", "content": "no receipts", "score": None},
    ]
    assert (row["input_text"], row["session_id"], row["user_id"]) == ("refund policy", "s-1", "u-1")


def test_openinference_llm_with_cost_contents_and_tool_message() -> None:
    row = normalize(
        "llm",
        {
            "openinference.span.kind": "LLM",
            "llm.provider": "anthropic",
            "llm.model_name": "claude-3-5-haiku-latest",
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.contents.0.message_content.type": "text",
            "llm.input_messages.0.message.contents.0.message_content.text": "Describe",
            "llm.input_messages.0.message.contents.1.message_content.type": "image",
            "llm.input_messages.1.message.role": "tool",
            "llm.input_messages.1.message.content": "42",
            "llm.input_messages.1.message.tool_call_id": "t9",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": "A cat.",
            "llm.token_count.prompt": 10,
            "llm.token_count.completion": 3,
            "llm.cost.total": 0.0042,
        },
    )
    assert (row["operation"], row["provider"]) == ("chat", "anthropic")
    assert row["input_text"] == "Describe"
    assert json.loads(row["input_messages"])[1] == {"role": "tool", "content": "42", "tool_call_id": "t9"}
    assert (row["cost_usd"], row["cost_source"]) == (0.0042, "span")


def test_openinference_chain_and_agent() -> None:
    chain = normalize("chain", {"openinference.span.kind": "CHAIN", "input.value": "q", "output.value": "a"})
    assert (chain["operation"], chain["input_text"], chain["output_text"]) == ("workflow", "q", "a")
    agent = normalize("support-agent", {"openinference.span.kind": "AGENT", "input.value": "q"})
    assert (agent["operation"], agent["agent_name"]) == ("invoke_agent", "support-agent")


# OpenLLMetry / Traceloop -----------------------------------------------------------------------


def test_traceloop_legacy_indexed_content() -> None:
    row = normalize(
        "openai.chat",
        {
            "llm.request.type": "chat",
            "gen_ai.system": "OpenAI",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
            "gen_ai.prompt.0.role": "system",
            "gen_ai.prompt.0.content": "Be terse.",
            "gen_ai.prompt.1.role": "user",
            "gen_ai.prompt.1.content": "Weather?",
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.finish_reason": "tool_calls",
            "gen_ai.completion.0.tool_calls.0.id": "c1",
            "gen_ai.completion.0.tool_calls.0.name": "weather",
            "gen_ai.completion.0.tool_calls.0.arguments": '{"city":"Oslo"}',
            "gen_ai.usage.prompt_tokens": 30,
            "gen_ai.usage.completion_tokens": 12,
            "llm.usage.total_tokens": 42,
            "traceloop.association.properties.user_id": "u-7",
            "traceloop.association.properties.session_id": "s-7",
        },
    )
    assert (row["operation"], row["provider"]) == ("chat", "openai")
    assert (row["system_prompt"], row["input_text"]) == ("Be terse.", "Weather?")
    assert row["finish_reason"] == "tool_call"
    assert json.loads(row["tool_calls"]) == [{"id": "c1", "name": "weather", "arguments": '{"city":"Oslo"}'}]
    assert (row["input_tokens"], row["output_tokens"], row["total_tokens"]) == (30, 12, 42)
    assert (row["user_id"], row["session_id"]) == ("u-7", "s-7")
    usage = Usage(input_tokens=30, output_tokens=12)
    assert row["cost_usd"] == float(calc_price(usage, "gpt-4o-mini-2024-07-18", provider_id="openai").total_price)


def test_traceloop_tool_and_workflow_entities() -> None:
    tool = normalize(
        "search.tool",
        {
            "traceloop.span.kind": "tool",
            "traceloop.entity.name": "search",
            "traceloop.entity.input": '{"args": ["pizza"], "kwargs": {}}',
            "traceloop.entity.output": '"3 results"',
        },
    )
    assert (tool["operation"], tool["tool_name"]) == ("execute_tool", "search")
    assert tool["tool_arguments"] == '{"args": ["pizza"], "kwargs": {}}'
    assert tool["input_text"] == "pizza"
    wf = normalize(
        "bot.workflow",
        {
            "traceloop.span.kind": "workflow",
            "traceloop.entity.name": "bot",
            "traceloop.entity.input": "hello",
        },
    )
    assert (wf["operation"], wf["input_text"]) == ("workflow", "hello")
