"""API keys carry roles: ingest, read, review, admin. Every route asks for its role, over the real
app on a real uvicorn (OTLP/HTTP, the read API, feedback) and the real gRPC receiver."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from driftline.auth import Authenticator
from driftline.collector.service import CollectorService
from driftline.config import DEFAULT_ROLES, CollectorSettings, ConfigError, load_settings
from tests.conftest import LiveServer, make_settings, serve
from tests.otlp_helpers import http_exporter, provider_for, send_chat_trace

INGEST, READ, REVIEW, ADMIN, OLD = "k-ingest", "k-read", "k-review", "k-admin", "k-old-style"
KEYS = f"{INGEST}=acme:ingest,{READ}=acme:read,{REVIEW}=acme:review:alice,{ADMIN}=acme:admin,{OLD}=acme"
PB = "application/x-protobuf"
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def test_key_format_roles_and_backward_compatible_default() -> None:
    s = load_settings(CollectorSettings, environ={"DRIFTLINE_API_KEYS": KEYS})
    auth = Authenticator(s.key_grants())
    old = auth.authenticate(f"Bearer {OLD}")
    # A key without roles does what every key did before roles: send, read, review; not admin.
    assert old.tenant == "acme" and old.roles == DEFAULT_ROLES == {"ingest", "read", "review"}
    assert not old.can("admin")
    assert auth.authenticate(f"Bearer {INGEST}").roles == {"ingest"}
    reviewer = auth.authenticate(f"Bearer {REVIEW}")
    assert reviewer.roles == {"review"} and reviewer.name == "alice"
    assert all(auth.authenticate(f"Bearer {ADMIN}").can(r) for r in ("ingest", "read", "review", "admin"))
    assert s.tenants_by_key_hash()  # the tenant map every caller used still holds every key


def test_unknown_role_stops_start_up_without_echoing_the_key() -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(CollectorSettings, environ={"DRIFTLINE_API_KEYS": "topsecret-key=acme:raed"})
    assert "DRIFTLINE_API_KEYS" in str(e.value) and "'raed'" in str(e.value)
    assert "topsecret-key" not in str(e.value)


@pytest.fixture
def roles_live(tmp_path: Path, chdb_path: Path, database: str) -> Iterator[LiveServer]:
    rt = CollectorService(make_settings(tmp_path / "data", f"chdb://{chdb_path}", database, api_keys=KEYS))
    rt.start()
    server, thread, url = serve(rt)
    try:
        yield LiveServer(url, rt)
    finally:
        server.should_exit = True
        thread.join(10)
        rt.stop()


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_routes_require_their_role(roles_live: LiveServer) -> None:
    url = roles_live.url
    tp = provider_for(http_exporter(url, INGEST))  # an ingest-only key sends spans ...
    ids = send_chat_trace(tp)
    tp.shutdown()
    assert roles_live.runtime.flush(10)
    trace = f"{url}/api/v1/traces/{ids['trace_id']}"
    r = httpx.get(trace, headers=_auth(INGEST))  # ... but cannot read them
    assert r.status_code == 403 and "read" in r.json()["detail"]
    assert httpx.get(f"{url}/api/v1/traces", headers=_auth(INGEST)).status_code == 403
    for key in (READ, ADMIN, OLD):  # read, admin (every role) and an old-style key read
        assert httpx.get(trace, headers=_auth(key)).status_code == 200, key
    assert httpx.get(trace, headers=_auth("k-unknown")).status_code == 401

    # A read key cannot send spans: 403, a google.rpc.Status, nothing stored.
    r = httpx.post(f"{url}/v1/traces", content=b"", headers={**_auth(READ), "Content-Type": PB})
    assert r.status_code == 403
    assert httpx.post(f"{url}/v1/traces", content=b"", headers={**_auth(REVIEW), "Content-Type": PB}).status_code == 403

    # Feedback comes from applications (ingest) and reviewers (review), not from read-only keys.
    item = {"id": "fb-1", "trace_id": ids["trace_id"], "value": 1.0}
    for key, code in ((INGEST, 200), (REVIEW, 200), (READ, 403), (ADMIN, 200)):
        assert httpx.post(f"{url}/api/v1/feedback", json=item, headers=_auth(key)).status_code == code, key


def test_grpc_export_requires_ingest(roles_live: LiveServer) -> None:
    grpc_server = roles_live.runtime.grpc
    assert grpc_server is not None
    with grpc.insecure_channel(f"127.0.0.1:{grpc_server.port}") as channel:
        export = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
        export(b"", metadata=(("authorization", f"Bearer {INGEST}"),), timeout=10)  # an empty request: OK
        with pytest.raises(grpc.RpcError) as e:
            export(b"", metadata=(("authorization", f"Bearer {READ}"),), timeout=10)
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.RpcError) as e:
            export(b"", metadata=(("authorization", "Bearer nope"),), timeout=10)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_overview_refuses_a_key_without_the_read_role_with_403(roles_live: LiveServer) -> None:
    url = f"{roles_live.url}/api/v1/overview"
    r = httpx.get(url, headers=_auth(INGEST))
    assert r.status_code == 403 and "read" in r.json()["detail"]  # known key, wrong role: not a 401
    assert httpx.get(url, headers=_auth("no-such-key")).status_code == 401
    assert httpx.get(url, headers=_auth(READ)).status_code == 200
