"""Getting accepted tickets to a worker: in-process threads, or Dramatiq on Redis / RabbitMQ.

Why Dramatiq (docs/service.md has the longer version): it acknowledges a message only *after* the
actor returns, so a worker killed mid-ticket leaves the message unacknowledged and the broker hands
it to another worker (RabbitMQ as soon as the connection drops; Redis once the dead worker's
heartbeat is older than ``TRIAGE_WORKER_HEARTBEAT_S``). It supports both brokers the project runs,
has retries with backoff built in, and is small enough to run inside ``python -m src.api.worker``
instead of a separate CLI. The message is only the ticket id: the payload lives in the intake
table, so a message lost anyway (a broker without persistence) is re-sent by the sweep.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from src.config import Settings

ACTOR_NAME = "triage_ticket"
MAX_RETRIES = 20
TIME_LIMIT_FACTOR = 10  # a ticket may take this many node timeouts before Dramatiq gives up on it


class TicketQueue(Protocol):
    kind: str

    def enqueue(self, ticket_id: str) -> None: ...

    def depth(self) -> int | None: ...

    def close(self) -> bool | None: ...


class EmbeddedQueue:
    """Worker threads in the API process (the laptop default: no broker to install)."""

    kind = "embedded"

    def __init__(self, process: Callable[[str], Any], workers: int = 2) -> None:
        self._q: queue.Queue[str | None] = queue.Queue()
        self._process = process
        self._pending: set[str] = set()  # queued or in flight here: a sweep does not queue them twice
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._loop, name=f"triage-worker-{i}", daemon=True)
            for i in range(max(1, workers))
        ]
        for t in self._threads:
            t.start()

    def _loop(self) -> None:
        while True:
            ticket_id = self._q.get()
            if ticket_id is None or self._stopping.is_set():
                self._q.task_done()
                return  # queued tickets stay undecided in the intake table: the next start takes them
            try:
                self._process(ticket_id)
            except Exception as exc:  # noqa: BLE001 - the intake row stays undecided; the sweep retries
                print(f"triage-worker: ticket {ticket_id} not processed: {exc}", file=sys.stderr)
            finally:
                with self._lock:
                    self._pending.discard(ticket_id)
                self._q.task_done()

    def enqueue(self, ticket_id: str) -> None:
        with self._lock:
            if ticket_id in self._pending:
                return
            self._pending.add(ticket_id)
        self._q.put(ticket_id)

    def depth(self) -> int | None:
        return self._q.qsize()

    def join(self) -> None:
        self._q.join()

    def close(self, timeout_s: float = 60.0) -> bool:
        """Finish the tickets in flight (not the queued ones); True when every thread stopped."""
        self._stopping.set()
        for _ in self._threads:
            self._q.put(None)
        deadline = time.monotonic() + timeout_s
        for t in self._threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)


def make_broker(settings: Settings) -> Any:
    """A Dramatiq broker for ``TRIAGE_BROKER_URL`` (redis:// or amqp://)."""
    url = settings.broker_url or ""
    if url.startswith(("redis://", "rediss://", "unix://")):
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(
            url=url,
            namespace=f"dramatiq:{settings.queue_name}",
            heartbeat_timeout=int(settings.worker_heartbeat_s * 1000),
            maintenance_chance=100_000,
        )
    if url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url, confirm_delivery=True)
    raise ValueError(f"TRIAGE_BROKER_URL must start with redis:// or amqp:// (got {url[:30]!r})")


def declare_actor(broker: Any, fn: Callable[[str], Any], settings: Settings) -> Any:
    import dramatiq

    return dramatiq.Actor(
        fn,
        broker=broker,
        actor_name=ACTOR_NAME,
        queue_name=settings.queue_name,
        priority=0,
        options={
            "max_retries": MAX_RETRIES,
            "min_backoff": 1000,
            "max_backoff": 60_000,
            "time_limit": int(max(60.0, settings.node_timeout_s * TIME_LIMIT_FACTOR) * 1000),
        },
    )


class BrokerQueue:
    """The API side of the broker: it only sends ticket ids."""

    kind = "broker"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.broker = make_broker(settings)
        self.actor = declare_actor(self.broker, _not_here, settings)

    def enqueue(self, ticket_id: str) -> None:
        self.actor.send(ticket_id)

    def depth(self) -> int | None:
        return None  # the intake table's undecided count is the depth that matters (see metrics)

    def ping(self) -> None:
        client = getattr(self.broker, "client", None)
        if client is not None:
            client.ping()
        else:  # RabbitMQ: opening a channel proves the broker is there
            self.broker.channel  # noqa: B018

    def close(self) -> None:
        self.broker.close()


def _not_here(ticket_id: str) -> None:  # pragma: no cover - the API never consumes
    raise RuntimeError("the API process does not consume the queue; run python -m src.api.worker")
