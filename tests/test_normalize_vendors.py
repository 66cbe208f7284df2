"""Vercel AI SDK, Langfuse, Logfire / pydantic-ai and OpenLIT, on spans recorded by the real SDK.

None of them has an emitter installed here (the AI SDK is JavaScript; the others would pull in
their own SDKs), so their attributes are recorded by hand through the real OTel SDK, as their
documentation and sources describe them, and encoded to OTLP like any other span.
"""

from __future__ import annotations

import json

from genai_prices import Usage, calc_price

from tests.support.recorded import normalize

# Vercel AI SDK -------------------------------------------------------------------------------


def test_vercel_do_generate_v4_names() -> None:
    row = normalize(
        "ai.generateText.doGenerate",
        {
            "operation.name": "ai.generateText.doGenerate my-fn",
            "ai.operationId": "ai.generateText.doGenerate",
            "ai.model.provider": "anthropic.messages",
            "ai.model.id": "claude-3-5-haiku-20241022",
            "ai.prompt.messages": json.dumps(
                [
                    {"role": "system", "content": "Be kind."},
                    {"role": "user", "content": [{"type": "text", "text": "Weather in Rome?"}]},
                ]
            ),
            "ai.response.text": "",
            "ai.response.finishReason": "tool-calls",
            "ai.response.toolCalls": json.dumps(
                [
                    {
                        "toolCallType": "function",
                        "toolCallId": "tc1",
                        "toolName": "weather",
                        "args": '{"city":"Rome"}',
                    }
                ]
            ),
            "ai.usage.promptTokens": 50,
            "ai.usage.completionTokens": 7,
            "ai.telemetry.metadata.userId": "u-3",
            "ai.telemetry.metadata.sessionId": "s-3",
        },
    )
    assert (row["operation"], row["provider"], row["request_model"]) == (
        "chat",
        "anthropic",
        "claude-3-5-haiku-20241022",
    )
    assert (row["system_prompt"], row["input_text"]) == ("Be kind.", "Weather in Rome?")
    assert row["finish_reason"] == "tool_call"
    assert json.loads(row["tool_calls"]) == [{"id": "tc1", "name": "weather", "arguments": '{"city":"Rome"}'}]
    assert (row["input_tokens"], row["output_tokens"]) == (50, 7)
    assert (row["user_id"], row["session_id"]) == ("u-3", "s-3")
    usage = Usage(input_tokens=50, output_tokens=7)
    expected = calc_price(usage, "claude-3-5-haiku-20241022", provider_id="anthropic")
    assert (row["cost_usd"], row["cost_source"]) == (float(expected.total_price), "price_table")


def test_vercel_stream_v5_names_and_outer_span() -> None:
    row = normalize(
        "ai.streamText.doStream",
        {
            "ai.operationId": "ai.streamText.doStream",
            "ai.model.provider": "openai.responses",
            "ai.model.id": "gpt-4o",
            "ai.prompt": json.dumps({"system": "S", "prompt": "Tell a joke"}),
            "ai.response.text": "Knock knock.",
            "ai.response.msToFirstChunk": 321.5,
            "ai.usage.inputTokens": 20,
            "ai.usage.outputTokens": 4,
            "ai.usage.cachedInputTokens": 0,
        },
    )
    assert (row["provider"], row["ttft_ms"]) == ("openai", 321.5)
    assert (row["system_prompt"], row["input_text"], row["output_text"]) == (
        "S",
        "Tell a joke",
        "Knock knock.",
    )
    outer = normalize(
        "ai.streamText",
        {
            "ai.operationId": "ai.streamText",
            "ai.model.id": "gpt-4o",
            "ai.model.provider": "openai.responses",
            "ai.usage.inputTokens": 20,
            "ai.usage.outputTokens": 4,
        },
    )
    assert outer["operation"] == "workflow" and "cost_usd" not in outer


def test_vercel_tool_call_and_embed() -> None:
    tool = normalize(
        "ai.toolCall",
        {
            "ai.operationId": "ai.toolCall",
            "ai.toolCall.name": "weather",
            "ai.toolCall.id": "tc1",
            "ai.toolCall.args": '{"city":"Rome"}',
            "ai.toolCall.result": '{"temp":21}',
        },
    )
    assert (tool["operation"], tool["tool_name"], tool["tool_result"]) == (
        "execute_tool",
        "weather",
        '{"temp":21}',
    )
    embed = normalize(
        "ai.embed.doEmbed",
        {
            "ai.operationId": "ai.embed.doEmbed",
            "ai.model.provider": "openai.embedding",
            "ai.model.id": "text-embedding-3-small",
            "ai.values": ["a b c"],
            "ai.usage.tokens": 3,
        },
    )
    assert (embed["operation"], embed["input_tokens"], embed["total_tokens"]) == ("embeddings", 3, 3)
    assert embed["cost_source"] == "price_table"


