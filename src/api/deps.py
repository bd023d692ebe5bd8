"""FastAPI dependencies: the process runtime and the authenticated caller.

Every ``/v1`` route depends on :func:`require_key`: no route that reads tickets or changes state is
reachable without a valid, unrevoked API key (``Authorization: Bearer trg_...``).
"""

from __future__ import annotations

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from src.api.auth import Principal, bearer_token, split_key, verify_secret
from src.api.runtime import Runtime
from src.audit.errors import AuditUnavailable

_bearer = HTTPBearer(auto_error=False, description="An API key from `python -m src.api.keys create`")


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def _unauthorized(why: str) -> HTTPException:
    return HTTPException(status_code=401, detail=why, headers={"WWW-Authenticate": "Bearer"})


def require_key(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    rt: Runtime = Depends(get_runtime),
) -> Principal:
    token = bearer_token(request.headers.get("authorization"))
    if credentials is None or token is None:
        raise _unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    return principal_for_token(rt, token)


def principal_for_token(rt: Runtime, token: str) -> Principal:
    """Verify an API key (also used by the board's sign-in); 401 when invalid or revoked."""
    parts = split_key(token)
    if parts is None:
        raise _unauthorized("invalid API key")
    key_id, secret = parts
    cache = rt.key_cache
    cached = cache.get(token, rt.settings.api_key_cache_s)
    if cached is not None:
        return cached
    try:
        row = rt.store.get_key(key_id)
    except AuditUnavailable:
        stale = cache.get(token, rt.settings.api_key_stale_s)
        if stale is not None:
            return stale  # the database is down: a key verified recently keeps intake open
        raise
    ok = verify_secret(secret, row.salt if row else None, row.key_hash if row else None, rt.pepper)
    if not ok or row is None:
        raise _unauthorized("invalid API key")
    if row.revoked_at is not None:
        cache.drop(token)
        raise _unauthorized("API key revoked")
    principal = Principal(key_id=row.key_id, name=row.name)
    cache.put(token, principal)
    return principal
