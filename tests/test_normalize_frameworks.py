"""The framework spans of issue #16, one rule each, on spans recorded through the real SDK with the
attributes openinference-instrumentation-langchain 0.1.80 / -llama-index 4.6.1 and the Vercel AI SDK
6 emit (copied from their real spans; tests/test_frameworks_*.py drive the frameworks themselves).
"""

from __future__ import annotations

import json
from typing import Any

from driftline.collector.normalize import arguments_pending, fill_arguments, unpriced
from tests.support.recorded import normalize

LLAMA_PARAMS = json.dumps(
    {
        "context_window": 128000,
        "num_output": -1,
        "is_chat_model": True,
        "is_function_calling_model": True,
        "model_name": "gpt-4o-mini",
        "system_role": "system",
    }
)


def test_llamaindex_model_name_is_the_request_model() -> None:
    row = normalize(
        "OpenAI.chat",
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-4o-mini",
            "llm.invocation_parameters": LLAMA_PARAMS,
            "llm.provider": "openai",
            "llm.token_count.prompt": 57,
            "llm.token_count.completion": 17,
        },
    )
    assert (row["request_model"], row.get("response_model")) == ("gpt-4o-mini", None)
    assert row["cost_source"] == "price_table"


def test_langchain_model_name_is_the_response_model() -> None:
    row = normalize(
        "ChatOpenAI",
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-4o-mini-2024-07-18",
            "llm.invocation_parameters": '{"model": "gpt-4o-mini", "model_name": "gpt-4o-mini", "stream": false}',
        },
    )
    assert (row["request_model"], row["response_model"]) == ("gpt-4o-mini", "gpt-4o-mini-2024-07-18")


