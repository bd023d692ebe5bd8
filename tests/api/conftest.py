"""API test fixtures: a runtime on the real graph + fake models, an app client, and API keys."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from src.api.app import create_app
from src.api.auth import generate_key, hash_secret
from src.api.runtime import Runtime
from src.config import Settings


def api_settings(tmp_path: Path, **kw: Any) -> Settings:
    base: dict[str, Any] = {
        "data_dir": tmp_path,
        "sqlite_path": tmp_path / "audit.db",
        "checkpoint_sqlite_path": tmp_path / "ckpt.db",
        "outbox_dir": tmp_path / "outbox",
        "service_factory": "tests.api.fake_service:build",
        "service_workers": 2,
        "requeue_after_s": 3600.0,
        "node_timeout_s": 60.0,  # generous: a busy 2-core CI box must not turn into timeouts (escalations)
    }
    base.update(kw)
    return Settings(**base)


def add_key(rt: Runtime, name: str = "tester") -> str:
    key = generate_key()
    rt.store.add_key(key.key_id, name, key.salt, hash_secret(key.secret, key.salt, rt.pepper))
    return key.full


class Api:
    """A started app (TestClient) with a valid key; ``h`` are the auth headers."""

    def __init__(self, client: TestClient, rt: Runtime, key: str) -> None:
        self.client, self.rt, self.key = client, rt, key
        self.h = {"Authorization": f"Bearer {key}"}

    def wait_idle(self) -> None:
        self.rt.queue.join()  # embedded queue: every enqueued ticket processed


@pytest.fixture()
def make_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Api]]:
    clients: list[TestClient] = []

    def make(probability: float = 0.97, **kw: Any) -> Api:
        monkeypatch.setenv("TRIAGE_TEST_PROBABILITY", str(probability))
        rt = Runtime(api_settings(tmp_path, **kw))
        client = TestClient(create_app(runtime=rt))
        client.__enter__()
        clients.append(client)
        return Api(client, rt, add_key(rt))

    yield make
    for c in clients:
        c.__exit__(None, None, None)


# The tiny real classifier bundle of the graph tests (trained by the real pipeline, session-scoped).
from tests.graph.conftest import graph_labelled_csv, graph_tiny_bundle  # noqa: E402, F401
