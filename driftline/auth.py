"""API keys -> tenants. Keys are held only as SHA-256 hashes and never logged."""

from __future__ import annotations

from driftline.collector.errors import Unauthenticated
from driftline.config import hash_api_key

__all__ = ["Authenticator"]


class Authenticator:
    def __init__(self, tenants_by_key_hash: dict[str, str]) -> None:
        self._tenants = dict(tenants_by_key_hash)

    def add_key(self, key: str, tenant: str) -> None:
        self._tenants[hash_api_key(key)] = tenant

    def tenant_for(self, authorization: str | None) -> str:
        """The tenant of `Authorization: Bearer <key>`; Unauthenticated otherwise."""
        if not authorization:
            raise Unauthenticated("missing API key: send 'Authorization: Bearer <key>'")
        scheme, _, key = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthenticated("malformed Authorization header: expected 'Bearer <key>'")
        tenant = self._tenants.get(hash_api_key(key.strip()))
        if tenant is None:
            raise Unauthenticated("unknown API key")
        return tenant
