"""End to end: real OTel SDK exporters -> the real app on loopback -> chDB -> the trace API."""

from __future__ import annotations

import gzip
import json
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tests.conftest import KEY_A, KEY_B, TENANT_A, LiveServer, make_settings, serve
from tests.otlp_helpers import grpc_exporter, http_exporter, provider_for, send_chat_trace
from tests.support.sql import admin_rows
from tools.loadgen import llm_request


def _get_trace(live: LiveServer, trace_id: str, key: str = KEY_A) -> httpx.Response:
    return httpx.get(f"{live.url}/api/v1/traces/{trace_id}", headers={"Authorization": f"Bearer {key}"})


@pytest.mark.parametrize("gz", [False, True])
def test_http_exporter_span_comes_back_from_trace_api(live: LiveServer, gz: bool) -> None:
    tp = provider_for(http_exporter(live.url, KEY_A, gzip=gz))
    ids = send_chat_trace(tp)
    tp.shutdown()
    assert live.runtime.flush(10)
    r = _get_trace(live, ids["trace_id"])
    assert r.status_code == 200, r.text
    spans = r.json()["spans"]
    assert len(spans) == 2
    chat = next(s for s in spans if s["span_id"] == ids["span_id"])
    root = next(s for s in spans if s["span_id"] != ids["span_id"])
    assert chat["parent_span_id"] == root["span_id"] and root["parent_span_id"] == ""
    assert chat["service"] == "checkout-bot" and chat["release"] == "1.2.3" and chat["environment"] == "test"
    assert chat["request_model"] == "gpt-4o-mini" and chat["input_tokens"] == 120
    assert chat["output_text"] == "Paris is the capital of France."
    assert chat["attributes"]["custom.attr"] == "kept"
    assert chat["kind"] == "client" and chat["duration_ms"] >= 0


@pytest.mark.parametrize("gz", [False, True])
def test_grpc_exporter(live: LiveServer, gz: bool) -> None:
    assert live.runtime.grpc is not None
    tp = provider_for(grpc_exporter(live.runtime.grpc.port, KEY_A, gzip=gz))
    ids = send_chat_trace(tp)
    tp.shutdown()
    assert live.runtime.flush(10)
    spans = _get_trace(live, ids["trace_id"]).json()["spans"]
    assert {s["span_id"] for s in spans} >= {ids["span_id"]}


