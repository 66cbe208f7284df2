"""The three OpenAI instrumentation libraries the golden tests drive, by name."""

from __future__ import annotations

import warnings
from collections.abc import Callable

from pydantic.warnings import PydanticDeprecatedSince20

from tests.support.otel_capture import Instrumentor

__all__ = ["INSTRUMENTORS"]


def _v2() -> Instrumentor:
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    return OpenAIInstrumentor()  # type: ignore[no-untyped-call]


def _openinference() -> Instrumentor:
    from openinference.instrumentation.openai import OpenAIInstrumentor

    return OpenAIInstrumentor()


def _traceloop() -> Instrumentor:
    with warnings.catch_warnings():
        # Third-party: its pydantic models still use class-based Config (a deprecation warning
        # at import time, and pytest runs with warnings as errors).
        warnings.filterwarnings("ignore", category=PydanticDeprecatedSince20)
        import opentelemetry.instrumentation.openai.v1  # noqa: F401 - imported lazily by instrument()
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

    return OpenAIInstrumentor()


INSTRUMENTORS: dict[str, Callable[[], Instrumentor]] = {
    "openai-v2": _v2,
    "openinference": _openinference,
    "traceloop": _traceloop,
}
