"""The store: migrations, the write path, and the query areas that own every read.

Reads are named methods: `store.scoring`, `store.sli`, `store.releases`, `store.judges` and the functions of
queries/traces.py, sessions.py and feedback.py, each tenant-scoped by construction (see
queries/select.py), and `store.cross_tenant` (the one deliberate cross-tenant read). The Store has
no method that runs caller-supplied SQL.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pyarrow as pa
from clickhouse_connect.driver.client import Client

from driftline.store.cluster import migration_preamble, render_migrations, render_statement
from driftline.store.connection import ClientPool, PoolClosed, StoreConfig, open_client
from driftline.store.partitions import DAY_PARTITIONED, split_by_days
from driftline.store.queries import (
    CrossTenantQueries,
    JudgeQueries,
    Reader,
    ReleaseQueries,
    ScoringQueries,
    SLIQueries,
)
from driftline.store.schema import MIGRATIONS, TTL_TABLES, Guarded, PerDay
from driftline.store.shards import split_by_shard

__all__ = ["Store"]

log = logging.getLogger(__name__)

# Merged-away parts linger 480 s by default; on a laptop's embedded store that is wasted disk.
_EMBEDDED_OLD_PARTS_LIFETIME_S = 30


class Store:
    """One store per process: a writer client and a small pool of reader clients."""

    def __init__(self, cfg: StoreConfig, retention_days: int = 30, readers: int = 2) -> None:
        self.cfg = cfg
        self.retention_days = retention_days
        self._writers: dict[str, Client] = {}  # by URL: the store's, or each shard's
        self._writer_lock = threading.Lock()
        self._closed = False
        self._readers = ClientPool(cfg, size=readers)
        self._reader = reader = Reader(self._readers, cfg.database, cfg.cluster)
        self.scoring = ScoringQueries(reader)
        self.sli = SLIQueries(reader)
        self.releases = ReleaseQueries(reader)
        self.cross_tenant = CrossTenantQueries(reader)
        self.judges = JudgeQueries(reader)

    # -- lifecycle -----------------------------------------------------------------------
    def migrate(self, on_step: Callable[[int, int, str], None] | None = None) -> list[int]:
        """Run pending migrations; return the versions applied now. Safe to run again.

        `on_step(done, total, migration)` hears of each statement before it runs (an ALTER on a big
        table can take minutes), and once more when all are done: `driftline migrate`'s bar.
        """
        db = self.cfg.database
        layout = self.cfg.cluster
        with self._readers.client() as c:
            for ddl in migration_preamble(layout):
                c.command(ddl.format(db=db))
            done = {int(r[0]) for r in c.query(f"SELECT version FROM {db}.schema_migrations").result_rows}
            applied: list[int] = []
            migrations = MIGRATIONS if layout is None else render_migrations(layout)
            pending = [m for m in migrations if m.version not in done]
            total = sum(len(m.statements) for m in pending)
            step = 0
            for m in pending:
                for stmt in m.statements:
                    if on_step is not None:
                        on_step(step, total, f"{m.version}: {m.name}")
                    step += 1
                    if isinstance(stmt, Guarded) and not int(c.command(stmt.when.format(db=db))):  # type: ignore[arg-type]
                        continue
                    if isinstance(stmt, PerDay):
                        for day in self._days(c, stmt.table):
                            c.command(stmt.sql.format(db=db, day=day))
                        continue
                    sql = stmt.sql if isinstance(stmt, Guarded) else stmt
                    c.command(sql.format(db=db, ttl_days=self.retention_days))
                c.insert(
                    f"{db}.schema_migrations",
                    [[m.version, m.name, datetime.now(UTC)]],
                    column_names=["version", "name", "applied_at"],
                )
                log.info("applied migration %d: %s", m.version, m.name)
                applied.append(m.version)
            if on_step is not None:
                on_step(total, total, "done")
            self._apply_retention(c)
            if self.cfg.embedded:
                for name in ("spans", "scores", "review_items", "trace_rows"):
                    table = layout.storage_table(name) if layout else name
                    c.command(
                        f"ALTER TABLE {db}.{table} MODIFY SETTING old_parts_lifetime = {_EMBEDDED_OLD_PARTS_LIFETIME_S}"
                    )
        return applied

    def _days(self, c: Client, table: str) -> list[str]:
        """The days ('YYYY-MM-DD') holding data in a table partitioned by day or by blocks of hours (on a cluster,
        its local table on the node the runner reaches)."""
        layout = self.cfg.cluster
        res = c.query(
            "SELECT DISTINCT partition FROM system.parts WHERE database = {db:String} AND table = {table:String} "
            "AND active ORDER BY partition",
            parameters={"db": self.cfg.database, "table": layout.storage_table(table) if layout else table},
        )
        days = [str(r[0]) for r in res.result_rows]
        if all(re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:00:00", d) for d in days):  # blocks of hours: their days
            return sorted({d[:10] for d in days})
        if all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", d) for d in days) or table not in DAY_PARTITIONED:
            return days
        # A table created before it was partitioned by day (partition 'tuple()'): its days from the data.
        col = DAY_PARTITIONED[table]
        res = c.query(f"SELECT DISTINCT toString(toDate({col})) AS d FROM {self.cfg.database}.{table} ORDER BY d")
        return [str(r[0]) for r in res.result_rows]

    def _apply_retention(self, c: Client) -> None:
        """Retention comes from config, so a changed value must reach existing tables too."""
        db = self.cfg.database
        layout = self.cfg.cluster
        for table, col in TTL_TABLES:
            stored = layout.storage_table(table) if layout else table  # the TTL is on the local table
            ddl = str(
                c.command(f"SELECT create_table_query FROM system.tables WHERE database = '{db}' AND name = '{stored}'")
            )
            m = re.search(r"toIntervalDay\((\d+)\)|INTERVAL (\d+) DAY", ddl)
            if m and int(m.group(1) or m.group(2)) != self.retention_days:
                alter = f"ALTER TABLE {{db}}.{table} MODIFY TTL toDateTime({col}) + INTERVAL {self.retention_days} DAY"
                for stmt in [alter] if layout is None else render_statement(alter, layout):
                    c.command(stmt.format(db=db))
                log.info("retention of %s set to %d days", table, self.retention_days)

    def schema_versions(self) -> list[int]:
        with self._readers.client() as c:
            rows = c.query(f"SELECT version FROM {self.cfg.database}.schema_migrations ORDER BY version")
            return [int(r[0]) for r in rows.result_rows]

    def ping(self) -> bool:
        try:
            with self._readers.client() as c:
                return int(c.command("SELECT 1")) == 1  # type: ignore[arg-type]
        except Exception:
            return False

    def close(self) -> None:
        with self._writer_lock:
            self._closed = True
            for writer in self._writers.values():
                writer.close()
            self._writers.clear()
        self._readers.close()

    # -- writes --------------------------------------------------------------------------
    def insert_arrow(self, table: str, data: pa.Table) -> None:
        """One INSERT through Arrow (3x faster than row formats on chDB). Raises on failure.

        On a server the table travels as an Arrow stream in the request body. Embedded, chDB
        reads the table's buffers in place through its Python() table function: clickhouse-connect's
        own insert_arrow would write the stream to a temporary file for `INSERT ... FROM INFILE`,
        and that copy, the file and its parse cost ~20% of the insert (measured on 5 KB rows:
        34.5 -> 28.5 us of CPU per row, merges included).

        A table partitioned by day goes in as one INSERT per 24 days of rows (store/partitions.py):
        whoever writes, however old or spread the rows, the partitions-per-INSERT limit is never met.
        A failure part way leaves the earlier parts stored; writing the same rows again replaces them
        (ReplacingMergeTree), so a caller simply retries the whole table.
        """
        column = DAY_PARTITIONED.get(table)
        for part in split_by_days(data, column=column) if column is not None else (data,):
            self._insert_once(table, part)

    def _insert_once(self, table: str, data: pa.Table) -> None:
        layout = self.cfg.cluster
        if layout is not None and self.cfg.shard_urls and layout.is_sharded(table):
            # Straight into each shard's local table, where the Distributed table would have put the rows.
            for shard, part in split_by_shard(data, len(self.cfg.shard_urls)):
                self._insert_into(self.cfg.for_url(self.cfg.shard_urls[shard]), layout.storage_table(table), part)
            return
        self._insert_into(self.cfg, table, data)

    def _insert_into(self, cfg: StoreConfig, table: str, data: pa.Table) -> None:
        with self._writer_lock:
            if self._closed:
                raise PoolClosed("the store is closed")
            writer = self._writers.get(cfg.url)
            if writer is None:
                writer = self._writers[cfg.url] = open_client(cfg)
            try:
                if cfg.embedded:
                    _insert_in_place(writer, f"{cfg.database}.{table}", data)
                else:
                    writer.insert_arrow(f"{cfg.database}.{table}", data)
            except Exception:
                # A broken connection must not poison the next attempt.
                try:
                    writer.close()
                finally:
                    del self._writers[cfg.url]
                raise


def _insert_in_place(client: Client, table: str, data: pa.Table) -> None:
    """INSERT an Arrow table on the embedded store without serializing it.

    chDB's Python() table function finds the table by its variable name in the calling frames,
    so the name below is part of the statement.
    """
    cols = ", ".join(f"`{name}`" for name in data.column_names)
    # A batch arrives as one chunk per request (~100 rows); chDB reads one contiguous chunk per
    # column for ~25% less CPU than hundreds of small ones, the copy included (measured on 20k rows).
    driftline_insert_batch = data.combine_chunks()  # noqa: F841 - read by name by Python() below
    client.command(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM Python(driftline_insert_batch)")
