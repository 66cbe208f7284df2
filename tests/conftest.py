"""Shared fixtures.

chDB hosts one engine per process, bound to one data path, so the whole test session shares one
engine directory; each test gets its own database and tenants, so tests never see each other.
The server path (clickhouse-connect's HTTP client) runs against tests/support/clickhouse_http.py,
the ClickHouse HTTP interface served over that same engine.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import uvicorn

from driftline.config import CollectorSettings, load_settings
from tests.support.clickhouse_http import ClickHouseHTTPServer

if TYPE_CHECKING:
    from collections.abc import Callable

    from driftline.collector.service import CollectorService
    from driftline.store import Store
    from tests.write_path import WritePath

IN_CI = os.environ.get("CI") == "true"

KEY_A, TENANT_A = "key-tenant-a", "tenant-a"
KEY_B, TENANT_B = "key-tenant-b", "tenant-b"


def require_tool(name: str) -> str:
    """The path of an external tool; skip without it on a laptop, fail without it in CI."""
    path = shutil.which(name)
    if path is None:
        msg = f"{name} is not installed (scripts/system-deps.sh installs it)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb-engine")


@pytest.fixture(scope="session", autouse=True)
def engine_check_path(chdb_path: Path) -> Iterator[None]:
    """Golden normalization tests compare the engine's rows too (tests/support/engine_check.py),
    on this session's chDB engine; its client is opened only when first needed."""
    from tests.support import engine_check

    engine_check.set_path(chdb_path)
    yield
    engine_check.close()
    engine_check.set_path(None)


@pytest.fixture(scope="session")
def ch_http(chdb_path: Path) -> Iterator[ClickHouseHTTPServer]:
    server = ClickHouseHTTPServer(data_dir=str(chdb_path), username="driftline", password="s3cret-pw")
    server.start()
    yield server
    server.close()


@pytest.fixture
def database() -> str:
    return "t_" + uuid.uuid4().hex[:12]


@pytest.fixture(params=["chdb", "http"])
def store_url(request: pytest.FixtureRequest, chdb_path: Path) -> str:
    if request.param == "chdb":
        return f"chdb://{chdb_path}"
    server: ClickHouseHTTPServer = request.getfixturevalue("ch_http")
    return server.url


def make_settings(data_dir: Path, clickhouse_url: str, database: str, **overrides: Any) -> CollectorSettings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "clickhouse_url": clickhouse_url,
        "database": database,
        "api_keys": f"{KEY_A}={TENANT_A},{KEY_B}={TENANT_B}",
        "flush_interval_ms": 50,
        "grpc_port": 0,
    }
    values.update(overrides)
    return load_settings(CollectorSettings, environ={}, **values)


@pytest.fixture
def settings(tmp_path: Path, chdb_path: Path, database: str) -> CollectorSettings:
    return make_settings(tmp_path / "data", f"chdb://{chdb_path}", database)


@pytest.fixture
def runtime(settings: CollectorSettings) -> Iterator[CollectorService]:
    from driftline.collector.service import CollectorService

    rt = CollectorService(settings)
    rt.start()
    yield rt
    rt.stop()


@dataclass
class LiveServer:
    url: str
    runtime: CollectorService


def serve(rt: CollectorService) -> tuple[uvicorn.Server, threading.Thread, str]:
    """Run the real app under uvicorn on a loopback port, in a thread."""
    from driftline.server import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(rt), log_config=None, access_log=False))
    t = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    t.start()
    # Wait on uvicorn's own readiness flag (bounded), not on a fixed time.
    ready = threading.Event()
    for _ in range(1000):
        if server.started or not t.is_alive():
            break
        ready.wait(0.01)
    assert server.started, "uvicorn did not start"
    return server, t, f"http://127.0.0.1:{port}"


@pytest.fixture
def live(runtime: CollectorService) -> Iterator[LiveServer]:
    server, thread, url = serve(runtime)
    yield LiveServer(url, runtime)
    server.should_exit = True
    thread.join(10)
    for s in server.servers:  # uvicorn serves on our socket; close it once it is done
        for sock in s.sockets:
            sock.close()


def require_data(path: Path) -> None:
    """Labeled data under ../shared/data: skip without it on a laptop, fail without it in CI."""
    if not path.exists():
        msg = f"{path} is missing"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture
def store(chdb_path: Path, database: str) -> Iterator[Store]:
    """The test's own migrated database on the embedded engine, dropped afterwards (a test file that
    needs another store, e.g. over HTTP or with another retention, defines its own `store`)."""
    from driftline.store import Store, StoreConfig
    from tests.support.sql import admin_client

    s = Store(StoreConfig(f"chdb://{chdb_path}", database), retention_days=30)
    s.migrate()
    yield s
    with admin_client(s) as c:
        c.command(f"DROP DATABASE IF EXISTS {database}")
    s.close()


@pytest.fixture
def new_path(tmp_path: Path, store: Store) -> Iterator[Callable[..., WritePath]]:
    """Build write paths over the test's store; each is stopped (spool closed) at the end."""
    from tests.write_path import WritePath

    made: list[WritePath] = []

    def make(**kw: object) -> WritePath:
        made.append(WritePath(tmp_path, store, **kw))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for wp in made:
        wp.writer.stop(5)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """How many spans the engine's rows were compared on, and why others were left to Python."""
    from tests.support import engine_check

    if engine_check.CHECKED or engine_check.DEFERRED:
        terminalreporter.write_line(
            f"engine check: {engine_check.CHECKED['spans']} spans equal in every column, "
            f"{engine_check.CHECKED['rendered']} more in every column the engine renders; "
            f"deferred to the Python path: {dict(engine_check.DEFERRED)}"
        )
