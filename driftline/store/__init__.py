"""ClickHouse storage: chDB embedded or a server, through clickhouse-connect only."""

from driftline.store.connection import DataDirInUse, DataDirLock, StoreConfig
from driftline.store.store import Store

__all__ = ["DataDirInUse", "DataDirLock", "Store", "StoreConfig"]
