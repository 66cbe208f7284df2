"""The SLI job follows the scorers: a scorer run that wrote scores brings the SLI job's next run
forward (new scores reach the SLIs at once, not up to an interval later); a run that wrote nothing
does not, and a burst of scorer runs does not make the SLI job run more than about three times an
interval."""

from __future__ import annotations

import threading
from datetime import timedelta

from prometheus_client import CollectorRegistry

from driftline.scorers.hallucination import OfflineHallucinationScorer
from driftline.scorers.metrics import ScorerMetrics
from driftline.scorers.runner import JobOptions, ScorerJob
from driftline.scorers.scheduler import ScheduledJob, ScoringService
from tests.conftest import KEY_A, LiveServer
from tests.otlp_helpers import http_exporter, provider_for, send_rag_trace


def test_scores_bring_the_sli_run_forward(live: LiveServer) -> None:
    job = ScorerJob(OfflineHallucinationScorer(), live.runtime.store, JobOptions(settle=timedelta(0)))
    service = ScoringService([ScheduledJob(job, 3600)], ScorerMetrics(CollectorRegistry()))
    runs: list[int] = []
    ran = threading.Event()

    def sli() -> None:
        runs.append(1)
        ran.set()

    service.add_periodic("sli", sli, 3600, after=("hallucination",))  # on its own: next run in an hour
    service.start()
    try:
        r = service.run(job)  # nothing stored yet: nothing scored, nothing brought forward
        assert r is not None and r.scored == 0
        assert not ran.wait(1.0) and runs == []

        tp = provider_for(http_exporter(live.url, KEY_A))
        send_rag_trace(tp, "Canberra is the capital.", "Capital?", "It is Canberra.")
        tp.shutdown()
        assert live.runtime.flush(20)
        r = service.run(job)
        assert r is not None and r.scored == 1
        assert ran.wait(10), "the SLI job did not run after the scorer wrote scores"
        assert runs == [1]

        # Another scorer run right after: within a third of the interval, no second SLI run.
        ran.clear()
        tp = provider_for(http_exporter(live.url, KEY_A))
        send_rag_trace(tp, "Canberra is the capital.", "Capital?", "It is Canberra, again.")
        tp.shutdown()
        assert live.runtime.flush(20)
        r = service.run(job)
        assert r is not None and r.scored == 1
        assert not ran.wait(1.0) and runs == [1]
    finally:
        service.stop(wait=True, timeout_s=10)
