"""Browser sign-in: an API key typed once into the login form, kept on the server.

The browser holds only a random session id in an HttpOnly, SameSite=Strict cookie; the key itself
never reaches a URL, a log or the browser's storage, and logging out forgets it on the server.
Sessions live in the API process (bounded, with an idle timeout): several API replicas behind one
address need sticky sessions, and a restart signs everyone out.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["COOKIE", "Session", "SessionStore"]

COOKIE = "driftline_session"


@dataclass(frozen=True)
class Session:
    key: str
    tenant: str
    csrf: str  # echoed by every form: a second guard beside SameSite for POSTs


class SessionStore:
    def __init__(
        self, idle_timeout_s: float = 12 * 3600, capacity: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._idle = idle_timeout_s
        self._capacity = capacity
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: OrderedDict[str, tuple[Session, float]] = OrderedDict()

    def create(self, key: str, tenant: str) -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[sid] = (Session(key, tenant, secrets.token_urlsafe(16)), self._clock())
            while len(self._sessions) > self._capacity:  # the least recently used goes first
                self._sessions.popitem(last=False)
        return sid

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        now = self._clock()
        with self._lock:
            hit = self._sessions.get(sid)
            if hit is None:
                return None
            session, seen = hit
            if now - seen > self._idle:
                del self._sessions[sid]
                return None
            self._sessions[sid] = (session, now)
            self._sessions.move_to_end(sid)
            return session

    def drop(self, sid: str | None) -> None:
        if sid:
            with self._lock:
                self._sessions.pop(sid, None)

    def __len__(self) -> int:
        return len(self._sessions)
