"""A FAKE OpenAI-compatible judge endpoint for tests: it stands in for the LLM provider, nothing
else. Its replies are scripted by the test:

- `replies`: a queue of replies used first, each a message content (str) or an HTTP status (int,
  answered with an OpenAI-style error body; 429/503 carry `Retry-After: 0`);
- `answer`: what it replies once the queue is empty, a function of the request body (default: a
  fixed grounded verdict);
- `refuse_response_format`: answer 400 to any request carrying `response_format`, as servers
  without structured output do;
- `hold`: keep each request until this many are in flight at once (at most 10 s), as a slow
  provider would; `max_in_flight` says how many ever were.

Every request is recorded (body and Authorization header). Stdlib only, on 127.0.0.1, port 0.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["PROMPT_TOKENS", "FakeJudge", "fake_judge"]

PROMPT_TOKENS = 400
COMPLETION_TOKENS = 20


def _default(_: dict[str, Any]) -> str:
    return '{"verdict": "grounded", "confidence": 0.9}'


class FakeJudge:
    def __init__(self) -> None:
        self.replies: list[str | int] = []
        self.answer: Callable[[dict[str, Any]], str] = _default
        self.refuse_response_format = False
        self.requests: list[dict[str, Any]] = []
        self.hold = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        fake = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake._arrived:
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                    fake._arrived.notify_all()
                    fake._arrived.wait_for(lambda: fake.max_in_flight >= fake.hold, timeout=10)
                    fake.requests.append({"body": body, "auth": self.headers.get("Authorization")})
                    reply: str | int = fake.replies.pop(0) if fake.replies else fake.answer(body)
                    fake.in_flight -= 1
                if fake.refuse_response_format and "response_format" in body:
                    reply = 400
                if isinstance(reply, int):
                    self._send(reply, {"error": {"message": f"fake error {reply}", "type": "fake", "code": reply}})
                    return
                self._send(
                    200,
                    {
                        "id": "x", "object": "chat.completion", "model": body["model"],
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply},
                                     "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                                  "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS},
                    },
                )  # fmt: skip

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                out = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                if status in (429, 503):
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(out)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@contextmanager
def fake_judge() -> Iterator[FakeJudge]:
    f = FakeJudge()
    try:
        yield f
    finally:
        f.close()
