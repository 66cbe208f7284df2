"""Scorer-human agreement from real labels (the review workflow on the embedded store) equals a hand
calculation; the gauges carry it to /metrics; and the agreement page fires through a real
Prometheus and Alertmanager, then resolves when the scorer agrees again."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from driftline.alerting import AlertThresholds, render_rules
from driftline.review.agreement import AgreementJob, agreement, cohen_kappa
from driftline.review.desk import ReviewDesk
from driftline.review.models import QueueDefinition
from driftline.store import Store
from tests import review_data as rd
from tests.conftest import KEY_A, TENANT_A, LiveServer, require_tool
from tests.review_data import NOW, Clock, trace_id
from tests.support.alert_stack import AlertStack

T = "tenant-agree"
G, H, U = "grounded", "hallucinated", "unsure"
QUEUE = QueueDefinition.model_validate({
    "rubric": {"fields": [
        {"name": "grounding", "type": "categorical", "options": [G, H, U], "scorer": "hallucination",
         "scorer_labels": {G: G, H: H}},
        {"name": "judge_ok", "type": "boolean"},
    ]},
})  # fmt: skip


def label_all(desk: ReviewDesk, tenant: str, queue: str, human: dict[int, str], who: str = "alice") -> None:
    """Claim and label each item as a reviewer would."""
    desk.add(tenant, queue, [trace_id(i) for i in human], who)
    for i, value in human.items():
        desk.claim(tenant, queue, trace_id(i), who)
        desk.label(tenant, queue, trace_id(i), who, {"grounding": value}, "", "")


def test_cohen_kappa_by_hand() -> None:
    # Perfect agreement, chance-level, and the textbook example (Cohen 1960 style 2x2).
    assert cohen_kappa([[5, 0], [0, 5]]) == 1.0
    assert cohen_kappa([[5, 5], [5, 5]]) == 0.0
    assert cohen_kappa([[20, 5], [10, 15]]) == pytest.approx((35 / 50 - 0.5) / 0.5)
    assert cohen_kappa([[3, 0], [0, 0]]) is None  # one label only: kappa is undefined
    assert cohen_kappa([[0, 0], [0, 0]]) is None


def test_agreement_from_real_labels_equals_the_hand_calculation(store: Store) -> None:
    rd.traces(store, T, range(1, 14))
    human = {1: H, 2: H, 3: H, 4: H, 5: G, 6: G, 7: G, 8: G, 9: G, 10: U, 11: H}
    v1 = {1: H, 2: H, 3: H, 4: G, 5: G, 6: G, 7: G, 8: H, 9: G, 10: H, 11: "no_context"}
    rd.scores(store, T, [(i, "hallucination", 0.9 if lab == H else 0.1, lab) for i, lab in v1.items()], version="v1")
    v2 = {1: H, 2: H, 3: G, 4: G}
    rd.scores(store, T, [(i, "hallucination", 0.5, lab) for i, lab in v2.items()], version="v2")
    desk = ReviewDesk(store, {"grounding": QUEUE}, clock=Clock(NOW))
    label_all(desk, T, "grounding", human)
    # A label from ten days ago is outside the 7-day window; an unlabeled item counts for nothing.
    label_all(ReviewDesk(store, {"grounding": QUEUE}, clock=Clock(NOW - timedelta(days=10))), T, "grounding", {12: G})
    rd.scores(store, T, [(12, "hallucination", 0.9, H)], version="v1")
    desk.add(T, "grounding", [trace_id(13)], "alice")

    got = {a.version: a for a in agreement(store, T, desk.queues(T), NOW - timedelta(days=7), NOW + timedelta(hours=1))}
    assert set(got) == {"v1", "v2"}
    # v1 by hand: item 10 (reviewer unsure) and 11 (scorer no_context) are no verdicts; 12 is too old.
    # human G: scorer G on 5, 6, 7, 9 and H on 8; human H: scorer H on 1, 2, 3 and G on 4.
    a = got["v1"]
    assert (a.scorer, a.queue, a.field, a.n, a.labels) == ("hallucination", "grounding", "grounding", 9, [G, H])
    assert a.confusion == [[4, 1], [1, 3]]
    assert a.accuracy == pytest.approx(7 / 9)
    p_o, p_e = 7 / 9, (5 * 5 + 4 * 4) / 81
    assert a.kappa == pytest.approx((p_o - p_e) / (1 - p_e)) and a.kappa == pytest.approx(0.55)
    # v2: four items, human H on all; the scorer says H, H, G, G.
    b = got["v2"]
    assert (b.n, b.confusion, b.accuracy) == (4, [[0, 0], [2, 2]], 0.5)
    assert b.kappa == pytest.approx(0.0)

    # The job publishes the same figures as gauges, per tenant, scorer, version, queue and field.
    registry = CollectorRegistry()
    job = AgreementJob(desk, timedelta(days=7), clock=lambda: NOW + timedelta(hours=1))
    registry.register(job.collector)
    job.run_once()
    text = generate_latest(registry).decode()
    lab = f'field="grounding",queue="grounding",scorer="hallucination",tenant="{T}",version="v1"'
    assert f"driftline_review_agreement_kappa{{{lab}}} 0.55" in text
    assert f"driftline_review_agreement_items{{{lab}}} 9.0" in text
    assert f"driftline_review_agreement_accuracy{{{lab}}} {7 / 9!r}" in text


def test_two_reviewer_items_count_once_final(store: Store) -> None:
    """A disputed item has no final label and does not count until it is adjudicated."""
    rd.traces(store, T, [1, 2])
    rd.scores(store, T, [(1, "hallucination", 0.9, H), (2, "hallucination", 0.9, H)])
    two = QUEUE.model_copy(update={"reviewers_per_item": 2})
    desk = ReviewDesk(store, {"pair": two}, clock=Clock(NOW))
    desk.add(T, "pair", [trace_id(1), trace_id(2)], "alice")
    for who, values in (("alice", (H, H)), ("bob", (H, G))):
        for i, v in zip((1, 2), values, strict=True):
            desk.claim(T, "pair", trace_id(i), who)
            desk.label(T, "pair", trace_id(i), who, {"grounding": v}, "", "")
    window = (NOW - timedelta(days=1), NOW + timedelta(hours=1))
    assert [(a.n, a.confusion) for a in agreement(store, T, desk.queues(T), *window)] == [(1, [[0, 0], [0, 1]])]
    desk.adjudicate(T, "pair", trace_id(2), "carol", {"grounding": G}, "passage supports it", "", False)
    assert [(a.n, a.confusion) for a in agreement(store, T, desk.queues(T), *window)] == [(2, [[0, 1], [0, 1]])]


@pytest.fixture
def stack(live: LiveServer, tmp_path: Path) -> Iterator[tuple[LiveServer, AlertStack, AgreementJob]]:
    require_tool("prometheus")
    require_tool("prometheus-alertmanager")
    rt = live.runtime
    desk = ReviewDesk(rt.store)
    job = AgreementJob(desk, timedelta(days=1))
    rt.registry.register(job.collector)
    rules = render_rules(
        AlertThresholds(evaluation_interval="1s", agreement_for="2s", keep_firing_for="1s", agreement_min_items=6)
    )
    s = AlertStack(tmp_path / "mon", live.url.removeprefix("http://"), rules)
    stop = threading.Event()

    def recompute() -> None:  # the scorer service runs it every review_agreement_interval_s
        while not stop.is_set():
            job.run_once()
            stop.wait(0.5)

    worker = threading.Thread(target=recompute, daemon=True)
    try:
        s.start()
        worker.start()
        yield live, s, job
    finally:
        stop.set()
        worker.join(30)
        s.stop()


def _label_through_the_api(url: str, queue: str, human: dict[int, str]) -> None:
    auth = {"Authorization": f"Bearer {KEY_A}"}
    with httpx.Client(base_url=url, headers=auth, timeout=60) as c:
        r = c.post(f"/api/v1/review/queues/{queue}/items", json={"trace_ids": [trace_id(i) for i in human]})
        assert r.status_code == 200 and r.json()["added"] == len(human), r.text
        for _ in human:
            item = c.post(f"/api/v1/review/queues/{queue}/next").json()
            i = int(item["trace_id"], 16)
            r = c.post(f"/api/v1/review/queues/{queue}/items/{item['trace_id']}/label",
                       json={"fields": {"grounding": human[i]}})  # fmt: skip
            assert r.status_code == 200, r.text


def _is(n: Any, status: str) -> bool:
    return n.status == status and any(a["labels"].get("alertname") == "DriftlineScorerAgreementLow" for a in n.alerts)


def test_a_drifting_judge_pages_through_prometheus(stack: tuple[LiveServer, AlertStack, AgreementJob]) -> None:
    live, alerts, job = stack
    store = live.runtime.store
    rd.traces(store, TENANT_A, range(1, 41))
    # The judge (its scores as the judge job writes them) says the opposite of people on 8 items ...
    human = {i: (G if i % 2 else H) for i in range(1, 9)}
    rd.scores(store, TENANT_A, [(i, "hallucination_judge", 0.5, H if v == G else G) for i, v in human.items()],
              version="judge-2")  # fmt: skip
    ReviewDesk(store).put_queue(
        TENANT_A,
        "judge-check",
        QUEUE.model_copy(
            update={
                "rubric": QUEUE.rubric.model_copy(
                    update={"fields": [QUEUE.rubric.fields[0].model_copy(update={"scorer": "hallucination_judge"})]}
                )
            }
        ),
    )
    t0 = time.time()
    _label_through_the_api(live.url, "judge-check", human)
    fired = alerts.wait_for(lambda n: _is(n, "firing"), 90)
    assert fired is not None, f"no page; agreement seen: {job.snapshot.rows}"
    alert = next(a for a in fired.alerts if a["labels"]["alertname"] == "DriftlineScorerAgreementLow")
    assert alert["labels"]["severity"] == "page" and alert["labels"]["tenant"] == TENANT_A
    assert (alert["labels"]["scorer"], alert["labels"]["version"]) == ("hallucination_judge", "judge-2")
    assert "kappa" in alert["annotations"]["description"] and "-1.00" in alert["annotations"]["description"]
    print(f"labels to page: {fired.received_at - t0:.1f} s")
    # ... then agrees on 32 more: kappa (24 + 8 items of each label, 32 of 40 agreeing) is 0.6; it resolves.
    more = {i: (G if i % 2 else H) for i in range(9, 41)}
    rd.scores(store, TENANT_A, [(i, "hallucination_judge", 0.5, v) for i, v in more.items()], version="judge-2")
    _label_through_the_api(live.url, "judge-check", more)
    resolved = alerts.wait_for(lambda n: _is(n, "resolved"), 90)
    assert resolved is not None, f"never resolved; agreement seen: {job.snapshot.rows}"
    final = next(a for _, a in job.run_once().rows if a.version == "judge-2")  # all labels in now
    assert final.n == 40 and final.kappa == pytest.approx(0.6)
