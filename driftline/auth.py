"""API keys -> tenants. Keys are held only as SHA-256 hashes and never logged."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from driftline.collector.errors import Unauthenticated
from driftline.config import hash_api_key

__all__ = ["Authenticator"]


class Authenticator:
    def __init__(self, tenants_by_key_hash: dict[str, str]) -> None:
        self._tenants = dict(tenants_by_key_hash)
        # The web UI's signed sessions: token -> key hash (None: not a valid session).
        self._session_key_hash: Callable[[str], str | None] | None = None

    def accept_sessions(self, key_hash_of: Callable[[str], str | None]) -> None:
        """Also accept `Authorization: Session <token>` (the web UI's pages calling the API)."""
        self._session_key_hash = key_hash_of

    def tenant_for_key_hash(self, key_hash: str) -> str | None:
        return self._tenants.get(key_hash)

    def keyset_secret(self, purpose: bytes) -> bytes:
        """A secret every process holding the same keys derives alike (so API replicas agree) and
        that changes when the keys change; anyone deriving it would need every key's hash."""
        return hmac.new(purpose, "\n".join(sorted(self._tenants)).encode(), hashlib.sha256).digest()

    def add_key(self, key: str, tenant: str) -> None:
        self._tenants[hash_api_key(key)] = tenant

    def tenant_for(self, authorization: str | None) -> str:
        """The tenant of `Authorization: Bearer <key>`; Unauthenticated otherwise."""
        if not authorization:
            raise Unauthenticated("missing API key: send 'Authorization: Bearer <key>'")
        scheme, _, key = authorization.strip().partition(" ")
        if scheme.lower() == "session" and self._session_key_hash is not None:
            key_hash = self._session_key_hash(key.strip())
            tenant = self._tenants.get(key_hash) if key_hash else None
            if tenant is None:
                raise Unauthenticated("session expired or signed out: sign in again")
            return tenant
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthenticated("malformed Authorization header: expected 'Bearer <key>'")
        tenant = self._tenants.get(hash_api_key(key.strip()))
        if tenant is None:
            raise Unauthenticated("unknown API key")
        return tenant
