"""Review queues: how long the filling job takes over scored traffic, and how fast reviewers can
claim and label through the real API (uvicorn on loopback, the embedded store).

    python bench/review_bench.py [--traces 5000] [--reviewers 4] [--items 200] [--history 0]

Prints: the filling job's first run (every trace scored hallucinated, the cap high enough to take
them all) and a re-run (more when the first run stopped at its limit); then the oldest `--history`
items are made done (a claim and a label each, rows as the desk writes them: a queue with a past);
the queue's progress (what the queue, item and list pages show: every item folded), timed; then `--reviewers` threads each doing next -> label until `--items` items are done: items/s, and
the p50/p95 of one next+label cycle. Run it on a quiet machine; the load average is printed beside
the figures.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import uvicorn
from prometheus_client import CollectorRegistry

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from driftline.collector.service import CollectorService
from driftline.config import CollectorSettings, load_settings
from driftline.review.desk import ReviewDesk
from driftline.review.fill import QueueFiller, ReviewMetrics
from driftline.review.models import QueueDefinition
from driftline.server import create_app
from driftline.store.queries import review as rq
from tests import review_data as rd

TENANT = "bench"
QUEUE = QueueDefinition.model_validate({
    "rules": [{"kind": "score", "scorer": "hallucination", "labels": ["hallucinated"]}],
    "max_per_hour": 100_000,
    "rubric": {"fields": [{"name": "grounding", "type": "categorical", "options": ["grounded", "hallucinated"]}]},
})  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--traces", type=int, default=5000)
    p.add_argument("--reviewers", type=int, default=4)
    p.add_argument("--items", type=int, default=200)
    p.add_argument("--history", type=int, default=0, help="items done before the reviewers start")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        keys = ",".join(f"k{i}={TENANT}:review+read:r{i}" for i in range(a.reviewers))
        settings = load_settings(
            CollectorSettings, environ={}, data_dir=Path(tmp), api_keys=keys, grpc_port=0, decode_workers=0
        )
        rt = CollectorService(settings)
        rt.start()
        store = rt.store
        for start in range(1, a.traces + 1, 1000):
            ids = range(start, min(a.traces + 1, start + 1000))
            rd.traces(store, TENANT, ids)
            rd.scores(store, TENANT, [(i, "hallucination", 0.9, "hallucinated") for i in ids])
        now = datetime.now(UTC) + timedelta(seconds=5)
        desk = ReviewDesk(store, {"bench": QUEUE}, clock=lambda: now)
        filler = QueueFiller(desk, ReviewMetrics(CollectorRegistry()), clock=lambda: now)
        t0 = time.perf_counter()
        added = filler.run_once().added
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = filler.run_once().added
        rerun = time.perf_counter() - t0
        print(f"fill: {a.traces} scored traces -> {added} items in {first:.2f} s; re-run {rerun:.2f} s ({again} added)")
        worked = [rd.trace_id(i) for i in range(1, min(a.history, added) + 1)]  # the oldest items (ids in order)
        at = datetime.now(UTC) - timedelta(hours=1)
        rq.insert_events(store, TENANT, [{
            "queue": "bench", "trace_id": t, "event_id": f"h{t}", "kind": "claim", "reviewer": "r0", "at": at,
            "expires_at": at + timedelta(seconds=QUEUE.lease_seconds)} for t in worked])  # fmt: skip
        rq.insert_labels(store, TENANT, [{
            "queue": "bench", "trace_id": t, "kind": "label", "reviewer": "r0", "fields": '{"grounding": "grounded"}',
            "note": "", "corrected_answer": "", "labeled_at": at + timedelta(seconds=1)} for t in worked])  # fmt: skip

        qu = desk.queue(TENANT, "bench")
        folds = []
        for _ in range(3):
            t0 = time.perf_counter()
            progress = desk.progress(TENANT, qu)
            folds.append(time.perf_counter() - t0)
        print(f"queue progress (every item folded): median {statistics.median(folds) * 1000:.0f} ms "
              f"({progress.items} items, {progress.done} done)")  # fmt: skip

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(create_app(rt), log_config=None, access_log=False))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/api/v1/review/queues/bench"
        # The API's desk has no configured queues: the queue is stored for the tenant.
        ReviewDesk(store).put_queue(TENANT, "bench", QUEUE)
        cycles: list[float] = []
        done = 0
        lock = threading.Lock()

        def review(i: int) -> None:
            nonlocal done
            with httpx.Client(headers={"Authorization": f"Bearer k{i}"}, timeout=120) as c:
                while True:
                    with lock:
                        if done >= a.items:
                            return
                    t = time.perf_counter()
                    item = c.post(f"{url}/next")
                    if item.status_code != 200:
                        return
                    tid = item.json()["trace_id"]
                    r = c.post(f"{url}/items/{tid}/label", json={"fields": {"grounding": "hallucinated"}})
                    assert r.status_code == 200, r.text
                    with lock:
                        cycles.append(time.perf_counter() - t)
                        done += 1

        t0 = time.perf_counter()
        workers = [threading.Thread(target=review, args=(i,)) for i in range(a.reviewers)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        wall = time.perf_counter() - t0
        q = statistics.quantiles(cycles, n=20)
        print(f"review: {a.reviewers} reviewers labeled {done} items in {wall:.1f} s = {done / wall:.1f} items/s; "
              f"next+label p50 {statistics.median(cycles) * 1000:.0f} ms, p95 {q[18] * 1000:.0f} ms "
              f"(queue of {added + again} items, {len(worked)} done before)")  # fmt: skip
        print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
        server.should_exit = True
        thread.join(10)
        rt.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
