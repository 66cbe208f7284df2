"""Who may call a route: the FastAPI dependency every API area resolves its caller with."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import HTTPException, Request

from driftline.auth import Authenticator, Principal
from driftline.collector.errors import Forbidden, Unauthenticated

__all__ = ["principal"]


def principal(auth: Authenticator, *roles: str) -> Callable[[Request], Principal]:
    """A dependency giving the request's principal when its key holds one of `roles`: 401 (with
    WWW-Authenticate) without a valid key, 403 without the role."""

    def who(request: Request) -> Principal:
        try:
            return auth.require(request.headers.get("authorization"), *roles)
        except Forbidden as e:
            raise HTTPException(403, str(e)) from None
        except Unauthenticated as e:
            raise HTTPException(401, str(e), headers={"WWW-Authenticate": "Bearer"}) from None

    return who
