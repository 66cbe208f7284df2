"""One chat-completions call to an OpenAI-compatible judge endpoint: a timeout on every attempt,
bounded retries with exponential backoff and jitter for transient failures only (timeouts, lost
connections, 429, 5xx; a `Retry-After` the endpoint sends is honoured up to a cap), and the reply's
shape asked for as structured output where the endpoint supports it.

Structured output follows OpenAI's `response_format` (`json_schema` with `strict`, or
`json_object`). Many OpenAI-compatible servers refuse a `response_format` they do not know with
400: the call is then made once more without it, and this client stops sending it (logged once),
so such an endpoint still works, with the schema in the prompt only.

Retries use tenacity (its sleep is injectable: tests do not wait).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

__all__ = ["JudgeCallError", "JudgeClient", "JudgeReply"]

log = logging.getLogger(__name__)

_RETRY_AFTER_CAP_S = 30.0


class JudgeCallError(Exception):
    """The endpoint failed; `transient` ones were retried up to the limit before this was raised."""

    def __init__(
        self, message: str, *, transient: bool, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status  # the HTTP status, when the endpoint answered
        self.retry_after = retry_after


@dataclass(frozen=True)
class JudgeReply:
    content: str
    input_tokens: int
    output_tokens: int
    structured: bool  # the reply was asked for with response_format


def _retry_after(r: httpx.Response) -> float | None:
    try:
        return min(_RETRY_AFTER_CAP_S, max(0.0, float(r.headers.get("retry-after", ""))))
    except ValueError:
        return None


class JudgeClient:
    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str = "",
        timeout_s: float = 30.0,
        max_retries: int = 3,
        structured_output: Literal["json_schema", "json_object", "none"] = "json_schema",
        schema: dict[str, Any] | None = None,
        temperature: float = 0.0,
        max_tokens: int = 400,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[], None] = lambda: None,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = http or httpx.Client(timeout=timeout_s)
        self._timeout = timeout_s
        self._retries = max_retries
        self._mode = structured_output
        self._schema = schema
        self._temperature = temperature
        self._max_tokens = max_tokens
        self._sleep = sleep
        self._on_retry = on_retry

    def _response_format(self) -> dict[str, Any] | None:
        if self._mode == "json_schema" and self._schema is not None:
            return {"type": "json_schema", "json_schema": {"name": "verdict", "strict": True, "schema": self._schema}}
        if self._mode == "json_object":
            return {"type": "json_object"}
        return None

    def complete(self, messages: list[dict[str, str]], on_retry: Callable[[], None] | None = None) -> JudgeReply:
        """The reply to `messages`; raises JudgeCallError once retries are spent or on a
        permanent failure (4xx other than 429, a body that is not a chat completion). `on_retry`,
        if given, hears of this call's retries instead of the client's own callback."""
        fmt = self._response_format()
        try:
            return self._with_retries(messages, fmt, on_retry or self._on_retry)
        except JudgeCallError as e:
            if fmt is None or e.status != 400:
                raise
        log.warning("judge endpoint %s refused response_format %s (400); asking without it from now on",
                    self.url, fmt["type"])  # fmt: skip
        self._mode = "none"
        return self._with_retries(messages, None, on_retry or self._on_retry)

    def _with_retries(
        self, messages: list[dict[str, str]], fmt: dict[str, Any] | None, on_retry: Callable[[], None]
    ) -> JudgeReply:
        def wait(state: RetryCallState) -> float:
            backoff = wait_exponential_jitter(multiplier=0.5, max=8.0)(state)
            exc = state.outcome.exception() if state.outcome else None
            after = exc.retry_after if isinstance(exc, JudgeCallError) else None
            return max(backoff, after or 0.0)

        def before_sleep(_: RetryCallState) -> None:
            on_retry()

        retrying = Retrying(
            stop=stop_after_attempt(self._retries + 1),
            wait=wait,
            retry=retry_if_exception(lambda e: isinstance(e, JudgeCallError) and e.transient),
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(self._once, messages, fmt)

    def _once(self, messages: list[dict[str, str]], fmt: dict[str, Any] | None) -> JudgeReply:
        body: dict[str, Any] = {
            "model": self.model,
            "temperature": self._temperature,
            "max_tokens": self._max_tokens,
            "messages": messages,
        }
        if fmt is not None:
            body["response_format"] = fmt
        try:
            r = self._http.post(self.url, json=body, headers=self._headers, timeout=self._timeout)
        except httpx.TimeoutException as e:
            raise JudgeCallError(f"timeout after {self._timeout:g} s: {type(e).__name__}", transient=True) from e
        except httpx.TransportError as e:
            raise JudgeCallError(f"connection failed: {type(e).__name__}", transient=True) from e
        if r.status_code == 429 or r.status_code >= 500:
            raise JudgeCallError(
                f"HTTP {r.status_code}", transient=True, status=r.status_code, retry_after=_retry_after(r)
            )
        if r.status_code >= 400:
            raise JudgeCallError(f"HTTP {r.status_code}", transient=False, status=r.status_code)
        try:
            doc = r.json()
            content = doc["choices"][0]["message"]["content"]
            usage = doc.get("usage") or {}
            return JudgeReply(
                content=str(content or ""),
                input_tokens=int(usage.get("prompt_tokens") or 0),
                output_tokens=int(usage.get("completion_tokens") or 0),
                structured=fmt is not None,
            )
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise JudgeCallError(f"not a chat completion: {type(e).__name__}", transient=False) from e
