"""`driftline up` as a user runs it: a real process, real exporter, clean shutdown, restart."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.otlp_helpers import http_exporter, provider_for, send_chat_trace

BANNER = re.compile(r"up: OTLP/HTTP (http://127\.0\.0\.1:\d+)/v1/traces")


def _env(tmp: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
    return {
        **keep,
        "DRIFTLINE_DATA_DIR": str(tmp / "data"),
        "DRIFTLINE_HTTP_PORT": "0",
        "DRIFTLINE_GRPC_PORT": "0",
        "DRIFTLINE_METRICS_PORT": "0",
    }


@contextmanager
def running(tmp: Path, *args: str) -> Iterator[tuple[subprocess.Popen[str], str, list[str]]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "driftline.cli", "up", *args], env=_env(tmp), stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    lines: list[str] = []
    url = ""
    for line in proc.stderr:  # blocks until the banner (or the process ends)
        lines.append(line)
        m = BANNER.search(line)
        if m:
            url = m.group(1)
            break
    assert url, "".join(lines)
    # keep draining stderr so the child never blocks on a full pipe
    drain = threading.Thread(target=lambda: lines.extend(proc.stderr or []), daemon=True)
    drain.start()
    try:
        yield proc, url, lines
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
        drain.join(5)
        proc.stderr.close()


def test_up_ingest_restart_and_second_instance(tmp_path: Path) -> None:
    with running(tmp_path) as (proc, url, lines):
        key = (tmp_path / "data" / "dev-api-key").read_text().strip()
        assert oct((tmp_path / "data" / "dev-api-key").stat().st_mode & 0o777) == "0o600"
        tp = provider_for(http_exporter(url, key))
        ids = send_chat_trace(tp)
        tp.shutdown()

        # a second instance on the same data directory fails clearly
        second = subprocess.run(
            [sys.executable, "-m", "driftline.cli", "up"],
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert second.returncode == 1
        assert "is in use by another Driftline process" in second.stderr
        assert "Traceback" not in second.stderr

        proc.send_signal(signal.SIGTERM)  # the flush on shutdown must keep the span
        assert proc.wait(60) == 0
    assert key not in "".join(lines)  # the key never reaches the logs

    with running(tmp_path) as (_, url2, _lines):
        r = httpx.get(f"{url2}/api/v1/traces/{ids['trace_id']}", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200, r.text
        assert ids["span_id"] in {s["span_id"] for s in r.json()["spans"]}


def test_ctrl_c_with_demo_traffic_loses_no_demo_span(tmp_path: Path) -> None:
    """The demo is a client of this server: it flushes its last batch before HTTP stops."""
    with running(tmp_path, "--demo") as (proc, _url, lines):
        threading.Event().wait(7.0)  # demo traces exported, and more waiting in its batch
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    text = "".join(lines)
    assert "Failed to export" not in text, text[-2000:]
    assert "collector stopped" in text
