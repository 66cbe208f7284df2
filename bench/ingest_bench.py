"""Ingestion benchmark: `driftline up` (embedded chDB) in its own process, driven from this one.

Sends pre-encoded OTLP/HTTP protobuf requests (100 LLM chat spans each, 300-800 byte message
contents) over keep-alive connections for a fixed time, then waits until everything accepted is
in ClickHouse. Prints accepted spans/s, stored spans/s, request latency p50/p99, the
collector's peak RSS, and its CPU per stored span by role (decode workers, the collector's Python
threads, the embedded store's INSERTs with their views, its merges).

    python bench/ingest_bench.py [--seconds 20] [--connections 4] [--spans 100]
"""

from __future__ import annotations

import argparse
import atexit
import http.client
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools/ sits beside bench/, not installed

from tools.loadgen import llm_request

KEY = "bench-key"


def _samples(base: str, name: str) -> list[float]:
    u = urlsplit(base)
    c = http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port, timeout=30)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    return [float(m.group(1)) for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.M)]


def _metric(base: str, name: str) -> float:
    return sum(_samples(base, name))


def _metric_max(base: str, name: str) -> float:
    return max(_samples(base, name), default=0.0)


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _stat_cpu_s(stat: Path) -> tuple[str, float]:
    """(thread or process name, CPU seconds: user + system) from a /proc .../stat file."""
    text = stat.read_text()
    fields = text.rsplit(")", 1)[1].split()
    return text[text.index("(") + 1 : text.rindex(")")], (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# What each kind of thread does. chDB names its threads; Python's keep the interpreter's name.
_ROLES = {"MergeMutate": "store merges"}


def cpu_by_thread_role(pid: int | str, python: str) -> dict[str, float]:
    """CPU seconds used so far by one process, by what its threads do: `python` (the Python
    threads), the embedded store's queries (INSERTs, through the views) and its merges. A thread
    that ended shows only in its process's total: as "ended threads"."""
    roles: dict[str, float] = defaultdict(float)
    _, total = _stat_cpu_s(Path(f"/proc/{pid}/stat"))
    for task in Path(f"/proc/{pid}/task").iterdir():
        name, cpu = _stat_cpu_s(task / "stat")
        roles[python if name.startswith("python") else _ROLES.get(name, "store queries")] += cpu
        total -= cpu
    roles["ended threads"] += total
    return roles


def _tree_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) used so far by a process and its live descendants, by role: the
    decode workers (the descendants), then the collector's own threads (cpu_by_thread_role). On a
    shared machine the work per span, unlike spans/s, does not depend on the others."""
    roles: dict[str, float] = defaultdict(float)
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            if p != pid:
                roles["decode workers"] += _stat_cpu_s(Path(f"/proc/{p}/stat"))[1]
            else:
                for role, cpu in cpu_by_thread_role(p, "collector Python").items():
                    roles[role] += cpu
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return roles


def _print_disk(data: str) -> None:
    """Bytes per span as ClickHouse keeps them: the spans table's active parts once merged (the
    collector has exited, so this process may open its data directory)."""
    import clickhouse_connect

    c = clickhouse_connect.get_client(dsn=f"chdb://{data}/clickhouse")
    c.command("OPTIMIZE TABLE driftline.spans FINAL")
    rows, disk, raw = c.query(
        "SELECT sum(rows), sum(bytes_on_disk), sum(data_uncompressed_bytes) FROM system.parts "
        "WHERE database = 'driftline' AND table = 'spans' AND active"
    ).result_rows[0]
    c.close()
    print(f"spans on disk: {rows:,} rows, {disk / rows:,.0f} bytes/span on disk ({raw / rows:,.0f} uncompressed)")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--spans", type=int, default=100)
    ap.add_argument("--distinct", type=int, default=3500, help="distinct pre-encoded requests (reused ones dedupe)")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a DRIFTLINE_NAME=VALUE setting for the collector (repeatable)",
    )
    ap.add_argument(
        "--scorers",
        type=float,
        default=None,
        metavar="SAMPLE_RATE",
        help="also run the scorers at this sample rate and report their lag (default: scorers off)",
    )
    ap.add_argument("--keep-data", action="store_true", help="keep the collector's data directory (default: removed)")
    ap.add_argument(
        "--disk",
        action="store_true",
        help="afterwards, merge the stored spans (OPTIMIZE FINAL) and print bytes on disk per span",
    )
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

    bodies = [llm_request(args.spans, seed=i).SerializeToString() for i in range(args.distinct)]
    print(f"payload: {args.spans} spans/request, {statistics.mean(map(len, bodies)) / 1024:.0f} KiB/request")

    data = tempfile.mkdtemp(prefix="driftline-bench-")
    if not args.keep_data:  # ~0.5 GB a run: repeated runs would otherwise fill the disk
        atexit.register(shutil.rmtree, data, True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
    env.update(
        DRIFTLINE_DATA_DIR=data, DRIFTLINE_HTTP_PORT="0", DRIFTLINE_GRPC_PORT="0",
        DRIFTLINE_METRICS_PORT="-1", DRIFTLINE_API_KEYS=f"{KEY}=bench", DRIFTLINE_LOG_LEVEL="WARNING",
    )  # fmt: skip
    for kv in args.set:
        name, _, value = kv.partition("=")
        env[f"DRIFTLINE_{name.upper()}"] = value
    if args.scorers is None:
        env["DRIFTLINE_SCORERS_ENABLED"] = "false"
    else:
        env.update(DRIFTLINE_SCORER_SAMPLE_RATE=str(args.scorers), DRIFTLINE_SCORER_INTERVAL_S="5")
    proc = subprocess.Popen([sys.executable, "-m", "driftline.cli", "up"], env=env, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    base = ""
    for line in proc.stderr:
        if not line.startswith("{"):
            sys.stderr.write(line)
        m = re.search(r"OTLP/HTTP (http://\S+)/v1/traces", line)
        if m:
            base = m.group(1)
            break
    if not base:
        proc.wait(30)
        print(f"the collector did not start (exit {proc.returncode}); see its messages above", file=sys.stderr)
        return 1
    threading.Thread(target=proc.stderr.read, daemon=True).start()
    u = urlsplit(base)

    latencies: list[float] = []
    accepted = 0
    refused = 0
    lock = threading.Lock()
    stop_at = time.monotonic() + args.seconds

    def client(idx: int) -> None:
        nonlocal accepted, refused
        conn = http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port, timeout=60)
        hdr = {"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {KEY}"}
        i = idx
        mine: list[float] = []
        ok = bad = 0
        while time.monotonic() < stop_at:
            body = bodies[i % len(bodies)]
            i += args.connections
            t0 = time.perf_counter()
            conn.request("POST", "/v1/traces", body=body, headers=hdr)
            resp = conn.getresponse()
            resp.read()
            mine.append(time.perf_counter() - t0)
            if resp.status == 200:
                ok += args.spans
            else:
                bad += args.spans
                time.sleep(float(resp.getheader("Retry-After", "1")) / 10)
        conn.close()
        with lock:
            latencies.extend(mine)
            accepted += ok
            refused += bad

    lags: list[float] = []

    def watch_lag() -> None:  # the scorers' lag while the load runs, every 2 s
        while time.monotonic() < stop_at:
            lags.append(_metric_max(base, "driftline_scorer_lag_seconds"))
            time.sleep(2)

    if args.scorers is not None:
        threading.Thread(target=watch_lag, daemon=True).start()
    cpu_start = _tree_cpu_s(proc.pid)
    t_start = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t_sent = time.monotonic() - t_start
    while _metric(base, "driftline_collector_written_spans_total") < accepted:
        time.sleep(0.05)
    t_stored = time.monotonic() - t_start
    cpu_end = _tree_cpu_s(proc.pid)
    cpu_by_role = {role: cpu_end[role] - cpu_start.get(role, 0.0) for role in cpu_end}
    cpu_s = sum(cpu_by_role.values())
    rss = _peak_rss_mib(proc.pid)
    if args.scorers is not None:
        scored_now = _metric(base, "driftline_scorer_scored_spans_total")
        time.sleep(12)  # two more scorer intervals: what was still queued for scoring at the end
        scored = _metric(base, "driftline_scorer_scored_spans_total")
        print(f"scores written when ingestion ended: {scored_now:,.0f}; 12 s later: {scored:,.0f}")
        print(
            f"scorers at sample rate {args.scorers}: {scored:,.0f} scores written by the end; lag under load "
            f"(worst scorer, sampled every 2 s): max {max(lags, default=0):.1f}s, last {lags[-1] if lags else 0:.1f}s"
        )
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)

    latencies.sort()

    def p(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    print(f"sent for {t_sent:.1f}s over {args.connections} connections; {len(latencies)} requests")
    print(f"accepted spans/s: {accepted / t_sent:,.0f}  (refused {refused:,})")
    print(f"stored spans/s:   {accepted / t_stored:,.0f}  (all {accepted:,} stored after {t_stored:.1f}s)")
    print(f"request latency:  p50 {p(0.5):.1f} ms  p99 {p(0.99):.1f} ms")
    print(f"collector peak RSS: {rss:.0f} MiB")
    print(
        f"collector CPU: {cpu_s:.1f} s for {accepted:,} spans = {accepted / cpu_s:,.0f} stored spans per CPU-second "
        "(receive, decode, normalize, write; the embedded store's inserts and merges included)"
    )
    print(
        "  per stored span: "
        + ", ".join(
            f"{role} {cpu / accepted * 1e6:.1f} us"
            for role, cpu in sorted(cpu_by_role.items(), key=lambda kv: -kv[1])
            if cpu > 0
        )
    )
    print(f"load average after: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if args.disk:
        _print_disk(data)
    if args.keep_data:
        print(f"data kept in {data}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
