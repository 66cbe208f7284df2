"""LLM-judge hallucination scorer on any OpenAI-compatible chat completions endpoint.

Cheap first: where the offline groundedness score is confident, the judge is not called, and a
verdict already in the judge cache (same version, same prompt) is not asked again. Every call is
metered against a per-tenant hourly budget in tokens and USD; once spent, the judge stops (and
says so in a metric and once in the log) until the next hour. Calls go through the judge client
(scorers/judge_client.py): a timeout, bounded retries with backoff, the verdict's JSON schema as
structured output where the endpoint takes it. A reply that is not the JSON verdict asked for
becomes an `error` score, never a crash. The judge's own token use is recorded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

import httpx

from driftline.pricing import Pricer
from driftline.scorers.base import LLM_OPERATIONS, Score, SpanRow, TraceContext
from driftline.scorers.grounding.evidence import is_empty_answer
from driftline.scorers.hallucination import OfflineHallucinationScorer, grounding_context
from driftline.scorers.judge_cache import JudgeCache, Verdict
from driftline.scorers.judge_client import JudgeCallError, JudgeClient, JudgeReply
from driftline.scorers.metrics import ScorerMetrics

__all__ = ["DEFAULT_PROMPT", "NO_CONTEXT", "HallucinationJudgeScorer", "HourlyBudget", "JudgeConfig", "Reservation"]

log = logging.getLogger(__name__)

_MAX_REPLY_TOKENS = 200  # the verdict is one short JSON object

# What grounding_context looks for; instructions (a system prompt without documents) are not evidence.
NO_CONTEXT = (
    "no evidence in the trace: no retrieved documents, tool results or documents pasted into the prompt "
    "(instructions are not evidence)"
)

DEFAULT_PROMPT = """You check whether an AI assistant's answer is supported by the context it was given.
Say "hallucinated" if the answer states anything the context does not support (a wrong entity,
number, date, negation or an added fact); say "grounded" if every claim is supported.

Context:
<<<
{context}
>>>

Question:
<<<
{question}
>>>

Answer:
<<<
{answer}
>>>

