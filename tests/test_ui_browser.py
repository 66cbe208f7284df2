"""The web UI in a real browser: Debian's Chromium driven by Playwright against a real
`driftline up` process, fed through the real OTLP exporter and scored by the real scorers.

Sign in, filter the list to one release's hallucinated answers, open a trace, see the flagged answer,
its retrieved passage and the scorer's explanation, submit feedback, see it on the trace and in
the list. Screenshots of the list, a trace and a session are saved under build/artifacts/ui/.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from driftline.demo import DEMO_FACTS
from tests.conftest import require_tool

ARTIFACTS = Path(__file__).resolve().parent.parent / "build" / "artifacts" / "ui"
BANNER = re.compile(r"up: OTLP/HTTP (http://127\.0\.0\.1:\d+)/v1/traces")
KEY, OTHER_KEY = "ui-test-key-0123456789", "ui-other-key-0123456789"
SERVICE = "support-bot"


def stop(proc: subprocess.Popen[str]) -> None:
    """SIGINT (the server's own shutdown), then reap it; a server that hangs is killed and reaped
    too, and the test fails, so no running Popen is ever left to the garbage collector."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("driftline up did not stop within 60 s of SIGINT")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
    env |= {
        "DRIFTLINE_DATA_DIR": str(tmp_path / "data"),
        "DRIFTLINE_HTTP_PORT": "0",
        "DRIFTLINE_GRPC_PORT": "0",
        "DRIFTLINE_API_KEYS": f"{KEY}=acme,{OTHER_KEY}=other",
        "DRIFTLINE_DECODE_WORKERS": "0",
        "DRIFTLINE_FLUSH_INTERVAL_MS": "100",
        "DRIFTLINE_SCORER_INTERVAL_S": "1",
        "DRIFTLINE_SCORER_SWEEP_S": "1",
        "DRIFTLINE_SLI_INTERVAL_S": "2",
        # Drift on this handful of answers (the defaults want 150 and 1000 samples).
        "DRIFTLINE_DRIFT_MIN_CURRENT": "2",
        "DRIFTLINE_DRIFT_MIN_BASELINE": "3",
        "DRIFTLINE_DRIFT_ALPHA": "0.5",
    }
    lines: list[str] = []
    # The with block closes the pipe and reaps the process on every road out, a failed start
    # included; stop() makes the wait bounded. Before, a server slow to stop left its Popen
    # running, and pytest turned the ResourceWarning of its __del__ into an error in some
    # later test.
    with subprocess.Popen(
        [sys.executable, "-m", "driftline.cli", "up"], env=env, stderr=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stderr is not None
        stderr = proc.stderr
        drain = threading.Thread(target=lambda: lines.extend(stderr), daemon=True)
        try:
            url = ""
            for line in stderr:  # until the banner, or the process ends
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
                drain.join(10)  # the pipe is at its end once the process is gone
            assert not drain.is_alive(), "stderr still open after the server exited"
    log = "".join(lines)
    assert KEY not in log and OTHER_KEY not in log, "an API key reached the log"


def send_conversation(
    url: str, key: str, release: str, session: str, turns: list[tuple[int, bool]], at_ns: int | None = None
) -> list[str]:
    """One trace per turn, shaped like a RAG agent's (as driftline.demo sends them): a retrieval
    span with the passage and a chat span whose answer is grounded in it or not. `at_ns` places
    the conversation in the past (explicit span times); default: now."""
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": SERVICE, "service.version": release, "deployment.environment.name": "prod"}
        )
    )
    exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces", headers={"Authorization": f"Bearer {key}"})
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("ui-test")
    ids = []
    ms = 1_000_000
    t = (at_ns if at_ns is not None else time.time_ns()) - (len(turns) + 1) * 1000 * ms  # all in the past
    for fact, grounded in turns:
        question, passage, good, bad = DEMO_FACTS[fact]
        t += 1000 * ms
        with tracer.start_as_current_span("invoke_agent support", start_time=t, end_on_exit=False) as agent:
            agent.set_attribute("gen_ai.operation.name", "invoke_agent")
            agent.set_attribute("session.id", session)
            agent.set_attribute("user.id", "user-7")
            with tracer.start_as_current_span(
                "retrieval kb", kind=SpanKind.CLIENT, start_time=t + ms, end_on_exit=False
            ) as r:
                r.set_attribute("gen_ai.operation.name", "retrieval")
                r.set_attribute("session.id", session)
                r.set_attribute("retrieval.documents.0.document.id", f"kb-{fact}")
                r.set_attribute("retrieval.documents.0.document.content", passage)
                r.end(end_time=t + 20 * ms)
            with tracer.start_as_current_span(
                "chat gpt-4o-mini", kind=SpanKind.CLIENT, start_time=t + 21 * ms, end_on_exit=False
            ) as chat:
                chat.set_attribute("gen_ai.operation.name", "chat")
                chat.set_attribute("session.id", session)
                chat.set_attribute("gen_ai.provider.name", "openai")
                chat.set_attribute("gen_ai.request.model", "gpt-4o-mini")
                chat.set_attribute("gen_ai.usage.input_tokens", 420)
                chat.set_attribute("gen_ai.usage.output_tokens", 18)
                msgs = [
                    {"role": "system", "parts": [{"type": "text", "content": f"Answer from: {passage}"}]},
                    {"role": "user", "parts": [{"type": "text", "content": question}]},
                ]
                chat.set_attribute("gen_ai.input.messages", json.dumps(msgs))
                answer = [{"role": "assistant", "parts": [{"type": "text", "content": good if grounded else bad}]}]
                chat.set_attribute("gen_ai.output.messages", json.dumps(answer))
                chat.end(end_time=t + 700 * ms)
            agent.end(end_time=t + 720 * ms)
            ids.append(format(agent.get_span_context().trace_id, "032x"))
    provider.shutdown()
    return ids


