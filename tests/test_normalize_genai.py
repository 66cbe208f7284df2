"""GenAI semantic conventions, current and older forms, on spans made by the real OTel SDK.

No installed library emits the older forms (gen_ai.system, prompt_tokens, gen_ai.prompt, the
per-message span events) or structured AnyValue message arrays, so these spans are recorded
by hand through the SDK and encoded to OTLP like any other.
Spec: https://opentelemetry.io/docs/specs/semconv/gen-ai/
"""

from __future__ import annotations

import json

import pytest
from genai_prices import Usage, calc_price

from driftline.collector.conventions.providers import normalize_operation, normalize_provider
from tests.support.otel_capture import SpanEvent
from tests.support.recorded import normalize


def test_structured_anyvalue_messages_and_system_instructions() -> None:
    row = normalize(
        "chat claude",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-3-5-haiku-20241022",
            "gen_ai.system_instructions": [{"type": "text", "content": "Be brief."}],
            "gen_ai.input.messages": [
                {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
                {
                    "role": "assistant",
                    "parts": [{"type": "tool_call", "id": "t1", "name": "weather", "arguments": {"city": "Paris"}}],
                },
                {"role": "tool", "parts": [{"type": "tool_call_response", "id": "t1", "response": "sunny"}]},
            ],
            "gen_ai.output.messages": [
                {
                    "role": "assistant",
                    "parts": [{"type": "text", "content": "Sunny."}],
                    "finish_reason": "end_turn",
                },
            ],
            "gen_ai.usage.input_tokens": 100,
            "gen_ai.usage.output_tokens": 5,
        },
    )
    assert row["system_prompt"] == "Be brief."
    assert row["input_text"] == "Weather in Paris?"
    assert row["output_text"] == "Sunny."
    assert row["finish_reason"] == "stop"  # end_turn folded onto the semconv set
    msgs = json.loads(row["input_messages"])
    assert msgs[1]["tool_calls"] == [{"id": "t1", "name": "weather", "arguments": '{"city":"Paris"}'}]
    assert msgs[2] == {"role": "tool", "content": "sunny", "tool_call_id": "t1"}
    # The raw structured value stays in the attributes map, as JSON text.
    assert json.loads(row["attributes"]["gen_ai.input.messages"])[0]["role"] == "user"
    expected = calc_price(
        Usage(input_tokens=100, output_tokens=5), "claude-3-5-haiku-20241022", provider_id="anthropic"
    )
    assert row["cost_usd"] == float(expected.total_price)


def test_older_attribute_names() -> None:
    row = normalize(
        "openai.chat",
        {
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.prompt_tokens": 40,
            "gen_ai.usage.completion_tokens": 10,
            "gen_ai.usage.cache_read_input_tokens": 8,
            "gen_ai.prompt": json.dumps([{"role": "user", "content": "hi"}]),
            "gen_ai.completion": "hello there",
        },
    )
    assert (row["provider"], row["request_model"]) == ("openai", "gpt-4o")
    assert (row["input_tokens"], row["output_tokens"], row["cache_read_tokens"]) == (40, 10, 8)
    assert row["input_text"] == "hi"
    assert row["output_text"] == "hello there"
    assert row["operation"] == "other"  # a GenAI span that names no operation


def test_per_message_span_events() -> None:
    events: list[SpanEvent] = [
        ("gen_ai.system.message", {"content": "You are a bot."}),
        ("gen_ai.user.message", {"content": "What is 2+2?"}),
        (
            "gen_ai.assistant.message",
            {
                "content": "",
                "tool_calls": json.dumps(
                    [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "add", "arguments": '{"a":2,"b":2}'},
                        }
                    ]
                ),
            },
        ),
        ("gen_ai.tool.message", {"content": "4", "id": "c1"}),
        (
            "gen_ai.choice",
            {
                "index": 0,
                "finish_reason": "stop",
                "message": json.dumps({"role": "assistant", "content": "4."}),
            },
        ),
    ]
    row = normalize(
        "chat gpt-4o",
        {"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o"},
        events=events,
    )
    assert row["system_prompt"] == "You are a bot."
    assert row["input_text"] == "What is 2+2?"
    assert row["output_text"] == "4."
    assert row["finish_reason"] == "stop"
    msgs = json.loads(row["input_messages"])
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "tool"]
    assert msgs[2]["tool_calls"][0]["name"] == "add"
    assert msgs[3]["tool_call_id"] == "c1"
    assert [e["name"] for e in json.loads(row["events"])][:2] == [
        "gen_ai.system.message",
        "gen_ai.user.message",
    ]


