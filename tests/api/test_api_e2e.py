"""End to end over real HTTP with real processes: ``python -m src.api`` (embedded workers, and with a
Redis broker + ``python -m src.api.worker``), ``python -m src.api.keys``, live SSE events.

The first two use the real graph with fake models (fast); the last runs the real wiring with no
factory: a tiny classifier bundle trained by the real pipeline, the local SmolLM2 model and Qdrant
local mode, the way ``python -m src.api`` runs on a laptop.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from src.audit.db import PostgresDatabase

ROOT = Path(__file__).resolve().parents[2]
CANCEL = "Please cancel my order, I placed it by mistake yesterday evening and no longer need it."
REFUND = "Hello, I would like to get a refund for the jacket I bought last week, it does not fit me."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIAGE_")}
    env.update({
        "PYTHONPATH": str(ROOT), "TRIAGE_DATA_DIR": str(tmp_path),
        "TRIAGE_SQLITE_PATH": str(tmp_path / "audit.db"), "TRIAGE_OUTBOX_DIR": str(tmp_path / "outbox"),
        "TRIAGE_CHECKPOINT_SQLITE_PATH": str(tmp_path / "ckpt.db"),
        "TRIAGE_API_KEY_PEPPER": "e2e-pepper-0123456789",
    })  # fmt: skip
    env.update(extra)
    return env


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


class Proc:
    def __init__(self, env: dict[str, str], args: list[str], log: Path) -> None:
        self.log = log
        self.p = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, env=env, stdout=log.open("w"),
                                  stderr=subprocess.STDOUT)  # fmt: skip

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.p.kill()


def start_api(env: dict[str, str], tmp_path: Path, name: str = "api") -> tuple[Proc, str]:
    port = free_port()
    proc = Proc(env, ["src.api", "--host", "127.0.0.1", "--port", str(port)], tmp_path / f"{name}.log")
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.p.poll() is not None:
            raise AssertionError(f"API exited: {proc.log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.stop()
    raise AssertionError(f"API did not start: {proc.log.read_text()[-2000:]}")


class SseReader(threading.Thread):
    """Reads ``GET /v1/events`` in the background; ``events`` collects (event, data) pairs."""

    def __init__(self, url: str, key: str) -> None:
        super().__init__(daemon=True)
        self.url, self.key = url, key
        self.events: list[tuple[str, dict]] = []
        self.ready = threading.Event()
        self.status: int | None = None

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        try:
            with httpx.stream("GET", f"{self.url}/v1/events", headers=headers, timeout=60) as resp:
                self.status = resp.status_code
                kind = None
                for line in resp.iter_lines():
                    if line.startswith("event:"):
                        kind = line.split(":", 1)[1].strip()
                    elif line.startswith("data:") and kind:
                        self.events.append((kind, json.loads(line.split(":", 1)[1])))
                        if kind == "ready":
                            self.ready.set()
        except httpx.HTTPError:
            self.ready.set()

    def wait_for(self, kind: str, ticket_id: str, timeout_s: float = 90) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for k, data in list(self.events):
                if k == kind and data.get("ticket_id") == ticket_id:
                    return data
            time.sleep(0.1)
        raise AssertionError(f"no {kind} event for {ticket_id}; got {self.events}")


def create_key(env: dict[str, str], name: str) -> str:
    out = run_cli(env, "src.api.keys", "create", "--name", name)
    assert out.returncode == 0, out.stderr
    key = out.stdout.strip().splitlines()[-1]
    assert key.startswith("trg_") and len(out.stdout.strip().splitlines()) == 1  # alone on its last line
    return key


def test_embedded_service_over_http_with_keys_cli_and_events(tmp_path):
    env = base_env(
        tmp_path,
        TRIAGE_SERVICE_FACTORY="tests.api.fake_service:build",
        TRIAGE_TEST_PROBABILITY="0.75",
        TRIAGE_API_KEY_CACHE_S="0",
    )  # revocation: at once
    key = create_key(env, "agent-ana")
    listing = run_cli(env, "src.api.keys", "list")
    assert (
        "agent-ana" in listing.stdout and key.split("_")[2] not in listing.stdout
    )  # the secret is never shown
    assert key not in (tmp_path / "audit.db").read_bytes().decode("latin-1")  # stored hashed
    api, url = start_api(env, tmp_path)
    try:
        h = {"Authorization": f"Bearer {key}"}
        sse = SseReader(url, key)
        sse.start()
        assert sse.ready.wait(60) and sse.status == 200
        resp = httpx.post(
            f"{url}/v1/tickets", json={"channel": "chat", "id": "e2e-1", "text": REFUND}, headers=h
        )
        assert resp.status_code == 202
        status_url = url + resp.json()["status_url"]
        event = sse.wait_for("decision", "chat:e2e-1")
        assert event["route"] == "suggest" and event["intent"] == "get_refund"
        ticket = httpx.get(status_url, headers=h).json()
        assert ticket["state"] == "pending_review" and ticket["decision"]["review"]["ticket"]["text"]
        queue = httpx.get(f"{url}/v1/review", params={"state": "suggested"}, headers=h).json()
        assert "chat:e2e-1" in [i["ticket_id"] for i in queue["items"]]
        done = httpx.post(f"{url}/v1/review/chat:e2e-1", json={"action": "accept"}, headers=h)
        assert done.status_code == 200 and done.json()["status"] == "completed"
        assert sse.wait_for("review", "chat:e2e-1")["by"] == "agent-ana"
        assert httpx.get(status_url, headers=h).json()["state"] == "completed"
        assert "triage_tickets_decided_total" in httpx.get(f"{url}/metrics").text
        revoked = run_cli(env, "src.api.keys", "revoke", key.split("_")[1])
        assert revoked.returncode == 0
        assert httpx.get(status_url, headers=h).status_code == 401
        assert run_cli(env, "src.api.keys", "revoke", "doesnotexist").returncode == 1
    finally:
        api.stop()
    assert api.p.returncode in (0, -signal.SIGTERM), api.log.read_text()[-2000:]  # uvicorn re-raises SIGTERM
    assert "Traceback" not in api.log.read_text()


def test_nothing_accepted_is_lost_across_an_api_restart(tmp_path):
    """Tickets accepted while no worker can run are decided after the restart (the intake row is durable)."""
    env = base_env(tmp_path, TRIAGE_SERVICE_FACTORY="tests.api.no_such_module:build")
    key = create_key(env, "restart")
    h = {"Authorization": f"Bearer {key}"}
    api, url = start_api(env, tmp_path, "api1")
    try:
        ids = [httpx.post(f"{url}/v1/tickets", json={"text": CANCEL}, headers=h).json()["ticket_id"]
               for _ in range(5)]  # fmt: skip
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 503 and "bundle" in ready.json()["reason"]
        assert {httpx.get(f"{url}/v1/tickets/{t}", headers=h).json()["state"] for t in ids} == {"queued"}
    finally:
        api.p.kill()  # not even a clean shutdown
        api.p.wait(10)
    env["TRIAGE_SERVICE_FACTORY"] = "tests.api.fake_service:build"
    api2, url2 = start_api(env, tmp_path, "api2")
    try:
        deadline = time.monotonic() + 60
        states: set[str] = set()
        while time.monotonic() < deadline:
            states = {httpx.get(f"{url2}/v1/tickets/{t}", headers=h).json()["state"] for t in ids}
            if states == {"auto_resolved"}:
                break
            time.sleep(0.3)
        assert states == {"auto_resolved"}
    finally:
        api2.stop()


def test_api_and_worker_processes_with_redis_and_postgres(tmp_path, postgres_url):
    import redis

    try:
        redis.Redis(socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but Redis is unreachable: {exc}")
        pytest.skip(f"no Redis: {exc}")
    queue, schema = f"e2e-{uuid.uuid4().hex[:8]}", f"t_e2e_{uuid.uuid4().hex[:8]}"
    env = base_env(
        tmp_path,
        TRIAGE_SERVICE_FACTORY="tests.api.fake_service:build",
        TRIAGE_TEST_PROBABILITY="0.97",
        TRIAGE_BROKER_URL="redis://127.0.0.1:6379/14",
        TRIAGE_QUEUE_NAME=queue,
        TRIAGE_DATABASE_URL=postgres_url,
        TRIAGE_DATABASE_SCHEMA=schema,
    )
    key = create_key(env, "broker")
    worker = Proc(env, ["src.api.worker"], tmp_path / "worker.log")
    api, url = start_api(env, tmp_path)
    try:
        h = {"Authorization": f"Bearer {key}"}
        sse = SseReader(url, key)
        sse.start()
        assert sse.ready.wait(60)
        resp = httpx.post(f"{url}/v1/tickets", json={"id": "b-1", "text": CANCEL}, headers=h, timeout=60)
        assert resp.status_code == 202, resp.text
        deadline = time.monotonic() + 240  # the worker process may still be starting on a busy box
        while time.monotonic() < deadline:
            status = httpx.get(url + resp.json()["status_url"], headers=h, timeout=60).json()
            if status["state"] not in ("queued", "processing"):
                break
            time.sleep(0.5)
        assert status["state"] == "auto_resolved", (status, worker.log.read_text()[-2000:])
        assert status["decision"]["intent"] == "cancel_order"
        assert (
            sse.wait_for("decision", "api:b-1")["route"] == "auto_resolve"
        )  # relayed from the worker via Redis
        ready = httpx.get(f"{url}/readyz").json()
        assert ready["checks"]["broker"]["ok"] and ready["checks"]["database"]["detail"].startswith(
            "Postgres"
        )
    finally:
        api.stop()
        worker.stop()
        client = redis.Redis.from_url("redis://127.0.0.1:6379/14")
        keys = list(client.scan_iter(f"dramatiq:{queue}*"))
        if keys:
            client.delete(*keys)
        db = PostgresDatabase(postgres_url, schema=schema, migrate=False)
        db.drop_schema()
        db.close()


ROUTING_4 = """version: 1
default_team: general_support
escalation_team: supervisors
sla_hours: {P1: 1, P2: 4, P3: 24, P4: 72}
teams:
  general_support: {description: first line}
  supervisors: {description: escalations}
  orders: {description: orders}
