"""Broker mode with real brokers: ``python -m src.api.worker`` processes, one killed with SIGKILL
mid-ticket; another worker finishes the ticket (late ack + checkpoint resume), exactly one decision.

Real Redis (127.0.0.1:6379) and RabbitMQ (127.0.0.1:5672), real Postgres for intake, audit,
checkpoints and the per-ticket lock; each run uses its own queue name and Postgres schema.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from src.api.intake import accept
from src.api.queue import BrokerQueue
from src.api.runtime import Runtime
from src.api.schemas import IntakeTicket
from src.audit.db import PostgresDatabase
from src.config import Settings

ROOT = Path(__file__).resolve().parents[2]
BROKERS = {"redis": "redis://127.0.0.1:6379/15", "rabbitmq": "amqp://guest:guest@127.0.0.1:5672/%2F"}
TEXT = "Please cancel my order, I placed it by mistake yesterday evening and no longer need it."


def _reachable(broker: str) -> str | None:
    try:
        if broker == "redis":
            import redis

            redis.Redis.from_url(BROKERS[broker], socket_connect_timeout=2).ping()
        else:
            import pika

            pika.BlockingConnection(pika.URLParameters(BROKERS[broker])).close()
    except Exception as exc:  # noqa: BLE001
        return str(exc)
    return None


@pytest.fixture(params=["redis", "rabbitmq"])
def broker_env(request, tmp_path, postgres_url):
    why = _reachable(request.param)
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {request.param} is unreachable: {why}")
        pytest.skip(f"{request.param} unreachable: {why}")
    queue = f"test-{uuid.uuid4().hex[:10]}"
    schema = f"t_wrk_{uuid.uuid4().hex[:10]}"
    env = {
        "TRIAGE_BROKER_URL": BROKERS[request.param], "TRIAGE_QUEUE_NAME": queue,
        "TRIAGE_DATABASE_URL": postgres_url, "TRIAGE_DATABASE_SCHEMA": schema,
        "TRIAGE_DATA_DIR": str(tmp_path), "TRIAGE_OUTBOX_DIR": str(tmp_path / "outbox"),
        "TRIAGE_SERVICE_FACTORY": "tests.api.fake_service:build", "TRIAGE_WORKER_HEARTBEAT_S": "2",
        "TRIAGE_REQUEUE_AFTER_S": "3600", "TRIAGE_NODE_TIMEOUT_S": "30", "TRIAGE_API_KEY_PEPPER": "p" * 32,
    }  # fmt: skip
    yield request.param, env
    _cleanup(request.param, queue)
    db = PostgresDatabase(postgres_url, schema=schema, migrate=False)
    db.drop_schema()
    db.close()


def _cleanup(broker: str, queue: str) -> None:
    if broker == "redis":
        import redis

        client = redis.Redis.from_url(BROKERS[broker])
        keys = list(client.scan_iter(f"dramatiq:{queue}*"))
        if keys:
            client.delete(*keys)
    else:
        import pika

        conn = pika.BlockingConnection(pika.URLParameters(BROKERS[broker]))
        ch = conn.channel()
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            ch.queue_delete(queue=name)
        conn.close()


def _settings(env: dict[str, str]) -> Settings:
    return Settings(**{k.removeprefix("TRIAGE_").lower(): v for k, v in env.items()})


def _worker(env: dict[str, str], log: Path, delay_s: float) -> subprocess.Popen:
    full = {
        **os.environ,
        **env,
        "TRIAGE_TEST_CLASSIFIER_DELAY_S": str(delay_s),
        "TRIAGE_TEST_PROBABILITY": "0.97",
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "src.api.worker", "--threads", "1"],
        cwd=ROOT,
        env=full,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def _wait_for(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def test_killed_worker_ticket_is_finished_by_another(broker_env, tmp_path):
    broker, env = broker_env
    settings = _settings(env)
    rt = Runtime(settings)
    rt.queue = BrokerQueue(settings)
    procs: list[subprocess.Popen] = []
    try:
        row, created = accept(rt, IntakeTicket(channel="chat", id="crash-1", text=TEXT))
        assert created and row.state == "queued"
        slow = _worker(env, tmp_path / "worker_a.log", delay_s=60)  # stuck in classify
        procs.append(slow)
        _wait_for(
            lambda: rt.store.get_intake("chat:crash-1").state == "processing", 180, "worker A to pick it up"
        )
        time.sleep(1.0)  # well inside the graph (preprocess checkpointed, classify running)
        os.kill(slow.pid, signal.SIGKILL)
        slow.wait(10)
        assert rt.store.get_intake("chat:crash-1").state == "processing"  # A died without deciding
        fast = _worker(env, tmp_path / "worker_b.log", delay_s=0)
        procs.append(fast)
        _wait_for(
            lambda: rt.store.get_intake("chat:crash-1").state == "decided",
            240,  # generous: worker start-up and Redis redelivery are slow on a busy 2-core box
            f"worker B to finish the ticket ({broker}); log: {(tmp_path / 'worker_b.log')}",
        )
        row = rt.store.get_intake("chat:crash-1")
        assert row.route == "auto_resolve" and row.attempts >= 2
        svc = rt.service()
        assert svc.deps.audit.count_decisions("chat:crash-1") == 1
        view = svc.get("chat:crash-1")
        assert view["status"] == "auto_resolved" and view["intent"] == "cancel_order"
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
        rt.close()