def test_llamaindex_tool_call_step_has_no_output_text() -> None:
    row = normalize(
        "OpenAI.astream_chat",
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-4o-mini",
            "llm.invocation_parameters": LLAMA_PARAMS,
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.content": "What is the weather in Paris?",
            "output.value": "assistant: ",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.contents.0.message_content.type": "text",
            "llm.output_messages.0.message.contents.0.message_content.text": "",
            "llm.output_messages.0.message.tool_calls.0.tool_call.id": "call_1",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "get_weather",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"city": "Paris"}',
        },
    )
    assert "output_text" not in row
    assert json.loads(row["tool_calls"]) == [{"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}]


def test_langgraph_root_messages_from_its_state() -> None:
    state_out = {
        "messages": [
            {"type": "human", "data": {"content": "What is the weather in Paris?", "type": "human"}},
            {
                "type": "ai",
                "data": {
                    "content": "",
                    "type": "ai",
                    "tool_calls": [{"name": "get_weather", "args": {"city": "Paris"}, "id": "c1", "type": "tool_call"}],
                },
            },
            {"type": "tool", "data": {"content": "Sunny", "type": "tool", "tool_call_id": "c1", "status": "success"}},
            {"type": "ai", "data": {"content": "It is sunny.", "type": "ai"}},
        ]
    }
    row = normalize(
        "LangGraph",
        {
            "openinference.span.kind": "CHAIN",
            "input.value": '{"messages": [{"role": "user", "content": "What is the weather in Paris?"}]}',
            "input.mime_type": "application/json",
            "output.value": json.dumps(state_out),
            "output.mime_type": "application/json",
            "llm.input_messages.0.message.role": "user",
        },
    )
    assert json.loads(row["input_messages"]) == [{"role": "user", "content": "What is the weather in Paris?"}]
    assert (row["input_text"], row["output_text"]) == ("What is the weather in Paris?", "It is sunny.")


def test_langchain_tool_message_unwrapped() -> None:
    message: dict[str, Any] = {
        "type": "tool",
        "data": {
            "content": "Sunny in Paris",
            "type": "tool",
            "name": "get_weather",
            "tool_call_id": "call_1",
            "status": "success",
        },
    }
    row = normalize(
        "get_weather",
        {
            "openinference.span.kind": "TOOL",
            "tool.name": "get_weather",
            "input.value": "Paris",
            "output.value": json.dumps(message),
            "output.mime_type": "application/json",
        },
    )
    assert (row["tool_result"], row["tool_call_id"], row["output_text"]) == (
        "Sunny in Paris",
        "call_1",
        "Sunny in Paris",
    )
    assert "tool_error" not in row
    failed = {**message, "data": {**message["data"], "content": "no such city", "status": "error"}}
    row = normalize("get_weather", {"openinference.span.kind": "TOOL", "output.value": json.dumps(failed)})
    assert (row["tool_result"], row["tool_error"]) == ("no such city", "no such city")


def test_langchain_tool_call_input_unwrapped() -> None:
    row = normalize(
        "get_weather",
        {
            "openinference.span.kind": "TOOL",
            "input.value": '{"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1", "type": "tool_call"}',
        },
    )
    assert (row["tool_arguments"], row["tool_call_id"]) == ('{"city":"Paris"}', "call_1")


def test_llamaindex_tool_input_and_output_unwrapped() -> None:
    output = {
        "blocks": [{"text": "Sunny in Paris"}],
        "tool_name": "get_weather",
        "raw_input": {"args": [], "kwargs": {"city": "Paris"}},
        "raw_output": "Sunny in Paris",
        "is_error": False,
    }
    attrs = {
        "openinference.span.kind": "TOOL",
        "tool.name": "get_weather",
        "tool.parameters": '{"properties": {"city": {"type": "string"}}}',
        "input.value": '{"kwargs": {"city": "Paris"}}',
        "output.value": json.dumps(output),
    }
    row = normalize("FunctionTool.acall", attrs)
    assert (row["tool_arguments"], row["tool_result"]) == ('{"city":"Paris"}', "Sunny in Paris")
    assert (row["input_text"], row["output_text"]) == ('{"city":"Paris"}', "Sunny in Paris")
    assert "tool_error" not in row
    errored = {**output, "blocks": [{"text": "Error: boom"}], "is_error": True}
    row = normalize("FunctionTool.acall", attrs | {"output.value": json.dumps(errored)})
    assert row["tool_error"] == "Error: boom"
    # positional arguments stay as they came: no object to unwrap to
    row = normalize("FunctionTool.acall", attrs | {"input.value": '{"args": ["Paris"], "kwargs": {}}'})
    assert row["tool_arguments"] == '{"args": ["Paris"], "kwargs": {}}'


def test_bare_tool_arguments_taken_from_the_model_call() -> None:
    tool: dict[str, object] = {
        "operation": "execute_tool",
        "tool_call_id": "call_1",
        "tool_arguments": "Paris",
        "input_text": "Paris",
    }
    tool["input_text_fallback"] = "Paris"
    other: dict[str, object] = {"operation": "execute_tool", "tool_call_id": "call_9", "tool_arguments": "Rome"}
    call: dict[str, object] = {
        "operation": "chat",
        "tool_calls": '[{"id":"call_1","name":"get_weather","arguments":"{\\"city\\": \\"Paris\\"}"}]',
    }
    rows: list[dict[str, object]] = [call, tool, other]
    pending = [r for r in rows if arguments_pending(r)]
    assert pending == [tool, other]
    fill_arguments(rows, pending)
    assert tool["tool_arguments"] == tool["input_text"] == tool["input_text_fallback"] == '{"city": "Paris"}'
    assert other["tool_arguments"] == "Rome"  # its call is not in this request: left as it came
    assert not arguments_pending({"operation": "execute_tool", "tool_call_id": "c", "tool_arguments": '{"a": 1}'})


def test_vercel_tool_result_wrapper_and_function_id() -> None:
    prompt = [
        {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
        {
            "role": "tool",
            "content": [
                {
                    "type": "tool-result",
                    "toolCallId": "call_1",
                    "toolName": "get_weather",
                    "output": {"type": "json", "value": {"city": "Paris", "forecast": "Sunny"}},
                },
                {
                    "type": "tool-result",
                    "toolCallId": "call_2",
                    "toolName": "get_time",
                    "output": {"type": "text", "value": "noon"},
                },
            ],
        },
    ]
    row = normalize(
        "ai.generateText.doGenerate",
        {
            "ai.operationId": "ai.generateText.doGenerate",
            "ai.telemetry.functionId": "weather-agent",
            "ai.model.id": "gpt-4o-mini",
            "ai.prompt.messages": json.dumps(prompt),
        },
    )
    assert json.loads(row["input_messages"])[1] == {
        "role": "tool",
        "content": '{"city":"Paris","forecast":"Sunny"}\nnoon',
        "tool_call_id": "call_2",
    }
    assert row["agent_name"] == "weather-agent"


def test_model_calls_without_tokens_are_unpriced() -> None:
    chat: dict[str, object] = {"operation": "chat", "request_model": "gpt-4o-mini", "output_messages": "[...]"}
    assert unpriced(chat)
    assert not unpriced(chat | {"cost_usd": 0.001})
    assert not unpriced({"operation": "chat", "request_model": "gpt-4o-mini"})  # a wrapper: model, nothing else
    assert unpriced({"operation": "chat", "input_tokens": 3})
    assert not unpriced({"operation": "workflow", "request_model": "gpt-4o-mini", "input_messages": "[...]"})


def test_llamaindex_query_and_response_objects() -> None:
    row = normalize(
        "RetrieverQueryEngine._query",
        {
            "openinference.span.kind": "CHAIN",
            "input.value": '{"query_bundle": {"query_str": "Capital?", "image_path": null, "embedding": null}}',
            "output.value": '{"response": "Paris.", "source_nodes": ["<NodeWithScore(...)>"], "metadata": {}}',
        },
    )
    assert (row["input_text"], row["output_text"]) == ("Capital?", "Paris.")
    streamed = '{"response_gen": "<generator object>", "source_nodes": [], "metadata": {}, "response_txt": null}'
    row = normalize(
        "RetrieverQueryEngine.query",
        {"openinference.span.kind": "CHAIN", "input.value": "Capital?", "output.value": streamed},
    )
    assert (row["input_text"], row.get("output_text")) == ("Capital?", None)
    other = '{"response": {"status": 200}}'  # not a LlamaIndex response: kept as it came
    row = normalize("call", {"openinference.span.kind": "CHAIN", "output.value": other})
    assert row["output_text"] == other
