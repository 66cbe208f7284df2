"""Cluster mode without a cluster: no ClickHouse server or Keeper can run here, so

- every statement of the cluster plan (and of the single-node plan) is parsed by the engine's own
  parser (chDB's formatQuery), which knows ON CLUSTER, the Replicated engines and Distributed;
- golden files pin the whole plan, for the cluster and for one node;
- the same rules with Replicated and ON CLUSTER left out (a Merge table standing in for each
  Distributed front, one shard) are migrated and used on chDB: spans sent over OTLP land in the local
  tables through the shard insert path, and the trace reads and a scorer work on them unchanged;
- the Python shard routing agrees with the engine's cityHash64.

What these do not run: a Replicated engine, Keeper, ON CLUSTER execution, a Distributed table's
inserts and reads, GLOBAL IN across shards (docs/cluster.md lists it).

Regenerate the golden files after a migration is added or changed (then read the diff):
    .venv/bin/python -m tests.test_cluster_schema
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from driftline.config import CommonSettings, ConfigError, load_settings
from driftline.store import Store, StoreConfig
from driftline.store.cluster import (
    PLACEMENT,
    ClusterLayout,
    ClusterRenderError,
    Placement,
    fill,
    plan_statements,
    render_migrations,
    render_statement,
)
from driftline.store.schema import MIGRATIONS, Migration
from driftline.store.shards import split_by_shard
from tests.support.sql import admin_client, admin_rows

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
CLUSTER_GOLDEN = GOLDEN / "cluster_plan.sql"
SINGLE_GOLDEN = GOLDEN / "single_node_plan.sql"
REGENERATE = ".venv/bin/python -m tests.test_cluster_schema"
CLUSTER = ClusterLayout("prod")
REHEARSAL = ClusterLayout("rehearsal", replicated=False, on_cluster=False, front="merge")


def plan_text(layout: ClusterLayout | None) -> str:
    return "".join(f"-- {h}\n{sql};\n\n" for h, sql in plan_statements(layout, "driftline", 30))


def write_golden() -> None:
    GOLDEN.mkdir(exist_ok=True)
    CLUSTER_GOLDEN.write_text(plan_text(CLUSTER))
    SINGLE_GOLDEN.write_text(plan_text(None))


# ----------------------------------------------------------------------------- the plan, parsed


@pytest.fixture(scope="module")
def parse(chdb_path: Path) -> Iterator[object]:
    """formatQuery on the embedded engine: the statement's canonical text, or the parser's error."""
    from driftline.store.connection import open_client

    client = open_client(StoreConfig(f"chdb://{chdb_path}", "default"))

    def fmt(sql: str) -> str:
        return str(client.command("SELECT formatQuery({q:String})", parameters={"q": sql}))

    yield fmt
    client.close()


@pytest.mark.parametrize("layout", [CLUSTER, None], ids=["cluster", "single-node"])
def test_every_statement_of_the_plan_parses(parse, layout: ClusterLayout | None) -> None:  # type: ignore[no-untyped-def]
    statements = list(plan_statements(layout, "driftline", 30))
    assert len(statements) >= 2 + sum(len(m.statements) for m in MIGRATIONS)
    for heading, sql in statements:
        canonical = parse(sql)
        assert canonical.split()[0] in {"CREATE", "ALTER", "INSERT", "SELECT", "DROP", "OPTIMIZE", "EXCHANGE"}, sql
        if (
            layout is not None
            and not heading.startswith("connect")
            and canonical.split()[0] not in {"INSERT", "SELECT"}
        ):
            assert "ON CLUSTER prod" in canonical, sql
        if layout is None:
            assert "ON CLUSTER" not in canonical


def test_the_parser_refuses_a_broken_statement(parse) -> None:  # type: ignore[no-untyped-def]
    # The check above can fail: the engine's parser names what it did not expect.
    with pytest.raises(Exception, match="Syntax error"):
        parse("ALTER TABLE driftline.spans_local ON CLUSTER prod MATERIALIZE PROJEC by_trace")


def test_golden_files_match() -> None:
    for path, layout in ((CLUSTER_GOLDEN, CLUSTER), (SINGLE_GOLDEN, None)):
        assert path.exists(), f"{path.name} is missing: {REGENERATE}"
        assert path.read_text() == plan_text(layout), f"{path.name} is stale: {REGENERATE}, then read the diff"


def test_cluster_plan_shape() -> None:
    text = plan_text(CLUSTER)
    # Sharded tables: a Replicated local table per shard, a Distributed front sharded by trace.
    for table in ("spans", "scores"):
        assert f"CREATE TABLE IF NOT EXISTS driftline.{table}_local ON CLUSTER prod (" in text
        assert f"'/clickhouse/tables/{{shard}}/driftline/{table}_local', '{{replica}}'" in text
        assert (
            f"CREATE TABLE IF NOT EXISTS driftline.{table} ON CLUSTER prod AS driftline.{table}_local\n"
            f"ENGINE = Distributed(prod, driftline, {table}_local, cityHash64(trace_id))"
        ) in text
    # Everywhere tables: one replicated table, no {shard} in the Keeper path, no front.
    for table in ("review_items", "scorer_state", "feedback", "drift_state", "schema_migrations"):
        assert f"ReplicatedReplacingMergeTree('/clickhouse/tables/all/driftline/{table}', '{{replica}}'" in text
        assert f"driftline.{table}_local" not in text
    # Projections, indexes and their mutations go to the local tables only; column changes to both.
    assert "ALTER TABLE driftline.spans_local ON CLUSTER prod\n    ADD PROJECTION IF NOT EXISTS by_trace" in text
    assert "ALTER TABLE driftline.spans ON CLUSTER prod\n    ADD PROJECTION" not in text
    assert "ALTER TABLE driftline.spans ON CLUSTER prod\n    MATERIALIZE" not in text
    assert "ALTER TABLE driftline.spans ON CLUSTER prod\n    ADD COLUMN IF NOT EXISTS input_text" in text
    assert "ALTER TABLE driftline.spans_local ON CLUSTER prod\n    ADD COLUMN IF NOT EXISTS input_text" in text
    replicated = ("ReplicatedReplacingMergeTree(", "ReplicatedAggregatingMergeTree(", "ReplicatedMergeTree(")
    unreplicated = text
    for engine in replicated:
        unreplicated = unreplicated.replace(engine, "")
    assert "MergeTree(" not in unreplicated


def test_single_node_migrations_are_not_rewritten() -> None:
    """The single-node runner sends schema.py's statements as written: the plan shows exactly them."""
    plan = [sql for h, sql in plan_statements(None, "driftline", 30) if h.startswith("migration")]
    from driftline.store.cluster import _strip

    raw = [
        fill(_strip(s if isinstance(s, str) else s.sql), db="driftline", ttl_days=30)
        for m in MIGRATIONS
        for s in m.statements
    ]
    assert plan == raw
    assert "ON CLUSTER" not in plan_text(None) and "Replicated" not in plan_text(None)


