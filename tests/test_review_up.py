"""`driftline up --demo` as a user runs it: the demo's traffic is scored, the demo queue's rules fill
it through the scheduled job, a reviewer claims and labels an item through the API, and the golden
set holds the label. A real process; the only change from the defaults is shorter job intervals."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

BANNER = re.compile(r"up: OTLP/HTTP (http://127\.0\.0\.1:\d+)/v1/traces")


def test_demo_traffic_fills_the_demo_queue_and_a_label_reaches_the_golden_set(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")} | {
        "DRIFTLINE_DATA_DIR": str(tmp_path / "data"), "DRIFTLINE_HTTP_PORT": "0", "DRIFTLINE_GRPC_PORT": "0",
        "DRIFTLINE_METRICS_PORT": "0", "DRIFTLINE_SCORER_INTERVAL_S": "1", "DRIFTLINE_REVIEW_FILL_INTERVAL_S": "1",
    }  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "driftline.cli", "up", "--demo"], env=env, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    lines: list[str] = []
    url = ""
    for line in proc.stderr:
        lines.append(line)
        if m := BANNER.search(line):
            url = m.group(1)
            break
    assert url, "".join(lines)
    drain = threading.Thread(target=lambda: lines.extend(proc.stderr or []), daemon=True)
    drain.start()
    try:
        key = (tmp_path / "data" / "dev-api-key").read_text().strip()
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
            deadline = time.monotonic() + 120
            queue: dict[str, object] = {}
            while time.monotonic() < deadline:
                queues = c.get("/api/v1/review/queues").json()["queues"]
                assert [q["name"] for q in queues] == ["hallucinations"] and queues[0]["source"] == "config"
                queue = queues[0]
                if queue["progress"]["open"] >= 1:  # type: ignore[index]
                    break
                threading.Event().wait(1.0)
            assert queue and queue["progress"]["open"] >= 1, (queue, "".join(lines[-30:]))  # type: ignore[index]
            items = c.get("/api/v1/review/queues/hallucinations/items").json()["items"]
            assert {i["rule"] for i in items} <= {"score", "feedback", "control"} and all(
                i["added_by"] == "" for i in items
            )
            item = c.post("/api/v1/review/queues/hallucinations/next").json()
            trace = c.get(f"/api/v1/traces/{item['trace_id']}").json()  # the item view shows the whole trace
            assert trace["spans"]
            label = {"fields": {"grounding": "hallucinated", "helpful": False}, "note": "checked by hand"}
            done = c.post(f"/api/v1/review/queues/hallucinations/items/{item['trace_id']}/label", json=label)
            assert done.status_code == 200 and done.json()["status"] == "done", done.text
            export = c.get("/api/v1/review/queues/hallucinations/export").text.splitlines()
            rec = next(json.loads(x) for x in export if json.loads(x)["trace_id"] == item["trace_id"])
            assert rec["labels"]["grounding"] == "hallucinated" and rec["note"] == "checked by hand"
            assert rec["output"] and rec["reviewers"] and rec["reviewers"][0].startswith("key-")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
        drain.join(5)
        proc.stderr.close()
    assert proc.returncode == 0, "".join(lines[-30:])
