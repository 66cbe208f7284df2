"""The two kinds of error and the one place that maps them to HTTP and gRPC status.

Permanent errors (bad data) must not be retried: 4xx / INVALID_ARGUMENT. Retryable ones
(infrastructure, backpressure) carry a retry delay: 429/503 + Retry-After, UNAVAILABLE + RetryInfo.
Classification is by exception type only, never by message text.
(https://opentelemetry.io/docs/specs/otlp/#failures)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import grpc
import pyarrow as pa
from clickhouse_connect.driver.exceptions import DatabaseError, DataError, OperationalError

__all__ = [
    "BadRequest",
    "CollectorError",
    "Forbidden",
    "PayloadTooLarge",
    "Refused",
    "Status",
    "Unauthenticated",
    "UnsupportedMediaType",
    "status_for",
    "store_error_is_permanent",
    "store_error_may_be_the_data",
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


class Forbidden(Unauthenticated):
    """A known API key without the role this call needs (an ingest-only key reading traces). A kind
    of Unauthenticated, so code that only knows that one still refuses; status_for says 403."""


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
    if isinstance(exc, Forbidden):
        return Status(403, grpc.StatusCode.PERMISSION_DENIED, None)
    if isinstance(exc, Unauthenticated):
        return Status(401, grpc.StatusCode.UNAUTHENTICATED, None)
    # Anything else is our fault and may pass: retryable, never a silent drop.
    return Status(503, grpc.StatusCode.UNAVAILABLE, 5)


# ClickHouse error codes that name the data, not the store: the same rows fail the same way on any
# retry (src/Common/ErrorCodes.cpp). Codes not listed (UNKNOWN_TABLE during a migration,
# TOO_MANY_PARTS backpressure, MEMORY_LIMIT_EXCEEDED, timeouts, ...) are retried; should one of them
# name the data after all, the writer bisects a batch that keeps failing while the store answers a
# ping (collector/writer.py, escalate_after_probes).
PERMANENT_STORE_CODES: Final = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        25,  # CANNOT_PARSE_ESCAPE_SEQUENCE
        26,  # CANNOT_PARSE_QUOTED_STRING
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        38,  # CANNOT_PARSE_DATE
        41,  # CANNOT_PARSE_DATETIME
        43,  # ILLEGAL_TYPE_OF_ARGUMENT
        44,  # ILLEGAL_COLUMN
        53,  # TYPE_MISMATCH
        69,  # ARGUMENT_OUT_OF_BOUND
        70,  # CANNOT_CONVERT_TYPE
        72,  # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA
        128,  # TOO_LARGE_ARRAY_SIZE
        130,  # CANNOT_READ_ARRAY_FROM_TEXT
        131,  # TOO_LARGE_STRING_SIZE
        153,  # ILLEGAL_DIVISION (a CHECK or DEFAULT expression divided by a value in the rows)
        190,  # SIZES_OF_ARRAYS_DONT_MATCH
        321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
        349,  # CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
        376,  # CANNOT_PARSE_UUID
        395,  # FUNCTION_THROW_IF_VALUE_IS_NON_ZERO
        407,  # DECIMAL_OVERFLOW
        469,  # VIOLATED_CONSTRAINT (a table CHECK the rows fail)
        675,  # CANNOT_PARSE_IPV4
        676,  # CANNOT_PARSE_IPV6
        691,  # UNKNOWN_ELEMENT_OF_ENUM
    }
)


# ClickHouse error codes that are the store's own trouble whatever the rows hold: a batch refused
# with one of them is never set aside, however long it lasts (a DETACHed table, a full disk, a
# read-only replica, backpressure, limits, a keeper outage).
STORE_TROUBLE_CODES: Final = frozenset(
    {
        16,  # NO_SUCH_COLUMN_IN_TABLE (a migration not applied yet)
        60,  # UNKNOWN_TABLE
        81,  # UNKNOWN_DATABASE
        159,  # TIMEOUT_EXCEEDED
        164,  # READONLY
        201,  # QUOTA_EXCEEDED
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        218,  # TABLE_IS_DROPPED
        236,  # ABORTED
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY
        243,  # NOT_ENOUGH_SPACE
        252,  # TOO_MANY_PARTS
        319,  # UNKNOWN_STATUS_OF_INSERT
        394,  # QUERY_WAS_CANCELLED
        425,  # SYSTEM_ERROR
        439,  # CANNOT_SCHEDULE_TASK
        999,  # KEEPER_EXCEPTION
    }
)


def store_error_may_be_the_data(exc: BaseException) -> bool:
    """True for a refusal the classifier cannot place: a ClickHouse error whose code is in neither
    list. The writer bisects a batch refused that way once it keeps failing while the store answers."""
    return (
        isinstance(exc, DatabaseError)
        and not isinstance(exc, OperationalError | DataError)
        and (getattr(exc, "code", None) not in PERMANENT_STORE_CODES | STORE_TROUBLE_CODES)
    )


def store_error_is_permanent(exc: BaseException) -> bool:
    """True when an INSERT failed because of the rows themselves (retrying cannot help: the writer
    isolates and quarantines them); False for the store's own trouble (retry, spool meanwhile).
    By exception type and ClickHouse error code, as the OpenTelemetry Collector's
    consumererror.IsPermanent: never by message text."""
    if isinstance(exc, OperationalError):  # connection lost, server gone: the store's trouble
        return False
    if isinstance(exc, DataError):  # clickhouse-connect could not encode a value
        return True
    if isinstance(exc, DatabaseError):
        return exc.code in PERMANENT_STORE_CODES
    # Rows Arrow or the driver cannot convert (an Int64 overflow, a wrong type) fail before sending.
    return isinstance(exc, pa.ArrowException | OverflowError | TypeError | ValueError)
