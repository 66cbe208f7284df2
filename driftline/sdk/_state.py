"""The SDK's process-wide switch, read by every decorated call.

Tracing is process-wide by nature (OpenTelemetry keeps one global tracer provider too), and the
decorators are applied at import time, long before `init()` runs, so they look the state up on
each call. `enabled` is a plain module attribute on purpose: when it is False a decorated call
costs one attribute read and a direct call of the wrapped function, nothing more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from driftline.sdk.bootstrap import Driftline

__all__ = ["api_target", "atexit_registered", "capture_content", "enabled", "handle", "tracer"]

enabled: bool = False
capture_content: bool = True
tracer: Tracer | None = None
handle: Driftline | None = None  # the live setup, which flush()/shutdown() act on
atexit_registered: bool = False
# Where `driftline.feedback()` posts: the collector's HTTP base URL and the headers `init()` was
# given (the API key among them). Kept here, not on the handle, so the handle's repr shows no secret.
api_target: tuple[str, dict[str, str]] = ("http://localhost:4318", {})
