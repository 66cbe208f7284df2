"""A FAKE OpenAI-compatible HTTP server for tests: it fakes the provider, nothing else.

It stands at the outer boundary only (STYLE.md rule 11): the real `openai` client and the real
instrumentation libraries talk to it over loopback HTTP exactly as they would talk to
api.openai.com, so the spans they emit are the ones production would see.

Behaviour (deterministic, chosen by the request):
- POST /v1/chat/completions
  - model starting with ``fail-<status>`` (e.g. ``fail-429``, ``fail-400``): an OpenAI-style JSON
    error body with that status;
  - ``tools`` in the request and no ``tool`` message yet: the model asks for one tool call
    (finish_reason ``tool_calls``);
  - otherwise a text answer (finish_reason ``stop``);
  - ``stream: true`` answers with SSE chunks, plus a final usage-only chunk when
    ``stream_options.include_usage`` is set (what OpenAI does).
  Usage always carries ``prompt_tokens_details.cached_tokens`` and
  ``completion_tokens_details.reasoning_tokens`` so cache and reasoning accounting is exercised.
- POST /v1/embeddings: one small vector per input, with usage.

Stdlib only (ThreadingHTTPServer on 127.0.0.1, port 0) so it starts in milliseconds.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

__all__ = [
    "ANSWER_TEXT",
    "CACHED_TOKENS",
    "COMPLETION_TOKENS",
    "EMBEDDING_TOKENS",
    "PROMPT_TOKENS",
    "REASONING_TOKENS",
    "TOOL_ARGUMENTS",
    "TOOL_CALL_ID",
    "TOOL_NAME",
    "FakeOpenAI",
    "fake_openai",
    "response_model_for",
]

PROMPT_TOKENS: Final = 57
CACHED_TOKENS: Final = 20
COMPLETION_TOKENS: Final = 17
REASONING_TOKENS: Final = 5
EMBEDDING_TOKENS: Final = 8
ANSWER_TEXT: Final = "The capital of France is Paris."
TOOL_NAME: Final = "get_weather"
TOOL_CALL_ID: Final = "call_fake_0001"
TOOL_ARGUMENTS: Final = '{"city": "Paris"}'
_CREATED: Final = 1_760_000_000


def response_model_for(model: str) -> str:
    """The dated model id the fake reports back, as OpenAI does for an alias."""
    return model if model[-2:].isdigit() else f"{model}-2024-07-18"


def _usage() -> dict[str, Any]:
    return {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
        "prompt_tokens_details": {"cached_tokens": CACHED_TOKENS, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": REASONING_TOKENS, "audio_tokens": 0},
    }


def _wants_tool_call(body: dict[str, Any]) -> bool:
    messages: list[dict[str, Any]] = body.get("messages") or []
    return bool(body.get("tools")) and not any(m.get("role") == "tool" for m in messages)


def _tool_call() -> dict[str, Any]:
    return {
        "id": TOOL_CALL_ID,
        "type": "function",
        "function": {"name": TOOL_NAME, "arguments": TOOL_ARGUMENTS},
    }


def _completion(body: dict[str, Any]) -> dict[str, Any]:
    tool = _wants_tool_call(body)
    message: dict[str, Any] = {"role": "assistant", "content": None if tool else ANSWER_TEXT}
    if tool:
        message["tool_calls"] = [_tool_call()]
    return {
        "id": "chatcmpl-fake-1",
        "object": "chat.completion",
        "created": _CREATED,
        "model": response_model_for(body["model"]),
        "system_fingerprint": "fp_fake",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if tool else "stop",
            }
        ],
        "usage": _usage(),
    }


def _stream_chunks(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    model = response_model_for(body["model"])

    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake-stream",
            "object": "chat.completion.chunk",
            "created": _CREATED,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    if _wants_tool_call(body):
        call = _tool_call()
        yield chunk(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "index": 0,
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": TOOL_NAME, "arguments": ""},
                    },
                ],
            },
            None,
        )
        half = len(TOOL_ARGUMENTS) // 2
        for piece in (TOOL_ARGUMENTS[:half], TOOL_ARGUMENTS[half:]):
            yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}, None)
        yield chunk({}, "tool_calls")
    else:
        yield chunk({"role": "assistant", "content": ""}, None)
        for word in ANSWER_TEXT.split(" "):
            piece = word if word == ANSWER_TEXT.split(" ")[0] else " " + word
            yield chunk({"content": piece}, None)
        yield chunk({}, "stop")
    if (body.get("stream_options") or {}).get("include_usage"):
        final = chunk({}, None)
        final["choices"] = []
        final["usage"] = _usage()
        yield final


def _embeddings(body: dict[str, Any]) -> dict[str, Any]:
    raw = body.get("input")
    inputs = raw if isinstance(raw, list) else [raw]
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": [0.1 * (i + 1), 0.2, -0.3]} for i in range(len(inputs))
        ],
        "model": body["model"],
        "usage": {"prompt_tokens": EMBEDDING_TOKENS, "total_tokens": EMBEDDING_TOKENS},
    }


def _error(status: int) -> dict[str, Any]:
    kinds = {429: ("rate_limit_exceeded", "requests"), 400: ("invalid_request_error", "invalid_value")}
    kind, code = kinds.get(status, ("server_error", "server_error"))
    return {"error": {"message": f"fake provider error {status}", "type": kind, "param": None, "code": code}}


@dataclass
class FakeOpenAI:
    """A running fake; `base_url` goes to `openai.OpenAI(base_url=...)`."""

    base_url: str
    requests: list[dict[str, Any]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body: dict[str, Any] = json.loads(self.rfile.read(length) or b"{}")
        self.server.fake.requests.append({"path": self.path, "body": body})
        model = str(body.get("model") or "")
        if model.startswith("fail-"):
            status = int(model.removeprefix("fail-"))
            self._json(status, _error(status))
        elif self.path.endswith("/chat/completions") and body.get("stream"):
            self._sse(_stream_chunks(body))
        elif self.path.endswith("/chat/completions"):
            self._json(200, _completion(body))
        elif self.path.endswith("/embeddings"):
            self._json(200, _embeddings(body))
        else:
            self._json(404, _error(404))

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _sse(self, chunks: Iterator[dict[str, Any]]) -> None:
        data = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeOpenAI) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


@contextmanager
def fake_openai() -> Iterator[FakeOpenAI]:
    """Run the fake provider on a free loopback port for the duration of the block."""
    fake = FakeOpenAI(base_url="")
    server = _Server(fake)
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, name="fake-openai", daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
