"""The three services and their processes: scheduler log volume, start-up failures with clean messages."""

from __future__ import annotations

import logging
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from driftline.config import ApiSettings, ConfigError, load_settings
from driftline.scorers.metrics import ScorerMetrics
from driftline.scorers.scheduler import ScoringService
from tests.otlp_helpers import http_exporter, provider_for, send_chat_trace
from tests.test_cli_up import _env

PB = "application/x-protobuf"


def test_scheduler_does_not_log_every_run(caplog: pytest.LogCaptureFixture) -> None:
    """APScheduler logs two INFO lines per run ('Running job', 'executed successfully'): with nine
    scorers and the SLI job every 15 s that is ~80 lines a minute of noise. The wrapper's metrics
    record runs; the log keeps failures."""
    caplog.set_level(logging.INFO)
    runs = threading.Semaphore(0)
    svc = ScoringService([], ScorerMetrics(CollectorRegistry()))
    svc.add_periodic("tick", runs.release, 0.05)
    svc.add_periodic("broken", lambda: 1 / 0, 0.05)
    svc.start()
    try:
        for _ in range(3):  # three real runs on the real scheduler (bounded waits, no sleeps)
            assert runs.acquire(timeout=10)
    finally:
        svc.stop()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "executed successfully" not in text and "Running job" not in text, text
    assert "periodic job broken failed" in text  # failures still reach the log


def test_taken_grpc_port_gives_a_clean_message(tmp_path: Path) -> None:
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "driftline.cli", "up", "--grpc-port", str(port)],
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        taken.close()
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert f"cannot listen for OTLP/gRPC on 127.0.0.1:{port}" in proc.stderr, proc.stderr


KEY = "svc-test-key"


def _service_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {**_env(tmp), "DRIFTLINE_API_KEYS": f"{KEY}=acme"}  # _env: every port 0
    env.update({f"DRIFTLINE_{k.upper()}": v for k, v in extra.items()})
    return env


