"""Real Prometheus and Alertmanager (Debian's binaries) on loopback, scraping a Driftline /metrics,
evaluating Driftline's rules and delivering to a local webhook receiver that records what arrives.
Used by the end-to-end alert tests and by bench/time_to_page.py."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO

import yaml

__all__ = ["AlertStack", "Notification", "free_port"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Notification:
    received_at: float
    status: str
    alerts: list[dict[str, Any]]


@dataclass
class _Webhook:
    notifications: list[Notification] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)


class AlertStack:
    def __init__(
        self,
        workdir: Path,
        metrics_target: str,
        rules_yaml: str,
        scrape_interval: str = "1s",
        evaluation_interval: str = "1s",
        group_wait: str = "1s",
        group_interval: str = "1s",
        prometheus: str = "prometheus",
        alertmanager: str = "prometheus-alertmanager",
    ) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.hook = _Webhook()
        self._procs: list[subprocess.Popen[bytes]] = []
        self._logs: list[BinaryIO] = []
        hook = self.hook

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with hook.cond:
                    hook.notifications.append(Notification(time.time(), body["status"], body["alerts"]))
                    hook.cond.notify_all()
                self.send_response(200)
                self.end_headers()

        self._hook_server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self._hook_server.serve_forever, daemon=True).start()
        hook_url = f"http://127.0.0.1:{self._hook_server.server_address[1]}/alerts"

        self.am_port = free_port()
        am_cfg = {
            "route": {
                "receiver": "webhook",
                "group_by": ["alertname", "tenant", "service", "model", "release", "environment"],
                "group_wait": group_wait, "group_interval": group_interval, "repeat_interval": "1h",
            },
            "receivers": [{"name": "webhook", "webhook_configs": [{"url": hook_url, "send_resolved": True}]}],
        }  # fmt: skip
        (self.dir / "alertmanager.yml").write_text(yaml.safe_dump(am_cfg))
        (self.dir / "rules.yml").write_text(rules_yaml)
        self.prom_port = free_port()
        prom_cfg = {
            "global": {"scrape_interval": scrape_interval, "evaluation_interval": evaluation_interval},
            "rule_files": [str(self.dir / "rules.yml")],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{self.am_port}"]}]}]},
            "scrape_configs": [{"job_name": "driftline", "static_configs": [{"targets": [metrics_target]}]}],
        }
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(prom_cfg))
        self._prometheus = shutil.which(prometheus) or prometheus
        self._alertmanager = shutil.which(alertmanager) or alertmanager

    def start(self) -> None:
        log = (self.dir / "alertmanager.log").open("wb")
        self._logs.append(log)
        self._procs.append(subprocess.Popen(
            [self._alertmanager, f"--config.file={self.dir / 'alertmanager.yml'}",
             f"--storage.path={self.dir / 'am-data'}", f"--web.listen-address=127.0.0.1:{self.am_port}",
             "--cluster.listen-address="],
            stdout=log, stderr=subprocess.STDOUT,
        ))  # fmt: skip
        log = (self.dir / "prometheus.log").open("wb")
        self._logs.append(log)
        self._procs.append(subprocess.Popen(
            [self._prometheus, f"--config.file={self.dir / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.dir / 'prom-data'}", f"--web.listen-address=127.0.0.1:{self.prom_port}"],
            stdout=log, stderr=subprocess.STDOUT,
        ))  # fmt: skip
        for port in (self.am_port, self.prom_port):
            self._wait_port(port)

    def _wait_port(self, port: int, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            if any(p.poll() is not None for p in self._procs):
                raise RuntimeError(f"a monitoring process exited; see logs in {self.dir}")
            time.sleep(0.05)
        raise TimeoutError(f"port {port} did not open")

    def wait_for(self, pred: Callable[[Notification], bool], timeout_s: float) -> Notification | None:
        """The first notification (old or new) matching `pred`, waiting at most `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self.hook.cond:
            while True:
                for n in self.hook.notifications:
                    if pred(n):
                        return n
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.hook.cond.wait(left)

    @property
    def notifications(self) -> list[Notification]:
        with self.hook.cond:
            return list(self.hook.notifications)

    def stop(self) -> None:
        for p in self._procs:
            p.terminate()
        for p in self._procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        for log in self._logs:
            log.close()
        self._hook_server.shutdown()
        self._hook_server.server_close()
