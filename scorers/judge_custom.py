"""Custom LLM judges declared in configuration (driftline/judge_config.py) as scorers.

For each candidate span: render the prompt from the span and its trace, hash the rendered
messages (the input hash), look the verdict up in the judge cache under (judge version, input
hash), and only on a miss ask the endpoint, within the tenant's hourly budget. The score carries
the judge's reasoning as its explanation and, in its details, the rendered prompt's hash and the
judge version, which the trace view shows beside it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from driftline.judge_config import JudgeDefinition, judge_template_env
from driftline.pricing import Pricer
from driftline.scorers.base import LLM_OPERATIONS, Score, SpanRow, TraceContext
from driftline.scorers.grounding.evidence import is_empty_answer
from driftline.scorers.hallucination import grounding_context
from driftline.scorers.judge import HourlyBudget, Reservation
from driftline.scorers.judge_cache import JudgeCache, Verdict
from driftline.scorers.judge_client import JudgeCallError, JudgeClient, JudgeReply
from driftline.scorers.metrics import ScorerMetrics

__all__ = ["CustomJudgeScorer", "JudgeCache", "JudgeSpec", "Verdict", "parse_verdict"]

log = logging.getLogger(__name__)

_MAX_REASONING = 2000


@dataclass(frozen=True)
class JudgeSpec:
    """A judge definition with its effective endpoint, model and key (settings fill the blanks)."""

    name: str
    definition: JudgeDefinition
    base_url: str
    model: str
    api_key: str

    @property
    def version(self) -> str:
        return self.definition.version(self.base_url, self.model)


def parse_verdict(text: str, d: JudgeDefinition) -> Verdict:
    """The reply as the schema asks, or ValueError saying what is wrong with it."""
    text = text.strip()
    if text.startswith("```"):  # a model that was not asked with response_format likes to fence JSON
        text = text.strip("`").removeprefix("json").strip()
    doc = json.loads(text)
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    label = doc.get("label")
    if label not in d.output.labels:
        raise ValueError(f"label {label!r} not one of {d.output.labels}")
    score = doc.get("score")
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        raise ValueError(f"score {score!r} is not a number")
    if not d.output.score_min <= score <= d.output.score_max:
        raise ValueError(f"score {score} outside [{d.output.score_min:g}, {d.output.score_max:g}]")
    return Verdict(float(score), str(label), str(doc.get("reasoning") or "")[:_MAX_REASONING])


def _metadata(span: SpanRow) -> dict[str, Any]:
    attrs = span.get("attributes") or {}
    return {
        "service": span.get("service") or "",
        "model": span.get("response_model") or span.get("request_model") or "",
        "release": span.get("release") or "",
        "environment": span.get("environment") or "",
        "operation": span.get("operation") or "",
        "name": span.get("name") or "",
        "attributes": dict(attrs) if isinstance(attrs, Mapping) else {},
    }


class CustomJudgeScorer:
    """A scorer per judge definition; `name` is the definition's, `version` its hash."""

    needs_trace = True

    def __init__(
        self,
        spec: JudgeSpec,
        metrics: ScorerMetrics,
        cache: JudgeCache | None = None,
        pricer: Pricer | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        client: JudgeClient | None = None,
    ) -> None:
        self.spec = spec
        self.d = spec.definition
        self.m = metrics
        self.cache = cache
        self.pricer = pricer or Pricer()
        self._clock = clock
        self._name, self._version = spec.name, spec.version
        self.budget = HourlyBudget(self.d.budget_tokens_per_hour, self.d.budget_usd_per_hour, clock)
        self.client = client or JudgeClient(
            base_url=spec.base_url, model=spec.model, api_key=spec.api_key, timeout_s=self.d.timeout_s,
            max_retries=self.d.max_retries, structured_output=self.d.structured_output,
            schema=self.d.output.json_schema(), temperature=self.d.temperature, max_tokens=self.d.max_reply_tokens,
        )  # fmt: skip
        env = judge_template_env()
        self._prompt = env.from_string(self.d.prompt)
        self._system = env.from_string(self.d.system) if self.d.system else None
        self._told: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self.concurrency = self.d.concurrency  # the runner's worker threads for this judge

    @property
    def name(self) -> str:
        return self._name

    @property
    def version(self) -> str:
        return self._version

    def applies(self, span: SpanRow) -> bool:
        # An empty answer or a bare role tag ("assistant: ", a tool-calling step) has nothing to judge.
        return span.get("operation") in LLM_OPERATIONS and not is_empty_answer(str(span.get("output_text") or ""))

    # -- what the judge sees ----------------------------------------------------------------
    def variables(self, span: SpanRow, trace: TraceContext) -> dict[str, Any]:
        meta = _metadata(span)
        return {
            "input": str(span.get("input_text") or ""),
            "output": str(span.get("output_text") or ""),
            "context": grounding_context(span, trace),
            "expected": str(meta["attributes"].get(self.d.expected_attribute, "")),
            "metadata": meta,
        }

    def messages(self, variables: Mapping[str, Any]) -> list[dict[str, str]]:
        out = []
        if self._system is not None:
            out.append({"role": "system", "content": self._system.render(**variables)})
        out.append({"role": "user", "content": self._prompt.render(**variables)})
        return out

    @staticmethod
    def input_hash(messages: list[dict[str, str]]) -> str:
        return hashlib.sha256(json.dumps(messages, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    # -- scoring --------------------------------------------------------------------------
    def score(self, span: SpanRow, trace: TraceContext) -> Score | None:
        return self.judge(str(span.get("tenant", "")), self.variables(span, trace))

    def judge(self, tenant: str, variables: Mapping[str, Any], use_cache: bool = True) -> Score | None:
        """The verdict on these template variables; None when the budget is spent. `use_cache`
        False asks the endpoint whatever the cache holds (the canary: it watches the judge)."""
        messages = self.messages(variables)
        h = self.input_hash(messages)
        details: dict[str, Any] = {"source": "judge", "judge_version": self._version, "prompt_sha256": h,
                                   "model": self.spec.model}  # fmt: skip
        if use_cache and self.cache is not None:
            hit = self.cache.get(tenant, self._name, self._version, h)
            if hit is not None:
                self.m.judge_calls.labels(self._name, tenant, "cached").inc()
                return Score(hit.value, hit.label, hit.reasoning, {**details, "cached": True})
        chars = sum(len(m["content"]) for m in messages)
        est_in = chars // 4 + 8 * len(messages)  # ~4 characters a token: a cautious estimate
        est_usd, _ = self.pricer.price(self.d.provider, self.spec.model, est_in, self.d.max_reply_tokens)
        held = self.budget.reserve(tenant, est_in + self.d.max_reply_tokens, est_usd or 0.0)
        if held is None:
            self._over_budget(tenant)
            return None
        self.m.judge_exhausted.labels(self._name, tenant).set(0)
        try:
            reply = self.client.complete(messages, on_retry=self.m.judge_retries.labels(self._name, tenant).inc)
        except JudgeCallError:
            self.budget.settle(held, 0, 0.0)
            self.m.judge_calls.labels(self._name, tenant, "error").inc()
            raise  # the span stays unscored and is retried by a later run
        except BaseException:  # whatever else stopped the call: it cost nothing we know of
            self.budget.settle(held, 0, 0.0)
            raise
        self._account(held, reply)
        try:
            v = parse_verdict(reply.content, self.d)
        except ValueError as e:  # json.JSONDecodeError is a ValueError
            self.m.judge_calls.labels(self._name, tenant, "malformed").inc()
            return Score(math.nan, "error", f"malformed judge reply: {type(e).__name__}: {str(e)[:160]}",
                         {**details, "cached": False})  # fmt: skip
        self.m.judge_calls.labels(self._name, tenant, "ok").inc()
        if use_cache and self.cache is not None:
            self.cache.put(tenant, self._name, self._version, h, v)
        return Score(v.value, v.label, v.reasoning, {**details, "cached": False, "structured": reply.structured})

    def _over_budget(self, tenant: str) -> None:
        self.m.judge_calls.labels(self._name, tenant, "over_budget").inc()
        self.m.judge_exhausted.labels(self._name, tenant).set(1)
        key = (tenant, self._clock().strftime("%Y-%m-%dT%H"))
        with self._lock:
            first = key not in self._told
            self._told.add(key)
        if first:
            log.warning("judge %s: budget for tenant %s is spent for this hour; paused until the next hour",
                        self._name, tenant)  # fmt: skip

    def _account(self, held: Reservation, reply: JudgeReply) -> None:
        tenant = held.tenant
        usd, _ = self.pricer.price(self.d.provider, self.spec.model, reply.input_tokens, reply.output_tokens)
        self.budget.settle(held, reply.input_tokens + reply.output_tokens, usd or 0.0)
        self.m.judge_tokens.labels(self._name, tenant, "input").inc(reply.input_tokens)
        self.m.judge_tokens.labels(self._name, tenant, "output").inc(reply.output_tokens)
        if usd:
            self.m.judge_spend.labels(self._name, tenant).inc(usd)
