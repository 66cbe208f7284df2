"""The one way a read reaches ClickHouse: a `Select` (or a statement written in this package) run
by a `Reader` for one tenant.

Tenant scoping is structural, twice over:
- `Reader.rows(tenant, ...)` binds `tenant` from its own argument (a caller cannot bind another),
  and a `Select` carries no tenant condition: the Reader renders
  `WHERE tenant = {tenant:String} AND (<each condition>)`, so no condition can widen it.
- The engine filters every tenant table the statement reads (subqueries and joins included) by
  that tenant, through ClickHouse's `additional_table_filters` setting. A statement that forgot
  the tenant somewhere still sees only the tenant's rows.
The few reads that span tenants on purpose go through `Reader.rows_across_tenants`, which takes
a reason, and live in `queries/tenants.py` only. Nothing outside driftline/store builds SQL: routes
and jobs call the named query methods (tests/test_layout.py checks it).

Every value is a bound parameter (`{name:Type}`); only identifiers written in this package (column
lists, table names) are formatted into the text. `{db}` becomes the store's database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from driftline.store.cluster import ClusterLayout
from driftline.store.connection import ClientPool
from driftline.store.errors import store_failures

__all__ = ["TENANT_TABLES", "Reader", "Select"]

# Every table with a `tenant` column (a test checks the list against the schema).
TENANT_TABLES: Final = (
    "spans", "scores", "review_items", "scorer_state", "feedback", "drift_state",
    "review_queues", "review_queue_items", "review_events", "review_labels", "review_datasets",
    "judge_cache", "judge_canary", "trace_rows", "judge_definitions", "trace_index",
)  # fmt: skip


@dataclass(frozen=True)
class Select:
    """One SELECT over one table of the store, without its tenant condition (the Reader adds it).

    `where` conditions are ANDed after the tenant condition, each in parentheses.
    """

    columns: str
    table: str
    where: Sequence[str] = ()
    group_by: str = ""
    having: str = ""
    order_by: str = ""
    limit_by: str = ""  # e.g. "1 BY trace_id"
    limit: str = ""  # a bound parameter, e.g. "{limit:UInt32}"
    final: bool = False  # FINAL: collapse ReplacingMergeTree copies at read time

    def render(self, *, tenant_scoped: bool) -> str:
        conds = (["tenant = {tenant:String}"] if tenant_scoped else []) + [f"({w})" for w in self.where]
        sql = f"SELECT {self.columns} FROM {{db}}.{self.table}" + (" FINAL" if self.final else "")
        if conds:
            sql += " WHERE " + " AND ".join(conds)
        for clause, text in (
            ("GROUP BY", self.group_by),
            ("HAVING", self.having),
            ("ORDER BY", self.order_by),
            ("LIMIT", self.limit_by),
            ("LIMIT", self.limit),
        ):
            if text:
                sql += f" {clause} {text}"
        return sql


def _literal(value: str) -> str:
    """A ClickHouse string literal (for a setting's value, where parameters cannot be bound)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Reader:
    """Runs reads on the store's reader clients. Held by the query areas, not by routes or jobs."""

    def __init__(self, pool: ClientPool, database: str, cluster: ClusterLayout | None = None) -> None:
        self._pool = pool
        self._database = database
        # On a cluster `{db}.spans` is the Distributed front; the engine filter also names the local
        # tables, which are what each shard reads.
        self._filtered = TENANT_TABLES + (
            tuple(cluster.storage_table(t) for t in TENANT_TABLES if cluster.is_sharded(t)) if cluster else ()
        )
        # A subquery over a Distributed table inside a read of one (the trace list's filters, the
        # scorer's "not scored yet") runs once on the initiator and its result goes to every shard
        # (GLOBAL IN / JOIN): correct whatever the subquery groups or limits. ClickHouse refuses
        # such reads by default (distributed_product_mode = 'deny').
        # A read whose WHERE fixes trace_id (a trace, a page of trace ids) asks only the shards those
        # traces hash to (optimize_skip_unused_shards), as the rows were placed by that same hash.
        self._cluster_settings: dict[str, Any] = (
            {"distributed_product_mode": "global", "optimize_skip_unused_shards": 1} if cluster else {}
        )
        self._known_settings: dict[str, bool] = {}

    def engine_has_setting(self, name: str) -> bool:
        """Whether the engine knows the setting `name`: a read may use a newer engine's feature and
        fall back on an older server. Asked once per process."""
        known = self._known_settings.get(name)
        if known is None:
            with store_failures(), self._pool.client() as c:
                n = c.command(
                    "SELECT count() FROM system.settings WHERE name = {name:String}", parameters={"name": name}
                )
            known = self._known_settings[name] = int(n) > 0  # type: ignore[arg-type]
        return known

    def rows(self, tenant: str, query: Select | str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """The rows of `query` for one tenant. A string is a whole statement written in
        driftline/store/queries; it may name `{tenant:String}` itself, the engine filter holds anyway."""
        if not isinstance(tenant, str) or not tenant:
            raise ValueError("every read is scoped to a tenant")
        bound = dict(params or {})
        if bound.get("tenant", tenant) != tenant:
            raise ValueError("the tenant is bound by the Reader, not passed as another parameter")
        bound["tenant"] = tenant
        sql = query.render(tenant_scoped=True) if isinstance(query, Select) else query
        only = _literal(f"tenant = {_literal(tenant)}")
        filters = "{" + ", ".join(f"{_literal(f'{self._database}.{t}')}: {only}" for t in self._filtered) + "}"
        return self._run(sql, bound, {"additional_table_filters": filters, **self._cluster_settings})

    def rows_across_tenants(
        self, select: Select, params: Mapping[str, Any] | None = None, *, why: str
    ) -> list[dict[str, Any]]:
        """A deliberate cross-tenant read (queries/tenants.py only); `why` documents it at the call."""
        if not why:
            raise ValueError("a cross-tenant read says why it spans tenants")
        return self._run(select.render(tenant_scoped=False), dict(params or {}), dict(self._cluster_settings))

    def _run(self, sql: str, params: dict[str, Any], settings: dict[str, Any]) -> list[dict[str, Any]]:
        with store_failures(), self._pool.client() as c:
            res = c.query(sql.replace("{db}", self._database), parameters=params, settings=settings)
            return [dict(zip(res.column_names, row, strict=True)) for row in res.result_rows]
