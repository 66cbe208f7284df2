"""Browser sign-in: an API key typed once into the login form becomes a signed session token.

The token names the key only by its hash, with an expiry and a form token, signed with a secret
derived from the configured keys (`Authenticator.keyset_secret`): every API replica with the same
keys accepts it, no process keeps the key itself, and removing a key ends its sessions at once.
The browser holds the token in an HttpOnly, SameSite=Strict cookie; pages pass it to the API as
`Authorization: Session <token>`. Signing out deletes the cookie and refuses the token in this
process until it expires (another replica would accept a copy until then: the expiry bounds it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from driftline.auth import Authenticator
from driftline.config import hash_api_key

__all__ = ["COOKIE", "Session", "SessionCodec"]

COOKIE = "driftline_session"
_PURPOSE = b"driftline web session v1"


@dataclass(frozen=True)
class Session:
    token: str  # the credential the pages send to the API
    tenant: str
    csrf: str  # echoed by every form: a second guard beside SameSite for POSTs


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionCodec:
    def __init__(self, auth: Authenticator, ttl_s: float = 12 * 3600, clock: Callable[[], float] = time.time) -> None:
        self._auth = auth
        self._ttl = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._revoked: dict[str, float] = {}  # token digest -> its expiry
        auth.accept_sessions(self.key_hash_of)

    def issue(self, key: str) -> str:
        """A token for a valid API key; Unauthenticated otherwise."""
        self._auth.tenant_for(f"Bearer {key}")
        payload = {
            "h": hash_api_key(key),
            "e": int(self._clock() + self._ttl),
            "c": secrets.token_urlsafe(12),
        }
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{body}.{self._mac(body)}"

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._auth.keyset_secret(_PURPOSE), body.encode(), hashlib.sha256).digest())

    def _payload(self, token: str) -> dict[str, object] | None:
        body, _, mac = token.partition(".")
        if not body or not mac or not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            payload = json.loads(_unb64(body))
        except ValueError:
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("e"), int) or payload["e"] < self._clock():
            return None
        with self._lock:
            if hashlib.sha256(token.encode()).hexdigest() in self._revoked:
                return None
        return payload

    def key_hash_of(self, token: str) -> str | None:
        payload = self._payload(token)
        return str(payload["h"]) if payload else None

    def read(self, token: str | None) -> Session | None:
        payload = self._payload(token) if token else None
        if payload is None or token is None:
            return None
        tenant = self._auth.tenant_for_key_hash(str(payload["h"]))
        return Session(token, tenant, str(payload["c"])) if tenant is not None else None

    def revoke(self, token: str | None) -> None:
        payload = self._payload(token) if token else None
        if payload is None or token is None:
            return
        now = self._clock()
        with self._lock:
            self._revoked = {k: e for k, e in self._revoked.items() if e > now}  # expired ones go
            self._revoked[hashlib.sha256(token.encode()).hexdigest()] = float(payload["e"])  # type: ignore[arg-type]
