"""OTLP/HTTP receiver: POST /v1/traces, protobuf or JSON, optionally gzip.

Check auth, content type and size; hand the body to the runtime (decode workers, then spool and
queue); answer. Nothing CPU-heavy runs on the event loop. Responses follow the request's content type, errors are
a google.rpc.Status (https://opentelemetry.io/docs/specs/otlp/#otlphttp-response).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request, Response
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from starlette.requests import ClientDisconnect

from driftline.auth import Authenticator
from driftline.collector.consume import JSON, PROTOBUF, ExportResult
from driftline.collector.errors import (
    CollectorError,
    PayloadTooLarge,
    UnsupportedMediaType,
    status_for,
)
from driftline.collector.metrics import CollectorMetrics

__all__ = ["otlp_http_router"]

log = logging.getLogger(__name__)

# (tenant, body as received, Content-Encoding, media type, protocol) -> result
IngestFn = Callable[[str, bytes, str, str, str], Awaitable[ExportResult]]


def _media_type(request: Request) -> str:
    ct = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ct in (PROTOBUF, "application/protobuf"):
        return PROTOBUF
    if ct == JSON:
        return JSON
    raise UnsupportedMediaType(f"unsupported Content-Type {ct!r}: use {PROTOBUF} or {JSON}")


async def _read_body(request: Request, limit: int) -> bytes:
    """Read at most `limit` bytes, stopping early instead of buffering an oversized body."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body of {declared} bytes exceeds the limit of {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _encode(msg: ExportTraceServiceResponse | status_pb2.Status, media: str) -> bytes:
    if media == JSON:
        return str(json_format.MessageToJson(msg, indent=None)).encode()
    return bytes(msg.SerializeToString())


def otlp_http_router(
    ingest: IngestFn,
    auth: Authenticator,
    metrics: CollectorMetrics,
    max_request_bytes: int,
) -> APIRouter:
    router = APIRouter()

    @router.post("/v1/traces", include_in_schema=True, summary="OTLP/HTTP trace export")
    async def export_traces(request: Request) -> Response:
        media = PROTOBUF
        try:
            media = _media_type(request)
            tenant = auth.tenant_for(request.headers.get("authorization"), "ingest")
            body = await _read_body(request, max_request_bytes)
            result = await ingest(tenant, body, request.headers.get("content-encoding", ""), media, "http")
        except ClientDisconnect:  # gone mid-body (or cut off as too slow): nobody to answer, nothing kept
            metrics.requests.labels("http", "disconnected").inc()
            return Response(status_code=400)
        except Exception as e:  # one mapping for every failure: see errors.status_for
            if not isinstance(e, CollectorError):
                log.exception("OTLP/HTTP export failed")
            st = status_for(e)
            metrics.requests.labels("http", str(st.http)).inc()
            headers = {"Retry-After": str(st.retry_after_s)} if st.retry_after_s is not None else {}
            body_out = _encode(status_pb2.Status(code=st.grpc.value[0], message=str(e)), media)
            return Response(body_out, status_code=st.http, media_type=media, headers=headers)
        resp = ExportTraceServiceResponse()
        if result.rejected:
            resp.partial_success.rejected_spans = result.rejected
            resp.partial_success.error_message = result.error_message
        metrics.requests.labels("http", "200").inc()
        return Response(_encode(resp, media), status_code=200, media_type=media)

    return router
