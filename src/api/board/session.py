"""Reviewer sessions for the board: sign in once with an API key, then a signed, HttpOnly cookie.

Why not the API key in the page: a key held by JavaScript is readable by any script that runs there,
and ``EventSource`` cannot send an ``Authorization`` header. So the sign-in form posts the key once;
the server verifies it exactly like the ``/v1`` endpoints do (``principal_for_token``) and answers
with a cookie that holds *no secret*: the key's id and name, the reviewer's name and a random CSRF
token, signed (itsdangerous, HMAC-SHA256) with a key derived from the server pepper, so every API
replica accepts it and nobody can forge one from the database alone.

- ``HttpOnly`` (scripts cannot read it), ``SameSite=Strict`` (other sites cannot make the browser
  send it), ``Path=/board``, ``Secure`` when served over HTTPS, lifetime ``SESSION_MAX_AGE_S``.
- Every request re-reads the key row: revoking the API key ends its board sessions at once.
- State-changing requests also need the CSRF token (``X-CSRF-Token`` header or ``csrf`` form field)
  and must not come from another site (``Sec-Fetch-Site`` / ``Origin``): defence in depth over
  ``SameSite``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastapi import HTTPException, Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from src.api.auth import Principal
from src.api.runtime import Runtime

COOKIE = "triage_board"
COOKIE_PATH = "/board"
SESSION_MAX_AGE_S = 12 * 3600
MAX_NAME = 60


@dataclass(frozen=True)
class Reviewer:
    """A signed-in reviewer: the API key it signed in with and the person's name."""

    key_id: str
    key_name: str
    name: str
    csrf: str

    @property
    def principal(self) -> Principal:
        return Principal(key_id=self.key_id, name=self.key_name)


def _serializer(rt: Runtime) -> URLSafeTimedSerializer:
    secret = hmac.new(rt.pepper, b"triage board session v1", hashlib.sha256).digest()
    return URLSafeTimedSerializer(
        secret, salt="triage-board-session", signer_kwargs={"digest_method": hashlib.sha256}
    )


def clean_name(name: str | None, fallback: str) -> str:
    """The reviewer's display name: printable, bounded; the key's name when none is given."""
    text = "".join(ch for ch in (name or "") if ch.isprintable()).strip()[:MAX_NAME]
    return text or fallback


def issue(rt: Runtime, principal: Principal, name: str | None) -> str:
    data = {"k": principal.key_id, "n": principal.name, "r": clean_name(name, principal.name),
            "c": secrets.token_urlsafe(24)}  # fmt: skip
    return _serializer(rt).dumps(data)


def read(rt: Runtime, value: str | None) -> Reviewer | None:
    """The session in a cookie value, or None (bad signature, expired, key revoked or deleted)."""
    if not value or len(value) > 4096:
        return None
    try:
        data: Any = _serializer(rt).loads(value, max_age=SESSION_MAX_AGE_S)
    except BadSignature:  # also SignatureExpired
        return None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in "knrc"):
        return None
    row = rt.store.get_key(data["k"])  # AuditUnavailable -> 503: never trust a session blindly
    if row is None or row.revoked_at is not None:
        return None
    return Reviewer(key_id=data["k"], key_name=row.name, name=data["r"], csrf=data["c"])


def current(request: Request) -> Reviewer | None:
    return read(request.app.state.runtime, request.cookies.get(COOKIE))


def set_cookie(request: Request, response: Response, value: str) -> None:
    response.set_cookie(
        COOKIE, value, max_age=SESSION_MAX_AGE_S, path=COOKIE_PATH, httponly=True, samesite="strict",
        secure=request.url.scheme == "https",
    )  # fmt: skip


def clear_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")  # fmt: skip


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another site or origin.

    ``Sec-Fetch-Site`` is set by the browser and cannot be forged by a page; older browsers send
    ``Origin`` instead. A client that sends neither is not a browser riding someone's cookie.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin:
        return origin != "null" and urlsplit(origin).netloc == request.headers.get("host", "")
    return True


def check_csrf(request: Request, reviewer: Reviewer, form_token: str | None = None) -> None:
    """403 unless the request carries the session's CSRF token and comes from this origin."""
    token = request.headers.get("x-csrf-token") or form_token or ""
    if not same_origin(request) or not hmac.compare_digest(token.encode(), reviewer.csrf.encode()):
        raise HTTPException(
            status_code=403, detail="cross-site request refused (missing or wrong CSRF token)"
        )
