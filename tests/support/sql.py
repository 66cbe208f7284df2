"""Direct SQL for tests only: inspect or break the store from outside (drop a table, count rows).

Application code has no such door: it reads through the store's named query methods. Tests open
their own client on the store's configuration, as an operator's `clickhouse client` would.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from clickhouse_connect.driver.client import Client

from driftline.store import Store
from driftline.store.connection import open_client

__all__ = ["admin_client", "admin_rows"]


@contextmanager
def admin_client(store: Store) -> Iterator[Client]:
    c = open_client(store.cfg)
    try:
        yield c
    finally:
        c.close()


def admin_rows(store: Store, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Rows of `sql` as dicts; `{db}` is the store's database."""
    with admin_client(store) as c:
        res = c.query(sql.replace("{db}", store.cfg.database), parameters=params or {})
        return [dict(zip(res.column_names, row, strict=True)) for row in res.result_rows]
