"""The demo's traffic is conversations: each trace names a session and a user, a session has one
user and a few turns, so `driftline up --demo` shows content on the sessions page."""

from __future__ import annotations

from collections import defaultdict

import httpx

from driftline.demo import RELEASES, DemoTraffic
from tests.conftest import KEY_A, LiveServer

_AUTH = {"Authorization": f"Bearer {KEY_A}"}


def test_demo_traces_form_sessions(live: LiveServer) -> None:
    demo = DemoTraffic(live.url, KEY_A, seed=5)
    for _ in range(12):
        demo.one_trace()
    demo.stop()  # flushes the demo's batch exporter
    assert live.runtime.flush(10)
    traces = httpx.get(f"{live.url}/api/v1/traces", params={"limit": 50}, headers=_AUTH).json()["traces"]
    assert len(traces) == 12
    users: dict[str, set[str]] = defaultdict(set)
    releases: dict[str, set[str]] = defaultdict(set)
    turns: dict[str, int] = defaultdict(int)
    for t in traces:
        spans = httpx.get(f"{live.url}/api/v1/traces/{t['trace_id']}", headers=_AUTH).json()["spans"]
        root = next(s for s in spans if not s["parent_span_id"])
        assert root["session_id"].startswith("demo-session-") and root["user_id"].startswith("demo-user-")
        users[root["session_id"]].add(root["user_id"])
        releases[root["session_id"]].add(root["release"])
        turns[root["session_id"]] += 1
    assert all(len(u) == 1 for u in users.values())  # one user per conversation
    assert all(len(r) == 1 for r in releases.values())  # and one release
    assert set().union(*releases.values()) == set(RELEASES)  # both releases, for /compare and drift
    assert 3 <= len(turns) < 12 and max(turns.values()) > 1  # several conversations, some with turns
    listed = httpx.get(f"{live.url}/api/v1/sessions", headers=_AUTH)
    assert listed.status_code == 200, listed.text
    assert {s["session_id"] for s in listed.json()["sessions"]} == set(turns)
    some = max(turns, key=lambda k: turns[k])
    one = httpx.get(f"{live.url}/api/v1/sessions/{some}", headers=_AUTH)
    assert one.status_code == 200, one.text
    assert len(one.json()["traces"]) == turns[some]
