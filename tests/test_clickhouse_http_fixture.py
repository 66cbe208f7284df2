"""The ClickHouse HTTP fixture, driven by the real clickhouse-connect HTTP client.

These tests pin down that the fixture behaves like a ClickHouse server where Driftline's
production path (clickhouse-connect over HTTP) can tell: the connect handshake, inserts in every
compression, Arrow in and out, parameter binding, settings and sessions, errors with codes and
statuses, compression both ways, chunked bodies, and a stop/start on the same port that keeps data.
"""

from __future__ import annotations

import datetime as dt
import gzip
import http.client
import json
import socket
import uuid
from base64 import b64encode
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import chdb
import clickhouse_connect
import lz4.frame
import pyarrow as pa
import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from tests.support.clickhouse_http import ClickHouseHTTPServer

USER = "driftline"
PASSWORD = "s3cret:p@ss"  # characters that must survive the DSN and Basic auth


@pytest.fixture(scope="module")
def server(chdb_path: Path) -> Iterator[ClickHouseHTTPServer]:
    """On the session's engine path (conftest): chDB hosts one engine per process."""
    with ClickHouseHTTPServer(data_dir=str(chdb_path), username=USER, password=PASSWORD) as running:
        yield running


@pytest.fixture
def db(server: ClickHouseHTTPServer) -> Iterator[str]:
    """Each test gets its own database, so tests never see each other's tables."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = clickhouse_connect.get_client(dsn=server.url)
    admin.command(f"CREATE DATABASE {name}")
    yield name
    admin.command(f"DROP DATABASE {name}")
    admin.close()


def client_for(server: ClickHouseHTTPServer, db: str, **kwargs: Any) -> Client:
    return clickhouse_connect.get_client(dsn=server.url, database=db, **kwargs)


def raw_request(
    server: ClickHouseHTTPServer,
    params: dict[str, str],
    body: bytes | Iterable[bytes] | None = None,
    headers: dict[str, str] | None = None,
    method: str = "POST",
    auth: tuple[str, str] = (USER, PASSWORD),
) -> tuple[int, dict[str, str], bytes]:
    """One request with http.client, for what the client library hides (headers, statuses)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    token = b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    try:
        conn.request(
            method,
            f"/?{urlencode(params)}",
            body=body,
            headers={"Authorization": f"Basic {token}"} | (headers or {}),
        )
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


SPANS_DDL = """
CREATE TABLE {db}.spans (
    id UInt64,
    name String,
    model LowCardinality(String),
    start DateTime64(9, 'UTC'),
    attributes Map(String, String),
    scores Array(Float64),
    output Nullable(String),
    cost Decimal(18, 9)
) ENGINE = MergeTree ORDER BY id
"""


def span_rows(first: int, count: int) -> list[list[Any]]:
    start = dt.datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)
    return [
        [
            i,
            f"chat {i} \"quoted\" 'single' \\ tab\t newline\n ünïcode",
            "gpt-4o" if i % 2 else "claude",
            start + dt.timedelta(seconds=i),
            {"gen_ai.system": "openai", "i": str(i)},
            [0.5, float(i)],
            None if i % 3 == 0 else f"out {i}",
            Decimal("0.000001234") * i,
        ]
        for i in range(first, first + count)
    ]


def test_ping_and_root_answer_ok(server: ClickHouseHTTPServer) -> None:
    for path in ("/ping", "/"):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", path)
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"Ok.\n")
        conn.close()
    assert clickhouse_connect.get_client(dsn=server.url).ping()


def test_connect_handshake_reports_the_engine(server: ClickHouseHTTPServer) -> None:
    client = clickhouse_connect.get_client(dsn=server.url)
    assert client.server_version == server.engine_version == chdb.engine_version
    assert client.database == "default"
    assert client.command("SELECT currentDatabase()") == "default"
    # The native-protocol probe needs per-block BlockInfo that chDB cannot produce, so the client
    # falls back to protocol 0 exactly as behind a proxy that strips client_protocol_version.
    assert client.protocol_version == 0
    # Defaults the client writes after reading system.settings went through as settings.
    assert client.get_client_setting("date_time_input_format") == "best_effort"