def test_rules_for_statements_a_later_migration_may_add() -> None:
    # A materialized view reads and writes the local tables, so a trace's rows stay on its shard.
    mv = render_statement(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.trace_rollup_mv TO {db}.trace_rollup AS "
        "SELECT tenant, trace_id, min(start_time) AS started FROM {db}.spans GROUP BY tenant, trace_id",
        ClusterLayout("prod", placement=(*CLUSTER.placement, ("trace_rollup", Placement.SHARDED))),
    )
    assert mv == [
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.trace_rollup_mv ON CLUSTER prod\n"
        "TO {db}.trace_rollup_local AS SELECT tenant, trace_id, min(start_time) AS started FROM {db}.spans_local "
        "GROUP BY tenant, trace_id"
    ]
    # A new table is placed by its key: per trace -> sharded with a front; otherwise everywhere.
    by_trace = render_statement(
        "CREATE TABLE IF NOT EXISTS {db}.trace_rollup (tenant String, trace_id String) "
        "ENGINE = ReplacingMergeTree ORDER BY (tenant, trace_id)",
        CLUSTER,
    )
    assert [s.split("(")[0].strip() for s in by_trace] == [
        "CREATE TABLE IF NOT EXISTS {db}.trace_rollup_local ON CLUSTER prod",
        "CREATE TABLE IF NOT EXISTS {db}.trace_rollup ON CLUSTER prod AS {db}.trace_rollup_local\nENGINE = Distributed",
    ]
    other = render_statement(
        "CREATE TABLE IF NOT EXISTS {db}.queues (tenant String, name String) ENGINE = MergeTree ORDER BY (tenant, name)",
        CLUSTER,
    )
    assert other == [
        "CREATE TABLE IF NOT EXISTS {db}.queues ON CLUSTER prod (tenant String, name String) "
        "ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/{db}/queues', '{{replica}}') ORDER BY (tenant, name)"
    ]
    # A table replicated to every node is altered once, on one node: replication carries it.
    assert render_statement(
        "ALTER TABLE {db}.feedback MODIFY TTL toDateTime(created_at) + INTERVAL 7 DAY", CLUSTER
    ) == ["ALTER TABLE {db}.feedback\n    MODIFY TTL toDateTime(created_at) + INTERVAL 7 DAY"]
    assert render_statement(
        "ALTER TABLE {db}.scores MODIFY TTL toDateTime(span_start_time) + INTERVAL 7 DAY", CLUSTER
    ) == ["ALTER TABLE {db}.scores_local ON CLUSTER prod\n    MODIFY TTL toDateTime(span_start_time) + INTERVAL 7 DAY"]
    # A swap of two sharded tables swaps their local tables on every node (the fronts follow by name);
    # a sharded table is never swapped with one placed everywhere.
    assert render_statement("EXCHANGE TABLES {db}.spans AND {db}.spans_v18", CLUSTER) == [
        "EXCHANGE TABLES {db}.spans_local AND {db}.spans_v18_local ON CLUSTER prod"
    ]
    assert render_statement("EXCHANGE TABLES {db}.feedback AND {db}.feedback_v2", CLUSTER) == [
        "EXCHANGE TABLES {db}.feedback AND {db}.feedback_v2 ON CLUSTER prod"
    ]
    with pytest.raises(ClusterRenderError, match="one is sharded"):
        render_statement("EXCHANGE TABLES {db}.spans AND {db}.feedback", CLUSTER)
    # What the rules cannot place is refused with the reason, never guessed.
    with pytest.raises(ClusterRenderError, match="write them as two statements"):
        render_statement("ALTER TABLE {db}.spans ADD COLUMN x String, ADD INDEX i x TYPE set(0) GRANULARITY 1", CLUSTER)
    with pytest.raises(ClusterRenderError, match="with TO"):
        render_statement(
            "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.mv ENGINE = MergeTree ORDER BY a AS SELECT a FROM {db}.spans",
            CLUSTER,
        )
    with pytest.raises(ClusterRenderError, match="no cluster rule"):
        render_statement("SYSTEM STOP MERGES {db}.spans", CLUSTER)


