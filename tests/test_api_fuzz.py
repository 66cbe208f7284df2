"""No parameter reaches SQL unbound: odd strings in every string filter give 200 with exactly the
traces that hold that value (none, for a value no trace holds), or 422, never 500."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftline.collector.service import CollectorService
from driftline.server import create_app
from tests.api_data import T, load
from tests.conftest import KEY_A, TENANT_A, TENANT_B, make_settings

A = {"authorization": f"Bearer {KEY_A}"}
NAME = {v: k for k, v in T.items()}
# The values tenant A's recent traces hold (tests/api_data.py), and the traces holding each.
KNOWN: dict[str, dict[str, list[str]]] = {
    "service": {"shop": ["t2", "t1"], "search": ["t3"]},
    "model": {"gpt-4o": ["t3", "t1"], "gpt-4o-2024-08-06": ["t1"], "claude-3-5-sonnet": ["t2"]},
    "release": {"1.0": ["t1"], "2.0": ["t3", "t2"]},
    "environment": {"prod": ["t2", "t1"], "staging": ["t3"]},
    "operation": {"chat": ["t3", "t2", "t1"], "execute_tool": ["t2"]},
    "session_id": {"s1": ["t2", "t1"], "s2": ["t3"]},
    "user_id": {"u1": ["t2", "t1"], "u2": ["t3"]},
    "scorer": {"hallucination": ["t3", "t2", "t1"], "tool_failure": ["t2"]},
    "label": {"hallucinated": ["t1"], "grounded": ["t3", "t2"], "timeout": ["t2"]},
}
TEXTS = {  # (input, output) of each trace's chat span
    "t1": ("Where is my order 1234?", "It shipped yesterday by Parcel Express."),
    "t2": ("Can I get a refund?", "Yes, within 30 days."),
    "t3": ("What is the REFUND policy?", "Thirty days, no questions."),
}
ODD = [
    "' OR 1=1 --", "shop' OR '1'='1", "shop'--", "') OR ('1'='1", "\\", "\\'", "{tenant:String}",
    "{p1:String}", "%", "_", "*", "shop\x00", "'; DROP TABLE spans; --", "\" OR \"\"=\"", "ünïcødé ✓",
    "a" * 501, "", " ", "\n", "gpt-4o' UNION ALL SELECT trace_id FROM spans --",
]  # fmt: skip


@pytest.fixture
def client(tmp_path: Path, chdb_path: Path, database: str) -> Iterator[TestClient]:
    s = make_settings(tmp_path / "data", f"chdb://{chdb_path}", database, decode_workers=0, grpc_enabled=False)
    rt = CollectorService(s)
    rt.start()
    load(rt.store, TENANT_A, TENANT_B)
    with TestClient(create_app(rt)) as c:
        yield c
    rt.stop()


def _check(c: TestClient, param: str, value: str) -> None:
    r = c.get("/api/v1/traces", headers=A, params={param: value})
    assert r.status_code in (200, 422), (param, value, r.status_code, r.text)
    if r.status_code == 422:
        assert r.json()["detail"][0]["loc"][-1] == param
        return
    got = [NAME.get(t["trace_id"], t["trace_id"]) for t in r.json()["traces"]]
    if param == "q":
        if value.isascii():
            assert got == [n for n in ("t3", "t2", "t1") if any(value.lower() in x.lower() for x in TEXTS[n])], value
        else:
            assert set(got) <= {"t1", "t2", "t3"}
    elif param == "scorer":
        assert got == KNOWN["scorer"].get(value, [])
    else:
        assert got == KNOWN[param].get(value, []), (param, value)


@pytest.mark.parametrize("param", [*KNOWN, "q"])
def test_injection_strings_match_nothing_they_should_not(client: TestClient, param: str) -> None:
    for value in ODD:
        _check(client, param, value)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(param=st.sampled_from([*KNOWN, "q"]), value=st.text(max_size=40))
def test_any_string_in_any_filter_is_bound(client: TestClient, param: str, value: str) -> None:
    _check(client, param, value)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(min_size=1, max_size=40).filter(lambda v: v not in (".", "..")))
def test_any_session_id_in_the_path_is_bound(client: TestClient, value: str) -> None:
    r = client.get(f"/api/v1/sessions/{quote(value, safe='')}", headers=A)
    assert r.status_code in (200, 404, 422), (value, r.status_code)
    if r.status_code == 200:
        assert value in ("s1", "s2")
