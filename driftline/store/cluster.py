"""Cluster mode: the single-node migrations rendered for a ClickHouse cluster.

Nothing here is written per table or per migration. Each single-node statement of schema.py is
rewritten by rule, so a migration added later is rendered the same way:

- every DDL statement runs `ON CLUSTER <cluster>`;
- a MergeTree-family engine becomes its Replicated twin, with a Keeper path per table;
- a *sharded* table (spans, scores: see PLACEMENT) is created as `<name>_local` on every shard, and
  a Distributed table named `<name>` fronts it, sharded by `cityHash64(trace_id)`: a trace, its
  retried copies and its scores live on one shard, so ReplacingMergeTree's FINAL (which collapses
  copies within a shard only) stays exact, and readers keep naming `{db}.spans`;
- an *everywhere* table (feedback, review items, scorer state, drift state, schema_migrations) is
  one replicated table with a replica on every node of the cluster (its Keeper path has no
  {shard}): small, mutable tables whose replacing key would otherwise span shards, read and written
  on whichever node a client reaches, read-your-writes on that node;
- an ALTER of a sharded table goes to its local table ON CLUSTER (once per shard); one that changes
  columns goes to the Distributed front as well (the front must list the same columns); an ALTER
  of a table placed everywhere runs on one node, and replication carries it to every replica;
- a materialized view sits on the local tables: it sees each insert on the shard that stores it
  and writes into the local table of its target, so a trace's rows stay on their shard.

ClickHouse's macros `{shard}` and `{replica}` are written `{{shard}}` / `{{replica}}`: the rendered
statements are templates like schema.py's, formatted with `{db}` and `{ttl_days}` by the runner.
Each rendered statement is checked by the engine's own parser in tests/test_cluster_schema.py,
and the whole plan is pinned by tests/golden/cluster_*.sql.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, is_dataclass, replace
from enum import Enum
from functools import cache
from string import Formatter
from typing import Any

from driftline.store.schema import MIGRATIONS, SCHEMA_MIGRATIONS, Guarded, Migration

__all__ = [
    "LOCAL_SUFFIX",
    "PLACEMENT",
    "SHARDING_KEY",
    "ClusterLayout",
    "ClusterRenderError",
    "Placement",
    "fill",
    "migration_preamble",
    "plan_statements",
    "render_migrations",
    "render_statement",
]

LOCAL_SUFFIX = "_local"
# The Distributed tables' sharding key. Python computes the same value to insert straight into
# shards (store/shards.py); a test checks both agree with the engine.
SHARDING_KEY = "cityHash64(trace_id)"


class ClusterRenderError(ValueError):
    """A single-node statement the cluster rules do not cover: say so rather than guess."""


class Placement(Enum):
    SHARDED = "sharded"  # <name>_local on every shard, Distributed <name> in front
    EVERYWHERE = "everywhere"  # one replicated table, a replica on every node


# The tables whose placement was chosen (docs/cluster.md says why). A table a later migration adds
# is placed by rule: sharded when its ORDER BY holds trace_id (its key is per trace, so its rows can
# sit with their trace), everywhere otherwise.
PLACEMENT: dict[str, Placement] = {
    "spans": Placement.SHARDED,
    "scores": Placement.SHARDED,
    # Keyed by trace, but small and mutable: reviewers claim and label on whatever node they reach.
    "review_items": Placement.EVERYWHERE,
    # Review queues (migration 8): claims are decided by reading back what was written, so every
    # node holds every row; the filling job's reads join them against scores by trace id.
    "review_queue_items": Placement.EVERYWHERE,
    "review_events": Placement.EVERYWHERE,
    "review_labels": Placement.EVERYWHERE,
    "review_datasets": Placement.EVERYWHERE,
    "scorer_state": Placement.EVERYWHERE,
    # Keyed by the client's id, not by trace: the same id may be posted again on another trace.
    "feedback": Placement.EVERYWHERE,
    "drift_state": Placement.EVERYWHERE,
    "schema_migrations": Placement.EVERYWHERE,
}

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class ClusterLayout:
    """How the schema is laid on a cluster.

    `replicated=False`, `on_cluster=False` and `front="merge"` render the same tables for one server
    without Keeper or a cluster, a Merge table standing in for each Distributed front: the rehearsal
    tests/test_cluster_schema.py runs on chDB (everything else as on a cluster)."""

    cluster: str
    replicated: bool = True
    on_cluster: bool = True
    front: str = "distributed"  # or "merge": the one-node rehearsal
    placement: tuple[tuple[str, Placement], ...] = tuple(PLACEMENT.items())

    def __post_init__(self) -> None:
        if not _IDENT.match(self.cluster):
            raise ValueError(f"cluster name {self.cluster!r} must be letters, digits and '_'")
        if self.front not in {"distributed", "merge"}:
            raise ValueError(f"front must be distributed or merge, not {self.front!r}")

    def placement_of(self, table: str, order_by: str = "") -> Placement:
        """`PLACEMENT`'s choice, else the rule applied to the table's ORDER BY (given, or found in
        the migrations' CREATE TABLE)."""
        known = dict(self.placement)
        if table in known:
            return known[table]
        key = order_by or _schema_order_by().get(table, "")
        return Placement.SHARDED if re.search(r"\btrace_id\b", key) else Placement.EVERYWHERE

    def is_sharded(self, table: str) -> bool:
        return self.placement_of(table) is Placement.SHARDED

    def storage_table(self, table: str) -> str:
        """The table that stores `table`'s rows on a node (its local table when sharded)."""
        return table + LOCAL_SUFFIX if self.is_sharded(table) else table

    def sharded_tables(self) -> tuple[str, ...]:
        """Every sharded table: named in the placement, or created by a migration with a per-trace key."""
        names = dict.fromkeys([*(t for t, _ in self.placement), *_schema_order_by()])
        return tuple(t for t in names if self.is_sharded(t))

    @property
    def on(self) -> str:
        return f" ON CLUSTER {self.cluster}" if self.on_cluster else ""


def _statement_sql(stmt: object) -> str:
    return stmt if isinstance(stmt, str) else str(getattr(stmt, "sql", ""))


@cache
def _schema_order_by() -> dict[str, str]:
    """Each table the migrations create, with its ORDER BY: the rule's input for tables that
    PLACEMENT does not name."""
    out: dict[str, str] = {}
    for m in MIGRATIONS:
        for stmt in m.statements:
            sql = _strip(_statement_sql(stmt))
            if (created := _CREATE_TABLE.match(sql)) and (order := _ORDER_BY.search(sql)):
                out[created.group(1)] = order.group(1)
    return out


# -- statement rewriting ---------------------------------------------------------------------

_COMMENT = re.compile(r"--[^\n]*")
_CREATE_TABLE = re.compile(r"^CREATE TABLE IF NOT EXISTS \{db\}\.(\w+)\s*\(", re.S)
_CREATE_MV = re.compile(r"^CREATE MATERIALIZED VIEW IF NOT EXISTS \{db\}\.(\w+)\s+", re.S)
_CREATE_VIEW = re.compile(r"^CREATE (?:OR REPLACE )?VIEW (?:IF NOT EXISTS )?\{db\}\.(\w+)\s+", re.S)
_ALTER = re.compile(r"^ALTER TABLE \{db\}\.(\w+)\s+", re.S)
_DROP = re.compile(r"^DROP (TABLE|VIEW) IF EXISTS \{db\}\.(\w+)\s*$", re.S)
_OPTIMIZE = re.compile(r"^OPTIMIZE TABLE \{db\}\.(\w+)\b", re.S)
_EXCHANGE = re.compile(r"^EXCHANGE TABLES \{db\}\.(\w+) AND \{db\}\.(\w+)\s*$", re.S)
_ENGINE = re.compile(r"\bENGINE\s*=\s*(\w*)MergeTree\b(\s*\()?")
_ORDER_BY = re.compile(r"\bORDER BY\s+(\([^)]*\)|\S+)")
# ALTER commands that change the column list (the Distributed front must follow) ...
_COLUMN_CMD = re.compile(r"\b(?:ADD|DROP|RENAME|MODIFY|COMMENT)\s+COLUMN\b")
# ... and those that only touch how a shard stores its rows.
_STORAGE_CMD = re.compile(
    r"\b(?:ADD|DROP|MATERIALIZE|CLEAR)\s+(?:PROJECTION|INDEX|CONSTRAINT|STATISTICS)\b"
    r"|\bMODIFY\s+(?:SETTING|TTL|ORDER BY|STATISTICS)\b|\bMATERIALIZE\s+(?:TTL|COLUMN)\b|\bCLEAR\s+COLUMN\b"
    r"|\bUPDATE\b|\bDELETE\s+WHERE\b|\b(?:DROP|DETACH|ATTACH)\s+PARTITION\b"
)


def _strip(sql: str) -> str:
    """The statement without `--` comments and surrounding blank space (our DDL has no `--` in a
    literal; a test checks every rendered statement parses, which such a literal would break)."""
    return "\n".join(line.rstrip() for line in _COMMENT.sub("", sql).strip().splitlines() if line.strip())


def _close_paren(text: str, open_at: int) -> int:
    depth = 0
    quote = ""
    for i in range(open_at, len(text)):
        ch = text[i]
        if quote:
            if ch == "\\":
                continue
            if ch == quote and text[i - 1] != "\\":
                quote = ""
        elif ch in "'`\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
    raise ClusterRenderError(f"unbalanced parentheses in: {text[:80]}...")


def _replicated_engine(sql: str, table: str, placement: Placement, layout: ClusterLayout) -> str:
    """ENGINE = XMergeTree(args) -> ENGINE = ReplicatedXMergeTree('<keeper path>', '{replica}', args)."""
    m = _ENGINE.search(sql)
    if m is None or not layout.replicated:
        return sql
    family = m.group(1)
    if family.startswith("Replicated"):
        return sql
    shard = "{{shard}}" if placement is Placement.SHARDED else "all"
    head = f"ENGINE = Replicated{family}MergeTree('/clickhouse/tables/{shard}/{{db}}/{table}', '{{{{replica}}}}'"
    if m.group(2):  # arguments follow
        close = _close_paren(sql, m.end() - 1)
        args = sql[m.end() : close].strip()
        return sql[: m.start()] + head + (f", {args})" if args else ")") + sql[close + 1 :]
    return sql[: m.start()] + head + ")" + sql[m.end() :]


def _localize(sql: str, layout: ClusterLayout) -> str:
    """Every `{db}.<sharded table>` in `sql` names its local table instead."""
    for t in layout.sharded_tables():
        sql = re.sub(rf"\{{db\}}\.{t}\b(?!{LOCAL_SUFFIX})", f"{{db}}.{t}{LOCAL_SUFFIX}", sql)
    return sql


def _create_table(sql: str, table: str, layout: ClusterLayout) -> list[str]:
    order = _ORDER_BY.search(sql)
    placement = layout.placement_of(table, order.group(1) if order else "")
    if placement is Placement.EVERYWHERE:
        head = f"CREATE TABLE IF NOT EXISTS {{db}}.{table}{layout.on} ("
        return [_replicated_engine(_CREATE_TABLE.sub(lambda _m: head, sql, count=1), table, placement, layout)]
    local = table + LOCAL_SUFFIX
    head = f"CREATE TABLE IF NOT EXISTS {{db}}.{local}{layout.on} ("
    body = _replicated_engine(_CREATE_TABLE.sub(lambda _m: head, sql, count=1), local, placement, layout)
    engine = (
        f"Distributed({layout.cluster}, {{db}}, {local}, {SHARDING_KEY})"
        if layout.front == "distributed"
        else f"Merge({{db}}, '^{local}$')"
    )
    front = f"CREATE TABLE IF NOT EXISTS {{db}}.{table}{layout.on} AS {{db}}.{local}\nENGINE = {engine}"
    return [body, front]


def _alter(sql: str, table: str, layout: ClusterLayout) -> list[str]:
    commands = sql[_ALTER.match(sql).end() :]  # type: ignore[union-attr]
    if not layout.is_sharded(table):
        # Every node holds a replica of this one table: an ALTER on the node the runner reaches
        # reaches them all through Keeper. ON CLUSTER would run it once per shard, on the same table
        # (a projection or TTL built several times over).
        return [f"ALTER TABLE {{db}}.{table}\n    {commands}"]
    column, storage = bool(_COLUMN_CMD.search(commands)), bool(_STORAGE_CMD.search(commands))
    if column and storage:
        raise ClusterRenderError(
            f"ALTER TABLE {table} mixes column changes with storage changes; write them as two statements "
            "(the column changes go to the Distributed front too, the others to the local tables only)"
        )
    if not column and not storage:
        raise ClusterRenderError(f"ALTER TABLE {table}: no cluster rule for: {commands[:120]}")
    local = f"ALTER TABLE {{db}}.{table}{LOCAL_SUFFIX}{layout.on}\n    {commands}"
    if column:
        return [local, f"ALTER TABLE {{db}}.{table}{layout.on}\n    {commands}"]
    return [local]


def _materialized_view(sql: str, name: str, layout: ClusterLayout) -> list[str]:
    rest = sql[_CREATE_MV.match(sql).end() :]  # type: ignore[union-attr]
    if not rest.startswith("TO "):
        raise ClusterRenderError(
            f"materialized view {name} keeps its rows in an inner table; in cluster mode a view must write "
            "TO a table of the schema (which is then placed like any other), so write it with TO"
        )
    return [f"CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.{name}{layout.on}\n{_localize(rest, layout)}"]


def render_statement(stmt: str, layout: ClusterLayout) -> list[str]:
    """One single-node statement (a template of schema.py) as the cluster's statements, in order."""
    sql = _strip(stmt)
    if m := _CREATE_TABLE.match(sql):
        return _create_table(sql, m.group(1), layout)
    if m := _ALTER.match(sql):
        return _alter(sql, m.group(1), layout)
    if m := _CREATE_MV.match(sql):
        return _materialized_view(sql, m.group(1), layout)
    if m := _CREATE_VIEW.match(sql):  # a plain view reads the Distributed fronts: it only needs creating everywhere
        return [sql[: m.end(1)] + layout.on + sql[m.end(1) :]]
    if m := _DROP.match(sql):
        table = m.group(2)
        out = [f"DROP {m.group(1)} IF EXISTS {{db}}.{table}{layout.on}"]
        if layout.is_sharded(table):
            out.append(f"DROP TABLE IF EXISTS {{db}}.{table}{LOCAL_SUFFIX}{layout.on}")
        return out
    if m := _OPTIMIZE.match(sql):
        if not layout.is_sharded(m.group(1)):  # one table replicated everywhere, as for ALTER
            return [sql]
        return [f"OPTIMIZE TABLE {{db}}.{layout.storage_table(m.group(1))}{layout.on}" + sql[m.end() :]]
    if m := _EXCHANGE.match(sql):
        # A name swap is no replicated operation: it runs on every node. Sharded tables swap their
        # local tables; each Distributed front names its local table, so the fronts follow.
        a, b = m.groups()
        if layout.is_sharded(a) != layout.is_sharded(b):
            raise ClusterRenderError(f"EXCHANGE TABLES {a} AND {b}: one is sharded and the other is not")
        return [f"EXCHANGE TABLES {{db}}.{layout.storage_table(a)} AND {{db}}.{layout.storage_table(b)}{layout.on}"]
    if re.match(r"^(INSERT INTO|SELECT)\b", sql):
        # Runs once, through the Distributed fronts: the rows are spread like any insert.
        return [sql]
    raise ClusterRenderError(f"no cluster rule for the statement: {sql[:120]}")


def _render(stmt: _Stmt, layout: ClusterLayout) -> list[_Stmt]:
    """A statement, or a wrapper of one (a dataclass with `sql`: Guarded, or any a later migration
    adds), rendered; a wrapper is kept around each statement its SQL becomes.

    A Guarded statement's guard reads system.columns on the node the runner reaches: ON CLUSTER DDL
    keeps every node's columns alike, and a Distributed front lists its local table's columns."""
    if isinstance(stmt, str):
        return list(render_statement(stmt, layout))
    text = getattr(stmt, "sql", None)
    if not is_dataclass(stmt) or isinstance(stmt, type) or not isinstance(text, str):
        raise ClusterRenderError(f"no cluster rule for a {type(stmt).__name__} statement")
    return [replace(stmt, sql=sql) for sql in render_statement(text, layout)]


class _Keep(dict[str, object]):
    """Placeholders the plan does not fill (a wrapper's own, e.g. a day) stay as written."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def fill(template: str, **values: object) -> str:
    """`template` with `{db}`, `{ttl_days}` ... filled and any other `{name}` left in place."""
    return Formatter().vformat(template, (), _Keep(values))


_Stmt = Any  # a SQL string, Guarded, or another dataclass wrapping `sql`


def render_migrations(layout: ClusterLayout, migrations: Sequence[Migration] = MIGRATIONS) -> tuple[Migration, ...]:
    """Every migration, rendered for the cluster (same versions, same names)."""
    return tuple(
        replace(m, statements=tuple(s for stmt in m.statements for s in _render(stmt, layout))) for m in migrations
    )


def migration_preamble(layout: ClusterLayout | None) -> list[str]:
    """What the runner sends before the migrations: the database on every node (a client creates it
    on the node it reaches), and the table recording what ran."""
    if layout is None:
        return [SCHEMA_MIGRATIONS]
    return [f"CREATE DATABASE IF NOT EXISTS {{db}}{layout.on}", *render_statement(SCHEMA_MIGRATIONS, layout)]


def plan_statements(
    layout: ClusterLayout | None, db: str, ttl_days: int, migrations: Sequence[Migration] = MIGRATIONS
) -> Iterable[tuple[str, str]]:
    """(heading, SQL) of every statement the runner would send to an empty database, in order; a
    Guarded statement shows the query that decides whether it runs. For `driftline migrate --plan`
    and the golden files; nothing connects."""
    yield "connect: the client creates the database on the node it reaches", f"CREATE DATABASE IF NOT EXISTS {db}"
    for ddl in migration_preamble(layout):
        yield "before the migrations", fill(_strip(ddl), db=db, ttl_days=ttl_days)
    rendered = migrations if layout is None else render_migrations(layout, migrations)
    for m in rendered:
        for stmt in m.statements:
            title = f"migration {m.version}: {m.name}"
            if isinstance(stmt, Guarded):
                title += f" (runs only if: {fill(stmt.when, db=db)})"
            elif not isinstance(stmt, str):
                extra = {k: v for k, v in vars(stmt).items() if k != "sql"}
                title += f" ({type(stmt).__name__}: {', '.join(f'{k}={v}' for k, v in extra.items())})"
            yield title, fill(_strip(_statement_sql(stmt)), db=db, ttl_days=ttl_days)