@dataclass(frozen=True)
class PerDayLike:
    """A wrapper a later migration might add around a statement (here: one run per day of data)."""

    sql: str
    table: str


def test_a_wrapped_statement_keeps_its_wrapper_and_its_own_placeholders() -> None:
    backfill = PerDayLike(
        "INSERT INTO {db}.scores_rollup (tenant, n) SELECT tenant, count() FROM {db}.scores "
        "WHERE toDate(span_start_time) = toDate('{day}') GROUP BY tenant",
        "scores",
    )
    statements: tuple[Any, ...] = (backfill,)
    m = Migration(99, "rollup backfill", statements)
    assert tuple(render_migrations(CLUSTER, [m])[0].statements) == statements  # an INSERT: once, through the fronts
    *_, (heading, sql) = plan_statements(CLUSTER, "driftline", 30, [m])
    assert heading == "migration 99: rollup backfill (PerDayLike: table=scores)"
    assert "FROM driftline.scores WHERE toDate(span_start_time) = toDate('{day}')" in sql


def test_tables_the_rule_places_are_known_everywhere_the_layout_is_asked() -> None:
    """A table PLACEMENT does not name is placed by the ORDER BY of the migration that creates it, for
    the rendering, the retention ALTERs, the readers' tenant filter and the shard inserts alike."""
    by_rule = ClusterLayout("prod", placement=())
    assert {"spans", "scores", "review_items"} <= set(by_rule.sharded_tables())  # trace_id in their keys
    assert not {"feedback", "scorer_state", "drift_state"} & set(by_rule.sharded_tables())
    assert by_rule.storage_table("scores") == "scores_local" and by_rule.storage_table("feedback") == "feedback"
    chosen = set(CLUSTER.sharded_tables())
    assert {"spans", "scores"} <= chosen
    assert not chosen & {t for t, p in PLACEMENT.items() if p is Placement.EVERYWHERE}


