"""Demo traffic for `driftline up --demo`: a small RAG agent's traces, sent the way a real app
sends them (OpenTelemetry SDK, OTLP/HTTP exporter, GenAI semantic-convention attributes).
Nothing here calls a model: the answers are canned, some grounded in the retrieved passage and
some not, and some tool calls fail, so every scorer has something to find.
"""

from __future__ import annotations

import json
import random
import threading

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

__all__ = ["DEMO_FACTS", "HALLUCINATION_RATE", "RELEASES", "DemoTraffic"]

# (question, passage, grounded answer, ungrounded answer)
DEMO_FACTS = [
    (
        "When was the Eiffel Tower completed?",
        "The Eiffel Tower was completed in March 1889 for the World's Fair.",
        "It was completed in March 1889.",
        "It was completed in 1925 after a long delay.",
    ),
    (
        "Who wrote Pride and Prejudice?",
        "Pride and Prejudice is an 1813 novel by Jane Austen.",
        "Jane Austen wrote it, in 1813.",
        "Charlotte Bronte wrote it in 1847.",
    ),
    (
        "What is the capital of Australia?",
        "Canberra is the capital city of Australia.",
        "The capital is Canberra.",
        "The capital is Sydney.",
    ),
    (
        "How many moons does Mars have?",
        "Mars has two small moons, Phobos and Deimos.",
        "Mars has two moons: Phobos and Deimos.",
        "Mars has no moons at all.",
    ),
]
# The older release and the newer, which answers from its passage a little less often.
RELEASES = ("1.0.0", "1.1.0")
HALLUCINATION_RATE = {"1.0.0": 0.10, "1.1.0": 0.35}
_MODELS = [("openai", "gpt-4o-mini"), ("openai", "gpt-4o"), ("anthropic", "claude-3-5-haiku-latest")]


class DemoTraffic:
    def __init__(self, base_url: str, api_key: str, interval_s: float = 0.5, seed: int = 7) -> None:
        # Two releases side by side, the newer one a little worse, so the release comparison and
        # drift have something to show: one provider (resource) per release, each with its exporter
        # (a provider's shutdown shuts its exporter down).
        self._providers: dict[str, TracerProvider] = {}
        for release in RELEASES:
            provider = TracerProvider(
                resource=Resource.create(
                    {
                        "service.name": "demo-rag-agent",
                        "service.version": release,
                        "deployment.environment.name": "demo",
                    }
                )
            )
            exporter = OTLPSpanExporter(
                endpoint=f"{base_url}/v1/traces", headers={"Authorization": f"Bearer {api_key}"}
            )
            provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=1000))
            self._providers[release] = provider
        self._tracers = {r: p.get_tracer("driftline.demo") for r, p in self._providers.items()}
        self._rng = random.Random(seed)
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="driftline-demo", daemon=True)
        # A conversation: a few turns from one user in one session, so the session view has content.
        self._session = ("", "", 0, RELEASES[0])  # (session id, user id, turns left, release)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # started: `one_trace` may also be driven by hand
            self._thread.join(timeout=5)
        for provider in self._providers.values():
            provider.shutdown()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.one_trace()

    def one_trace(self) -> None:
        rng = self._rng
        question, passage, good, bad = rng.choice(DEMO_FACTS)
        provider, model = rng.choice(_MODELS)
        session, user, left, release = self._session
        if left <= 0:  # a conversation stays on one release
            session, user, left, release = (
                f"demo-session-{rng.getrandbits(32):08x}",
                f"demo-user-{rng.randint(1, 5)}",
                rng.randint(1, 4),
                rng.choice(RELEASES),
            )
        self._session = (session, user, left - 1, release)
        answer = bad if rng.random() < HALLUCINATION_RATE[release] else good
        t = self._tracers[release]
        with t.start_as_current_span("invoke_agent rag-agent") as agent:
            agent.set_attribute("gen_ai.operation.name", "invoke_agent")
            agent.set_attribute("gen_ai.agent.name", "rag-agent")
            agent.set_attribute("session.id", session)
            agent.set_attribute("user.id", user)
            with t.start_as_current_span("retrieval kb", kind=SpanKind.CLIENT) as r:
                r.set_attribute("gen_ai.operation.name", "retrieval")
                r.set_attribute("retrieval.documents.0.document.id", "kb-1")
                r.set_attribute("retrieval.documents.0.document.content", passage)
            if rng.random() < 0.3:
                with t.start_as_current_span("execute_tool web_search", kind=SpanKind.INTERNAL) as tool:
                    tool.set_attribute("gen_ai.operation.name", "execute_tool")
                    tool.set_attribute("gen_ai.tool.name", "web_search")
                    tool.set_attribute("gen_ai.tool.call.arguments", json.dumps({"q": question}))
                    if rng.random() < 0.2:
                        tool.set_status(Status(StatusCode.ERROR, "upstream timeout"))
                        tool.set_attribute("error.type", "TimeoutError")
                    else:
                        tool.set_attribute("gen_ai.tool.call.result", passage)
            with t.start_as_current_span(f"chat {model}", kind=SpanKind.CLIENT) as chat:
                chat.set_attribute("gen_ai.operation.name", "chat")
                chat.set_attribute("gen_ai.provider.name", provider)
                chat.set_attribute("gen_ai.request.model", model)
                chat.set_attribute("gen_ai.response.model", model)
                chat.set_attribute("gen_ai.usage.input_tokens", rng.randint(300, 1200))
                chat.set_attribute("gen_ai.usage.output_tokens", rng.randint(10, 120))
                chat.set_attribute("gen_ai.response.finish_reasons", ["stop"])
                chat.set_attribute(
                    "gen_ai.input.messages",
                    json.dumps(
                        [
                            {
                                "role": "system",
                                "parts": [{"type": "text", "content": f"Answer from: {passage}"}],
                            },
                            {"role": "user", "parts": [{"type": "text", "content": question}]},
                        ]
                    ),
                )
                chat.set_attribute(
                    "gen_ai.output.messages",
                    json.dumps(
                        [
                            {
                                "role": "assistant",
                                "parts": [{"type": "text", "content": answer}],
                                "finish_reason": "stop",
                            }
                        ]
                    ),
                )
