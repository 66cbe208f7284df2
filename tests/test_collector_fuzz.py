"""Malformed protobuf and JSON never cause a 500 or a crash, and never stop later requests."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftline.collector.service import CollectorService
from driftline.server import create_app
from tests.conftest import KEY_A
from tools.loadgen import llm_request

ALLOWED = {200, 400, 413}
PB = {"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {KEY_A}"}
JS = {"Content-Type": "application/json", "Authorization": f"Bearer {KEY_A}"}
VALID = llm_request(3, seed=11).SerializeToString()

_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
_json = st.recursive(
    _json_leaf,
    lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=12), kids, max_size=4)),
    max_leaves=30,
)
_otlp_keys = st.sampled_from(
    ["resourceSpans", "scopeSpans", "spans", "traceId", "spanId", "name", "attributes", "startTimeUnixNano",
     "endTimeUnixNano", "kind", "status", "events", "links", "value", "stringValue", "intValue", "key"]
)  # fmt: skip
_otlp_like = st.recursive(
    _json_leaf,
    lambda kids: st.one_of(st.lists(kids, max_size=3), st.dictionaries(_otlp_keys, kids, max_size=5)),
    max_leaves=40,
)

_FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _check(client: TestClient, body: bytes, headers: dict[str, str]) -> None:
    r = client.post("/v1/traces", content=body, headers=headers)
    assert r.status_code in ALLOWED, (r.status_code, r.text[:300])


@_FUZZ
@given(data=st.binary(max_size=2000))
def test_random_bytes_as_protobuf(runtime: CollectorService, data: bytes) -> None:
    _check(TestClient(create_app(runtime)), data, PB)


@_FUZZ
@given(pos=st.integers(min_value=0, max_value=len(VALID) - 1), byte=st.integers(0, 255), cut=st.booleans())
def test_mutated_valid_protobuf(runtime: CollectorService, pos: int, byte: int, cut: bool) -> None:
    body = VALID[:pos] if cut else VALID[:pos] + bytes([byte]) + VALID[pos + 1 :]
    _check(TestClient(create_app(runtime)), body, PB)


@_FUZZ
@given(doc=_json)
def test_random_json(runtime: CollectorService, doc: Any) -> None:
    _check(TestClient(create_app(runtime)), json.dumps(doc).encode(), JS)


@_FUZZ
@given(doc=_otlp_like)
def test_otlp_shaped_json(runtime: CollectorService, doc: Any) -> None:
    _check(TestClient(create_app(runtime)), json.dumps({"resourceSpans": [doc]}).encode(), JS)


def test_server_still_works_after_fuzz(runtime: CollectorService) -> None:
    client = TestClient(create_app(runtime))
    for junk in (b"\x0a\xff\xff\xff\xff\x0f", b"{", b"[]", b'{"resourceSpans": 5}'):
        client.post("/v1/traces", content=junk, headers=PB if junk[:1] != b"{" else JS)
    r = client.post("/v1/traces", content=VALID, headers=PB)
    assert r.status_code == 200
    assert runtime.flush(10)
