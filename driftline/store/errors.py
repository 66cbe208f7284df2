"""Store failures, classified by exception type in this one place.

Anything the ClickHouse client or the chDB engine raises during a read (a dropped database, a closed
or broken client, a server that is gone, a pool with no free client) is infrastructure from the
caller's point of view: the read may succeed later, so it becomes `StoreUnavailable`, which the
HTTP app answers with 503 + Retry-After, never 500. Classification is by type, never by message.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from chdb import ChdbError as ChdbWrapperError
from chdb._exceptions import ChdbError
from clickhouse_connect.driver.exceptions import ClickHouseError

__all__ = ["STORE_ERRORS", "StoreUnavailable", "store_failures"]

# clickhouse-connect's whole hierarchy (OperationalError, DatabaseError, ProgrammingError for a
# closed client, StreamFailureError, our PoolClosed/PoolExhausted ...) has ClickHouseError at its
# root; the chDB engine raises ChdbError where clickhouse-connect does not wrap it (the engine's
# class and the wrapper package's namesake are two classes).
STORE_ERRORS: tuple[type[Exception], ...] = (ClickHouseError, ChdbError, ChdbWrapperError)


class StoreUnavailable(Exception):
    """A read failed in the store; retry later."""

    retry_after_s = 5


@contextmanager
def store_failures() -> Iterator[None]:
    """Turn any store error raised inside into StoreUnavailable (the original is its cause)."""
    try:
        yield
    except STORE_ERRORS as e:
        raise StoreUnavailable(f"store unavailable: {type(e).__name__}") from e
