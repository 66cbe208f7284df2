"""OTLP/gRPC receiver: opentelemetry.proto.collector.trace.v1.TraceService/Export.

grpcio handles gzip (grpc-encoding) and the message size cap (RESOURCE_EXHAUSTED without
RetryInfo). Retryable refusals answer UNAVAILABLE with a google.rpc.RetryInfo detail, as the OTLP
spec asks (https://opentelemetry.io/docs/specs/otlp/#otlpgrpc-throttling).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent import futures

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from driftline.auth import Authenticator
from driftline.collector.consume import PROTOBUF, ExportResult
from driftline.collector.errors import CollectorError, status_for
from driftline.collector.metrics import CollectorMetrics

__all__ = ["OtlpGrpcServer"]

log = logging.getLogger(__name__)

# (tenant, body as received, Content-Encoding, media type, protocol) -> result
IngestFn = Callable[[str, bytes, str, str, str], ExportResult]
_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class OtlpGrpcServer:
    def __init__(
        self,
        ingest: IngestFn,
        auth: Authenticator,
        metrics: CollectorMetrics,
        host: str,
        port: int,
        max_request_bytes: int,
        workers: int = 4,
        max_concurrent_rpcs: int | None = None,
    ) -> None:
        """`max_concurrent_rpcs`: exports in progress at once (each may hold a whole request body in
        memory); beyond it grpcio answers RESOURCE_EXHAUSTED before reading the message, which OTLP
        exporters retry with backoff: the gRPC side of the HTTP receiver's body budget
        (driftline/edge.py)."""
        self._ingest = ingest
        self._auth = auth
        self._m = metrics
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="otlp-grpc"),
            maximum_concurrent_rpcs=max_concurrent_rpcs,
            options=[
                ("grpc.max_receive_message_length", max_request_bytes),
                ("grpc.so_reuseport", 0),
            ],
        )
        handler = grpc.method_handlers_generic_handler(
            "opentelemetry.proto.collector.trace.v1.TraceService",
            {
                "Export": grpc.unary_unary_rpc_method_handler(
                    self._export,
                    request_deserializer=None,  # raw bytes: we decode, so errors stay ours
                    response_serializer=lambda m: m.SerializeToString(),
                )
            },
        )
        self._server.add_generic_rpc_handlers((handler,))
        self.port = self._server.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise OSError(f"cannot listen for OTLP/gRPC on {host}:{port}")

    def start(self) -> None:
        self._server.start()

    def stop(self, grace_s: float = 5.0) -> None:
        self._server.stop(grace_s).wait(grace_s + 1)

    def _export(self, body: bytes, context: grpc.ServicerContext) -> ExportTraceServiceResponse:
        try:
            md = dict(context.invocation_metadata())
            tenant = self._auth.tenant_for(str(md.get("authorization", "")) or None, "ingest")
            result = self._ingest(tenant, body, "", PROTOBUF, "grpc")
        except Exception as e:  # one mapping for every failure: see errors.status_for
            if not isinstance(e, CollectorError):
                log.exception("OTLP/gRPC export failed")
            st = status_for(e)
            self._m.requests.labels("grpc", st.grpc.name.lower()).inc()
            detail = status_pb2.Status(code=st.grpc.value[0], message=str(e))
            if st.retry_after_s is not None:
                info = any_pb2.Any()
                info.Pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=st.retry_after_s)))
                detail.details.append(info)
            context.set_trailing_metadata((("grpc-status-details-bin", detail.SerializeToString()),))
            context.abort(st.grpc, str(e))
        resp = ExportTraceServiceResponse()
        if result.rejected:
            resp.partial_success.rejected_spans = result.rejected
            resp.partial_success.error_message = result.error_message
        self._m.requests.labels("grpc", "ok").inc()
        return resp
