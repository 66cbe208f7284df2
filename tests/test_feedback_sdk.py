"""`driftline.feedback()` from an app: the real SDK exports a trace over OTLP to a real server,
then records feedback on it through the API with the endpoint and key given to `init()`."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

import driftline
from driftline.sdk import _state
from tests.conftest import KEY_A, KEY_B, LiveServer


@pytest.fixture
def traced(live: LiveServer) -> Iterator[tuple[LiveServer, int, int]]:
    # set_global=False: the app and the server share this process
    handle = driftline.init(
        endpoint=live.url, api_key=KEY_A, service="fb-app", instrument=False, batch=False, set_global=False
    )
    try:
        with driftline.llm_call(model="gpt-4o", provider="openai") as call:
            call.set_output_text("The parcel left on Monday.")
            ctx = call.span.get_span_context()
        assert handle.flush(10) and live.runtime.flush(10)
        yield live, ctx.trace_id, ctx.span_id
    finally:
        handle.shutdown()
        _state.api_target = ("http://localhost:4318", {})


def _feedback(live: LiveServer, trace_id: int, key: str = KEY_A) -> list[dict[str, object]]:
    r = httpx.get(f"{live.url}/api/v1/traces/{trace_id:032x}", headers={"authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    return list(r.json()["feedback"])


def test_feedback_from_the_sdk_lands_on_the_trace_once(traced: tuple[LiveServer, int, int]) -> None:
    live, trace_id, span_id = traced
    fid = driftline.feedback(trace_id, span_id=span_id, value=0, comment="wrong day", author="u-7")
    assert (
        driftline.feedback(trace_id, span_id=span_id, id=fid, value=0, comment="wrong day, Tuesday", author="u-7")
        == fid
    )
    (got,) = _feedback(live, trace_id)
    assert (got["id"], got["span_id"], got["value"], got["negative"]) == (fid, f"{span_id:016x}", 0.0, True)
    assert (got["comment"], got["author"], got["source"]) == ("wrong day, Tuesday", "u-7", "user")
    ids = driftline.feedback_batch(
        [{"trace_id": trace_id, "name": "helpfulness", "value": 4, "source": "evaluator", "negative": False}]
    )
    assert sorted(str(f["id"]) for f in _feedback(live, trace_id)) == sorted([fid, *ids])


def test_feedback_with_a_bad_key_or_id_raises_with_the_status(traced: tuple[LiveServer, int, int]) -> None:
    live, trace_id, _ = traced
    with pytest.raises(driftline.FeedbackError) as e:
        driftline.feedback(trace_id, value=1, api_key="not-a-key")
    assert e.value.status == 401 and "not-a-key" not in str(e.value)
    with pytest.raises(driftline.FeedbackError) as e:
        driftline.feedback("not-hex", value=1)
    assert e.value.status == 422
    # another tenant's key writes into that tenant only
    driftline.feedback(trace_id, value=1, api_key=KEY_B)
    assert _feedback(live, trace_id) == []


def test_an_unreachable_collector_is_a_feedback_error() -> None:
    with pytest.raises(driftline.FeedbackError) as e:
        driftline.feedback("ab" * 16, value=1, endpoint="http://127.0.0.1:9", timeout_s=2)
    assert e.value.status is None
