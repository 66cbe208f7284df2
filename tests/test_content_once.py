"""Message content is stored once: a GenAI message attribute that input_messages / output_messages
hold without loss is left out of `attributes`; any other shape stays there exactly as sent.

Spans are recorded through the real OTel SDK and normalized as the collector does. "Without loss"
is checked by rebuilding the attribute from the stored messages: every dropped attribute must
come back equal, every other one must be stored verbatim (a hypothesis property over random lists).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from driftline.collector.normalize import Normalizer
from driftline.pricing import Pricer
from tests.support.otel_capture import record_span
from tests.support.recorded import START_NS, normalize

IN, OUT = "gen_ai.input.messages", "gen_ai.output.messages"


def _text(role: str, content: str, **extra: Any) -> dict[str, Any]:
    return {"role": role, "parts": [{"type": "text", "content": content}], **extra}


def _chat(inp: object, out: object, **more: Any) -> dict[str, Any]:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        IN: json.dumps(inp) if not isinstance(inp, str) else inp,
        OUT: json.dumps(out) if not isinstance(out, str) else out,
        "app.feature": "refunds",
        **more,
    }


def _rebuilt(stored: str, like: list[Any]) -> list[dict[str, Any]]:
    """The source messages again from the stored ones, in the shape each source message had."""
    out = []
    for norm, src in zip(json.loads(stored), like, strict=True):
        extra = {"finish_reason": norm["finish_reason"]} if "finish_reason" in norm else {}
        assert set(norm) <= {"role", "content", "finish_reason"}
        if isinstance(src, dict) and "parts" in src:
            out.append(_text(norm["role"], norm["content"], **extra))
        else:
            out.append({"role": norm["role"], "content": norm["content"], **extra})
    return out


def test_plain_text_messages_are_stored_once_and_come_back_whole() -> None:
    inp = [_text("system", "You are terse."), {"role": "user", "content": 'Where is order A-1? \u00e9\u4e2d"\\'}]
    out = [_text("assistant", "It shipped on Monday.", finish_reason="stop")]
    row = normalize("chat gpt-4o", _chat(inp, out))
    attrs = row["attributes"]
    assert IN not in attrs and OUT not in attrs
    assert attrs["app.feature"] == "refunds" and attrs["gen_ai.request.model"] == "gpt-4o"
    assert _rebuilt(row["input_messages"], inp) == inp
    assert _rebuilt(row["output_messages"], out) == out
    assert row["input_text"] == 'Where is order A-1? \u00e9\u4e2d"\\'
    assert row["output_text"] == "It shipped on Monday."


def test_structured_anyvalue_messages_are_stored_once_too() -> None:
    inp = [_text("user", "Hi")]
    attrs = _chat([], [])
    attrs[IN] = inp  # an AnyValue array of kvlists rather than a JSON string
    attrs[OUT] = [_text("assistant", "Hello", finish_reason="stop")]
    row = normalize("chat", attrs)
    assert IN not in row["attributes"] and OUT not in row["attributes"]
    assert _rebuilt(row["input_messages"], inp) == inp


def test_older_prompt_and_completion_attributes_follow_the_same_rule() -> None:
    prompt = [{"role": "user", "content": "hi"}]
    row = normalize(
        "chat",
        {
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.prompt": json.dumps(prompt),
            "gen_ai.completion": json.dumps([{"role": "assistant", "content": "hello", "name": "bot"}]),
        },
    )
    assert "gen_ai.prompt" not in row["attributes"]
    assert _rebuilt(row["input_messages"], prompt) == prompt
    # "name" has no column: the completion stays as sent.
    assert json.loads(row["attributes"]["gen_ai.completion"])[0]["name"] == "bot"


LOSSY: dict[str, object] = {
    "image part": [{"role": "user", "parts": [{"type": "uri", "modality": "image", "uri": "https://x/y.png"}]}],
    "text and image": [
        {"role": "user", "parts": [{"type": "text", "content": "what is this?"}, {"type": "blob", "content": "AA=="}]}
    ],
    "tool call part": [
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "f", "arguments": {"a": 1}}]}
    ],
    "openai tool_calls": [
        {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": "{}"}}]}
    ],
    "extra message key": [{"role": "user", "content": "hi", "name": "alice"}],
    "extra part key": [{"role": "user", "parts": [{"type": "text", "content": "hi", "annotations": []}]}],
    "missing role": [{"content": "hi"}],
    "empty role": [{"role": "", "content": "hi"}],
    "non-text finish_reason": [{"role": "assistant", "content": "hi", "finish_reason": None}],
    "one object, not a list": {"role": "user", "content": "hi"},
    "a plain string": "just text",
}


def test_every_other_shape_keeps_its_attribute_verbatim() -> None:
    for label, value in LOSSY.items():
        raw = value if isinstance(value, str) else json.dumps(value)
        row = normalize("chat", _chat(value, value))
        assert row["attributes"].get(IN) == raw, label
        assert row["attributes"].get(OUT) == raw, label


def test_a_cut_message_list_keeps_its_attribute() -> None:
    limit = 256
    turns = [_text("user", f"turn {i} " + "x" * 200) for i in range(40)]
    res, scope, span = record_span("chat", _chat(turns, [_text("assistant", "ok")]), start_ns=START_NS)
    norm = Normalizer(pricer=Pricer(), max_value_bytes=limit)
    row: dict[str, Any] = norm.span(span, norm.resource(res), scope)
    assert "truncated" in row["input_messages"]  # cut: the stored list does not hold it all
    assert IN in row["attributes"]  # so the (itself cut) attribute stays
    assert OUT not in row["attributes"]


_role = st.sampled_from(["user", "assistant", "system", "tool", ""])
_content = st.text(max_size=30)
_plain = st.one_of(
    st.builds(lambda r, c: {"role": r, "content": c}, _role, _content),
    st.builds(_text, _role, _content),
    st.builds(lambda r, c, f: _text(r, c, finish_reason=f), _role, _content, st.sampled_from(["stop", "length"])),
)
_other = st.one_of(
    st.builds(lambda c: {"content": c}, _content),
    st.builds(lambda r, c: {"role": r, "content": c, "name": "n"}, _role, _content),
    st.builds(lambda r: {"role": r, "parts": [{"type": "image", "url": "u"}]}, _role),
    st.builds(lambda r, c: {"role": r, "parts": [{"type": "text", "content": c}] * 2}, _role, _content),
    st.builds(lambda r: {"role": r, "content": [{"type": "text", "text": "t"}]}, _role),
    st.just("bare string"),
    st.just(7),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(_plain, _plain, _other), max_size=6))
def test_an_attribute_is_dropped_only_when_the_messages_give_it_back(msgs: list[Any]) -> None:
    raw = json.dumps(msgs)
    row = normalize("chat", _chat(msgs, msgs))
    for key, column in ((IN, "input_messages"), (OUT, "output_messages")):
        if key in row["attributes"]:
            assert row["attributes"][key] == raw
        else:
            assert _rebuilt(row[column], msgs) == msgs
