"""`Operation`: one GenAI span description, usable as a decorator or a (sync or async) `with` block.

The factories (`llm_call`, ...) hand over their raw arguments and a builder; the span name and
attributes are built only when first needed (a span is started, or a function is decorated).
So `with llm_call(...)` while the SDK is disabled costs an object and a no-op helper, not the
attribute dictionary.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, ParamSpec, TypeVar, cast

from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from driftline.sdk import _state, _wrappers
from driftline.sdk import attributes as a
from driftline.sdk.llm_spans import LLMCall
from driftline.sdk.spans import GenAISpan

__all__ = ["Operation", "Spec"]

_log = logging.getLogger(__name__)

H = TypeVar("H", bound=GenAISpan)
P = ParamSpec("P")
R = TypeVar("R")

_NOOP: dict[type[GenAISpan], GenAISpan] = {}


@dataclass(frozen=True, slots=True)
class Spec(Generic[H]):
    """What a span of this operation starts with."""

    name: str
    kind: SpanKind
    attributes: dict[str, AttributeValue]
    # Sets content passed to the factory once the span exists (content capture is decided then).
    init: Callable[[H], None] | None = None
    # For decorators: span name and attributes from the function's name (tool and agent names).
    named_by_fn: Callable[[str], tuple[str, dict[str, AttributeValue]]] | None = None


class Operation(Generic[H]):
    """Returned by `llm_call`, `tool_call`, `retrieval` and `agent_step`.

    As a decorator it is reusable: every call gets its own span. As a context manager, create
    it in the `with` statement itself (like `tracer.start_as_current_span`); one object entered
    by several threads or tasks at once would mix up their spans.
    """

    __slots__ = ("_active", "_args", "_build", "_helper", "_spec")

    def __init__(
        self,
        helper: type[H],
        build: Callable[[tuple[Any, ...]], Spec[H]] | None,
        args: tuple[Any, ...] = (),
        spec: Spec[H] | None = None,
    ) -> None:
        self._helper = helper
        self._build = build
        self._args = args
        self._spec = spec
        self._active: list[tuple[H, _wrappers.Tokens] | None] | None = None

    @property
    def spec(self) -> Spec[H]:
        spec = self._spec
        if spec is None:
            assert self._build is not None
            spec = self._spec = self._build(self._args)
        return spec

    def _start(self) -> H | None:
        tracer = _state.tracer
        if tracer is None:  # shut down between the caller's flag check and here
            return None
        try:
            spec = self.spec
            span = tracer.start_span(spec.name, kind=spec.kind, attributes=spec.attributes)
        except Exception:  # telemetry must not break the app: run untraced instead
            _log.warning("driftline: could not start a span", exc_info=True)
            return None
        helper = self._helper(span, _state.capture_content)
        if spec.init is not None and helper.is_recording:
            _wrappers.safely(spec.init, helper)
        return helper

    def _noop(self) -> H:
        noop = _NOOP.get(self._helper)
        if noop is None:
            noop = _NOOP[self._helper] = self._helper()
        return cast(H, noop)

    # Context manager: `with llm_call(...) as call:` ------------------------------------------
    def __enter__(self) -> H:
        helper = self._start() if _state.enabled else None
        active = self._active
        if active is None:
            active = self._active = []
        if helper is None:
            active.append(None)
            return self._noop()
        active.append((helper, _wrappers.attach(helper)))
        return helper

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        entry = self._active.pop() if self._active else None
        if entry is not None:
            _wrappers.detach(entry[1])
            _wrappers.end(entry[0], exc)

    async def __aenter__(self) -> H:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    # Decorator: `@llm_call(...)` -------------------------------------------------------------
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        # A new Operation per decorated function: one factory result may decorate several.
        spec = self.spec
        name, attrs = spec.name, dict(spec.attributes)
        if spec.named_by_fn is not None:
            name, named = spec.named_by_fn(getattr(fn, "__name__", "function"))
            attrs.update(named)
        if issubclass(self._helper, LLMCall) and (inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn)):
            attrs.setdefault(a.GEN_AI_REQUEST_STREAM, True)  # a generator is a streamed response
        op = Operation(self._helper, None, spec=Spec(name, spec.kind, attrs, spec.init))
        reader = _wrappers.argument_reader(fn, self._helper.INPUT_PARAMETERS)
        return cast(Callable[P, R], functools.wraps(fn)(_wrappers.wrap(fn, op._start, reader)))
