"""The helpers that `tool_call` and `retrieval` yield, and the base they share with the inference and
agent helpers (llm_spans.py): thin objects that write GenAI semantic-convention attributes on one span.

Spec: https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/ and
https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-agent-spans/.

Every setter returns at once when the span is not recording (SDK disabled, or the span was
sampled out), so no JSON is built for nothing. Content (messages, tool arguments and results,
queries, document text) is written only when content capture is on; counts, models, ids and
finish reasons are always written.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any, ClassVar, TypeVar, overload

from opentelemetry.trace import INVALID_SPAN, Span, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from driftline.sdk import attributes as a
from driftline.sdk import messages

__all__ = ["GenAISpan", "Retrieval", "ToolCall", "current_call"]

S = TypeVar("S", bound="GenAISpan")

# Innermost last. A tuple (not a list) so a ContextVar reset restores the outer value exactly.
_STACK: ContextVar[tuple[GenAISpan, ...]] = ContextVar("driftline_sdk_calls", default=())


@overload
def current_call() -> GenAISpan | None: ...
@overload
def current_call(kind: type[S]) -> S | None: ...
def current_call(kind: type[GenAISpan] | None = None) -> GenAISpan | None:
    """The innermost active call in this context (thread / asyncio task), or None: of any kind,
    or the innermost of `kind` (LLMCall, ToolCall, Retrieval, AgentStep) when given.

    Lets a decorated function reach its own span, typed for its helper's setters:

        call = driftline.current_call(driftline.LLMCall)
        if call is not None:  # None while tracing is off (no init(), or disabled)
            call.set_usage(input_tokens=812, output_tokens=64)
    """
    for call in reversed(_STACK.get()):
        if kind is None or isinstance(call, kind):
            return call
    return None


def _error_type(exc: BaseException) -> str:
    # Same spelling as the exception event's exception.type, so the two always agree.
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


class GenAISpan:
    """Common base: the span itself plus the hooks the decorators call."""

    __slots__ = (
        "_capture",
        "_chunks",
        "_finish",
        "_first_chunk_at",
        "_recording",
        "_set",
        "_start_ns",
        "span",
    )

    # Parameter names whose value a decorator records as the call's input; None: all of them.
    INPUT_PARAMETERS: ClassVar[tuple[str, ...] | None] = ()

    def __init__(self, span: Span = INVALID_SPAN, capture_content: bool = False) -> None:
        self.span = span
        self._recording = span.is_recording()
        self._capture = capture_content and self._recording
        self._start_ns = time.monotonic_ns()
        self._first_chunk_at: int | None = None
        self._chunks: list[object] = []  # streamed items kept for the output (content capture)
        self._finish = "stop"  # a stream's finish reason, once a chunk tells it
        self._set: set[str] = set()  # attributes set explicitly, which captures must not overwrite

    @property
    def is_recording(self) -> bool:
        return self._recording

    @property
    def captures_content(self) -> bool:
        return self._capture

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        if self._recording:
            self.span.set_attribute(key, value)

    def set_attributes(self, attrs: Mapping[str, AttributeValue]) -> None:
        if self._recording:
            self.span.set_attributes(attrs)

    def _put(self, key: str, value: AttributeValue | None) -> None:
        if value is not None:
            self.span.set_attribute(key, value)
            self._set.add(key)

    # Hooks for the decorator machinery.
    def _capture_arguments(self, arguments: Mapping[str, Any]) -> None:
        """Record the decorated function's arguments as input (content capture only)."""

    def _capture_result(self, result: object) -> None:
        """Record the decorated function's return value as output."""

    def _on_chunk(self, chunk: object) -> None:
        """One item yielded by a decorated generator."""
        if self._first_chunk_at is None:
            self._first_chunk_at = time.monotonic_ns()

    def _end_stream(self) -> None:
        """The decorated generator is exhausted."""

    def _record_error(self, exc: BaseException) -> None:
        if not self._recording:
            return
        self.span.record_exception(exc)
        self.span.set_attribute(a.ERROR_TYPE, _error_type(exc))
        self.span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


class ToolCall(GenAISpan):
    """A tool execution span (`execute_tool {name}`, kind INTERNAL)."""

    __slots__ = ()
    INPUT_PARAMETERS = None  # every argument is a tool argument

    def set_call_id(self, call_id: str) -> None:
        if self._recording:
            self._put(a.GEN_AI_TOOL_CALL_ID, call_id)

    def set_arguments(self, arguments: object) -> None:
        if self._capture:
            self._put(a.GEN_AI_TOOL_CALL_ARGUMENTS, messages.to_json_value(arguments))

    def set_result(self, result: object) -> None:
        if self._capture:
            self._put(a.GEN_AI_TOOL_CALL_RESULT, messages.to_json_value(result))

    def _capture_arguments(self, arguments: Mapping[str, Any]) -> None:
        if a.GEN_AI_TOOL_CALL_ARGUMENTS not in self._set:
            self.set_arguments(dict(arguments))

    def _capture_result(self, result: object) -> None:
        if a.GEN_AI_TOOL_CALL_RESULT not in self._set and result is not None:
            self.set_result(result)


class Retrieval(GenAISpan):
    """A retrieval span (`retrieval {data_source}`, kind CLIENT) with gen_ai.retrieval.documents."""

    __slots__ = ()
    INPUT_PARAMETERS = ("query", "question", "q", "text")

    def set_query(self, query: str) -> None:
        if self._capture:
            self._put(a.GEN_AI_RETRIEVAL_QUERY_TEXT, query)

    def set_documents(self, docs: object) -> None:
        """Documents as strings, dicts, LangChain Documents or LlamaIndex nodes (with scores).

        Written as gen_ai.retrieval.documents JSON [{"id", "score", "content", "metadata"}];
        without content capture only ids and scores are kept.
        """
        if self._recording:
            found = messages.documents(docs, with_content=self._capture)
            self._put(a.GEN_AI_RETRIEVAL_DOCUMENTS, messages.to_json(found))

    def _capture_arguments(self, arguments: Mapping[str, Any]) -> None:
        if a.GEN_AI_RETRIEVAL_QUERY_TEXT in self._set:
            return
        for name in self.INPUT_PARAMETERS or ():
            if isinstance(arguments.get(name), str):
                self.set_query(arguments[name])
                return

    def _capture_result(self, result: object) -> None:
        if a.GEN_AI_RETRIEVAL_DOCUMENTS not in self._set and result is not None:
            self.set_documents(result)

    def _on_chunk(self, chunk: object) -> None:
        super()._on_chunk(chunk)
        if self._recording:
            self._chunks.append(chunk)  # a generator retriever yields documents

    def _end_stream(self) -> None:
        if self._chunks:
            self._capture_result(self._chunks)
