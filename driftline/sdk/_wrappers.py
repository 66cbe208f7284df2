"""Function wrappers behind the decorators: sync, async, generator and async generator.

Each wrapper's first line is the disabled fast path: one module attribute read, then the
wrapped function is called directly. When enabled, the span's context is attached while the
function runs, so spans it starts (an instrumented OpenAI call, a nested tool) become children.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Callable, Generator, Mapping
from contextvars import Token
from typing import Any, TypeVar, cast

from opentelemetry import context as otel_context
from opentelemetry import trace

from driftline.sdk import _state
from driftline.sdk.spans import _STACK, GenAISpan

__all__ = ["ArgReader", "argument_reader", "attach", "detach", "end", "safely", "wrap"]

_log = logging.getLogger(__name__)

H = TypeVar("H", bound=GenAISpan)
Tokens = tuple[object, Token[tuple[GenAISpan, ...]]]
ArgReader = Callable[[tuple[Any, ...], dict[str, Any]], Mapping[str, Any]]
Start = Callable[[], H | None]
_P = inspect.Parameter


def safely(hook: Callable[[Any], None], value: object) -> None:
    # Recording inputs and outputs is best effort: a telemetry bug must never break the app.
    try:
        hook(value)
    except Exception:
        _log.debug("driftline: could not record a value on a span", exc_info=True)


def attach(helper: GenAISpan) -> Tokens:
    ctx_token = otel_context.attach(trace.set_span_in_context(helper.span))
    return ctx_token, _STACK.set((*_STACK.get(), helper))


def detach(tokens: Tokens) -> None:
    try:
        _STACK.reset(tokens[1])
    except ValueError:  # entered in another context (a `with` object shared across threads/tasks)
        _log.warning("driftline: a span was exited in a different context than it was entered in")
        return
    otel_context.detach(cast("Token[otel_context.Context]", tokens[0]))


def end(helper: GenAISpan, exc: BaseException | None) -> None:
    # GeneratorExit is a consumer closing a stream early, not a failure.
    if exc is not None and not isinstance(exc, GeneratorExit):
        safely(helper._record_error, exc)
    helper.span.end()


def argument_reader(fn: Callable[..., Any], wanted: tuple[str, ...] | None) -> ArgReader | None:
    """Names a call's arguments (defaults filled, **kwargs flattened, self/cls dropped).

    None when `wanted` names no parameter of `fn`, so such calls pay nothing. The mapping is
    precomputed here because `inspect.Signature.bind` costs microseconds per call.
    """
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    if wanted is not None and not any(p.name in wanted for p in params):
        return None
    positional = [p.name for p in params if p.kind in (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD)]
    var_positional = next((p.name for p in params if p.kind is _P.VAR_POSITIONAL), None)
    defaults = {p.name: p.default for p in params if p.default is not _P.empty}
    skip = [name for name in positional[:1] if name in ("self", "cls")]

    def read(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Mapping[str, Any]:
        out = dict(zip(positional, args, strict=False))
        if var_positional is not None and len(args) > len(positional):
            out[var_positional] = list(args[len(positional) :])
        out.update(kwargs)
        for name, value in defaults.items():
            out.setdefault(name, value)
        for name in skip:
            out.pop(name, None)
        return out

    return read


def _begin(start: Start[H], reader: ArgReader | None, args: tuple[Any, ...], kw: dict[str, Any]) -> H | None:
    helper = start()
    if helper is not None and reader is not None and helper.captures_content:
        try:
            arguments = reader(args, kw)
        except Exception:  # odd call shapes are the function's business, not ours
            arguments = {}
        safely(helper._capture_arguments, arguments)
    return helper


def wrap(fn: Callable[..., Any], start: Start[H], reader: ArgReader | None) -> Callable[..., Any]:
    if inspect.isasyncgenfunction(fn):
        return _wrap_async_gen(fn, start, reader)
    if inspect.iscoroutinefunction(fn):
        return _wrap_async(fn, start, reader)
    if inspect.isgeneratorfunction(fn):
        return _wrap_gen(fn, start, reader)
    return _wrap_sync(fn, start, reader)


def _wrap_sync(fn: Callable[..., Any], start: Start[H], reader: ArgReader | None) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not _state.enabled or (helper := _begin(start, reader, args, kwargs)) is None:
            return fn(*args, **kwargs)
        tokens = attach(helper)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            detach(tokens)
            end(helper, exc)
            raise
        detach(tokens)
        if helper.is_recording:
            safely(helper._capture_result, result)
        end(helper, None)
        return result

    return wrapper


def _wrap_async(fn: Callable[..., Any], start: Start[H], reader: ArgReader | None) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not _state.enabled or (helper := _begin(start, reader, args, kwargs)) is None:
            return await fn(*args, **kwargs)
        tokens = attach(helper)
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            detach(tokens)
            end(helper, exc)
            raise
        detach(tokens)
        if helper.is_recording:
            safely(helper._capture_result, result)
        end(helper, None)
        return result

    return wrapper


def _wrap_gen(fn: Callable[..., Any], start: Start[H], reader: ArgReader | None) -> Callable[..., Any]:
    # The span covers the whole iteration. Its context is attached only while the generator body
    # runs (one step at a time), never while the consumer runs between items, so spans the
    # consumer starts are not wrongly parented. Values sent with .send() are not forwarded.
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        if not _state.enabled or (helper := _begin(start, reader, args, kwargs)) is None:
            return (yield from fn(*args, **kwargs))
        gen = fn(*args, **kwargs)
        try:
            while True:
                tokens = attach(helper)
                try:
                    item = next(gen)
                except StopIteration as stop:
                    result = stop.value
                    break
                finally:
                    detach(tokens)
                helper._on_chunk(item)
                yield item
        except BaseException as exc:
            gen.close()
            end(helper, exc)
            raise
        helper._end_stream()
        end(helper, None)
        return result

    return wrapper


def _wrap_async_gen(fn: Callable[..., Any], start: Start[H], reader: ArgReader | None) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        if not _state.enabled or (helper := _begin(start, reader, args, kwargs)) is None:
            async for item in fn(*args, **kwargs):
                yield item
            return
        gen = fn(*args, **kwargs)
        try:
            while True:
                tokens = attach(helper)
                try:
                    item = await gen.__anext__()
                except StopAsyncIteration:
                    break
                finally:
                    detach(tokens)
                helper._on_chunk(item)
                yield item
        except BaseException as exc:
            await gen.aclose()
            end(helper, exc)
            raise
        helper._end_stream()
        end(helper, None)

    return wrapper
