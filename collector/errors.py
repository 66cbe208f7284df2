"""The two kinds of error and the one place that maps them to HTTP and gRPC status.

Permanent errors (bad data) must not be retried: 4xx / INVALID_ARGUMENT. Retryable ones
(infrastructure, backpressure) carry a retry delay: 429/503 + Retry-After, UNAVAILABLE + RetryInfo.
Classification is by exception type only, never by message text.
(https://opentelemetry.io/docs/specs/otlp/#failures)
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

__all__ = [
    "BadRequest",
    "CollectorError",
    "PayloadTooLarge",
    "Refused",
    "Status",
    "Unauthenticated",
    "UnsupportedMediaType",
    "status_for",
]


class CollectorError(Exception):
    """Base of every error the receivers turn into a status."""


class BadRequest(CollectorError):
    """The request cannot be decoded. Permanent."""


class PayloadTooLarge(CollectorError):
    """The request is over the size limit. Permanent for this request (no RetryInfo)."""


class UnsupportedMediaType(CollectorError):
    """Content type is not OTLP protobuf or JSON. Permanent."""


class Unauthenticated(CollectorError):
    """No API key, or an unknown one."""


class Refused(CollectorError):
    """Retry later: the queue or spool is full, the tenant is over its rate, the store is down."""

    def __init__(self, reason: str, message: str, retry_after_s: int = 1, http_status: int = 503) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after_s = retry_after_s
        self.http_status = http_status


@dataclass(frozen=True)
class Status:
    http: int
    grpc: grpc.StatusCode
    retry_after_s: int | None  # set only for retryable errors


def status_for(exc: BaseException) -> Status:
    if isinstance(exc, Refused):
        return Status(exc.http_status, grpc.StatusCode.UNAVAILABLE, exc.retry_after_s)
    if isinstance(exc, PayloadTooLarge):
        return Status(413, grpc.StatusCode.RESOURCE_EXHAUSTED, None)
    if isinstance(exc, UnsupportedMediaType):
        return Status(415, grpc.StatusCode.INVALID_ARGUMENT, None)
    if isinstance(exc, BadRequest):
        return Status(400, grpc.StatusCode.INVALID_ARGUMENT, None)
    if isinstance(exc, Unauthenticated):
        return Status(401, grpc.StatusCode.UNAUTHENTICATED, None)
    # Anything else is our fault and may pass: retryable, never a silent drop.
    return Status(503, grpc.StatusCode.UNAVAILABLE, 5)
