"""Time to page: seconds from the moment answers stop being grounded in incoming traffic to the
Alertmanager webhook receiving the page, through the whole real pipeline (collector, scorer, SLI
and drift job, Prometheus rules, Alertmanager), with production or fast intervals.

    python bench/time_to_page.py --mode production   # the defaults a deployment gets (~3-5 min)
    python bench/time_to_page.py --mode fast         # the test intervals (seconds)

Needs Debian's prometheus and prometheus-alertmanager. Traffic: a backdated baseline of 1,200
traces over the previous two hours (5% ungrounded), then live traffic of one release at --rate
traces/s; at t0 the release's answers turn 60% ungrounded.
"""

from __future__ import annotations

import argparse
import atexit
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from driftline.alerting import AlertThresholds, render_rules
from driftline.collector.service import CollectorService
from driftline.config import UpSettings, load_settings
from driftline.scorers.hallucination import OfflineHallucinationScorer
from driftline.scorers.metrics import ScorerMetrics
from driftline.scorers.runner import JobOptions, ScorerJob
from driftline.scorers.scheduler import ScheduledJob, ScoringService
from driftline.sli import SLI_SCORERS, SLIJob, options_from
from tests.conftest import serve
from tests.otlp_helpers import http_exporter, provider_for, send_rag_trace
from tests.support.alert_stack import AlertStack

PASSAGE = "Canberra is the capital city of Australia, chosen as a compromise in 1908."
GOOD, BAD = "The capital is Canberra.", "The capital is Sydney, the largest city."
KEY = "bench-key"


def send(
    url: str, release: str, n: int, bad: float, rng: random.Random, spread_min: tuple[float, float] | None
) -> None:
    tp = provider_for(http_exporter(url, KEY), release=release)
    now = time.time_ns()
    for i in range(n):
        at = None
        if spread_min:
            a, b = spread_min
            at = now - int((a - (a - b) * i / max(1, n - 1)) * 60e9)
        send_rag_trace(tp, PASSAGE, "What is the capital of Australia?", BAD if rng.random() < bad else GOOD, at_ns=at)
    tp.shutdown()


def _page_group_wait() -> str:
    """The page route's group_wait in the shipped alerts/alertmanager.yml."""
    doc = yaml.safe_load((Path(__file__).resolve().parents[1] / "alerts" / "alertmanager.yml").read_text())
    return str(next(r for r in doc["route"]["routes"] if r.get("matchers") == ['severity="page"'])["group_wait"])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["production", "fast"], default="production")
    ap.add_argument("--rate", type=float, default=2.0, help="live traces per second (fractional: 0.2 is one every 5 s)")
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args()
    if not args.rate > 0:
        ap.error("--rate must be above 0")
    prod = args.mode == "production"
    work = Path(tempfile.mkdtemp(prefix="driftline-ttp-"))
    atexit.register(shutil.rmtree, work, True)  # the store, Prometheus and Alertmanager data of this run
    s = load_settings(UpSettings, environ={}, data_dir=work / "data", api_keys=f"{KEY}=bench", grpc_enabled=False)
    if not prod:
        s = s.model_copy(update={"sli_interval_s": 0.5, "scorer_interval_s": 0.5, "drift_current_window_s": 20,
                                 "drift_min_current": 25, "drift_min_baseline": 60, "drift_alpha": 1e-3,
                                 "drift_min_effect_rate": 0.3})  # fmt: skip
    rt = CollectorService(s)
    rt.start()
    server, thread, url = serve(rt)
    metrics = ScorerMetrics(rt.registry)
    sli = SLIJob(rt.store, options_from(s))
    rt.registry.register(sli.collector)
    job = ScorerJob(OfflineHallucinationScorer(), rt.store, JobOptions(sweep=timedelta(minutes=10)))
    scoring = ScoringService([ScheduledJob(job, s.scorer_interval_s)], metrics)
    scoring.add_periodic("sli", sli.run_once, s.sli_interval_s, after=SLI_SCORERS)  # as ScorerService does
    t = AlertThresholds() if prod else AlertThresholds(
        evaluation_interval="1s", drift_for="2s", keep_firing_for="1s", drift_min_current=25, drift_min_baseline=60
    )  # fmt: skip
    intervals = ("15s", "15s", _page_group_wait(), "5m") if prod else ("1s", "1s", "1s", "1s")
    stack = AlertStack(work / "mon", url.removeprefix("http://"), render_rules(t), scrape_interval=intervals[0],
                       evaluation_interval=intervals[1], group_wait=intervals[2], group_interval=intervals[3])  # fmt: skip
    rng = random.Random(7)
    print(
        f"mode {args.mode}: scrape {intervals[0]}, rule evaluation {intervals[1]}, drift for {t.drift_for}, "
        f"group_wait {intervals[2]}, SLI every {s.sli_interval_s}s, scorer every {s.scorer_interval_s}s"
    )
    send(url, "1.0.0", 1200, 0.05, rng, (120, 6))
    stack.start()
    scoring.start()
    stop = threading.Event()
    bad_share = [0.05]

    def live_traffic() -> None:
        # One trace every 1/rate seconds, on a fixed schedule (a fractional rate is real: 0.2 is one
        # trace every 5 s), through one provider whose exporter sends each trace as it ends.
        tp = provider_for(http_exporter(url, KEY), release="1.0.0")
        q = "What is the capital of Australia?"
        due = time.monotonic()
        while not stop.is_set():
            send_rag_trace(tp, PASSAGE, q, BAD if rng.random() < bad_share[0] else GOOD)
            due += 1.0 / args.rate
            stop.wait(max(0.0, due - time.monotonic()))
        tp.shutdown()

    sender = threading.Thread(target=live_traffic, daemon=True)
    sender.start()
    warm = 330 if prod else 25  # fill the current window with normal traffic first
    print(f"warming up {warm}s with normal traffic ...")
    time.sleep(warm)
    early = [n for n in stack.notifications if n.status == "firing"]
    t0 = time.time()
    bad_share[0] = 0.6
    print("quality dropped at t0; waiting for the page ...")
    fired = stack.wait_for(lambda n: n.status == "firing" and any(
        a["labels"].get("alertname") == "DriftlineHallucinationRateDrift" for a in n.alerts), args.timeout)  # fmt: skip
    stop.set()
    sender.join(15)
    scoring.stop()
    stack.stop()
    server.should_exit = True
    thread.join(10)
    rt.stop()
    print(f"false pages before the drop: {len(early)}")
    for name in ("hallucination", "sli"):  # how long the scorer and SLI runs took on this machine
        n = rt.registry.get_sample_value("driftline_scorer_run_duration_seconds_count", {"scorer": name}) or 0
        total = rt.registry.get_sample_value("driftline_scorer_run_duration_seconds_sum", {"scorer": name}) or 0
        print(f"{name} runs: {n:.0f}, mean {total / max(1, n):.2f} s")
    if fired is None:
        print(f"no page within {args.timeout:.0f}s")
        return 1
    print(f"time to page ({args.mode}, {args.rate:g} traces/s): {fired.received_at - t0:.1f} s")
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
