"""Review in a real browser: Debian's Chromium driven by Playwright against a real `driftline up`,
fed through the real OTLP exporter, scored by the real scorers, its review queue filled by the real
filling job from a configured rule.

Open the queue, claim an item, read its trace, label it with the keyboard only, see the counts
change, export the golden set and find the label in it. Screenshots of the queues, the queue and
the item view are saved under build/artifacts/ui/.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from driftline.demo import DEMO_FACTS
from tests.conftest import require_tool
from tests.test_ui_browser import ARTIFACTS, BANNER, send_conversation, stop, wait_for

KEY = "review-ui-key-0123456789"
QUEUE = "hallucinations"
QUEUES = {
    QUEUE: {
        "description": "Answers the hallucination scorer flagged",
        "rules": [{"kind": "score", "scorer": "hallucination", "labels": ["hallucinated"]}],
        "rubric": {
            "instructions": "Read the answer against the passage the agent retrieved. Is it supported?",
            "fields": [
                {"name": "verdict", "type": "categorical", "options": ["grounded", "hallucinated", "unsure"],
                 "required": True, "negative": ["hallucinated"], "scorer": "hallucination"},
                {"name": "severity", "type": "numeric", "min": 1, "max": 5, "required": True,
                 "description": "1: harmless, 5: a customer would act on it"},
                {"name": "user_harmed", "type": "boolean"},
                {"name": "comment", "type": "text"},
            ],
            "corrected_answer": True,
        },
    }
}  # fmt: skip


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
    env |= {
        "DRIFTLINE_DATA_DIR": str(tmp_path / "data"),
        "DRIFTLINE_HTTP_PORT": "0",
        "DRIFTLINE_GRPC_PORT": "0",
        "DRIFTLINE_API_KEYS": f"{KEY}=acme:ingest+read+review:ana",
        "DRIFTLINE_DECODE_WORKERS": "0",
        "DRIFTLINE_FLUSH_INTERVAL_MS": "100",
        "DRIFTLINE_SCORER_INTERVAL_S": "1",
        "DRIFTLINE_SCORER_SWEEP_S": "1",
        "DRIFTLINE_REVIEW_FILL_INTERVAL_S": "1",
        "DRIFTLINE_REVIEW_QUEUES": json.dumps(QUEUES),
    }
    lines: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-m", "driftline.cli", "up"], env=env, stderr=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stderr is not None
        stderr = proc.stderr
        drain = threading.Thread(target=lambda: lines.extend(stderr), daemon=True)
        try:
            url = ""
            for line in stderr:
                lines.append(line)
                if m := BANNER.search(line):
                    url = m.group(1)
                    break
            assert url, "".join(lines)
            drain.start()
            yield url
        finally:
            stop(proc)
            if drain.is_alive():
                drain.join(10)
            assert not drain.is_alive(), "stderr still open after the server exited"
    assert KEY not in "".join(lines), "the API key reached the log"


def test_review_a_flagged_answer_with_the_keyboard(server: str) -> None:
    chromium = require_tool("chromium")
    from playwright.sync_api import expect, sync_playwright

    # A loaded machine: with the scorers running every second beside it, a page drawn from three API
    # calls can take several seconds.
    expect.set_options(timeout=60_000)

    ids = send_conversation(server, KEY, "1.5.0", "conv-r", [(0, True), (1, False), (2, True), (3, False)])
    flagged = {ids[1]: DEMO_FACTS[1], ids[3]: DEMO_FACTS[3]}
    api = httpx.Client(base_url=server, headers={"Authorization": f"Bearer {KEY}"}, timeout=30)

    def progress() -> dict[str, Any]:
        r = api.get(f"/api/v1/review/queues/{QUEUE}")
        assert r.status_code == 200, r.text
        p: dict[str, Any] = r.json()["progress"]
        return p

    # The scorers flag the two bad answers; the rule sends exactly those to the queue.
    wait_for("the filling job to queue the flagged answers", lambda: progress()["items"] >= len(flagged))
    items = api.get(f"/api/v1/review/queues/{QUEUE}/items").json()["items"]
    assert {i["trace_id"] for i in items} == set(flagged)
    assert all(i["rule"] == "score" and i["score_label"] == "hallucinated" for i in items)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox"])
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.set_default_timeout(60_000)
        keys = page.keyboard

        # Sign in (the key field has focus).
        page.goto(f"{server}/review")
        expect(page).to_have_url(re.compile(r"/login\?next=%2Freview"))
        keys.type(KEY)
        keys.press("Enter")
        expect(page).to_have_url(re.compile(r"/review$"))

        # The queues: two open, none done, the age of the oldest.
        row = page.locator(f'[data-testid=queue-row][data-queue="{QUEUE}"]')
        expect(row.get_by_test_id("count-open")).to_have_text("2")
        expect(row.get_by_test_id("count-done")).to_have_text("0")
        expect(row.get_by_test_id("oldest-open")).not_to_have_text("–")
        page.screenshot(path=str(ARTIFACTS / "review-queues.png"), full_page=True)

        # The queue; from here on, keys only: Enter claims the next item.
        page.goto(f"{server}/review/queues/{QUEUE}")
        expect(page.get_by_test_id("review-next")).to_be_focused()
        page.screenshot(path=str(ARTIFACTS / "review-queue.png"), full_page=True)
        keys.press("Enter")
        expect(page).to_have_url(re.compile(rf"/review/queues/{QUEUE}/items/[0-9a-f]{{32}}$"))
        first = page.url.rsplit("/", 1)[-1]
        assert first in flagged
        question, passage, _, bad = flagged[first]

        # The whole trace beside the rubric: the flagged answer, the passage, the chat's messages.
        expect(page.get_by_test_id("flagged-answer").first).to_have_text(bad)
        expect(page.get_by_test_id("passage").first).to_contain_text(passage)
        expect(page.locator(".span-detail:visible")).to_have_count(1)
        expect(page.locator(".span-detail:visible")).to_contain_text(question)
        expect(page.locator(".wf-row")).to_have_count(3)
        expect(page.get_by_test_id("item-status")).to_have_text("claimed")

        # `?` shows the keys; Esc closes them.
        keys.press("?")
        expect(page.get_by_role("dialog")).to_be_visible()
        expect(page.get_by_role("dialog")).to_contain_text("Ctrl+Enter")
        keys.press("Escape")
        expect(page.get_by_role("dialog")).to_be_hidden()

        # Completing with nothing picked says what is missing and stays.
        keys.press("Control+Enter")
        expect(page.locator('[data-field="verdict"] .field-error')).to_have_text(re.compile("Pick one"))
        expect(page.locator('[data-field="severity"] .field-error')).to_have_text("Required.")
        assert page.url.endswith(first)

        # 2 picks "hallucinated"; arrows move on; digits type into a number; Esc leaves a text box.
        keys.press("2")
        expect(page.get_by_role("radio", name="hallucinated")).to_be_checked()
        keys.press("ArrowDown")
        expect(page.get_by_label("severity")).to_be_focused()
        keys.type("4")
        keys.press("Enter")  # Enter goes on to the next field; it does not send the form
        keys.press("1")
        expect(page.locator('[data-field="user_harmed"] input[value="true"]')).to_be_checked()
        keys.press("ArrowDown")
        expect(page.get_by_label("comment")).to_be_focused()
        keys.type("States a fact the passage contradicts.")
        keys.press("Escape")
        keys.press("ArrowDown")
        expect(page.get_by_label("corrected answer")).to_be_focused()
        good = next(f[2] for f in DEMO_FACTS if f[0] == question)
        keys.type(good)
        expect(page.locator('[data-field="verdict"] .field-error')).to_be_hidden()
        page.screenshot(path=str(ARTIFACTS / "review-item.png"), full_page=True)
        page.screenshot(path=str(ARTIFACTS / "review-item-top.png"))

        # Ctrl+Enter saves and opens the next item, claimed for us.
        keys.press("Control+Enter")
        expect(page).not_to_have_url(re.compile(first))
        expect(page).to_have_url(re.compile(rf"/items/({'|'.join(flagged)})$"))
        second = page.url.rsplit("/", 1)[-1]
        assert second != first
        expect(page.get_by_test_id("item-status")).to_have_text("claimed")
        expect(page.get_by_test_id("progress")).to_contain_text("1 of 2 done")

        done = api.get(f"/api/v1/review/queues/{QUEUE}/items/{first}").json()
        assert done["status"] == "done"
        assert done["final"] == {
            "verdict": "hallucinated", "severity": 4.0, "user_harmed": True,
            "comment": "States a fact the passage contradicts.",
        }  # fmt: skip

        # The counts moved.
        page.goto(f"{server}/review")
        expect(row.get_by_test_id("count-done")).to_have_text("1")
        expect(row.get_by_test_id("count-claimed")).to_have_text("1")
        expect(row.get_by_test_id("count-open")).to_have_text("0")
        page.screenshot(path=str(ARTIFACTS / "review-queues-after.png"), full_page=True)

        # The golden set holds the label and the corrected answer.
        page.goto(f"{server}/review/queues/{QUEUE}")
        with page.expect_download() as download:
            page.get_by_test_id("export").focus()
            keys.press("Enter")
        path = download.value.path()
        assert download.value.suggested_filename == f"{QUEUE}.jsonl"
        records = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
        assert [r["trace_id"] for r in records] == [first]
        assert records[0]["labels"]["verdict"] == "hallucinated"
        assert records[0]["corrected_answer"] == good
        assert records[0]["output"] == bad

        # The scorer said hallucinated, and so did the reviewer.
        page.goto(f"{server}/review/agreement")
        agree = page.locator('[data-testid=agreement] tr[data-scorer="hallucination"]')
        expect(agree).to_have_count(1)
        expect(agree.get_by_test_id("agreement-n")).to_have_text("1")
        expect(agree).to_contain_text("100.0%")
        page.screenshot(path=str(ARTIFACTS / "review-agreement.png"), full_page=True)
        browser.close()
    api.close()
    print(f"\nReview screenshots: {ARTIFACTS}")