# ----------------------------------------------------------------------------- settings


def test_cluster_settings_stop_start_up_naming_the_value() -> None:
    server = {"DRIFTLINE_CLICKHOUSE_URL": "http://u:pw@ch-0.ch:8123"}
    s = load_settings(
        CommonSettings,
        environ={
            **server,
            "DRIFTLINE_CLICKHOUSE_CLUSTER": "prod",
            "DRIFTLINE_CLUSTER_SHARD_HOSTS": "ch-0.ch,ch-1.ch:8443",
        },
    )
    cfg = s.store_config()
    assert cfg.cluster == ClusterLayout("prod")
    assert cfg.shard_urls == ("http://u:pw@ch-0.ch", "http://u:pw@ch-1.ch:8443")
    assert load_settings(CommonSettings, environ=server).store_config().cluster is None  # the default
    for env, named in (
        ({"DRIFTLINE_CLICKHOUSE_CLUSTER": "prod; DROP"}, "clickhouse_cluster"),
        ({"DRIFTLINE_CLICKHOUSE_CLUSTER": "prod", "DRIFTLINE_CLICKHOUSE_URL": "chdb:///x"}, "clickhouse_cluster"),
        ({"DRIFTLINE_CLUSTER_SHARD_HOSTS": "ch-0"}, "cluster_shard_hosts"),
        (
            {"DRIFTLINE_CLICKHOUSE_CLUSTER": "prod", "DRIFTLINE_CLUSTER_SHARD_HOSTS": "ch-0:99999"},
            "cluster_shard_hosts",
        ),
        ({"DRIFTLINE_CLICKHOUSE_CLUSTER": "prod", "DRIFTLINE_CLUSTER_SHARD_HOSTS": "a,a"}, "cluster_shard_hosts"),
    ):
        with pytest.raises(ConfigError, match=f"(?i){named}"):
            load_settings(CommonSettings, environ={**server, **env})