@pytest.mark.parametrize("compress", [False, "lz4", "zstd", "gzip", True])
def test_insert_and_query_back_in_every_compression(
    server: ClickHouseHTTPServer, db: str, compress: bool | str
) -> None:
    client = client_for(server, db, compress=compress)
    client.command(SPANS_DDL.format(db=db))
    rows = span_rows(0, 300)
    summary = client.insert("spans", rows, column_names=[
        "id", "name", "model", "start", "attributes", "scores", "output", "cost"
    ])  # fmt: skip
    assert summary.written_rows == 300
    result = client.query("SELECT * FROM spans ORDER BY id")
    expected = [[*row[:3], row[3].replace(tzinfo=None), *row[4:]] for row in rows]
    assert [list(row) for row in result.result_rows] == expected
    assert result.column_types[2].name == "LowCardinality(String)"


def test_insert_arrow_and_query_arrow(server: ClickHouseHTTPServer, db: str) -> None:
    client = client_for(server, db, compress="lz4")  # Arrow IPC with lz4 buffers inside
    client.command(f"CREATE TABLE {db}.t (id UInt64, name String, score Float64) ENGINE = MergeTree ORDER BY id")
    table = pa.table({
        "id": pa.array(range(1000), pa.uint64()),
        "name": [f"n{i}" for i in range(1000)],
        "score": [i / 7 for i in range(1000)],
    })  # fmt: skip
    assert client.insert_arrow("t", table).written_rows == 1000
    back = client.query_arrow("SELECT id, name, score FROM t ORDER BY id")
    assert back.column("id").to_pylist() == table.column("id").to_pylist()
    assert back.column("name").to_pylist() == table.column("name").to_pylist()
    assert back.column("score").to_pylist() == table.column("score").to_pylist()


def test_streaming_query(server: ClickHouseHTTPServer) -> None:
    client = clickhouse_connect.get_client(dsn=server.url)
    with client.query_row_block_stream("SELECT number FROM system.numbers LIMIT 200000") as stream:
        total = sum(row[0] for block in stream for row in block)
    assert total == sum(range(200000))


def test_output_formats(server: ClickHouseHTTPServer) -> None:
    client = clickhouse_connect.get_client(dsn=server.url)
    sql = "SELECT number AS n, toString(number) AS s FROM system.numbers LIMIT 3"
    assert client.raw_query(sql, fmt="TabSeparated") == b"0\t0\n1\t1\n2\t2\n"
    as_json = json.loads(client.raw_query(sql, fmt="JSON"))
    assert as_json["meta"] == [{"name": "n", "type": "UInt64"}, {"name": "s", "type": "String"}]
    assert as_json["data"][2]["s"] == "2"
    assert client.raw_query(sql, fmt="RowBinaryWithNamesAndTypes").startswith(b"\x02\x01n\x01s\x06UInt64\x06String")
    stream = pa.ipc.open_stream(client.raw_query(sql, fmt="ArrowStream")).read_all()
    assert stream.column("n").to_pylist() == [0, 1, 2]
    arrow_file = pa.ipc.open_file(pa.BufferReader(client.raw_query(sql, fmt="Arrow"))).read_all()
    assert arrow_file.num_rows == 3


def test_response_headers_are_the_servers(server: ClickHouseHTTPServer) -> None:
    status, headers, body = raw_request(server, {"query": "SELECT 1 AS x FORMAT JSONEachRow", "query_id": "q-123"})
    assert (status, body) == (200, b'{"x":1}\n')
    assert headers["X-ClickHouse-Format"] == "JSONEachRow"
    assert headers["X-ClickHouse-Query-Id"] == "q-123"
    assert headers["X-ClickHouse-Timezone"] == "Etc/UTC"
    assert headers["X-ClickHouse-Server-Display-Name"]
    assert json.loads(headers["X-ClickHouse-Summary"])["read_rows"] == "1"
    # The rows read from tables, as the server counts them, not the rows of the result.
    _, headers, body = raw_request(server, {"query": "SELECT count() FROM numbers(1000) FORMAT CSV"})
    assert body == b"1000\n"
    assert json.loads(headers["X-ClickHouse-Summary"])["read_rows"] == "1000"
    # A statement without a result set reports no format: clickhouse-connect's command() relies on it.
    _, headers, body = raw_request(server, {"query": "SET max_threads = 1"})
    assert "X-ClickHouse-Format" not in headers
    assert body == b""
    _, headers, body = raw_request(server, {"query": "(SELECT 1) EXCEPT (SELECT 2)"})
    assert (headers["X-ClickHouse-Format"], body) == ("TabSeparated", b"1\n")


