"""The store against both backends: embedded chDB and a ClickHouse HTTP server (over chDB)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from driftline.collector.batch import rows_to_table
from driftline.store import Store, StoreConfig
from driftline.store.connection import ClientPool
from driftline.store.queries import Reader, Select
from driftline.store.queries.select import TENANT_TABLES
from driftline.store.queries.traces import get_trace
from driftline.store.schema import MIGRATIONS
from tests.support.clickhouse_http import ClickHouseHTTPServer
from tests.support.sql import admin_client, admin_rows

T0 = (int(time.time()) - 3600) * 1_000_000_000  # inside the retention window


def _row(trace: str, span: str, **kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "trace_id": trace,
        "span_id": span,
        "start_time": T0,
        "end_time": T0 + 2_000_000,
        "duration_ms": 2.0,
        "name": "chat",
        "service": "svc",
        "request_model": "gpt-4o",
        "input_tokens": 10,
        "output_text": "hello " * 50,
        "attributes": {"k": "v"},
    }
    base.update(kw)
    return base


@pytest.fixture
def store(store_url: str, database: str) -> Iterator[Store]:
    s = Store(StoreConfig(store_url, database), retention_days=30)
    s.migrate()
    yield s
    with admin_client(s) as c:
        c.command(f"DROP DATABASE IF EXISTS {database}")
    s.close()


def test_migrate_is_idempotent(store: Store) -> None:
    assert store.migrate() == []
    assert store.schema_versions() == [m.version for m in MIGRATIONS]
    assert store.ping()


def test_insert_and_read_back_scoped_by_tenant(store: Store) -> None:
    trace = "ab" * 16
    store.insert_arrow(
        "spans",
        rows_to_table("acme", [_row(trace, "01" * 8), _row(trace, "02" * 8, parent_span_id="01" * 8)]),
    )
    store.insert_arrow("spans", rows_to_table("other", [_row(trace, "03" * 8)]))
    got = get_trace(store, "acme", trace)
    assert [r["span_id"] for r in got] == ["01" * 8, "02" * 8]
    assert got[0]["attributes"] == {"k": "v"} and got[0]["input_tokens"] == 10
    assert got[0]["output_tokens"] is None  # unknown stays NULL, not 0
    assert got[1]["parent_span_id"] == "01" * 8
    assert [r["span_id"] for r in get_trace(store, "other", trace)] == ["03" * 8]
    assert get_trace(store, "nobody", trace) == []


def test_a_column_no_row_sets_gets_its_default() -> None:
    trace = "ef" * 16
    rows = [_row(trace, "01" * 8), _row(trace, "02" * 8, tool_name="search", ttft_ms=12.5)]
    for _ in range(2):  # the second time from the cached all-default arrays
        table = rows_to_table("acme", rows)
        assert table["tool_name"].to_pylist() == ["", "search"]  # set in the last row only
        assert table["ttft_ms"].to_pylist() == [None, 12.5]
        assert table["tool_error"].to_pylist() == ["", ""]  # in no row
        assert table["reasoning_tokens"].to_pylist() == [None, None]  # Nullable: NULL, not 0
        alone = rows_to_table("acme", rows[:1])
        assert alone["tool_name"].to_pylist() == [""] and alone["ttft_ms"].to_pylist() == [None]


def test_reads_are_scoped_to_a_tenant_by_the_reader(store: Store) -> None:
    trace = "aa" * 16
    store.insert_arrow("spans", rows_to_table("acme", [_row(trace, "01" * 8)]))
    store.insert_arrow("spans", rows_to_table("other", [_row(trace, "02" * 8)]))
    pool = ClientPool(store.cfg, size=1)
    reader = Reader(pool, store.cfg.database)
    # A condition that would match every tenant's rows stays inside the tenant's.
    wide = Select("span_id", "spans", ["trace_id = {t:String} OR 1 = 1"])
    assert [r["span_id"] for r in reader.rows("acme", wide, {"t": trace})] == ["01" * 8]
    with pytest.raises(ValueError, match="tenant"):
        reader.rows("", wide, {"t": trace})
    with pytest.raises(ValueError, match="tenant"):  # the tenant cannot be rebound through the params
        reader.rows("acme", wide, {"t": trace, "tenant": "other"})
    with pytest.raises(ValueError, match="why"):
        reader.rows_across_tenants(wide, {"t": trace}, why="")
    # A statement that forgets the tenant, in a subquery too, still reads only the tenant's rows:
    # the engine filters every tenant table by it.
    forgot = "SELECT span_id FROM {db}.spans WHERE trace_id IN (SELECT trace_id FROM {db}.spans) ORDER BY span_id"
    assert [r["span_id"] for r in reader.rows("acme", forgot)] == ["01" * 8]
    assert [r["span_id"] for r in reader.rows("o'th\\er", forgot)] == []  # quoting holds
    pool.close()
    assert not hasattr(store, "query")  # no door for caller-supplied SQL


def test_duplicate_spans_collapse(store: Store) -> None:
    trace = "cd" * 16
    rows = [_row(trace, "0a" * 8)]
    store.insert_arrow("spans", rows_to_table("acme", rows, ingested_at_ms=1))
    store.insert_arrow("spans", rows_to_table("acme", rows, ingested_at_ms=2))  # an OTLP client retry
    assert len(get_trace(store, "acme", trace)) == 1


def test_retention_follows_config(store: Store, store_url: str, database: str) -> None:
    again = Store(StoreConfig(store_url, database), retention_days=7)
    again.migrate()
    with admin_client(again) as c:
        ddl = str(
            c.command(f"SELECT create_table_query FROM system.tables WHERE database='{database}' AND name='spans'")
        )
    again.close()
    assert "toIntervalDay(7)" in ddl


def test_server_path_uses_lz4_both_ways(ch_http: ClickHouseHTTPServer, database: str) -> None:
    store = Store(StoreConfig(ch_http.url, database))
    store.migrate()
    with admin_client(store) as c:
        assert c.write_compression == "lz4"
    trace = "ef" * 16
    store.insert_arrow("spans", rows_to_table("acme", [_row(trace, "0b" * 8, output_text="x" * 100_000)]))
    assert get_trace(store, "acme", trace)[0]["output_text"] == "x" * 100_000
    store.close()


def test_every_table_with_a_tenant_is_filtered_by_the_engine(store: Store) -> None:
    rows = admin_rows(
        store,
        # materialized views are written, never read: their target tables are the ones read
        "SELECT DISTINCT table FROM system.columns WHERE database = {d:String} AND name = 'tenant' "
        "AND table NOT IN (SELECT name FROM system.tables WHERE database = {d:String} AND engine = 'MaterializedView')",
        {"d": store.cfg.database},
    )
    assert sorted(r["table"] for r in rows) == sorted(TENANT_TABLES)
