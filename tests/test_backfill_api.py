"""The admin backfill API on the real app over chDB: admin role only, the caller's tenant only,
every shard whichever replica is asked."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from driftline.auth import Authenticator
from driftline.config import UpSettings, load_settings
from driftline.scorers.service import ScorerService
from driftline.server import build_app
from tests.conftest import KEY_B, TENANT_A, TENANT_B, LiveServer
from tests.otlp_helpers import http_exporter, provider_for, send_chat_trace
from tests.support.sql import admin_rows
from tests.test_scoring import _ingest

ADMIN_A, ADMIN_B, READ_A = "adm-a", "adm-b", "read-a"


def _poll(client: TestClient, bf_id: str, key: str) -> dict[str, Any]:
    wait = threading.Event()
    for _ in range(400):  # bounded: the backfill runs in the server's thread
        state: dict[str, Any] = client.get(f"/api/v1/admin/backfill/{bf_id}", headers=_h(key)).json()
        if state["state"] != "running":
            return state
        wait.wait(0.05)
    raise AssertionError("backfill did not finish")


def _h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_backfill_api_admin_only_own_tenant_every_shard(live: LiveServer) -> None:
    _ingest(live, 4)  # tenant A: 4 LLM spans
    tp = provider_for(http_exporter(live.url, KEY_B))
    send_chat_trace(tp)  # tenant B: must stay unscored
    tp.shutdown()
    assert live.runtime.flush(10)
    keys = f"{ADMIN_A}={TENANT_A}:admin,{ADMIN_B}={TENANT_B}:admin,{READ_A}={TENANT_A}:read"
    # Replica 1 of 2: its scheduled jobs see half the traces; a backfill it is asked for sees all.
    s = load_settings(
        UpSettings, environ={}, api_keys=keys, database=live.runtime.settings.database,
        clickhouse_url=live.runtime.settings.effective_clickhouse_url, replica_index=1, replica_count=2,
    )  # fmt: skip
    registry = CollectorRegistry()
    scorer = ScorerService(s, live.runtime.store, registry, auth=Authenticator(s.key_grants()))
    client = TestClient(build_app([scorer], registry))
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    body = {"scorer": "cost", "since": since}

    assert client.post("/api/v1/admin/backfill", json=body, headers=_h(READ_A)).status_code == 403
    assert client.post("/api/v1/admin/backfill", json=body).status_code == 401
    bad = client.post("/api/v1/admin/backfill", json={**body, "scorer": "nope"}, headers=_h(ADMIN_A))
    assert bad.status_code == 400 and "unknown scorer 'nope'" in bad.json()["detail"]

    started = client.post("/api/v1/admin/backfill", json=body, headers=_h(ADMIN_A))
    assert started.status_code == 202, started.text
    bf_id = started.json()["id"]
    # Another tenant's admin cannot even see it.
    assert client.get(f"/api/v1/admin/backfill/{bf_id}", headers=_h(ADMIN_B)).status_code == 404
    done = _poll(client, bf_id, ADMIN_A)
    assert done["state"] == "done" and done["tenant"] == TENANT_A
    assert done["scored"] == 4 and done["failed"] == 0  # all four: both shards

    counts = {
        r["tenant"]: r["n"]
        for r in admin_rows(
            live.runtime.store,
            "SELECT tenant, count() AS n FROM {db}.scores FINAL WHERE scorer = 'cost' GROUP BY tenant",
        )
    }
    assert counts == {TENANT_A: 4}  # tenant B untouched