def test_server_side_parameter_binding(server: ClickHouseHTTPServer) -> None:
    client = clickhouse_connect.get_client(dsn=server.url)
    tricky = "it's a \\ back\\slash, a\ttab, a\nnewline, {braces}, ünïcode"
    result = client.query(
        "SELECT {s:String} AS s, {n:UInt32} + 1 AS n, {a:Array(String)} AS a, {t:DateTime} AS t, "
        "{z:Nullable(String)} AS z",
        parameters={
            "s": tricky,
            "n": 41,
            "a": ["x'y", "z"],
            "t": dt.datetime(2025, 1, 2, 3, 4, 5),
            "z": None,
        },
    )
    assert result.result_rows == [(tricky, 42, ["x'y", "z"], dt.datetime(2025, 1, 2, 3, 4, 5), None)]
    # Client-side binding (%(name)s) ends up as a SQL literal instead.
    assert client.query("SELECT %(s)s", parameters={"s": tricky}).result_rows == [(tricky,)]
    # Multipart form encoding carries query and parameters in the body instead of the URL.
    form_client = clickhouse_connect.get_client(dsn=server.url, form_encode_query_params=True)
    assert form_client.query("SELECT {s:String}", parameters={"s": tricky}).result_rows == [(tricky,)]


def test_bad_queries_raise_database_error_with_the_clickhouse_message(server: ClickHouseHTTPServer) -> None:
    client = clickhouse_connect.get_client(dsn=server.url)
    with pytest.raises(DatabaseError, match=r"Code: 60\..*UNKNOWN_TABLE") as unknown:
        client.query("SELECT * FROM no_such_table")
    assert unknown.value.code == 60
    with pytest.raises(DatabaseError, match="SYNTAX_ERROR"):
        client.command("SELEC 1")
    with pytest.raises(DatabaseError, match="Multi-statements are not allowed"):
        client.command("CREATE TABLE a (x UInt8) ENGINE = Memory; CREATE TABLE b (x UInt8) ENGINE = Memory")
    with pytest.raises(DatabaseError, match="SYNTAX_ERROR"):
        client.command("1 + 1")  # chDB's implicit_select is a chDB default, not a server's
    with pytest.raises(DatabaseError, match="UNKNOWN_SETTING"):
        client.query("SELECT 1", settings={"no_such_setting_anywhere": 1})


def test_error_statuses_and_headers(server: ClickHouseHTTPServer) -> None:
    cases = [
        ({"query": "SELECT * FROM no_such_table"}, "POST", 404, "60"),
        ({"query": "SELEC 1"}, "POST", 400, "62"),
        ({"query": "CREATE TABLE x (a UInt8) ENGINE = Memory"}, "GET", 500, "164"),  # GET is readonly
        ({"query": "SELECT 1", "session_id": "missing", "session_check": "1"}, "POST", 500, "372"),
    ]
    for params, method, status, code in cases:
        got_status, headers, body = raw_request(server, params, method=method)
        assert (got_status, headers["X-ClickHouse-Exception-Code"]) == (status, code), body
        assert body.startswith(f"Code: {code}. DB::Exception: ".encode())
        assert f"(version {server.engine_version}".encode() in body


def test_get_default_format_and_length_required(server: ClickHouseHTTPServer) -> None:
    status, headers, body = raw_request(
        server, {"query": "SELECT 1 AS x", "default_format": "JSONCompactEachRow"}, method="GET"
    )
    assert (status, headers["X-ClickHouse-Format"], body) == (200, "JSONCompactEachRow", b"[1]\n")
    # POST with neither Content-Length nor chunked encoding: the server wants a length.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        token = b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        sock.sendall(f"POST /?query=SELECT+1 HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {token}\r\n\r\n".encode())
        head = sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 411 ")
    assert b"X-ClickHouse-Exception-Code: 381" in head


