"""Connecting to ClickHouse: the embedded chDB engine or a server, through clickhouse-connect only."""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import OperationalError, ProgrammingError

from driftline.store.cluster import ClusterLayout

__all__ = ["ClientPool", "DataDirInUse", "DataDirLock", "PoolClosed", "PoolExhausted", "StoreConfig", "open_client"]

log = logging.getLogger(__name__)


class DataDirInUse(RuntimeError):
    """chDB allows one process per data directory; a second one gets this, not a stack trace."""


class DataDirLock:
    """An advisory lock on a data directory, held for the life of the process."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock, creating the directory private to the user (0700: it holds every tenant's
        prompts), also for one-off commands such as `driftline migrate`; an older, open directory
        is made private too (mkdir's mode is masked by the umask and never applies to one that exists)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        path = self.directory / ".lock"
        fh = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600), "a+")
        os.chmod(path, 0o600)
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            raise DataDirInUse(
                f"data directory {self.directory.resolve()} is in use by another Driftline process "
                f"(pid {holder}); stop it, or point this one at another directory with --data-dir"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


class PoolClosed(ProgrammingError):
    """A read after the store was closed (a clickhouse-connect error, like a closed client's)."""


class PoolExhausted(OperationalError):
    """Every reader client stayed busy: the store is overloaded, retry later."""


class StoreConfig:
    """Where the store is: parsed once from the URL.

    `cluster`: the ClickHouse cluster the schema is laid on (store/cluster.py); None: one server.
    `shard_urls`: insert rows of sharded tables straight into each shard's local table (one URL per
    shard, in the cluster's shard order); empty: through the Distributed tables.
    """

    def __init__(
        self, url: str, database: str, cluster: ClusterLayout | None = None, shard_urls: Sequence[str] = ()
    ) -> None:
        self.url = url
        self.database = database
        self.embedded = url.startswith("chdb://")
        self.cluster = cluster
        self.shard_urls = tuple(shard_urls)
        if self.shard_urls and cluster is None:
            raise ValueError("shard_urls need a cluster")

    @property
    def chdb_path(self) -> str:
        return self.url[len("chdb://") :]

    def for_url(self, url: str) -> StoreConfig:
        """The same store reached at another node (a shard)."""
        return StoreConfig(url, self.database, self.cluster)

    def __repr__(self) -> str:  # never show credentials
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        cluster = f", cluster {self.cluster.cluster}" if self.cluster else ""
        return f"StoreConfig({parts.scheme}://{host}{port}, {self.database}{cluster})"


def open_client(cfg: StoreConfig, *, database: str | None = None, **kwargs: Any) -> Client:
    """A clickhouse-connect client on the store; `database=None` means Driftline's database."""
    db = cfg.database if database is None else database
    if cfg.embedded:
        Path(cfg.chdb_path).mkdir(parents=True, exist_ok=True)
        client = clickhouse_connect.get_client(dsn=cfg.url, **kwargs)
        if db and db != "default":
            client.command(f"CREATE DATABASE IF NOT EXISTS {db}")
            client.database = db
        return client
    # Server: the database in the URL path (if any) is only where we connect first.
    kwargs.setdefault("compress", "lz4")
    kwargs.setdefault("autogenerate_session_id", False)  # sessions would serialize our threads
    kwargs.setdefault("connect_timeout", 5)
    kwargs.setdefault("send_receive_timeout", 60)
    client = clickhouse_connect.get_client(dsn=cfg.url, **kwargs)
    if db:
        client.command(f"CREATE DATABASE IF NOT EXISTS {db}")
        client.database = db
    return client


class ClientPool:
    """A few reader clients, so a long INSERT on the writer's session never blocks a read."""

    def __init__(self, cfg: StoreConfig, size: int = 2) -> None:
        self._cfg = cfg
        self._size = size
        self._idle: queue.LifoQueue[Client] = queue.LifoQueue()
        self._made = 0
        self._closed = False
        self._lock = threading.Lock()

    @contextmanager
    def client(self) -> Iterator[Client]:
        if self._closed:  # fail at once: waiting for a client that never comes back helps no one
            raise PoolClosed("the store is closed")
        try:
            c = self._idle.get_nowait()
        except queue.Empty:
            with self._lock:
                make = self._made < self._size
                if make:
                    self._made += 1
            if make:
                try:
                    c = open_client(self._cfg)
                except Exception:
                    with self._lock:
                        self._made -= 1
                    raise
            else:
                try:
                    c = self._idle.get(timeout=30)
                except queue.Empty:
                    raise PoolExhausted("no reader client came free in 30 s") from None
        try:
            yield c
        finally:
            self._idle.put(c)

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return
