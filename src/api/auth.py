"""API keys: generation, hashing and verification (pure), plus the server pepper.

A key is ``trg_<key id>_<secret>`` with 256 random bits of secret. Only
``HMAC-SHA256(pepper, salt || secret)`` is stored: the pepper is a server secret kept outside the
database (``TRIAGE_API_KEY_PEPPER`` or a 0600 file in the data dir), so a leaked database alone
does not let anyone check guesses, and the per-key salt makes equal secrets hash differently. A
slow KDF would add nothing against 256-bit random secrets and would cost milliseconds per request.
Comparison is constant-time (``hmac.compare_digest``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from src.config import Settings

KEY_PREFIX = "trg"
_DUMMY_SALT = b"\x00" * 16


@dataclass(frozen=True)
class NewKey:
    key_id: str
    secret: str
    salt: str  # hex

    @property
    def full(self) -> str:
        return f"{KEY_PREFIX}_{self.key_id}_{self.secret}"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id and name (recorded as the actor of review actions)."""

    key_id: str
    name: str


def generate_key() -> NewKey:
    return NewKey(key_id=secrets.token_hex(6), secret=secrets.token_urlsafe(32), salt=secrets.token_hex(16))


def split_key(full: str) -> tuple[str, str] | None:
    """``trg_<id>_<secret>`` -> (id, secret); None for anything else."""
    parts = full.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    key_id, secret = parts[1], parts[2]
    if len(key_id) > 32 or len(secret) > 128 or not all(c in "0123456789abcdef" for c in key_id):
        return None
    return key_id, secret


def hash_secret(secret: str, salt_hex: str, pepper: bytes) -> str:
    return hmac.new(pepper, bytes.fromhex(salt_hex) + secret.encode(), hashlib.sha256).hexdigest()


def verify_secret(secret: str, salt_hex: str | None, stored_hash: str | None, pepper: bytes) -> bool:
    """Constant-time check; an unknown key still computes one HMAC so timing does not tell ids apart."""
    if salt_hex is None or stored_hash is None:
        hmac.compare_digest(hash_secret(secret, _DUMMY_SALT.hex(), pepper), "0" * 64)
        return False
    return hmac.compare_digest(hash_secret(secret, salt_hex, pepper), stored_hash)


def load_pepper(settings: Settings) -> bytes:
    """``TRIAGE_API_KEY_PEPPER`` or ``<data_dir>/secrets/api_key_pepper`` (created once, mode 0600).

    Every API replica and the ``keys`` CLI must see the same pepper: set the variable in production.
    """
    if settings.api_key_pepper is not None:
        value = settings.api_key_pepper.get_secret_value()
        if len(value) < 16:
            raise ValueError("TRIAGE_API_KEY_PEPPER must be at least 16 characters")
        return value.encode()
    path = Path(settings.data_dir) / "secrets" / "api_key_pepper"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first: read theirs
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def bearer_token(header: str | None) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (scheme case-insensitive), else None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class KeyCache:
    """Recently verified keys, by a hash of the presented token (thread-safe).

    Saves a database lookup per request and keeps intake open while the database is down: within
    ``ttl_s`` a verified key is trusted without a lookup (so a revocation takes effect within
    ``ttl_s``); when the lookup fails because the database is unreachable, a key verified within
    ``stale_s`` is still accepted. A failed verification is never cached.
    """

    def __init__(self, ttl_s: float, stale_s: float) -> None:
        self.ttl_s, self.stale_s = ttl_s, stale_s
        self._items: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _k(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def get(self, token: str, max_age_s: float) -> Principal | None:
        with self._lock:
            item = self._items.get(self._k(token))
        if item is None or time.monotonic() - item[1] > max_age_s:
            return None
        return item[0]

    def put(self, token: str, principal: Principal) -> None:
        with self._lock:
            if len(self._items) > 10_000:
                self._items.clear()
            self._items[self._k(token)] = (principal, time.monotonic())

    def drop(self, token: str) -> None:
        with self._lock:
            self._items.pop(self._k(token), None)