@contextmanager
def service(tmp: Path, command: str, **extra: str) -> Iterator[tuple[subprocess.Popen[str], str, list[str]]]:
    """`driftline <command>` as a real process: yields it, its HTTP base URL and its stderr lines
    (the first is the banner, which names the /metrics URL)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "driftline.cli", command],
        env=_service_env(tmp, **extra),
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    banner = re.compile(rf"Driftline \S+ {command}: \S+ (http://127\.0\.0\.1:\d+)/.*metrics (http://\S+)/metrics")
    lines: list[str] = []
    url = ""
    for line in proc.stderr:  # blocks until the banner (or the process ends)
        lines.append(line)
        m = banner.search(line)
        if m:
            url, metrics_url = m.group(1), m.group(2)
            break
    assert url, "".join(lines)
    drain = threading.Thread(target=lambda: lines.extend(proc.stderr or []), daemon=True)
    drain.start()
    assert metrics_url
    try:
        yield proc, url, lines
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        drain.join(5)
        proc.stderr.close()


def _metrics_url(lines: list[str]) -> str:
    m = re.search(r"metrics (http://\S+)/metrics", "".join(lines))
    assert m
    return m.group(1)


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def test_collector_then_scorer_then_api_each_serve_only_their_part(tmp_path: Path) -> None:
    """Three processes one after another on one data directory (chDB allows one at a time): the
    collector stores a trace and has no read API; the scorer has neither OTLP receiver nor decode
    workers; the API reads the trace and takes no spans."""
    auth = {"Authorization": f"Bearer {KEY}"}
    with service(tmp_path, "collector", decode_workers="1") as (proc, url, lines):
        assert len(_children(proc.pid)) >= 1  # the decode worker
        tp = provider_for(http_exporter(url, KEY))
        ids = send_chat_trace(tp)
        tp.shutdown()
        assert httpx.get(f"{url}/api/v1/traces", headers=auth).status_code == 404
        assert "driftline_collector_queue_capacity_spans" in httpx.get(f"{_metrics_url(lines)}/metrics").text
        assert httpx.get(f"{url}/readyz").json()["ready"] is True
        proc.send_signal(signal.SIGTERM)  # the shutdown drains the queue into the store
        assert proc.wait(60) == 0
    assert "collector stopped" in "".join(lines)

    with service(tmp_path, "scorer", scorer_interval_s="3600") as (proc, url, lines):
        assert _children(proc.pid) == []  # no decode worker
        assert "OTLP" not in "".join(lines)  # no receiver announced ...
        r = httpx.post(f"{url}/v1/traces", content=b"", headers={**auth, "Content-Type": PB})
        assert r.status_code == 404  # ... nor served
        metrics = httpx.get(f"{_metrics_url(lines)}/metrics").text
        assert "driftline_scorer_runs_total" in metrics and "driftline_collector_" not in metrics
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0

    with service(tmp_path, "api") as (proc, url, _):
        r = httpx.get(f"{url}/api/v1/traces/{ids['trace_id']}", headers=auth)
        assert r.status_code == 200, r.text
        assert ids["span_id"] in {s["span_id"] for s in r.json()["spans"]}
        assert httpx.post(f"{url}/v1/traces", content=b"", headers=auth).status_code == 404
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0


def test_bad_scorer_name_stops_start_up_cleanly(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "driftline.cli", "scorer"],
        env=_service_env(tmp_path, scorers='{"halucination": {"enabled": false}}'),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2 and "unknown scorer 'halucination'" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_metrics_listen_apart_on_loopback_and_want_the_scrape_token(tmp_path: Path) -> None:
    """/metrics names every tenant, service and model: it is not on the HTTP port (which may face
    the network), its own listener binds loopback by default, and with a token set it wants it."""
    token = "scrape-token-0123456789"
    with service(tmp_path, "api", metrics_token=token) as (_, url, lines):
        metrics = _metrics_url(lines)
        assert metrics.startswith("http://127.0.0.1:") and metrics != url
        assert httpx.get(f"{url}/metrics").status_code == 404  # not on the HTTP port
        assert httpx.get(f"{metrics}/metrics").status_code == 401
        wrong = httpx.get(f"{metrics}/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"] == "Bearer"
        ok = httpx.get(f"{metrics}/metrics", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200 and "python_gc_objects_collected_total" not in ok.text
        assert "driftline_api_requests_total" in ok.text
        # The metrics listener serves nothing else.
        assert httpx.get(f"{metrics}/api/v1/traces", headers={"Authorization": f"Bearer {KEY}"}).status_code == 404
    assert token not in "".join(lines)


def test_metrics_on_the_http_port_want_the_token_too(tmp_path: Path) -> None:
    token = "scrape-token-abcdefghij"
    with service(tmp_path, "scorer", metrics_port="-1", metrics_token=token) as (_, url, lines):
        assert _metrics_url(lines) == url
        assert httpx.get(f"{url}/metrics").status_code == 401
        ok = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200 and "driftline_scorer_runs_total" in ok.text


@pytest.mark.parametrize(
    "env",
    [
        {"DRIFTLINE_METRICS_HOST": "0.0.0.0"},
        {"DRIFTLINE_METRICS_PORT": "-1", "DRIFTLINE_HTTP_HOST": "0.0.0.0"},
    ],
)
def test_metrics_off_loopback_without_a_token_stop_start_up(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="metrics_token is required"):
        load_settings(ApiSettings, environ=env)
    token = {**env, "DRIFTLINE_METRICS_TOKEN": "t0ken"}
    assert load_settings(ApiSettings, environ=token).metrics_token.get_secret_value() == "t0ken"


def test_score_backfill_goes_through_the_server_holding_the_data_dir(tmp_path: Path) -> None:
    """chDB allows one process per data directory: with `driftline up` running, the command finds
    the server through the data directory and asks it (admin role) instead of failing."""
    admin, reader = "svc-admin-key", "svc-read-key"
    keys = f"{KEY}=acme,{admin}=acme:admin,{reader}=acme:read"
    with service(tmp_path, "up", api_keys=keys, scorer_interval_s="3600") as (_, url, _lines):
        tp = provider_for(http_exporter(url, KEY))
        ids = send_chat_trace(tp)
        tp.shutdown()
        seen = threading.Event()
        for _ in range(200):  # bounded wait until the writer has stored it (flush interval 1 s)
            r = httpx.get(f"{url}/api/v1/traces/{ids['trace_id']}", headers={"Authorization": f"Bearer {KEY}"})
            if r.status_code == 200:
                break
            seen.wait(0.05)
        since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()

        def backfill(key: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "driftline.cli", "score", "backfill", "--scorer", "cost",
                 "--since", since, "--api-key", key],
                env=_service_env(tmp_path, api_keys=keys),
                capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip

        done = backfill(admin)
        assert done.returncode == 0, done.stderr
        assert re.search(r"cost: [1-9]\d* spans scored \(0 failed\) for tenant acme", done.stdout), done.stdout
        refused = backfill(reader)  # a read key may not re-score
        assert refused.returncode == 1 and "403" in refused.stderr and "admin" in refused.stderr
        assert "Traceback" not in refused.stderr