def test_wrong_credentials_are_refused(server: ClickHouseHTTPServer) -> None:
    status, headers, body = raw_request(server, {"query": "SELECT 1"}, auth=(USER, "wrong"))
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (403, "516")
    assert b"AUTHENTICATION_FAILED" in body
    bad_dsn = server.url.replace("s3cret", "nope")
    with pytest.raises(DatabaseError, match="Authentication failed") as refused:
        clickhouse_connect.get_client(dsn=bad_dsn)
    assert refused.value.code == 516
    # X-ClickHouse-User/Key headers are the other way in.
    status, _, body = raw_request(
        server, {"query": "SELECT 1"}, headers={"X-ClickHouse-User": USER, "X-ClickHouse-Key": PASSWORD}
    )
    assert (status, body) == (200, b"1\n")


def test_settings_apply_to_one_query_and_sessions_keep_state(server: ClickHouseHTTPServer) -> None:
    client = clickhouse_connect.get_client(dsn=server.url)
    setting = "SELECT getSetting('max_block_size')"
    default = client.command(setting)
    assert client.query(setting, settings={"max_block_size": 1234}).result_rows == [(1234,)]
    assert client.command(setting) == default  # a URL setting does not stick to the session
    client.command("SET max_block_size = 4321")  # a SET does, as on a server
    assert client.command(setting) == 4321
    client.command("CREATE TEMPORARY TABLE scratch (x UInt8)")
    client.command("INSERT INTO scratch VALUES (7)")
    assert client.command("SELECT sum(x) FROM scratch") == 7
    other = clickhouse_connect.get_client(dsn=server.url)  # another session sees neither
    assert other.command(setting) == default
    with pytest.raises(DatabaseError, match="UNKNOWN_TABLE"):
        other.command("SELECT count() FROM scratch")


