"""Webhook signature checks and API key hashing (pure functions; HTTP-level tests are elsewhere)."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from src.api.auth import bearer_token, generate_key, hash_secret, load_pepper, split_key, verify_secret
from src.api.helpdesks.signatures import (
    SignatureError,
    verify_intercom,
    verify_shared_secret,
    verify_zendesk,
    zendesk_signature,
)
from src.config import Settings

BODY = b'{"type":"zen:event-type:ticket.created","detail":{"id":"35436"}}'
NOW = 1_760_000_000.0
TS = "2025-10-09T08:53:20Z"  # == NOW


def test_zendesk_signature_matches_the_documented_construction():
    expected = base64.b64encode(hmac.new(b"s3cret", TS.encode() + BODY, hashlib.sha256).digest()).decode()
    assert zendesk_signature("s3cret", TS, BODY) == expected
    verify_zendesk("s3cret", expected, TS, BODY, now=NOW, tolerance_s=300)


@pytest.mark.parametrize(
    ("secret", "sig", "ts", "body", "now", "match"),
    [
        ("s3cret", "AAAA", TS, BODY, NOW, "bad X-Zendesk"),
        ("wrong", None, TS, BODY, NOW, "bad X-Zendesk"),
        ("s3cret", None, TS, BODY + b" ", NOW, "bad X-Zendesk"),  # body tampered
        ("s3cret", None, TS, BODY, NOW + 301, "stale"),
        ("s3cret", None, TS, BODY, NOW - 301, "stale"),  # from the future
        ("s3cret", "", TS, BODY, NOW, "missing"),
        (None, None, TS, BODY, NOW, "not configured"),
        ("s3cret", None, "yesterday", BODY, NOW, "unreadable"),
    ],
)
def test_zendesk_rejections(secret, sig, ts, body, now, match):
    if sig is None:
        sig = zendesk_signature("s3cret", ts, BODY) if ts != "yesterday" else "x"  # signed by the real secret
    with pytest.raises(SignatureError, match=match):
        verify_zendesk(secret, sig, ts, body, now=now, tolerance_s=300)


def test_intercom_sha1_header():
    body = b'{"topic":"ping"}'
    good = "sha1=" + hmac.new(b"client-secret", body, hashlib.sha1).hexdigest()
    verify_intercom("client-secret", good, body)
    verify_intercom("client-secret", good.upper().replace("SHA1=", "sha1="), body)  # hex case-insensitive
    for bad in (good[:-1] + "0", "sha256=" + good[5:], ""):
        with pytest.raises(SignatureError):
            verify_intercom("client-secret", bad, body)


def test_freshdesk_shared_secret():
    verify_shared_secret("fd-secret", "fd-secret")
    for bad in ("fd-secre", "", None):
        with pytest.raises(SignatureError):
            verify_shared_secret("fd-secret", bad)
    with pytest.raises(SignatureError, match="not configured"):
        verify_shared_secret(None, "anything")


def test_api_keys_hash_verify_and_parse(tmp_path):
    pepper = load_pepper(Settings(data_dir=tmp_path))
    assert len(pepper) == 64 and load_pepper(Settings(data_dir=tmp_path)) == pepper  # created once, reused
    assert (tmp_path / "secrets" / "api_key_pepper").stat().st_mode & 0o777 == 0o600
    key = generate_key()
    assert split_key(key.full) == (key.key_id, key.secret)
    stored = hash_secret(key.secret, key.salt, pepper)
    assert key.secret not in stored
    assert verify_secret(key.secret, key.salt, stored, pepper)
    assert not verify_secret(key.secret + "x", key.salt, stored, pepper)
    assert not verify_secret(key.secret, key.salt, stored, b"another-server-pepper")
    assert not verify_secret(key.secret, None, None, pepper)
    other = generate_key()
    assert hash_secret(key.secret, other.salt, pepper) != stored  # salted
    for bad in ("", "trg_", "trg__x", "abc_123_x", "trg_XYZ_secret", "Bearer trg_1_2"):
        assert split_key(bad) is None


def test_pepper_from_settings_must_be_long_enough(tmp_path):
    assert load_pepper(Settings(data_dir=tmp_path, api_key_pepper="p" * 32)) == b"p" * 32
    with pytest.raises(ValueError, match="at least 16"):
        load_pepper(Settings(data_dir=tmp_path, api_key_pepper="short"))


def test_bearer_header_parsing():
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer   abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None
