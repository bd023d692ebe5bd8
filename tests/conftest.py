"""Shared fixtures: where the real datasets are, and whether the real Postgres is reachable.

Tests that read ``../shared/data`` skip cleanly in a user's clone (it is not shipped); Postgres
tests skip only outside CI — under ``CI=true`` a missing server is a failure, not a skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from src.config import SHARED_DATA

POSTGRES_URL = os.environ.get("TRIAGE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(autouse=True, scope="session")
def _offline_hub() -> None:
    """Tests never touch a model hub."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` or skip (a user's clone does not have it)."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present (datasets are not shipped with the project)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The real Postgres test database; skip only where no server exists and we are not in CI."""
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as conn:
            conn.execute("select 1")
    except Exception as exc:  # noqa: BLE001 - any failure means "no server here"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but Postgres at {POSTGRES_URL} is unreachable: {exc}")
        pytest.skip(f"no Postgres at {POSTGRES_URL}: {exc}")
    return POSTGRES_URL
