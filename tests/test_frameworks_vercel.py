"""Golden traces of the real Vercel AI SDK (ai 6, Node): tests/node/vercel/run.mjs runs generateText
with a tool and streamText with `experimental_telemetry`, exports over OTLP/HTTP protobuf into the
real collector, and the stored rows are held field by field to rows written by hand.

Needs Node 20+ and `npm ci --prefix tests/node/vercel` (`make test` runs it): without them the test
skips on a laptop and fails in CI. The model provider is the FAKE of tests/support/fake_openai.py.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import IN_CI, KEY_A, LiveServer, require_tool
from tests.support.fake_openai import (
    ANSWER_TEXT,
    CACHED_TOKENS,
    COMPLETION_TOKENS,
    PROMPT_TOKENS,
    REASONING_TOKENS,
    TOOL_CALL_ID,
    fake_openai,
)
from tests.support.golden import GPT_4O_MINI_CALL_USD, Json, Row, assert_trace, stored_traces

PROJECT = Path(__file__).parent / "node" / "vercel"
QUESTION = "What is the weather in Paris?"
SYSTEM = "You answer weather questions."
RESULT = '{"city":"Paris","forecast":"Sunny, 21 C"}'
IDS = {"user_id": "user-7", "session_id": "session-42"}


def _node() -> str:
    node = require_tool("node")
    if not (PROJECT / "node_modules" / "ai").is_dir():
        msg = f"{PROJECT}/node_modules is missing: run `make node-deps`"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return node


def test_vercel_ai_sdk_generate_with_tool_and_stream(live: LiveServer) -> None:
    node = _node()
    with fake_openai() as fake:
        env = {
            **os.environ,
            "FAKE_OPENAI_URL": fake.base_url,
            "OTLP_TRACES_URL": f"{live.url}/v1/traces",
            "DRIFTLINE_API_KEY": KEY_A,
        }
        done = subprocess.run(
            [node, "run.mjs"], check=False, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f'{{"agent":"{ANSWER_TEXT}","streamed":"{ANSWER_TEXT}"}}'
    assert live.runtime.flush(30)
    r = httpx.get(f"{live.url}/api/v1/traces", headers={"Authorization": f"Bearer {KEY_A}"})
    listed = sorted(r.json()["traces"], key=lambda t: t["started"])
    assert [t["root_name"] for t in listed] == ["ai.generateText", "ai.streamText"]
    agent_id, stream_id = (t["trace_id"] for t in listed)
    traces = stored_traces(live, [agent_id, stream_id])

    usage: dict[str, Any] = {
        "input_tokens": PROMPT_TOKENS,
        "output_tokens": COMPLETION_TOKENS,
        "cache_read_tokens": CACHED_TOKENS,
        "reasoning_tokens": REASONING_TOKENS,
    }
    priced = usage | {"cost_usd": GPT_4O_MINI_CALL_USD, "cost_source": "price_table"}
    model = {"provider": "openai", "request_model": "gpt-4o-mini", **IDS}
    call = model | {"operation": "chat", "response_model": "gpt-4o-mini-2024-07-18"} | priced
    system, user = {"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}
    requested = {"id": TOOL_CALL_ID, "name": "get_weather", "arguments": '{"city": "Paris"}'}
    answer = {"role": "assistant", "content": ANSWER_TEXT}
    agent = {"agent_name": "weather-agent"}  # experimental_telemetry.functionId
    assert_trace(
        traces[agent_id],
        [
            Row(
                "ai.generateText",
                None,
                # the whole run: two calls' usage summed, not priced again (its children are)
                model
                | agent
                | {
                    "operation": "workflow",
                    "input_tokens": 2 * PROMPT_TOKENS,
                    "output_tokens": 2 * COMPLETION_TOKENS,
                    "cache_read_tokens": 2 * CACHED_TOKENS,
                    "reasoning_tokens": 2 * REASONING_TOKENS,
                    "input_messages": Json([user]),
                    "output_messages": Json([answer]),
                    "system_prompt": SYSTEM,
                    "finish_reason": "stop",
                },
            ),
            Row(
                "ai.generateText.doGenerate",
                "ai.generateText",
                call
                | agent
                | {
                    "input_messages": Json([system, user]),
                    "output_messages": Json([{"role": "assistant", "content": "", "tool_calls": [requested]}]),
                    "tool_calls": Json([requested]),
                    "finish_reason": "tool_call",
                    "output_text": "",
                },
            ),
            Row(
                "ai.toolCall",
                "ai.generateText",
                agent
                | IDS
                | {
                    "operation": "execute_tool",
                    "tool_name": "get_weather",
                    "tool_call_id": TOOL_CALL_ID,
                    "tool_arguments": '{"city":"Paris"}',
                    "tool_result": RESULT,
                },
            ),
            Row(
                "ai.generateText.doGenerate",
                "ai.generateText",
                call
                | agent
                | {
                    "input_messages": Json(
                        [
                            system,
                            user,
                            {
                                "role": "assistant",
                                "content": "",
                                "tool_calls": [requested | {"arguments": '{"city":"Paris"}'}],
                            },
                            # the tool's result itself, not the SDK's {"type": "json", "value": ...}
                            {"role": "tool", "content": RESULT, "tool_call_id": TOOL_CALL_ID},
                        ]
                    ),
                    "output_messages": Json([answer]),
                    "finish_reason": "stop",
                    "output_text": ANSWER_TEXT,
                },
            ),
        ],
    )
    capital = {"role": "user", "content": "What is the capital of France?"}
    streamed = {"agent_name": "capital-stream"}
    stream_spans = traces[stream_id]
    assert_trace(
        stream_spans,
        [
            Row(
                "ai.streamText",
                None,
                model
                | streamed
                | usage
                | {
                    "operation": "workflow",
                    "input_messages": Json([capital]),
                    "output_messages": Json([answer]),
                    "finish_reason": "stop",
                },
            ),
            Row(
                "ai.streamText.doStream",
                "ai.streamText",
                call
                | streamed
                | {
                    "input_messages": Json([capital]),
                    "output_messages": Json([answer]),
                    "finish_reason": "stop",
                    "output_text": ANSWER_TEXT,
                },
            ),
        ],
    )
    ttft = stream_spans[1]["ttft_ms"]  # ai.response.msToFirstChunk, measured by the SDK
    assert ttft is not None and 0 < ttft <= stream_spans[1]["duration_ms"]
    assert listed[0]["cost_usd"] == pytest.approx(2 * GPT_4O_MINI_CALL_USD)
