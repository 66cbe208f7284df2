"""The API's request metrics through the real app: by route template and status class, API routes
only, and a request the store fails still counted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client import CollectorRegistry

from driftline.api_metrics import ApiMetrics
from driftline.api_service import ApiService
from driftline.collector.service import CollectorService
from driftline.server import build_app
from tests.conftest import KEY_A, make_settings

AUTH = {"Authorization": f"Bearer {KEY_A}"}
LIST, ONE = "/api/v1/traces", "/api/v1/traces/{trace_id}"


@pytest.fixture
def app(tmp_path: Path, chdb_path: Path, database: str) -> Iterator[tuple[TestClient, CollectorService, ApiMetrics]]:
    rt = CollectorService(
        make_settings(tmp_path / "data", f"chdb://{chdb_path}", database, decode_workers=0, grpc_enabled=False)
    )
    rt.start()
    metrics = ApiMetrics(CollectorRegistry())
    api = ApiService(rt.store, rt.auth, rt.registry, metrics=metrics)
    with TestClient(build_app([rt, api], rt.registry)) as client:
        yield client, rt, metrics
    rt.stop()


def _all(metrics: ApiMetrics) -> dict[tuple[str, str], float]:
    return {
        (s.labels["route"], s.labels["status"]): s.value
        for m in metrics.requests.collect()
        for s in m.samples
        if s.name.endswith("_total")
    }


def test_requests_by_route_template_and_status_class(app: tuple[TestClient, CollectorService, ApiMetrics]) -> None:
    client, rt, metrics = app
    assert client.get(LIST, headers=AUTH).status_code == 200
    assert client.get(LIST, headers=AUTH).status_code == 200
    assert client.get(f"{LIST}/{'ab' * 16}", headers=AUTH).status_code == 404
    assert client.get(LIST).status_code == 401
    # Not API routes: an OTLP export and a path no route matches.
    otlp = client.post(
        "/v1/traces",
        content=ExportTraceServiceRequest().SerializeToString(),
        headers={**AUTH, "Content-Type": "application/x-protobuf"},
    )
    assert otlp.status_code == 200
    assert client.get("/api/v1/no-such-route", headers=AUTH).status_code == 404
    assert _all(metrics) == {(LIST, "2xx"): 2, (ONE, "4xx"): 1, (LIST, "4xx"): 1}
    durations = {
        s.labels["route"]: s.value for m in metrics.duration.collect() for s in m.samples if s.name.endswith("_count")
    }
    assert durations == {LIST: 3, ONE: 1}

    rt.store.close()  # every API read now fails in the store: the answer is 503, and it is counted
    assert client.get(LIST, headers=AUTH).status_code == 503
    assert _all(metrics)[(LIST, "5xx")] == 1
