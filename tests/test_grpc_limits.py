"""OTLP/gRPC holds a bounded number of request bodies in memory at once.

grpcio reads a whole message before the handler runs, so exports in progress at once are what
memory follows: beyond `max_concurrent_rpcs` (the body budget over the largest request) grpcio
answers RESOURCE_EXHAUSTED without reading the message, and OTLP exporters retry it. The receiver
is driven with its next stage handed in (here one that holds each export until released), as the
collector hands in its own.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client import CollectorRegistry

from driftline.auth import Authenticator
from driftline.collector.consume import ExportResult
from driftline.collector.metrics import CollectorMetrics
from driftline.collector.receiver_grpc import OtlpGrpcServer
from driftline.collector.service import grpc_concurrency
from driftline.config import hash_api_key

_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
KEY = "grpc-limit-key"


def test_exports_beyond_the_body_budget_are_refused_before_reading() -> None:
    entered = threading.Semaphore(0)
    release = threading.Event()

    def held_ingest(tenant: str, body: bytes, encoding: str, media: str, protocol: str) -> ExportResult:
        entered.release()
        assert release.wait(30)
        return ExportResult(0, 0, "")

    limit = grpc_concurrency(max_inflight_body_bytes=2 * 1024 * 1024, max_request_bytes=1024 * 1024)
    assert limit == 2
    server = OtlpGrpcServer(
        held_ingest,
        Authenticator({hash_api_key(KEY): "tenant-g"}),
        CollectorMetrics(CollectorRegistry()),
        "127.0.0.1",
        0,
        1024 * 1024,
        workers=4,
        max_concurrent_rpcs=limit,
    )
    server.start()
    body = ExportTraceServiceRequest().SerializeToString()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            export = channel.unary_unary(_METHOD)
            md = (("authorization", f"Bearer {KEY}"),)
            with ThreadPoolExecutor(2) as pool:
                held = [pool.submit(export, body, metadata=md, timeout=30) for _ in range(limit)]
                for _ in range(limit):  # both exports are inside the receiver, holding their bodies
                    assert entered.acquire(timeout=30)
                try:
                    export(body, metadata=md, timeout=30)
                    raise AssertionError("an export beyond the limit was accepted")
                except grpc.RpcError as e:
                    assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                release.set()
                for f in held:
                    f.result(timeout=30)
            # Once the held exports finish, the receiver takes exports again. grpcio frees a slot
            # only after the finished call's status is sent, a moment after the client has its
            # answer, so this retries RESOURCE_EXHAUSTED briefly, as an OTLP exporter would.
            pause = threading.Event()
            for _ in range(200):  # bounded: 10 s
                try:
                    export(body, metadata=md, timeout=30)
                    break
                except grpc.RpcError as e:
                    assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                    pause.wait(0.05)
            else:
                raise AssertionError("the receiver never took exports again")
    finally:
        release.set()
        server.stop(grace_s=1)