def test_response_compression(server: ClickHouseHTTPServer) -> None:
    params = {"query": "SELECT number FROM system.numbers LIMIT 1000", "enable_http_compression": "1"}
    status, headers, body = raw_request(server, params, headers={"Accept-Encoding": "lz4,zstd,gzip,deflate"})
    assert (status, headers["Content-Encoding"]) == (200, "gzip")  # the server's preference
    assert gzip.decompress(body) == "".join(f"{i}\n" for i in range(1000)).encode()
    _, headers, body = raw_request(server, params, headers={"Accept-Encoding": "lz4"})
    assert headers["Content-Encoding"] == "lz4"
    assert lz4.frame.decompress(body).startswith(b"0\n1\n")
    _, headers, _ = raw_request(server, {"query": "SELECT 1"}, headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in headers  # not asked for with enable_http_compression
    for compress in ("lz4", "zstd", True):
        client = clickhouse_connect.get_client(dsn=server.url, compress=compress)
        assert client.query("SELECT count() FROM numbers(10)").result_rows == [(10,)]
        assert len(client.query("SELECT number FROM system.numbers LIMIT 50000").result_rows) == 50000


def test_chunked_and_compressed_bodies(server: ClickHouseHTTPServer, db: str) -> None:
    client = client_for(server, db)
    client.command(f"CREATE TABLE {db}.t (id UInt32, name String) ENGINE = MergeTree ORDER BY id")
    query = {"query": f"INSERT INTO {db}.t FORMAT TabSeparated"}
    # Chunked transfer encoding, the body split across chunks mid-row.
    chunks = [b"1\ton", b"e\n2\ttwo\n", b"3\tthree\n"]
    status, headers, body = raw_request(server, query, body=iter(chunks))
    assert (status, body) == (200, b"")
    assert json.loads(headers["X-ClickHouse-Summary"])["written_rows"] == "3"
    # Content-Encoding lz4: several frames back to back, as clickhouse-connect sends one per block.
    framed = lz4.frame.compress(b"4\tfour\n") + lz4.frame.compress(b"5\tfive\n")
    status, _, body = raw_request(server, query, body=framed, headers={"Content-Encoding": "lz4"})
    assert status == 200, body
    # The statement in the body, data after the first newline, as in an uncompressed insert.
    status, _, body = raw_request(server, {}, body=f"INSERT INTO {db}.t FORMAT CSV\n6,six\n".encode())
    assert status == 200, body
    assert client.query("SELECT id, name FROM t ORDER BY id").result_rows == [
        (1, "one"), (2, "two"), (3, "three"), (4, "four"), (5, "five"), (6, "six")
    ]  # fmt: skip


def test_concurrent_clients(server: ClickHouseHTTPServer, db: str) -> None:
    client_for(server, db).command(f"CREATE TABLE {db}.t (id UInt64) ENGINE = MergeTree ORDER BY id")

    def work(worker: int) -> int:
        client = client_for(server, db)
        for batch in range(5):
            base = (worker * 5 + batch) * 100
            client.insert("t", [[base + i] for i in range(100)], column_names=["id"])
            client.query("SELECT count() FROM t")
        return 500

    with ThreadPoolExecutor(max_workers=4) as pool:
        written = sum(pool.map(work, range(4)))
    assert client_for(server, db).command("SELECT uniqExact(id) FROM t") == written == 2000


def test_stop_refuses_connections_and_start_serves_the_same_data(server: ClickHouseHTTPServer, db: str) -> None:
    # A second fixture on the module's engine: chDB hosts one engine path per process.
    restartable = ClickHouseHTTPServer(data_dir=server.data_dir, username=USER, password=PASSWORD)
    with restartable:
        client = client_for(restartable, db)
        client.command(f"CREATE TABLE {db}.t (id UInt64) ENGINE = MergeTree ORDER BY id")
        client.insert("t", [[i] for i in range(10)], column_names=["id"])
        port = restartable.port

        restartable.stop()
        with pytest.raises(OperationalError):
            client.query("SELECT count() FROM t")
        with pytest.raises(OperationalError):
            client.insert("t", [[99]], column_names=["id"])
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()

        restartable.start()
        assert restartable.port == port
        assert client.command("SELECT count() FROM t") == 10  # the same client, pooled URL and all
        client.insert("t", [[10]], column_names=["id"])
        assert client.command("SELECT count() FROM t") == 11
    assert server.running  # the shared engine outlives the second fixture


def test_stop_cuts_an_insert_in_flight(server: ClickHouseHTTPServer, db: str) -> None:
    restartable = ClickHouseHTTPServer(data_dir=server.data_dir, username=USER, password=PASSWORD)
    with restartable:
        client = client_for(restartable, db)
        client.command(f"CREATE TABLE {db}.t (id UInt64) ENGINE = MergeTree ORDER BY id")
        conn = http.client.HTTPConnection("127.0.0.1", restartable.port, timeout=10)
        conn.putrequest("POST", "/?" + urlencode({"query": f"INSERT INTO {db}.t FORMAT TabSeparated"}))
        conn.putheader("Authorization", "Basic " + b64encode(f"{USER}:{PASSWORD}".encode()).decode())
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        conn.send(b"2\r\n1\n\r\n")  # one chunk of a body that never finishes

        restartable.stop()  # the store goes down mid-request
        with pytest.raises((OSError, http.client.HTTPException)):
            conn.send(b"2\r\n2\n\r\n0\r\n\r\n")
            conn.getresponse()
        conn.close()

        restartable.start()
        assert client.command("SELECT count() FROM t") == 0  # nothing half-written


def test_engine_is_shared_with_the_embedded_chdb_client(server: ClickHouseHTTPServer, db: str) -> None:
    client_for(server, db).command(f"CREATE TABLE {db}.t (id UInt8) ENGINE = MergeTree ORDER BY id")
    client_for(server, db).command(f"INSERT INTO {db}.t VALUES (1), (2)")
    embedded = clickhouse_connect.get_client(dsn=f"chdb://{server.data_dir}", database=db)
    try:
        assert embedded.command("SELECT sum(id) FROM t") == 3
    finally:
        embedded.close()


def test_a_second_engine_path_is_refused_while_one_is_open(server: ClickHouseHTTPServer, tmp_path: Any) -> None:
    engine: Any = chdb  # untyped module
    with pytest.raises(RuntimeError, match="already initialized with path"):
        engine.connect(str(tmp_path))
    with pytest.raises(RuntimeError, match="one chDB engine path"):
        ClickHouseHTTPServer(data_dir=str(tmp_path)).start()