# Langfuse ------------------------------------------------------------------------------------


def test_langfuse_generation() -> None:
    row = normalize(
        "generation",
        {
            "langfuse.observation.type": "generation",
            "langfuse.observation.model.name": "gpt-4o",
            "langfuse.observation.input": json.dumps([{"role": "user", "content": "hey"}]),
            "langfuse.observation.output": json.dumps({"role": "assistant", "content": "hello"}),
            "langfuse.observation.usage_details": json.dumps({"input": 80, "input_cached_tokens": 20, "output": 9}),
            "langfuse.observation.cost_details": json.dumps({"input": 0.001, "output": 0.0005, "total": 0.0015}),
            "langfuse.observation.completion_start_time": json.dumps("2025-10-09T08:53:20.400000Z"),
            "user.id": "u-9",
            "session.id": "s-9",
            "langfuse.environment": "staging",
            "langfuse.release": "v9",
        },
        resource={"service.name": "lf-app"},
    )
    assert (row["operation"], row["request_model"]) == ("chat", "gpt-4o")
    assert (row["input_tokens"], row["cache_read_tokens"], row["output_tokens"]) == (100, 20, 9)
    assert (row["cost_usd"], row["cost_source"]) == (0.0015, "span")
    assert (row["input_text"], row["output_text"]) == ("hey", "hello")
    assert (row["user_id"], row["session_id"]) == ("u-9", "s-9")
    assert row["ttft_ms"] == 400.0  # completion start - span start (START_NS is 08:53:20 UTC)
    # the resource carries no environment / release here, so the span's Langfuse ones are used
    assert (row["service"], row["environment"], row["release"]) == ("lf-app", "staging", "v9")


def test_langfuse_tool_with_error_level() -> None:
    row = normalize(
        "lookup",
        {
            "langfuse.observation.type": "tool",
            "langfuse.observation.input": '{"q": 1}',
            "langfuse.observation.level": "ERROR",
            "langfuse.observation.status_message": "timeout",
        },
    )
    assert (row["operation"], row["tool_name"], row["tool_error"]) == ("execute_tool", "lookup", "timeout")


# Logfire / pydantic-ai, OpenLIT -----------------------------------------------------------------


def test_pydantic_ai_events_attribute_and_operation_cost() -> None:
    events = [
        {"event.name": "gen_ai.system.message", "content": "Be helpful", "role": "system"},
        {"event.name": "gen_ai.user.message", "content": "2+2?", "role": "user"},
        {"event.name": "gen_ai.choice", "index": 0, "message": {"role": "assistant", "content": "4"}},
    ]
    row = normalize(
        "chat gpt-4o",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 12,
            "gen_ai.usage.output_tokens": 1,
            "operation.cost": 0.00004,
            "events": json.dumps(events),
            "logfire.span_type": "span",
            "logfire.msg": "chat gpt-4o",
        },
    )
    assert (row["system_prompt"], row["input_text"], row["output_text"]) == ("Be helpful", "2+2?", "4")
    assert (row["cost_usd"], row["cost_source"]) == (0.00004, "span")


def test_pydantic_ai_tool_span_v1_names() -> None:
    row = normalize(
        "running tool: add",
        {
            "gen_ai.tool.name": "add",
            "gen_ai.tool.call.id": "c1",
            "tool_arguments": '{"a":1}',
            "tool_response": "2",
            "logfire.span_type": "span",
        },
    )
    assert (row["tool_name"], row["tool_arguments"], row["tool_result"]) == ("add", '{"a":1}', "2")


def test_openlit_cost_ttft_and_content_events() -> None:
    row = normalize(
        "chat gpt-4o",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.output_tokens": 2,
            "gen_ai.usage.cost": 0.00005,
            "gen_ai.server.time_to_first_token": 0.25,
        },
        events=[
            ("gen_ai.content.prompt", {"gen_ai.prompt": "user: hi"}),
            ("gen_ai.content.completion", {"gen_ai.completion": "hello"}),
        ],
    )
    assert (row["cost_usd"], row["cost_source"], row["ttft_ms"]) == (0.00005, "span", 250.0)
    assert (row["input_text"], row["output_text"]) == ("user: hi", "hello")
