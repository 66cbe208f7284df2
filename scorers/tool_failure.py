"""Tool failures as a taxonomy: not "did it fail" but "how", so a dashboard can tell a slow
upstream (timeout) from a model inventing tools (unknown_tool) from a retry loop (retried).

Scored spans: tool executions (`execute_tool`) and model calls that asked for tools (a non-empty
`tool_calls` list). Classes, in precedence order (the label is the first that matches; details
list every match):

- timeout            error type / exception / status message says timeout, timed out, DeadlineExceeded
- invalid_arguments  arguments that are not valid JSON, or a ValidationError / JSONDecodeError /
                     TypeError about arguments / "invalid argument"
- unknown_tool       a tool not among those declared in the request (gen_ai.tool.definitions,
                     OpenInference llm.tools.N.tool.json_schema, Traceloop llm.request.functions.N.name,
                     Vercel ai.prompt.tools), or an error such as "unknown tool" / KeyError on its name
- exception          an `exception` span event
                     (https://opentelemetry.io/docs/specs/semconv/exceptions/exceptions-spans/)
- error_status       status ERROR and none of the above
- error_result       status not ERROR but the result reports an error ({"error": ...}, MCP
                     `isError`, Anthropic `is_error`, text starting "Error:")
- retried            the same tool with the same arguments was already called earlier in the trace:
                     later calls are retries even when they succeed (the earlier failure forced them)

Matching error *text* is unavoidable here: tool errors arrive as third-party exception types and
messages, not as a closed set of types we own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from driftline.scorers.base import LLM_OPERATIONS, Score, SpanRow, TraceContext
from driftline.scorers.latency import span_time_ns
from driftline.vocabulary import TOOL_FAILURE_CLASSES

__all__ = ["FAILURE_CLASSES", "Finding", "ToolFailureScorer", "declared_tools", "find_failures"]

FAILURE_CLASSES: Final = TOOL_FAILURE_CLASSES
_TIMEOUT: Final = re.compile(r"time ?out|timed out|deadline ?_?exceeded", re.IGNORECASE)
_BAD_ARGS: Final = re.compile(
    r"validationerror|jsondecodeerror|invalid[ _-]?argument|validation error"
    r"|unexpected keyword argument|required (?:positional |keyword(?:-only)? )?argument",
    re.IGNORECASE,
)
_UNKNOWN_TOOL: Final = re.compile(
    r"unknown (?:tool|function)|no such (?:tool|function)|no tool named|tool not found"
    r"|not a valid tool|tool \S+ (?:not found|does not exist|is not registered)",
    re.IGNORECASE,
)
_ARGUMENT: Final = re.compile("argument", re.IGNORECASE)
_ERROR_TEXT: Final = re.compile(r"\s*error\s*:", re.IGNORECASE)
_TRUNCATED: Final = "...[truncated "  # collector/otlp_values.TRUNCATION_MARKER: a cut value proves nothing
_SHOWN: Final = 200  # characters of third-party error text quoted in an explanation


@dataclass(frozen=True)
class Finding:
    kind: str  # one of FAILURE_CLASSES
    evidence: str  # what was seen, for the explanation


@dataclass(frozen=True)
class _Call:
    name: str
    arguments: str


class ToolFailureScorer:
    """Value 1.0 and the failure class as label, or 0.0 and `ok`."""

    name = "tool_failure"
    version = "1"
    needs_trace = True

    def applies(self, span: SpanRow) -> bool:
        operation = span.get("operation")
        if operation == "execute_tool":
            return True
        calls = span.get("tool_calls")
        return operation in LLM_OPERATIONS and isinstance(calls, str) and calls not in ("", "[]")

    def score(self, span: SpanRow, trace: TraceContext) -> Score | None:
        found = find_failures(span, trace)
        tools = sorted({c.name for c in _calls_of(span)})
        details: dict[str, Any] = {"classes": [f.kind for f in found], "tools": tools}
        if not found:
            return Score(0.0, "ok", f"ok: {', '.join(tools) or 'tool call'} without error", details)
        first = found[0]
        explanation = f"{first.kind}: {first.evidence}"
        if len(found) > 1:
            explanation += f" (also: {', '.join(f.kind for f in found[1:])})"
        return Score(1.0, first.kind, explanation, details)


def find_failures(span: SpanRow, trace: TraceContext) -> list[Finding]:
    """Every failure class the span shows, in precedence order."""
    is_tool = span.get("operation") == "execute_tool"
    errors = list(_error_texts(span))
    out: list[Finding] = []
    if hit := _first(errors, _TIMEOUT):
        out.append(Finding("timeout", hit))
    if hit := _bad_arguments(span, errors, is_tool):
        out.append(Finding("invalid_arguments", hit))
    if hit := _unknown_tool(span, trace, errors, is_tool):
        out.append(Finding("unknown_tool", hit))
    exceptions = [text for source, text in errors if source == "exception"]
    if exceptions:
        out.append(Finding("exception", exceptions[-1]))
    if span.get("status_code") == "error":
        if not out:  # error_status means "an ERROR status and none of the above"
            out.append(Finding("error_status", _clip(str(span.get("status_message") or "status ERROR"))))
    elif is_tool and (hit := _error_result(span)):
        out.append(Finding("error_result", hit))
    if hit := _retried(span, trace, is_tool):
        out.append(Finding("retried", hit))
    return out


def _clip(text: str) -> str:
    text = " ".join(text.split())  # one line: multi-line messages (pydantic's) read badly in a list
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


def _json(text: object) -> Any:
    if not isinstance(text, str) or not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _error_texts(span: SpanRow) -> Iterator[tuple[str, str]]:
    """(source, text) for every error description on the span; exceptions as "Type: message"."""
    events = _json(span.get("events"))
    for event in events if isinstance(events, list) else ():
        if isinstance(event, dict) and event.get("name") == "exception":
            attrs = event.get("attributes") or {}
            kind, message = attrs.get("exception.type") or "", attrs.get("exception.message") or ""
            kind = str(kind).rsplit(".", 1)[-1]  # pydantic_core._pydantic_core.ValidationError -> ValidationError
            yield "exception", _clip(f"{kind}: {message}" if kind and message else str(kind or message))
    # Not tool_error: outside an ERROR status it is the result's own error (error_result's
    # evidence), and with one it repeats the status message.
    for column in ("status_message", "error_type"):
        value = span.get(column)
        if value and (column != "status_message" or span.get("status_code") == "error"):
            yield column, _clip(str(value))


def _first(errors: list[tuple[str, str]], pattern: re.Pattern[str]) -> str | None:
    return next((text for _, text in errors if pattern.search(text)), None)


def _calls_of(span: SpanRow) -> list[_Call]:
    """The tools this span is about: the one it ran, or the ones the model asked for."""
    if span.get("operation") == "execute_tool":
        name = str(span.get("tool_name") or "")
        return [_Call(name, str(span.get("tool_arguments") or ""))] if name else []
    parsed = _json(span.get("tool_calls"))
    calls = parsed if isinstance(parsed, list) else []
    # A cut list starts with {"truncated_items": N}: items without a name are skipped.
    return [
        _Call(c["name"], str(c.get("arguments") or ""))
        for c in calls
        if isinstance(c, dict) and isinstance(c.get("name"), str) and c["name"]
    ]


def _json_error(arguments: str) -> str | None:
    """Why `arguments` is not valid JSON, or None when it is (or cannot be judged)."""
    text = arguments.strip()
    if not text or _TRUNCATED in text:
        return None
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return f"{exc.msg} at char {exc.pos}"
    return None


def _bad_arguments(span: SpanRow, errors: list[tuple[str, str]], is_tool: bool) -> str | None:
    if hit := _first(errors, _BAD_ARGS):
        return hit
    error_type = str(span.get("error_type") or "")
    if error_type.endswith("TypeError") and (hit := _first(errors, _ARGUMENT)):
        return hit
    for call in _calls_of(span):
        reason = _json_error(call.arguments)
        # A tool span's input may legitimately be plain text (a LangChain tool's string input):
        # only text that tries to be JSON, or came from a JSON-typed attribute, is held to JSON.
        attrs = span.get("attributes") or {}
        json_typed = not is_tool or call.arguments.lstrip()[:1] in ("{", "[") or _json_attr(attrs)
        if reason and json_typed:
            return f"arguments for {call.name!r} are not valid JSON ({reason})"
    return None


def _json_attr(attrs: Mapping[str, str]) -> bool:
    return (
        "gen_ai.tool.call.arguments" in attrs
        or "tool_call.function.arguments" in attrs
        or attrs.get("input.mime_type") == "application/json"
    )


def declared_tools(attributes: Mapping[str, str]) -> frozenset[str] | None:
    """Names of the tools declared in a model request, or None when the span does not say."""
    names: set[str] = set()
    found = False
    definitions = _json(attributes.get("gen_ai.tool.definitions"))
    if isinstance(definitions, list):
        found = True
        names.update(_tool_name(d) for d in definitions)
    vercel = _json(attributes.get("ai.prompt.tools"))  # a list of JSON-encoded tool objects
    if isinstance(vercel, list):
        found = True
        names.update(_tool_name(_json(t) if isinstance(t, str) else t) for t in vercel)
    for key, value in attributes.items():
        if key.startswith("llm.tools.") and key.endswith(".tool.json_schema"):  # OpenInference
            found = True
            names.add(_tool_name(_json(value)))
        elif key.startswith("llm.request.functions.") and key.endswith(".name"):  # older Traceloop
            found = True
            names.add(value)
    names.discard("")
    return frozenset(names) if found else None


def _tool_name(definition: object) -> str:
    # Semconv and Anthropic put the name on the object; OpenAI nests it under "function".
    if not isinstance(definition, dict):
        return ""
    name = definition.get("name")
    if not isinstance(name, str):
        function = definition.get("function")
        name = function.get("name") if isinstance(function, dict) else None
    return name if isinstance(name, str) else ""


def _unknown_tool(span: SpanRow, trace: TraceContext, errors: list[tuple[str, str]], is_tool: bool) -> str | None:
    calls = _calls_of(span)
    requester = _requester(span, trace) if is_tool else span
    declared = declared_tools(requester.get("attributes") or {}) if requester is not None else None
    if declared is not None:
        for call in calls:
            if call.name not in declared:
                listed = ", ".join(sorted(declared)[:5]) or "none"
                return f"{call.name!r} is not among the declared tools ({listed})"
    if hit := _first(errors, _UNKNOWN_TOOL):
        return hit
    if str(span.get("error_type") or "").endswith("KeyError"):
        for source, text in errors:
            if source != "error_type" and any(repr(c.name) in text or f'"{c.name}"' in text for c in calls):
                return text
    return None


def _requester(tool_span: SpanRow, trace: TraceContext) -> SpanRow | None:
    """The model call that asked for this tool run: by call id, else the latest earlier one that
    asked for a tool of this name."""
    call_id = tool_span.get("tool_call_id")
    name = tool_span.get("tool_name")
    by_name: SpanRow | None = None
    for other in _earlier(tool_span, trace):
        if other.get("operation") not in LLM_OPERATIONS or not other.get("tool_calls"):
            continue
        parsed = _json(other.get("tool_calls"))
        calls = [c for c in parsed if isinstance(c, dict)] if isinstance(parsed, list) else []
        if call_id and any(c.get("id") == call_id for c in calls):
            return other
        if any(c.get("name") == name for c in calls):
            by_name = other
    return by_name


def _earlier(span: SpanRow, trace: TraceContext) -> list[SpanRow]:
    """Spans of the trace that started before this one (oldest first; ties by trace order)."""
    own_id = span.get("span_id")
    own_start = span_time_ns(span.get("start_time"))
    # Not in the list: equal start times cannot be ordered, so they do not count as earlier.
    own_index = next((i for i, s in enumerate(trace.spans) if s.get("span_id") == own_id), -1)
    out = []
    for i, other in enumerate(trace.spans):
        start = span_time_ns(other.get("start_time"))
        if other.get("span_id") == own_id or start is None or own_start is None:
            continue
        if start < own_start or (start == own_start and i < own_index):
            out.append(other)
    return out


def _error_result(span: SpanRow) -> str | None:
    if span.get("tool_error"):  # the normalizer's reading of a failed result (docs/columns.md)
        return f"tool reported an error: {_clip(str(span['tool_error']))}"
    result: object = span.get("tool_result") or ""
    parsed = _json(result)
    if isinstance(parsed, str):  # a JSON-encoded string result (Traceloop entity.output)
        result, parsed = parsed, None
    if isinstance(parsed, dict):
        if parsed.get("is_error") is True or parsed.get("isError") is True:
            return "tool result is marked as an error"
        if parsed.get("error"):
            return f"tool returned an error: {_clip(str(parsed['error']))}"
    if isinstance(result, str) and _ERROR_TEXT.match(result):
        return f"tool returned {_clip(result.strip())!r}"
    return None


def _canonical(arguments: str) -> str:
    # Same arguments however they were spaced or ordered: '{"city": "Paris"}' == '{"city":"Paris"}'.
    parsed = _json(arguments)
    if parsed is None:
        return arguments.strip()
    return json.dumps(parsed, sort_keys=True, separators=(",", ":"))


def _retried(span: SpanRow, trace: TraceContext, is_tool: bool) -> str | None:
    mine = {(c.name, _canonical(c.arguments)) for c in _calls_of(span) if c.arguments.strip()}
    if not mine:  # without arguments (content capture off) a repeat cannot be told from a new call
        return None
    same_kind = (lambda s: s.get("operation") == "execute_tool") if is_tool else _is_llm
    before = 0
    failed = 0
    name = ""
    for other in _earlier(span, trace):
        if not same_kind(other):
            continue
        hits = mine & {(c.name, _canonical(c.arguments)) for c in _calls_of(other)}
        if hits:
            before += 1
            name = next(iter(hits))[0]
            failed += int(other.get("status_code") == "error" or bool(other.get("tool_error")))
    if not before:
        return None
    who = "called" if is_tool else "requested by the model"
    text = f"{name!r} {who} with the same arguments {before} time(s) before"
    return text + (f", {failed} of them failed" if failed else "")


def _is_llm(span: SpanRow) -> bool:
    return span.get("operation") in LLM_OPERATIONS
