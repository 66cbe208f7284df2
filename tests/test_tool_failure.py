"""The tool-failure taxonomy on REAL spans wherever a real emitter exists.

- Model calls that ask for tools: the real `openai` client through the real instrumentors
  (opentelemetry-instrumentation-openai-v2, openinference-instrumentation-openai,
  opentelemetry-instrumentation-openai) against the fake provider (tests/support/fake_openai.py,
  the only fake). The fake always asks for `get_weather`, so declaring other tools in `tools=[...]`
  makes the model "invent" a tool.
- Tool runs: driftline.sdk's `tool_call` decorator / context manager, which records exceptions,
  error.type and ERROR status the way an app would.
Spans are encoded to OTLP by the SDK's own encoder and normalized by the collector's Normalizer;
the TraceContext is the trace's rows ordered by start time, as the scorer runner reads them.
Rows for conventions with no Python emitter here are made with the real SDK via `record_span`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import openai
import pydantic
import pytest
from opentelemetry.trace import Status, StatusCode

import driftline.sdk as dl
from driftline.collector.normalize import Normalizer
from driftline.scorers.base import Score, Scorer, TraceContext
from driftline.scorers.tool_failure import Finding, ToolFailureScorer, declared_tools, find_failures
from tests.support.fake_openai import TOOL_CALL_ID, TOOL_NAME, FakeOpenAI, fake_openai
from tests.support.instrumentors import INSTRUMENTORS
from tests.support.otel_capture import Capture, capture, instrumented, iter_spans, record_span

Row = dict[str, Any]
MODEL = "gpt-4o-mini"
MESSAGES: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]


def _tool(name: str) -> dict[str, Any]:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    return {"type": "function", "function": {"name": name, "description": name, "parameters": schema}}


WEATHER_TOOLS: list[Any] = [_tool(TOOL_NAME)]
OTHER_TOOLS: list[Any] = [_tool("get_time"), _tool("get_news")]  # the fake still asks for get_weather


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with fake_openai() as server:
        yield server


@pytest.fixture
def cap(monkeypatch: pytest.MonkeyPatch) -> Iterator[Capture]:
    """A capture that both the SDK (tool and agent spans) and the instrumentors export into."""
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "span_only")
    monkeypatch.setenv("TRACELOOP_TRACE_CONTENT", "true")
    with capture() as c:
        dl.init(span_exporter=c.exporter, batch=False, instrument=False, set_global=False, capture_content=True)
        try:
            yield c
        finally:
            dl.shutdown()


def client(fake: FakeOpenAI) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0)


def rows_of(cap: Capture) -> list[Row]:
    norm = Normalizer()
    rows = [norm.span(s, norm.resource(res), scope) for res, scope, s in iter_spans(cap.otlp_request())]
    return sorted(rows, key=lambda r: (r["start_time"], r["span_id"]))  # how the runner reads a trace


def score(span: Row, rows: list[Row]) -> Score:
    scorer: Scorer = ToolFailureScorer()
    assert scorer.applies(span), span
    trace = TraceContext([r for r in rows if r["trace_id"] == span["trace_id"]])
    result = scorer.score(span, trace)
    assert result is not None
    return result


def tools_run(rows: list[Row], name: str) -> list[Row]:
    return [r for r in rows if r["operation"] == "execute_tool" and r["tool_name"] == name]


def chats(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r["operation"] == "chat"]


# timeout, retried, ok: one agent run -------------------------------------------------------------


def test_timeout_then_retry_in_one_agent_run(cap: Capture, fake: FakeOpenAI) -> None:
    attempts: list[str] = []

    @dl.tool_call("get_weather")
    def get_weather(city: str) -> dict[str, Any]:
        attempts.append(city)
        if len(attempts) == 1:
            raise TimeoutError("upstream took 30s")
        return {"city": city, "temp_c": 14}

    with instrumented(INSTRUMENTORS["openinference"](), cap), dl.agent_step("weather_agent"):
        client(fake).chat.completions.create(model=MODEL, messages=MESSAGES, tools=WEATHER_TOOLS)
        with pytest.raises(TimeoutError):
            get_weather(city="Paris")
        get_weather(city="Paris")
    rows = rows_of(cap)
    first, second = tools_run(rows, "get_weather")

    timed_out = score(first, rows)
    assert (timed_out.value, timed_out.label) == (1.0, "timeout")
    assert timed_out.explanation == "timeout: TimeoutError: upstream took 30s (also: exception)"
    assert timed_out.details == {"classes": ["timeout", "exception"], "tools": ["get_weather"]}

    retry = score(second, rows)  # it succeeded, but only because the first attempt failed
    assert (retry.value, retry.label) == (1.0, "retried")
    assert retry.explanation == (
        "retried: 'get_weather' called with the same arguments 1 time(s) before, 1 of them failed"
    )
    request = score(chats(rows)[0], rows)  # the model asked for a declared tool, with valid JSON
    assert (request.value, request.label) == (0.0, "ok")


def test_a_retry_that_fails_again_keeps_the_stronger_class(cap: Capture) -> None:
    @dl.tool_call()
    def search(query: str) -> str:
        raise TimeoutError(f"search for {query!r} timed out")

    with dl.agent_step("agent"):
        for _ in range(3):
            with pytest.raises(TimeoutError):
                search(query="otel")
    rows = rows_of(cap)
    labels = [score(r, rows) for r in tools_run(rows, "search")]
    assert [s.label for s in labels] == ["timeout"] * 3
    assert [s.details["classes"] for s in labels] == [
        ["timeout", "exception"],
        ["timeout", "exception", "retried"],
        ["timeout", "exception", "retried"],
    ]
    retried = find_failures(tools_run(rows, "search")[2], TraceContext(rows))[-1]
    assert retried == Finding("retried", "'search' called with the same arguments 2 time(s) before, 2 of them failed")


def test_model_asking_again_for_the_same_call_is_a_retry(cap: Capture, fake: FakeOpenAI) -> None:
    with instrumented(INSTRUMENTORS["openinference"](), cap), dl.agent_step("agent"):
        for _ in range(2):  # the fake asks for get_weather {"city": "Paris"} both times
            client(fake).chat.completions.create(model=MODEL, messages=MESSAGES, tools=WEATHER_TOOLS)
    rows = rows_of(cap)
    first, second = chats(rows)
    assert score(first, rows).label == "ok"
    again = score(second, rows)
    assert again.label == "retried"
    assert "'get_weather' requested by the model with the same arguments 1 time(s) before" in again.explanation


# invalid_arguments -------------------------------------------------------------------------------


class Flight(pydantic.BaseModel):
    origin: str
    seats: int


def test_invalid_arguments_from_validation_type_and_json_errors(cap: Capture) -> None:
    @dl.tool_call()
    def book_flight(payload: dict[str, Any]) -> str:
        return f"booked {Flight.model_validate(payload)}"

    @dl.tool_call()
    def get_weather(city: str) -> str:
        return city

    with dl.agent_step("agent"):
        with pytest.raises(pydantic.ValidationError):
            book_flight(payload={"origin": "CDG", "seats": "many"})
        with pytest.raises(TypeError):
            get_weather(town="Paris")  # type: ignore[call-arg]  # the model named the argument wrongly
        with dl.tool_call("lookup", arguments='{"city": "Par'):  # cut-off JSON from the model
            pass
    rows = rows_of(cap)

    validation = score(tools_run(rows, "book_flight")[0], rows)
    assert validation.label == "invalid_arguments"
    assert validation.explanation.startswith("invalid_arguments: ValidationError: 1 validation error for Flight")
    type_error = score(tools_run(rows, "get_weather")[0], rows)
    assert type_error.label == "invalid_arguments"
    assert "unexpected keyword argument 'town'" in type_error.explanation
    broken = score(tools_run(rows, "lookup")[0], rows)
    assert broken.label == "invalid_arguments"
    assert broken.explanation.startswith("invalid_arguments: arguments for 'lookup' are not valid JSON (")
    assert broken.details["classes"] == ["invalid_arguments"]  # the span itself ended fine


def test_plain_text_tool_input_is_not_held_to_json() -> None:
    """An OpenInference TOOL span whose input is a plain string (a LangChain text tool); no
    Python emitter for it runs here, so the span is made with the real SDK."""
    attrs = {"openinference.span.kind": "TOOL", "tool.name": "wiki", "input.value": "Eiffel tower height"}
    res, scope, span = record_span("wiki", attrs)
    norm = Normalizer()
    row = norm.span(span, norm.resource(res), scope)
    assert row["tool_arguments"] == "Eiffel tower height"
    assert score(row, [row]).label == "ok"


def test_model_sending_arguments_that_are_not_json() -> None:
    """The fake provider always sends valid JSON, so this OpenInference LLM span (the attributes
    openinference-instrumentation-openai writes) is made with the real SDK via record_span."""
    prefix = "llm.output_messages.0.message"
    attrs = {
        "openinference.span.kind": "LLM",
        "llm.provider": "openai",
        "llm.model_name": MODEL,
        f"{prefix}.role": "assistant",
        f"{prefix}.tool_calls.0.tool_call.id": "call_1",
        f"{prefix}.tool_calls.0.tool_call.function.name": TOOL_NAME,
        f"{prefix}.tool_calls.0.tool_call.function.arguments": '{"city": Paris}',
        "llm.tools.0.tool.json_schema": '{"type": "function", "function": {"name": "get_weather"}}',
    }
    res, scope, span = record_span("ChatCompletion", attrs)
    norm = Normalizer()
    row = norm.span(span, norm.resource(res), scope)
    result = score(row, [row])
    assert result.label == "invalid_arguments"
    assert "arguments for 'get_weather' are not valid JSON" in result.explanation


# unknown_tool ------------------------------------------------------------------------------------


@pytest.mark.parametrize("lib", ["openinference", "traceloop"])
def test_model_asking_for_an_undeclared_tool(lib: str, cap: Capture, fake: FakeOpenAI) -> None:
    with instrumented(INSTRUMENTORS[lib](), cap):
        client(fake).chat.completions.create(model=MODEL, messages=MESSAGES, tools=OTHER_TOOLS)
    rows = rows_of(cap)
    (chat,) = chats(rows)
    assert declared_tools(chat["attributes"]) == frozenset({"get_time", "get_news"})
    result = score(chat, rows)
    assert (result.value, result.label) == (1.0, "unknown_tool")
    assert result.explanation == ("unknown_tool: 'get_weather' is not among the declared tools (get_news, get_time)")


@pytest.mark.parametrize("lib", list(INSTRUMENTORS))
def test_declared_tool_is_ok_with_every_instrumentor(lib: str, cap: Capture, fake: FakeOpenAI) -> None:
    with instrumented(INSTRUMENTORS[lib](), cap):
        client(fake).chat.completions.create(model=MODEL, messages=MESSAGES, tools=WEATHER_TOOLS)
        client(fake).chat.completions.create(model=MODEL, messages=MESSAGES)  # no tools: not scored
    rows = rows_of(cap)
    asked, plain = chats(rows)
    assert score(asked, rows).label == "ok"
    assert not ToolFailureScorer().applies(plain)


def test_openai_v2_does_not_record_declared_tools(cap: Capture, fake: FakeOpenAI) -> None:
    """opentelemetry-instrumentation-openai-v2 2.4b0 writes no gen_ai.tool.definitions, so an
    undeclared tool cannot be told from a declared one on its spans: not flagged, not guessed."""
    with instrumented(INSTRUMENTORS["openai-v2"](), cap):
        client(fake).chat.completions.create(model=MODEL, messages=MESSAGES, tools=OTHER_TOOLS)
    rows = rows_of(cap)
    (chat,) = chats(rows)
    assert declared_tools(chat["attributes"]) is None
    assert score(chat, rows).label == "ok"


def test_tool_run_for_an_undeclared_tool(cap: Capture, fake: FakeOpenAI) -> None:
    registry: dict[str, Callable[..., Any]] = {"get_time": lambda: "12:00", "get_news": lambda: "none"}
    with instrumented(INSTRUMENTORS["openinference"](), cap), dl.agent_step("agent"):
        answer = client(fake).chat.completions.create(model=MODEL, messages=MESSAGES, tools=OTHER_TOOLS)
        calls = answer.choices[0].message.tool_calls or []
        for call in calls:
            name = call.function.name  # type: ignore[union-attr]
            with pytest.raises(KeyError), dl.tool_call(name, call_id=call.id, arguments=call.function.arguments):  # type: ignore[union-attr]
                registry[name]()
    rows = rows_of(cap)
    (run,) = tools_run(rows, TOOL_NAME)
    assert run["tool_call_id"] == TOOL_CALL_ID
    result = score(run, rows)
    assert result.label == "unknown_tool"
    # Found through the model call that asked for it (same call id) and its declared tools.
    assert result.explanation == (
        "unknown_tool: 'get_weather' is not among the declared tools (get_news, get_time) (also: exception)"
    )

    # The runner may read trace rows without `attributes`: the KeyError on the name still tells.
    bare = [{k: v for k, v in r.items() if k != "attributes"} for r in rows]
    result = score(next(r for r in bare if r["span_id"] == run["span_id"]), bare)
    assert result.label == "unknown_tool"
    assert result.explanation == "unknown_tool: KeyError: 'get_weather' (also: exception)"


def test_unknown_tool_from_the_error_message(cap: Capture) -> None:
    with pytest.raises(LookupError), dl.tool_call("frobnicate", arguments={}):
        raise LookupError("no such tool: frobnicate")
    rows = rows_of(cap)
    assert score(rows[0], rows).label == "unknown_tool"


def test_declared_tools_in_other_conventions() -> None:
    """Older Traceloop and Vercel AI SDK spellings (no Python emitter installed for either)."""
    traceloop = {"llm.request.functions.0.name": "a", "llm.request.functions.1.name": "b"}
    assert declared_tools(traceloop) == frozenset({"a", "b"})
    vercel = {"ai.prompt.tools": '["{\\"type\\":\\"function\\",\\"name\\":\\"search\\"}"]'}
    assert declared_tools(vercel) == frozenset({"search"})
    semconv = {"gen_ai.tool.definitions": '[{"type": "function", "name": "x"}, {"function": {"name": "y"}}]'}
    assert declared_tools(semconv) == frozenset({"x", "y"})
    assert declared_tools({"gen_ai.tool.definitions": '[{"name": "x"}, ...[truncated 9 bytes]'}) is None
    assert declared_tools({}) is None


# exception, error_status, error_result, ok ---------------------------------------------------------


def test_exception_error_status_error_result_and_ok(cap: Capture) -> None:
    @dl.tool_call()
    def parse(text: str) -> int:
        raise ValueError(f"not a number: {text}")

    @dl.tool_call()
    def weather(city: str) -> dict[str, str]:
        return {"error": f"city {city} not found"}

    @dl.tool_call()
    def quota(user: str) -> str:
        return "Error: daily quota used up"

    @dl.tool_call()
    def mcp(path: str) -> dict[str, Any]:
        return {"content": [{"type": "text", "text": "permission denied"}], "isError": True}

    @dl.tool_call()
    def add(a: int, b: int) -> int:
        return a + b

    with dl.agent_step("agent"):
        with pytest.raises(ValueError):
            parse(text="x")
        with dl.tool_call("charge_card", arguments={"amount": 5}) as charge:
            charge.span.set_status(Status(StatusCode.ERROR, "card declined"))  # no exception raised
        weather(city="Atlantis")
        quota(user="u1")
        mcp(path="/etc")
        add(a=1, b=2)
    rows = rows_of(cap)

    def only(name: str) -> Score:
        (run,) = tools_run(rows, name)
        return score(run, rows)

    exception = only("parse")
    assert (exception.label, exception.details["classes"]) == ("exception", ["exception"])
    assert exception.explanation == "exception: ValueError: not a number: x"
    status = only("charge_card")
    assert (status.label, status.explanation) == ("error_status", "error_status: card declined")
    assert only("weather").explanation == "error_result: tool reported an error: city Atlantis not found"
    assert only("quota").explanation == "error_result: tool returned 'Error: daily quota used up'"
    assert only("mcp").label == "error_result"
    ok = only("add")
    assert (ok.value, ok.label, ok.explanation) == (0.0, "ok", "ok: add without error")