class _Recording(SpanExporter):
    """Delegates to a real exporter and keeps its results."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.results: list[SpanExportResult] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        r = self.inner.export(spans)
        self.results.append(r)
        return r

    def shutdown(self) -> None:
        self.inner.shutdown()


def test_wrong_key_is_401_and_other_requests_go_on(live: LiveServer) -> None:
    rec = _Recording(http_exporter(live.url, "not-a-key"))
    bad = provider_for(rec)
    with bad.get_tracer("t").start_as_current_span("x"):
        pass
    bad.shutdown()
    assert rec.results == [SpanExportResult.FAILURE]
    r = httpx.post(f"{live.url}/v1/traces", content=b"", headers={"Content-Type": "application/x-protobuf"})
    assert r.status_code == 401
    r = httpx.post(
        f"{live.url}/v1/traces",
        content=b"",
        headers={"Content-Type": "application/x-protobuf", "Authorization": "Bearer wrong"},
    )
    assert r.status_code == 401
    good = provider_for(http_exporter(live.url, KEY_A))
    ids = send_chat_trace(good)
    good.shutdown()
    assert live.runtime.flush(10)
    assert _get_trace(live, ids["trace_id"]).status_code == 200


def test_malformed_protobuf_is_400_with_message(live: LiveServer) -> None:
    r = httpx.post(
        f"{live.url}/v1/traces",
        content=b"\xff\xff\xff\x01garbage",
        headers={"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {KEY_A}"},
    )
    assert r.status_code == 400
    from google.rpc import status_pb2

    st = status_pb2.Status.FromString(r.content)
    assert "not a valid OTLP" in st.message
    # the server is unharmed
    tp = provider_for(http_exporter(live.url, KEY_A))
    ids = send_chat_trace(tp)
    tp.shutdown()
    assert live.runtime.flush(10)
    assert _get_trace(live, ids["trace_id"]).status_code == 200


def _json_body(spans: list[dict[str, object]]) -> dict[str, object]:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]},
                "scopeSpans": [{"scope": {"name": "hand"}, "spans": spans, "someFutureField": 1}],
            }
        ]
    }


NOW_NS = (int(time.time()) - 60) * 1_000_000_000  # inside the retention window


def _span(trace: str, span: str, **extra: object) -> dict[str, object]:
    return {
        "traceId": trace,
        "spanId": span,
        "name": "chat m",
        "kind": 3,
        "startTimeUnixNano": str(NOW_NS),
        "endTimeUnixNano": str(NOW_NS + 500_000_000),
        "attributes": [
            {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
            {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "7"}},
        ],
        "status": {"code": 2, "message": "boom"},
        **extra,
    }


@pytest.mark.parametrize("gz", [False, True])
def test_json_body_partial_success(live: LiveServer, gz: bool) -> None:
    trace = "5b8efff798038103d269b633813fc60c"
    body = _json_body(
        [
            _span(trace, "eee19b7ec3c1b174"),
            _span(trace, "not-hex-at-all!!"),  # rejected alone
            _span(trace, "eee19b7ec3c1b175", endTimeUnixNano="1"),  # ends before it starts
        ]
    )
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {KEY_A}"}
    if gz:
        raw = gzip.compress(raw)
        headers["Content-Encoding"] = "gzip"
    r = httpx.post(f"{live.url}/v1/traces", content=raw, headers=headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    ps = r.json()["partialSuccess"]
    assert int(ps["rejectedSpans"]) == 2 and ps["errorMessage"]
    assert live.runtime.flush(10)
    spans = _get_trace(live, trace).json()["spans"]
    assert [s["span_id"] for s in spans] == ["eee19b7ec3c1b174"]
    s = spans[0]
    assert s["status_code"] == "error" and s["status_message"] == "boom" and s["kind"] == "client"
    assert s["service"] == "json-svc" and s["request_model"] == "gpt-4o" and s["input_tokens"] == 7
    assert s["duration_ms"] == pytest.approx(500.0)


def test_protobuf_partial_success_reply(live: LiveServer) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    req = ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    ok = ss.spans.add(
        trace_id=b"\x01" * 16,
        span_id=b"\x02" * 8,
        name="ok",
        start_time_unix_nano=NOW_NS,
        end_time_unix_nano=NOW_NS + 100_000_000,
    )
    ss.spans.add(trace_id=b"", span_id=b"\x03" * 8, name="no trace id", start_time_unix_nano=1, end_time_unix_nano=2)
    r = httpx.post(
        f"{live.url}/v1/traces",
        content=req.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {KEY_A}"},
    )
    assert r.status_code == 200
    resp = ExportTraceServiceResponse.FromString(r.content)
    assert resp.partial_success.rejected_spans == 1
    assert live.runtime.flush(10)
    assert _get_trace(live, ok.trace_id.hex()).status_code == 200


def test_list_recent_traces(live: LiveServer) -> None:
    tp = provider_for(http_exporter(live.url, KEY_A))
    first = send_chat_trace(tp)
    second = send_chat_trace(tp)
    tp.shutdown()
    assert live.runtime.flush(10)
    r = httpx.get(f"{live.url}/api/v1/traces", params={"limit": 10}, headers={"Authorization": f"Bearer {KEY_A}"})
    assert r.status_code == 200
    traces = r.json()["traces"]
    assert [t["trace_id"] for t in traces] == [second["trace_id"], first["trace_id"]]  # newest first
    assert traces[0]["spans"] == 2 and traces[0]["root_name"] == "invoke_agent helper"
    assert traces[0]["service"] == "checkout-bot"
    other = httpx.get(f"{live.url}/api/v1/traces", headers={"Authorization": f"Bearer {KEY_B}"}).json()
    assert other["traces"] == []
    assert httpx.get(f"{live.url}/api/v1/traces").status_code == 401


def test_tenant_isolation(live: LiveServer) -> None:
    tp = provider_for(http_exporter(live.url, KEY_A))
    ids = send_chat_trace(tp)
    tp.shutdown()
    assert live.runtime.flush(10)
    assert _get_trace(live, ids["trace_id"], KEY_A).status_code == 200
    # tenant B can neither read tenant A's trace ...
    assert _get_trace(live, ids["trace_id"], KEY_B).status_code == 404
    # ... nor write into it: B's copy of the same ids lands in B only
    tp_b = provider_for(http_exporter(live.url, KEY_B))
    ids_b = send_chat_trace(tp_b, answer="B's answer")
    tp_b.shutdown()
    assert live.runtime.flush(10)
    a_rows = admin_rows(
        live.runtime.store,
        "SELECT count() AS n FROM {db}.spans FINAL WHERE tenant = {tenant:String}",
        {"tenant": TENANT_A},
    )
    assert a_rows[0]["n"] == 2
    assert _get_trace(live, ids_b["trace_id"], KEY_A).status_code == 404


def test_health_ready_metrics(live: LiveServer) -> None:
    assert httpx.get(f"{live.url}/healthz").json() == {"status": "ok"}
    r = httpx.get(f"{live.url}/readyz")
    assert r.status_code == 200 and r.json()["ready"] is True
    text = httpx.get(f"{live.url}/metrics").text
    assert "driftline_collector_queue_capacity_spans" in text


def test_unsupported_content_type_and_size(live: LiveServer) -> None:
    h = {"Authorization": f"Bearer {KEY_A}"}
    r = httpx.post(f"{live.url}/v1/traces", content=b"x", headers={**h, "Content-Type": "text/plain"})
    assert r.status_code == 415
    big = gzip.compress(b"\0" * (live.runtime.settings.max_request_bytes + 10))
    r = httpx.post(
        f"{live.url}/v1/traces",
        content=big,
        headers={**h, "Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
    )
    assert r.status_code == 413 and "Retry-After" not in r.headers


def test_price_override_from_config_and_unpriced_spans_counted(tmp_path: Path, chdb_path: Path, database: str) -> None:
    """`price_overrides` reaches the decode workers; a model no price covers stores NULL and is counted."""
    from driftline.collector.service import CollectorService

    s = make_settings(
        tmp_path / "data",
        f"chdb://{chdb_path}",
        database,
        price_overrides={"openai/gpt-4o-mini": {"input_mtok": 1.0, "output_mtok": 2.0}},
        decode_workers=1,
    )
    rt = CollectorService(s)
    rt.start()
    server, thread, url = serve(rt)
    try:
        tp = provider_for(http_exporter(url, KEY_A))
        ids = send_chat_trace(tp)  # gpt-4o-mini, 120 input and 12 output tokens
        with tp.get_tracer("tests").start_as_current_span("chat acme-7b") as span:
            span.set_attribute("gen_ai.operation.name", "chat")
            span.set_attribute("gen_ai.provider.name", "acme")
            span.set_attribute("gen_ai.request.model", "acme-7b")
            span.set_attribute("gen_ai.usage.input_tokens", 50)
            span.set_attribute("gen_ai.usage.output_tokens", 5)
            unknown = format(span.get_span_context().span_id, "016x")
        tp.shutdown()
        assert rt.flush(10)
        r = httpx.get(f"{url}/api/v1/traces/{ids['trace_id']}", headers={"Authorization": f"Bearer {KEY_A}"})
        chat = next(x for x in r.json()["spans"] if x["span_id"] == ids["span_id"])
        assert chat["cost_usd"] == pytest.approx(120 * 1.0 / 1e6 + 12 * 2.0 / 1e6)
        assert chat["cost_source"] == "override"
        rows = admin_rows(
            rt.store,
            f"SELECT cost_usd FROM {database}.spans WHERE tenant = {{tenant:String}} AND span_id = {{id:String}}",
            {"tenant": TENANT_A, "id": unknown},
        )
        assert rows == [{"cost_usd": None}]
        metrics = httpx.get(f"{url}/metrics").text
        assert "driftline_collector_unpriced_spans_total 1.0" in metrics
    finally:
        server.should_exit = True
        thread.join(10)
        rt.stop()


def test_a_dead_decode_worker_costs_one_retry_not_the_collector(live: LiveServer) -> None:
    """SIGKILL a decode worker: requests in flight get retry-later, the pool is rebuilt, the next
    export is stored, and the restart is counted."""
    pids = live.runtime.decoders.worker_pids()
    assert pids
    os.kill(pids[0], signal.SIGKILL)
    statuses: list[int] = []
    for _ in range(20):  # the exporter would retry the 503s; do what it does
        r = httpx.post(
            f"{live.url}/v1/traces",
            content=llm_request(3, seed=len(statuses)).SerializeToString(),
            headers={"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {KEY_A}"},
        )
        statuses.append(r.status_code)
        if r.status_code == 200:
            break
        assert r.status_code == 503 and r.headers["Retry-After"] == "1", r.text
    assert statuses[-1] == 200, statuses
    assert set(live.runtime.decoders.worker_pids()).isdisjoint(pids[:1])
    assert live.runtime.flush(10)
    metrics = httpx.get(f"{live.url}/metrics").text
    assert "driftline_collector_decode_worker_restarts_total 1.0" in metrics


def test_a_value_no_column_holds_rejects_that_span_only(live: LiveServer) -> None:
    """Token counts whose sum overflows Int64: that span is rejected and counted, its neighbour stored."""
    req = llm_request(2, seed=99)
    bad = req.resource_spans[0].scope_spans[0].spans[0]
    for kv in bad.attributes:
        if kv.key in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"):
            kv.value.int_value = 2**62 + 1
    r = httpx.post(
        f"{live.url}/v1/traces",
        content=req.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {KEY_A}"},
    )
    assert r.status_code == 200, r.text
    reply = ExportTraceServiceResponse.FromString(r.content)
    assert reply.partial_success.rejected_spans == 1
    assert "out of range" in reply.partial_success.error_message
    assert live.runtime.flush(10)
    good = req.resource_spans[0].scope_spans[0].spans[1]
    spans = _get_trace(live, good.trace_id.hex()).json()["spans"]
    assert [s["span_id"] for s in spans] == [good.span_id.hex()]
    assert 'driftline_collector_rejected_spans_total{reason="invalid"} 1.0' in httpx.get(f"{live.url}/metrics").text