def test_migrate_plan_prints_without_connecting(tmp_path: Path) -> None:
    import subprocess

    driftline = str(Path(sys.executable).parent / "driftline")
    # A URL nothing listens on: the plan must not connect.
    env = {"PATH": "/usr/bin:/bin", "DRIFTLINE_CLICKHOUSE_URL": "http://127.0.0.1:9"}
    run = subprocess.run(
        [driftline, "migrate", "--plan", "--cluster", "prod"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout == plan_text(CLUSTER)
    single = subprocess.run(
        [driftline, "migrate", "--plan"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert single.returncode == 0 and single.stdout == plan_text(None)
    # The setting, as a deployment has it, gives the same plan.
    configured = subprocess.run(
        [driftline, "migrate", "--plan"],
        env={**env, "DRIFTLINE_CLICKHOUSE_CLUSTER": "prod"},
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert configured.returncode == 0 and configured.stdout == plan_text(CLUSTER), configured.stderr
    bad = subprocess.run(
        [driftline, "migrate", "--plan", "--cluster", "a-b"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "--cluster" in bad.stderr


# ----------------------------------------------------------------------------- shard routing


def test_shard_routing_agrees_with_the_engine(store: Store) -> None:
    rng = random.Random(15)
    ids = [rng.randbytes(16).hex() for _ in range(600)] + ["", "x" * 200]
    table = pa.table({"trace_id": ids, "n": list(range(len(ids)))})
    parts = split_by_shard(table, 3)
    assert sum(p.num_rows for _, p in parts) == len(ids) and {s for s, _ in parts} == {0, 1, 2}
    engine = {
        r["trace_id"]: r["shard"]
        for r in admin_rows(store, "SELECT arrayJoin({ids:Array(String)}) AS trace_id, cityHash64(trace_id) % 3 AS shard", {"ids": ids})
    }  # fmt: skip
    for shard, part in parts:
        assert all(engine[t] == shard for t in part.column("trace_id").to_pylist())


# ----------------------------------------------------------------------------- the rehearsal on chDB


@pytest.fixture
def rehearsal(store_url: str, database: str) -> Iterator[Store]:
    """The rehearsal store, embedded and over HTTP (conftest's store_url): the shard inserts take the
    embedded in-place path on one, clickhouse-connect's Arrow insert with the URL's credentials on the other."""
    s = Store(StoreConfig(store_url, database, REHEARSAL, shard_urls=[store_url]), retention_days=30)
    s.migrate()
    yield s
    with admin_client(s) as c:
        c.command(f"DROP DATABASE IF EXISTS {database}")
    s.close()


def test_rehearsal_tables_are_the_cluster_tables_without_replication(rehearsal: Store) -> None:
    tables = {
        r["name"]: r
        for r in admin_rows(
            rehearsal, "SELECT name, engine, create_table_query FROM system.tables WHERE database = {db:String}",
            {"db": rehearsal.cfg.database},
        )
    }  # fmt: skip
    assert {n: t["engine"] for n, t in tables.items()} == {
        "spans_local": "ReplacingMergeTree", "spans": "Merge",
        "scores_local": "ReplacingMergeTree", "scores": "Merge",
        "review_items": "ReplacingMergeTree", "scorer_state": "ReplacingMergeTree",
        "feedback": "ReplacingMergeTree", "drift_state": "ReplacingMergeTree",
        "schema_migrations": "ReplacingMergeTree",
        **{t: "ReplacingMergeTree" for t in (
            "review_queues", "review_queue_items", "review_events", "review_labels", "review_datasets")},
        "judge_cache": "ReplacingMergeTree", "judge_canary": "ReplacingMergeTree",
        "judge_definitions": "ReplacingMergeTree",
        "trace_rows_local": "AggregatingMergeTree", "trace_rows": "Merge",
        "trace_rows_spans": "MaterializedView", "trace_rows_scores": "MaterializedView",
        "trace_index_local": "AggregatingMergeTree", "trace_index": "Merge", "trace_index_spans": "MaterializedView",
    }  # fmt: skip
    spans = tables["spans_local"]["create_table_query"]
    assert "idx_session_id" in spans and "toIntervalDay(30)" in spans
    assert "PROJECTION by_trace" not in spans  # added by migration 5, dropped by migration 15
    cols = admin_rows(
        rehearsal,
        "SELECT table, name, default_kind FROM system.columns WHERE database = {db:String} AND name = 'input_text'",
        {"db": rehearsal.cfg.database},
    )
    assert sorted((c["table"], c["default_kind"]) for c in cols) == [("spans", "ALIAS"), ("spans_local", "ALIAS")]
    assert rehearsal.schema_versions() == [m.version for m in MIGRATIONS]
    assert rehearsal.migrate() == []  # idempotent, as on one node


def test_rehearsal_retention_change_reaches_the_local_tables(rehearsal: Store) -> None:
    again = Store(rehearsal.cfg, retention_days=7)
    try:
        again.migrate()
        ddl = admin_rows(
            rehearsal, "SELECT name, create_table_query AS q FROM system.tables WHERE database = {db:String}",
            {"db": rehearsal.cfg.database},
        )  # fmt: skip
        by_name = {r["name"]: r["q"] for r in ddl}
        assert "toIntervalDay(7)" in by_name["spans_local"] and "toIntervalDay(7)" in by_name["scores_local"]
        assert "toIntervalDay(7)" in by_name["feedback"]
    finally:
        again.close()


def test_rehearsal_ingest_read_and_score(rehearsal: Store, tmp_path: Path, chdb_path: Path, database: str) -> None:
    """Spans over OTLP into the local tables (shard inserts), read back by the trace reads through the
    fronts, scored by a real scorer whose scores land in the local scores table."""
    from driftline.collector.service import CollectorService
    from driftline.scorers.hallucination import OfflineHallucinationScorer
    from driftline.scorers.runner import JobOptions, ScorerJob
    from driftline.store.queries.traces import TraceQuery, get_trace, search_traces, trace_scores
    from tests.conftest import KEY_A, TENANT_A, make_settings, serve
    from tests.otlp_helpers import http_exporter, provider_for, send_rag_trace

    (tmp_path / "data").mkdir()
    rt = CollectorService(make_settings(tmp_path / "data", f"chdb://{chdb_path}", database), store=rehearsal)
    rt.start()
    server, thread, url = serve(rt)
    try:
        tp = provider_for(http_exporter(url, KEY_A))
        sent = [
            send_rag_trace(tp, "Mars has two moons, Phobos and Deimos.", "How many moons?", answer)
            for answer in ("Mars has two moons.", "Mars has five moons.", "Two: Phobos and Deimos.")
        ]
        tp.shutdown()
        assert rt.flush(20)
    finally:
        server.should_exit = True
        thread.join(10)
        rt.stop()
    counts = admin_rows(
        rehearsal, "SELECT (SELECT count() FROM {db}.spans_local) AS local, (SELECT count() FROM {db}.spans) AS front"
    )
    assert counts[0]["local"] > 0 and counts[0]["local"] == counts[0]["front"]

    now = datetime.now(UTC)
    page, _ = search_traces(
        rehearsal, TENANT_A, TraceQuery(since=now - timedelta(hours=1), until=now + timedelta(minutes=1))
    )
    assert {t["trace_id"] for t in page} == {s["trace_id"] for s in sent}
    trace = sent[1]["trace_id"]
    assert sent[1]["span_id"] in {r["span_id"] for r in get_trace(rehearsal, TENANT_A, trace)}
    assert get_trace(rehearsal, "someone-else", trace) == []

    job = ScorerJob(OfflineHallucinationScorer(), rehearsal, JobOptions(settle=timedelta(0)))
    assert job.run_once().scored == len(sent)
    assert job.run_once().scored == 0  # the watermark and "not scored yet" read through the fronts
    # An SLI read through the front, as the SLI job makes it.
    traffic = rehearsal.sli.traffic(TENANT_A, now - timedelta(hours=1), ["chat"])
    assert sum(r["n"] for r in traffic) == len(sent)
    labels = {r["label"] for r in trace_scores(rehearsal, TENANT_A, trace)}
    assert labels == {"hallucinated"}
    local = admin_rows(rehearsal, "SELECT count() AS n FROM {db}.scores_local WHERE scorer = 'hallucination'")
    assert local[0]["n"] == len(sent)


if __name__ == "__main__":
    write_golden()
    print(f"wrote {CLUSTER_GOLDEN.relative_to(ROOT)} and {SINGLE_GOLDEN.relative_to(ROOT)}")
