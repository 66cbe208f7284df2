"""Inference and agent spans: the helpers `llm_call` and `agent_step` yield.

Spec: https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/#inference and
https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-agent-spans/. Messages are written in
the parts-based JSON of gen_ai.input.messages / gen_ai.output.messages (see `messages`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from driftline.sdk import attributes as a
from driftline.sdk import messages, responses
from driftline.sdk.spans import GenAISpan

__all__ = ["AgentStep", "LLMCall"]


class _Conversation(GenAISpan):
    """Message helpers shared by inference and agent spans."""

    __slots__ = ()
    INPUT_PARAMETERS = ("messages", "prompt", "input", "query", "question")

    def set_input_messages(self, messages_: object) -> None:
        """A prompt string or chat messages (OpenAI/Anthropic/semconv form) -> gen_ai.input.messages."""
        if self._capture:
            self._put(a.GEN_AI_INPUT_MESSAGES, messages.to_json(messages.input_messages(messages_)))

    def set_system_instructions(self, instructions: object) -> None:
        if self._capture:
            parts = messages.system_instructions(instructions)
            self._put(a.GEN_AI_SYSTEM_INSTRUCTIONS, messages.to_json(parts))

    def set_output_messages(self, messages_: object, finish_reason: str = "stop") -> None:
        """Output messages (or OpenAI choices), one per choice -> gen_ai.output.messages."""
        if not self._recording:
            return
        out = messages.output_messages(messages_, finish_reason)
        self._finish_reasons(messages.finish_reasons(out))
        if self._capture:
            self._put(a.GEN_AI_OUTPUT_MESSAGES, messages.to_json(out))

    def set_output_text(self, text: str, finish_reason: str = "stop") -> None:
        if not self._recording:
            return
        self._finish_reasons([finish_reason])
        if self._capture:
            self._put(a.GEN_AI_OUTPUT_MESSAGES, messages.to_json(messages.text_output(text, finish_reason)))

    def _finish_reasons(self, reasons: list[str]) -> None:
        """Inference spans record gen_ai.response.finish_reasons; agent spans have no such field."""

    def _on_chunk(self, chunk: object) -> None:
        super()._on_chunk(chunk)
        if self._capture:
            text = responses.chunk_text(chunk)  # a str, or an OpenAI ChatCompletionChunk's delta
            if text:
                self._chunks.append(text)

    def _end_stream(self) -> None:
        if self._chunks:
            self._capture_result("".join(str(c) for c in self._chunks))

    def _capture_arguments(self, arguments: Mapping[str, Any]) -> None:
        if a.GEN_AI_INPUT_MESSAGES in self._set:
            return
        for name in self.INPUT_PARAMETERS or ():
            if arguments.get(name) is not None:
                self.set_input_messages(arguments[name])
                return

    def _capture_result(self, result: object) -> None:
        # A bare string says nothing about why generation stopped, so no finish_reasons attribute
        # is claimed; the output message needs one and gets the schema's usual "stop".
        if self._capture and isinstance(result, str) and a.GEN_AI_OUTPUT_MESSAGES not in self._set:
            self._put(a.GEN_AI_OUTPUT_MESSAGES, messages.to_json(messages.text_output(result)))


class LLMCall(_Conversation):
    """An inference span (`chat {model}`, kind CLIENT)."""

    __slots__ = ()

    def set_response(
        self, model: str | None = None, response_id: str | None = None, finish_reasons: Sequence[str] = ()
    ) -> None:
        if not self._recording:
            return
        self._put(a.GEN_AI_RESPONSE_MODEL, model)
        self._put(a.GEN_AI_RESPONSE_ID, response_id)
        if finish_reasons:
            self._put(a.GEN_AI_RESPONSE_FINISH_REASONS, list(finish_reasons))

    def set_usage(
        self,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        *,
        cache_read_input_tokens: int | None = None,
        cache_creation_input_tokens: int | None = None,
        reasoning_output_tokens: int | None = None,
    ) -> None:
        """Token counts. Per the spec input_tokens includes cached tokens, output_tokens reasoning ones."""
        if not self._recording:
            return
        self._put(a.GEN_AI_USAGE_INPUT_TOKENS, input_tokens)
        self._put(a.GEN_AI_USAGE_OUTPUT_TOKENS, output_tokens)
        self._put(a.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, cache_read_input_tokens)
        self._put(a.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, cache_creation_input_tokens)
        self._put(a.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, reasoning_output_tokens)

    def mark_first_chunk(self) -> None:
        """Call when the first streamed chunk arrives: records gen_ai.response.time_to_first_chunk."""
        if self._recording and a.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK not in self._set:
            self.set_time_to_first_chunk((time.monotonic_ns() - self._start_ns) / 1e9)

    def set_time_to_first_chunk(self, seconds: float) -> None:
        if self._recording:
            self._put(a.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, float(seconds))

    def _finish_reasons(self, reasons: list[str]) -> None:
        if reasons and a.GEN_AI_RESPONSE_FINISH_REASONS not in self._set:
            self._put(a.GEN_AI_RESPONSE_FINISH_REASONS, reasons)
            self._finish = reasons[0]

    def _capture_result(self, result: object) -> None:
        summary = responses.summarize(result) if result is not None else None
        if summary is None:
            super()._capture_result(result)
            return
        if a.GEN_AI_RESPONSE_MODEL not in self._set:
            self.set_response(model=summary.model, response_id=summary.response_id)
        if a.GEN_AI_USAGE_INPUT_TOKENS not in self._set:
            self.set_usage(**summary.usage)
        if a.GEN_AI_OUTPUT_MESSAGES not in self._set:
            self.set_output_messages(summary.output_messages)

    def _on_chunk(self, chunk: object) -> None:
        if self._first_chunk_at is None:
            self.mark_first_chunk()
        super()._on_chunk(chunk)
        meta = responses.chunk_summary(chunk)
        if meta is not None and self._recording:
            if a.GEN_AI_RESPONSE_MODEL not in self._set:
                self.set_response(model=meta.model, response_id=meta.response_id)
            if meta.finish_reasons:
                self._finish_reasons(meta.finish_reasons)
            if meta.usage:
                self.set_usage(**meta.usage)

    def _end_stream(self) -> None:
        if self._chunks and self._capture and a.GEN_AI_OUTPUT_MESSAGES not in self._set:
            text = "".join(str(c) for c in self._chunks)
            self._put(a.GEN_AI_OUTPUT_MESSAGES, messages.to_json(messages.text_output(text, self._finish)))


class AgentStep(_Conversation):
    """An agent invocation span (`invoke_agent {name}`, kind INTERNAL: the agent runs in-process)."""

    __slots__ = ()
