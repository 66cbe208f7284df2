"""API keys -> principals: a tenant, roles and a reviewer name. Keys are held only as SHA-256
hashes and never logged. Every route asks for the role it needs: OTLP export needs ingest, the
read API and UI read, feedback ingest or review, backfills admin (which holds every role)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from driftline.collector.errors import Forbidden, Unauthenticated
from driftline.config import DEFAULT_ROLES, ROLES, KeyGrant, hash_api_key

__all__ = ["ROLES", "Authenticator", "Forbidden", "Principal", "Unauthenticated"]


@dataclass(frozen=True)
class Principal:
    tenant: str
    roles: frozenset[str] = field(default=DEFAULT_ROLES)
    name: str = ""

    def can(self, role: str) -> bool:
        return role in self.roles or "admin" in self.roles


def _default_name(key_hash: str) -> str:
    """The reviewer name of a key configured without one: stable, and no secret (a few hex digits
    of the key's hash)."""
    return f"key-{key_hash[:8]}"


class Authenticator:
    def __init__(self, grants: Mapping[str, KeyGrant | str]) -> None:
        """`grants`: key hash -> KeyGrant, or -> tenant name (default roles)."""
        self._keys: dict[str, Principal] = {}
        for h, g in grants.items():
            grant = KeyGrant(tenant=g) if isinstance(g, str) else g
            self._keys[h] = Principal(grant.tenant, grant.roles, grant.name or _default_name(h))
        # The web UI's signed sessions: token -> key hash (None: not a valid session).
        self._session_key_hash: Callable[[str], str | None] | None = None

    def accept_sessions(self, key_hash_of: Callable[[str], str | None]) -> None:
        """Also accept `Authorization: Session <token>` (the web UI's pages calling the API)."""
        self._session_key_hash = key_hash_of

    def tenant_for_key_hash(self, key_hash: str) -> str | None:
        principal = self._keys.get(key_hash)
        return principal.tenant if principal is not None else None

    def keyset_secret(self, purpose: bytes) -> bytes:
        """A secret every process holding the same keys derives alike (so API replicas agree) and
        that changes when the keys change; anyone deriving it would need every key's hash."""
        return hmac.new(purpose, "\n".join(sorted(self._keys)).encode(), hashlib.sha256).digest()

    def add_key(self, key: str, tenant: str, roles: frozenset[str] = DEFAULT_ROLES, name: str = "") -> None:
        h = hash_api_key(key)
        self._keys[h] = Principal(tenant, roles, name or _default_name(h))

    def authenticate(self, authorization: str | None) -> Principal:
        """Who sends `Authorization: Bearer <key>` (or a UI session); Unauthenticated (401) otherwise."""
        if not authorization:
            raise Unauthenticated("missing API key: send 'Authorization: Bearer <key>'")
        scheme, _, key = authorization.strip().partition(" ")
        if scheme.lower() == "session" and self._session_key_hash is not None:
            key_hash = self._session_key_hash(key.strip())
            principal = self._keys.get(key_hash) if key_hash else None
            if principal is None:
                raise Unauthenticated("session expired or signed out: sign in again")
            return principal
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthenticated("malformed Authorization header: expected 'Bearer <key>'")
        principal = self._keys.get(hash_api_key(key.strip()))
        if principal is None:
            raise Unauthenticated("unknown API key")
        return principal

    def require(self, authorization: str | None, *roles: str) -> Principal:
        """The principal, if it holds one of `roles`; Forbidden (403) if it holds none."""
        principal = self.authenticate(authorization)
        if not any(principal.can(r) for r in roles):
            raise Forbidden(f"this API key lacks the role {' or '.join(roles)}")
        return principal

    def tenant_for(self, authorization: str | None, *roles: str) -> str:
        """The tenant of a key holding one of `roles` (default: read)."""
        return self.require(authorization, *(roles or ("read",))).tenant