def wait_for(what: str, check: object, timeout_s: float = 120) -> None:
    """Poll the server (another process: nothing to flush from here) until `check()` holds."""
    deadline = time.monotonic() + timeout_s
    tick = threading.Event()
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        tick.wait(0.25)


def test_find_a_hallucinated_answer_and_give_feedback(server: str) -> None:
    chromium = require_tool("chromium")
    from playwright.sync_api import expect, sync_playwright

    # The older release answered well 40 minutes ago (the drift baseline); the new one does worse now.
    before = time.time_ns() - 40 * 60 * 10**9
    good = send_conversation(server, KEY, "1.4.0", "conv-a", [(0, True), (1, True), (2, True)], at_ns=before)
    flagged_turns = send_conversation(server, KEY, "1.5.0", "conv-b", [(2, True), (0, False), (3, True), (1, False)])
    hallucinated = {flagged_turns[1], flagged_turns[3]}
    others = send_conversation(server, OTHER_KEY, "1.5.0", "conv-x", [(0, False)])

    api = httpx.Client(base_url=server, headers={"Authorization": f"Bearer {KEY}"}, timeout=30)

    def scored() -> bool:
        r = api.get("/api/v1/traces", params={"service": SERVICE, "scorer": "hallucination", "limit": 50})
        return r.status_code == 200 and len(r.json()["traces"]) == len(good) + len(flagged_turns)

    wait_for("every answer scored", scored)

    def drifting() -> bool:
        r = api.get("/api/v1/overview")
        return r.status_code == 200 and any(d["sli"] == "hallucination_rate" for d in r.json()["drift_firing"])

    wait_for("the SLI job to find the new release's drift", drifting)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox"])
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.set_default_timeout(20_000)

        # Signing in is a form; the key never shows in a URL.
        page.goto(f"{server}/traces")
        expect(page).to_have_url(re.compile(r"/login\?next="))
        page.keyboard.press("Tab")  # the key field has focus already: Tab moves on to the button
        expect(page.get_by_role("button", name="Sign in")).to_be_focused()
        page.get_by_label("API key").fill(KEY)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_test_id("tenant")).to_have_text("acme")
        assert KEY not in page.url

        page.keyboard.press("Tab")  # the first stop skips the navigation
        expect(page.get_by_role("link", name="Skip to content")).to_be_focused()

        # Filter by keyboard: the filters land in the URL, so the view can be shared.
        page.get_by_label("Release").fill("1.5.0")
        page.get_by_label("Scorer").select_option("hallucination")
        page.get_by_label("Score label").fill("hallucinated")
        page.get_by_label("Score label").press("Enter")
        expect(page).to_have_url(re.compile(r"release=1\.5\.0.*scorer=hallucination.*label=hallucinated"))
        rows = page.locator("[data-testid=trace-table] tbody tr[data-trace-id]")
        expect(rows).to_have_count(2)
        assert {rows.nth(i).get_attribute("data-trace-id") for i in range(2)} == hallucinated
        assert not any(t in page.content() for t in [*good, *others])
        page.screenshot(path=str(ARTIFACTS / "trace-list.png"), full_page=True)

        # Open one: the flagged answer, the passage it should have used, the scorer's explanation.
        trace_id = rows.first.get_attribute("data-trace-id")
        rows.first.get_by_role("link").first.click()
        expect(page).to_have_url(re.compile(f"/traces/{trace_id}"))
        flagged = page.get_by_test_id("flagged")
        _, passage, _, bad = next(f for f in DEMO_FACTS if f[3] in flagged.inner_text())
        expect(page.get_by_test_id("flagged-answer").first).to_have_text(bad)
        expect(page.get_by_test_id("passage").first).to_contain_text(passage)
        expect(page.get_by_test_id("explanation").first).not_to_be_empty()
        expect(flagged.locator(".badge.bad").first).to_have_text("hallucinated")
        page.screenshot(path=str(ARTIFACTS / "trace.png"), full_page=True)
        page.screenshot(path=str(ARTIFACTS / "trace-top.png"))  # the first screen (README's picture)

        # Feedback by keyboard, then it shows on the trace and in the list.
        page.get_by_label("Bad").check()
        page.get_by_label("Comment").fill("wrong year, the passage says 1889")
        page.get_by_label("Comment").press("Enter")
        feedback = page.get_by_test_id("feedback")
        expect(feedback).to_contain_text("wrong year, the passage says 1889")
        expect(feedback).to_contain_text("thumbs_down")
        page.screenshot(path=str(ARTIFACTS / "trace-feedback.png"), full_page=True)

        page.goto(f"{server}/traces?release=1.5.0&feedback=negative")
        rows = page.locator("[data-testid=trace-table] tbody tr[data-trace-id]")
        expect(rows).to_have_count(1)
        expect(rows.first).to_have_attribute("data-trace-id", str(trace_id))
        expect(rows.first.get_by_test_id("feedback-count")).to_contain_text("1 negative")

        # The session: the conversation in order.
        page.goto(f"{server}/sessions/conv-b")
        turns = page.get_by_test_id("conversation").locator("li.turn")
        expect(turns).to_have_count(4)
        expect(turns.nth(1)).to_contain_text("hallucinated")
        page.screenshot(path=str(ARTIFACTS / "session.png"), full_page=True)

        # The overview: every chart drawn, the new release's drift marked on the hallucination chart.
        page.goto(f"{server}/")
        expect(page.get_by_test_id("drift-firing")).to_contain_text("hallucination_rate")
        charts = page.locator(".chart")
        expect(charts.locator("canvas")).to_have_count(charts.count())
        assert charts.count() >= 6
        mark = page.locator('.chart[data-metric="hallucination_rate"] .drift-mark')
        expect(mark).to_be_visible()
        expect(mark).to_contain_text(f"{SERVICE} @ 1.5.0")
        page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)

        # The release comparison, filled in by keyboard.
        page.goto(f"{server}/compare")
        page.get_by_label("Service").fill(SERVICE)
        page.get_by_label("Baseline release").fill("1.4.0")
        page.get_by_label("Candidate release").fill("1.5.0")
        page.get_by_label("Candidate release").press("Enter")
        expect(page).to_have_url(re.compile(r"/compare\?service=support-bot&baseline=1\.4\.0&candidate=1\.5\.0"))
        row = page.get_by_test_id("compare").locator("tr", has_text="hallucination_rate")
        expect(row).to_contain_text("3 / 4")  # answers judged: baseline / candidate
        expect(row).to_contain_text("50")  # the candidate's rate, in percent
        page.screenshot(path=str(ARTIFACTS / "compare.png"), full_page=True)

        # Signed out, the pages are closed again.
        page.get_by_role("button", name="Sign out").click()
        expect(page).to_have_url(re.compile(r"/login$"))
        page.goto(f"{server}/traces/{trace_id}")
        expect(page).to_have_url(re.compile(r"/login\?next="))
        browser.close()
    api.close()
    print(f"\nUI screenshots: {ARTIFACTS}")