def test_inference_operation_details_event() -> None:
    details = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.input.messages": [{"role": "user", "parts": [{"type": "text", "content": "ping"}]}],
        "gen_ai.output.messages": [{"role": "assistant", "parts": [{"type": "text", "content": "pong"}]}],
        "gen_ai.usage.input_tokens": 3,
        "gen_ai.usage.output_tokens": 1,
    }
    row = normalize(
        "chat gpt-4o-mini",
        {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"},
        events=[("gen_ai.client.inference.operation.details", details)],
    )
    assert (row["input_text"], row["output_text"]) == ("ping", "pong")
    assert (row["input_tokens"], row["output_tokens"]) == (3, 1)
    assert row["response_model"] == "gpt-4o-mini-2024-07-18"
    assert row["cost_source"] == "price_table"


def test_execute_tool_error_from_status_and_exception_event() -> None:
    row = normalize(
        "execute_tool lookup",
        {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "lookup",
            "gen_ai.tool.call.id": "call_9",
            "gen_ai.tool.call.arguments": '{"id": 7}',
        },
        events=[("exception", {"exception.type": "KeyError", "exception.message": "7"})],
        error="KeyError: 7",
    )
    assert (row["operation"], row["tool_name"], row["tool_call_id"]) == ("execute_tool", "lookup", "call_9")
    assert row["tool_arguments"] == '{"id": 7}'
    assert row["input_text"] == '{"id": 7}'
    assert row["tool_error"] == "KeyError: 7"
    assert row["error_type"] == "KeyError"
    assert row["status_code"] == "error"


@pytest.mark.parametrize("result", ['{"isError": true, "content": "no such id"}', '{"error": "no such id"}'])
def test_tool_result_marked_as_error(result: str) -> None:
    row = normalize(
        "execute_tool lookup",
        {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "lookup",
            "gen_ai.tool.call.result": result,
        },
    )
    assert row["tool_result"] == result
    assert "no such id" in row["tool_error"]
    assert row["output_text"] == result


def test_agent_span_is_not_priced_twice() -> None:
    """invoke_agent spans carry their children's summed usage: no price-table cost on them."""
    row = normalize(
        "invoke_agent support",
        {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "support",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.conversation.id": "conv-1",
            "gen_ai.usage.input_tokens": 900,
            "gen_ai.usage.output_tokens": 80,
        },
    )
    assert (row["agent_name"], row["conversation_id"]) == ("support", "conv-1")
    assert row["input_tokens"] == 900
    assert "cost_usd" not in row


def test_exclusive_cache_counts_are_added_back() -> None:
    """Anthropic-style counts (input excludes cache): 3 + 7166 + 2175 (seen from pydantic-ai/Logfire)."""
    row = normalize(
        "chat claude",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.usage.input_tokens": 3,
            "gen_ai.usage.output_tokens": 5,
            "gen_ai.usage.cache_read.input_tokens": 7166,
            "gen_ai.usage.cache_creation.input_tokens": 2175,
            "gen_ai.usage.reasoning.output_tokens": 9,
        },
    )
    assert row["input_tokens"] == 3 + 7166 + 2175
    assert row["output_tokens"] == 5 + 9  # reasoning > output: it cannot have been included
    assert row["total_tokens"] == row["input_tokens"] + row["output_tokens"]
    usage = Usage(
        input_tokens=row["input_tokens"],
        output_tokens=14,
        cache_read_tokens=7166,
        cache_write_tokens=2175,
        output_reasoning_tokens=9,
    )
    assert row["cost_usd"] == float(calc_price(usage, "claude-sonnet-4-5", provider_id="anthropic").total_price)


def test_inclusive_counts_are_kept() -> None:
    row = normalize(
        "chat",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.usage.input_tokens": 100,
            "gen_ai.usage.cache_read.input_tokens": 60,
            "gen_ai.usage.output_tokens": 10,
        },
    )
    assert (row["input_tokens"], row["cache_read_tokens"], row["total_tokens"]) == (100, 60, 110)


def test_error_type_from_str_of_a_class() -> None:
    row = normalize(
        "chat x", {"gen_ai.operation.name": "chat", "error.type": "<class 'openai.APIError'>"}, error="boom"
    )
    assert row["error_type"] == "openai.APIError"


def test_retrieval_span() -> None:
    row = normalize(
        "retrieval kb",
        {
            "gen_ai.operation.name": "retrieval",
            "gen_ai.retrieval.query.text": "refund policy",
            "gen_ai.retrieval.documents": json.dumps([{"id": "d1", "score": 0.9, "content": "30 days"}]),
        },
    )
    assert row["operation"] == "retrieval"
    assert row["input_text"] == "refund policy"
    assert json.loads(row["retrieved_documents"]) == [{"id": "d1", "content": "30 days", "score": 0.9}]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("openai", "openai"),
        ("OpenAI", "openai"),
        ("azure", "azure.ai.openai"),
        ("az.ai.openai", "azure.ai.openai"),
        ("aws.bedrock", "aws.bedrock"),
        ("Bedrock", "aws.bedrock"),
        ("amazon-bedrock", "aws.bedrock"),
        ("vertex_ai", "gcp.vertex_ai"),
        ("google.vertex.chat", "gcp.vertex_ai"),
        ("gemini", "gcp.gemini"),
        ("google.generative-ai", "gcp.gemini"),
        ("anthropic.messages", "anthropic"),
        ("openai.chat", "openai"),
        ("mistralai", "mistral_ai"),
        ("xai", "x_ai"),
        ("ollama", "ollama"),
    ],
)
def test_provider_names(raw: str, expected: str) -> None:
    assert normalize_provider(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("chat", "chat"),
        ("generate_content", "chat"),
        ("text_completion", "text_completion"),
        ("embeddings", "embeddings"),
        ("invoke_workflow", "workflow"),
        ("create_agent", "create_agent"),
        ("something_new", "other"),
    ],
)
def test_operation_names(raw: str, expected: str) -> None:
    assert normalize_operation(raw) == expected