Reply with JSON only: {{"verdict": "grounded" | "hallucinated", "confidence": 0.0-1.0, "reason": "<one sentence>"}}"""


@dataclass(frozen=True)
class JudgeConfig:
    base_url: str
    model: str
    api_key: str = ""
    provider: str = "openai"  # for the price lookup of the judge's own tokens
    prompt: str = DEFAULT_PROMPT
    budget_tokens_per_hour: int = 200_000
    budget_usd_per_hour: float = 1.0
    timeout_s: float = 30.0
    max_retries: int = 3  # transient failures (timeout, 429, 5xx), with exponential backoff
    max_context_chars: int = 24_000
    prefilter: bool = True  # skip the judge where the offline score is confident
    concurrency: int = 1  # calls in flight at once: a scoring run judges this many spans together


class HourlyBudget:
    """Tokens and USD per tenant per clock hour."""

    def __init__(self, tokens: int, usd: float, clock: Callable[[], datetime]) -> None:
        self.tokens, self.usd, self._clock = tokens, usd, clock
        self._used: dict[str, tuple[str, int, float]] = {}  # tenant -> (hour, tokens, usd)
        self._lock = threading.Lock()

    def _hour(self) -> str:
        return self._clock().strftime("%Y-%m-%dT%H")

    def _spent(self, tenant: str, now: str) -> tuple[int, float]:
        """Tokens and USD the tenant has spent (or holds) in hour `now`; the caller holds the lock."""
        hour, tok, usd = self._used.get(tenant, (now, 0, 0.0))
        return (tok, usd) if hour == now else (0, 0.0)

    def remaining(self, tenant: str) -> tuple[int, float]:
        with self._lock:
            tok, usd = self._spent(tenant, self._hour())
            return self.tokens - tok, self.usd - usd

    def carry_from(self, other: HourlyBudget) -> None:
        """Take over what `other` has spent (a judge rebuilt for an edit that changes no verdict
        keeps its spending of this hour: editing is no way round the budget)."""
        with other._lock:
            used = dict(other._used)
        with self._lock:
            self._used = used

    def reserve(self, tenant: str, tokens: int, usd: float) -> Reservation | None:
        """Hold a call's estimate (`tokens` / `usd`) if it still fits, else None. Checking and
        holding are one step, so calls in flight at once never overrun the budget together."""
        with self._lock:
            now = self._hour()
            tok, spent = self._spent(tenant, now)
            if self.tokens - tok < tokens or self.usd - spent < usd:
                return None
            self._used[tenant] = (now, tok + tokens, spent + usd)
            return Reservation(tenant, now, tokens, usd)

    def settle(self, held: Reservation, tokens: int, usd: float) -> None:
        """Replace a reservation by what the call cost (0 and 0.0 when it failed)."""
        with self._lock:
            now = self._hour()
            tok, spent = self._spent(held.tenant, now)
            if now == held.hour:  # in a later hour the reservation went with its hour's spending
                tok, spent = tok - held.tokens, spent - held.usd
            self._used[held.tenant] = (now, tok + tokens, spent + usd)


@dataclass(frozen=True)
class Reservation:
    """A call's estimate held against a tenant's budget of one clock hour."""

    tenant: str
    hour: str
    tokens: int
    usd: float


_VERDICT_SCHEMA = {
    "type": "object",
    "properties": {
        "verdict": {"type": "string", "enum": ["grounded", "hallucinated"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "reason": {"type": "string"},
    },
    "required": ["verdict", "confidence", "reason"],
    "additionalProperties": False,
}


class HallucinationJudgeScorer:
    name: ClassVar[str] = "hallucination_judge"
    version: ClassVar[str] = "2"  # 2: asked with the verdict's JSON schema as structured output
    needs_trace: ClassVar[bool] = True

    def __init__(
        self,
        config: JudgeConfig,
        metrics: ScorerMetrics,
        offline: OfflineHallucinationScorer | None = None,
        pricer: Pricer | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        http: httpx.Client | None = None,
        cache: JudgeCache | None = None,
    ) -> None:
        self.cfg = config
        self.m = metrics
        self.offline = offline
        self.pricer = pricer or Pricer()
        self.cache = cache
        self.budget = HourlyBudget(config.budget_tokens_per_hour, config.budget_usd_per_hour, clock)
        self.client = JudgeClient(
            base_url=config.base_url, model=config.model, api_key=config.api_key, timeout_s=config.timeout_s,
            max_retries=config.max_retries, schema=_VERDICT_SCHEMA, max_tokens=_MAX_REPLY_TOKENS, http=http,
        )  # fmt: skip
        self._told: set[tuple[str, str]] = set()  # (tenant, hour) already logged as exhausted
        self._told_lock = threading.Lock()
        self._offline_lock = threading.Lock()
        self._clock = clock
        self.concurrency = config.concurrency  # the runner's worker threads for this scorer

    def applies(self, span: SpanRow) -> bool:
        # As the offline scorer: an empty answer, or only a role tag ("assistant: ", a tool-calling
        # step), says nothing that could be unsupported; asking a paid judge about it is waste.
        return span.get("operation") in LLM_OPERATIONS and not is_empty_answer(str(span.get("output_text") or ""))

    def score(self, span: SpanRow, trace: TraceContext) -> Score | None:
        tenant = str(span.get("tenant", ""))
        context = grounding_context(span, trace)[: self.cfg.max_context_chars]
        if not context:
            return Score(0.5, "no_context", NO_CONTEXT)
        if self.offline is not None and self.cfg.prefilter:
            with self._offline_lock:  # CPU-bound anyway, and its context indexes fill in lazily
                pre = self.offline.score(span, trace)
            if pre is not None and pre.details.get("confident"):
                self.m.judge_calls.labels(self.name, tenant, "skipped_confident").inc()
                return Score(pre.value, pre.label, f"offline score confident; judge not called. {pre.explanation}",
                             {"source": "offline"})  # fmt: skip
        prompt = self.cfg.prompt.format(
            context=context, question=str(span.get("input_text") or ""), answer=str(span["output_text"])
        )
        h = hashlib.sha256(prompt.encode()).hexdigest()
        if self.cache is not None and (hit := self.cache.get(tenant, self.name, self.version, h)) is not None:
            self.m.judge_calls.labels(self.name, tenant, "cached").inc()
            return Score(hit.value, hit.label, hit.reasoning, {"source": "judge", "model": self.cfg.model,
                                                               "prompt_sha256": h, "cached": True})  # fmt: skip
        # ~4 characters a token, plus room for the short JSON verdict: a cautious estimate.
        est_tokens = len(prompt) // 4 + _MAX_REPLY_TOKENS
        est_usd, _ = self.pricer.price(self.cfg.provider, self.cfg.model, len(prompt) // 4, _MAX_REPLY_TOKENS)
        held = self.budget.reserve(tenant, est_tokens, est_usd or 0.0)
        if held is None:
            self.m.judge_calls.labels(self.name, tenant, "over_budget").inc()
            self.m.judge_exhausted.labels(self.name, tenant).set(1)
            key = (tenant, self._clock().strftime("%Y-%m-%dT%H"))
            with self._told_lock:
                first = key not in self._told
                self._told.add(key)
            if first:
                log.warning("judge budget for tenant %s is spent for this hour; judge paused until the next hour",
                            tenant)  # fmt: skip
            return None
        self.m.judge_exhausted.labels(self.name, tenant).set(0)
        try:
            reply = self.client.complete(
                [{"role": "user", "content": prompt}], on_retry=self.m.judge_retries.labels(self.name, tenant).inc
            )
        except JudgeCallError:
            # Retries spent or a permanent failure: raise so the span stays unscored and is retried.
            self.budget.settle(held, 0, 0.0)
            self.m.judge_calls.labels(self.name, tenant, "error").inc()
            raise
        except BaseException:  # whatever else stopped the call: it cost nothing we know of
            self.budget.settle(held, 0, 0.0)
            raise
        self._account(held, reply)
        s = self._verdict(tenant, reply.content)
        if self.cache is not None and s.label != "error":
            self.cache.put(tenant, self.name, self.version, h, Verdict(s.value, s.label, s.explanation))
        return Score(s.value, s.label, s.explanation, {**s.details, "prompt_sha256": h, "cached": False})

    def _account(self, held: Reservation, reply: JudgeReply) -> None:
        tenant, tin, tout = held.tenant, reply.input_tokens, reply.output_tokens
        usd, _ = self.pricer.price(self.cfg.provider, self.cfg.model, tin, tout)
        self.budget.settle(held, tin + tout, usd or 0.0)
        self.m.judge_tokens.labels(self.name, tenant, "input").inc(tin)
        self.m.judge_tokens.labels(self.name, tenant, "output").inc(tout)
        if usd:
            self.m.judge_spend.labels(self.name, tenant).inc(usd)

    def _verdict(self, tenant: str, content: str) -> Score:
        try:
            text = str(content).strip()
            if text.startswith("```"):  # models like to fence JSON
                text = text.strip("`").removeprefix("json").strip()
            doc = json.loads(text)
            verdict = doc["verdict"]
            if verdict not in ("grounded", "hallucinated"):
                raise ValueError(f"verdict {verdict!r}")
            conf = float(doc.get("confidence", 1.0))
            if not 0.0 <= conf <= 1.0:
                raise ValueError(f"confidence {conf}")
        except (KeyError, IndexError, TypeError, ValueError) as e:
            self.m.judge_calls.labels(self.name, tenant, "malformed").inc()
            return Score(math.nan, "error", f"malformed judge reply: {type(e).__name__}: {str(e)[:160]}",
                         {"source": "judge"})  # fmt: skip
        self.m.judge_calls.labels(self.name, tenant, "ok").inc()
        value = conf if verdict == "hallucinated" else 1.0 - conf
        return Score(value, verdict, str(doc.get("reason", ""))[:500], {"source": "judge", "model": self.cfg.model})