categories:
  ORDER: {team: orders}
intents:
  cancel_order: {category: ORDER}
  track_order: {category: ORDER}
  get_refund: {category: ORDER}
  recover_password: {category: ORDER}
"""


@pytest.mark.slow
def test_real_wiring_tiny_bundle_local_llm_qdrant_local(tmp_path, graph_tiny_bundle):
    """No factory: Deps.from_settings with a real bundle, SmolLM2 via llama.cpp, Qdrant local mode."""
    routing = tmp_path / "routing.yaml"  # the tiny bundle knows 4 intents: route exactly those
    routing.write_text(ROUTING_4)
    env = base_env(
        tmp_path,
        TRIAGE_ROUTING_CONFIG=str(routing),
        TRIAGE_MODEL_DIR=str(graph_tiny_bundle),
        TRIAGE_QDRANT_PATH=str(tmp_path / "qdrant"),
        TRIAGE_LOCAL_MODEL="smollm2",
        TRIAGE_SERVICE_WORKERS="1",
        TRIAGE_NODE_TIMEOUT_S="60",
        TRIAGE_MAX_WAIT_S="150",
    )
    key = create_key(env, "real")
    api, url = start_api(env, tmp_path)
    try:
        h = {"Authorization": f"Bearer {key}"}
        resp = httpx.post(
            f"{url}/v1/tickets",
            params={"wait": 120},
            headers=h,
            timeout=150,
            json={"channel": "chat", "id": "real-1", "text": "I want to cancel my order please"},
        )
        assert resp.status_code == 200, (resp.text, api.log.read_text()[-3000:])
        decision = resp.json()["decision"]
        assert decision["intent"] == "cancel_order"
        assert decision["route"] in ("suggest", "escalate")  # an empty knowledge base never auto-resolves
        assert any(c.get("model") for c in decision["usage"]["calls"]) or decision["failures"]
        ready = httpx.get(f"{url}/readyz", timeout=30).json()
        assert ready["checks"]["bundle"]["ok"] and ready["checks"]["checkpointer"]["ok"]
        assert ready["checks"]["llm"]["ok"], ready
    finally:
        api.stop()
    assert "Traceback" not in api.log.read_text(), api.log.read_text()[-3000:]
