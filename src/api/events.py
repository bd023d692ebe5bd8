"""Live events for ``GET /v1/events``: decisions and review changes, in-process and across processes.

``Broadcaster`` fans events out to the SSE subscribers of *this* process; ``publish`` is safe from
any thread (worker threads publish decisions). With a Redis URL (``TRIAGE_EVENTS_REDIS_URL``, or
the broker URL when it is ``redis://``) every process publishes to one Redis pub/sub channel and
each API process relays that channel to its subscribers, so a decision made by a worker on another
machine reaches every API replica's clients. Events carry ids and labels, never ticket text.
Pub/sub is fire-and-forget: a client that was disconnected re-reads state with ``GET`` calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

SUBSCRIBER_QUEUE = 1000  # a slow client drops its oldest events rather than blocking workers


class Broadcaster:
    def __init__(self, redis_url: str | None = None, channel: str = "triage:events") -> None:
        self._subs: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = set()
        self._lock = threading.Lock()
        self.redis_url = redis_url
        self.channel = channel
        self._redis: Any = None
        self._relay: threading.Thread | None = None
        self._stop = threading.Event()
        self.published = 0

    # --- publishing -----------------------------------------------------------------------
    def publish(self, kind: str, data: dict[str, Any]) -> None:
        event = {"event": kind, "data": data, "ts": time.time()}
        if self.redis_url:
            try:
                self._client().publish(self.channel, json.dumps(event))
                self.published += 1
                return
            except Exception as exc:  # noqa: BLE001 - events are best effort; state is in the DB
                print(f"triage-api: event relay publish failed ({exc}); delivering locally", file=sys.stderr)
        self._fanout(event)

    def _client(self) -> Any:
        if self._redis is None:
            import redis

            self._redis = redis.Redis.from_url(self.redis_url, socket_timeout=2, socket_connect_timeout=2)
        return self._redis

    def _fanout(self, event: dict[str, Any]) -> None:
        self.published += 1
        with self._lock:
            subs = list(self._subs)
        for loop, queue in subs:
            try:
                loop.call_soon_threadsafe(_put_drop_oldest, queue, event)
            except RuntimeError:  # loop closed: the client is gone
                with self._lock:
                    self._subs.discard((loop, queue))

    # --- subscribing ----------------------------------------------------------------------
    async def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        queue: asyncio.Queue = asyncio.Queue(maxsize=SUBSCRIBER_QUEUE)
        entry = (asyncio.get_running_loop(), queue)
        with self._lock:
            self._subs.add(entry)
        try:
            while True:
                yield await queue.get()
        finally:
            with self._lock:
                self._subs.discard(entry)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subs)

    # --- cross-process relay (API processes) ---------------------------------------------------
    def start_relay(self) -> None:
        if not self.redis_url or self._relay is not None:
            return
        self._relay = threading.Thread(target=self._relay_loop, name="triage-events-relay", daemon=True)
        self._relay.start()

    def _relay_loop(self) -> None:
        import redis

        while not self._stop.is_set():
            try:
                client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=2)
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.channel)
                while not self._stop.is_set():
                    msg = pubsub.get_message(timeout=1.0)
                    if msg and msg.get("type") == "message":
                        self._fanout(json.loads(msg["data"]))
                pubsub.close()
            except Exception as exc:  # noqa: BLE001 - Redis restarting: retry, never kill the API
                print(f"triage-api: event relay error ({exc}); retrying", file=sys.stderr)
                self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()
        if self._relay is not None:
            self._relay.join(timeout=3)


def _put_drop_oldest(queue: asyncio.Queue, event: dict[str, Any]) -> None:
    if queue.full():
        with contextlib.suppress(asyncio.QueueEmpty):
            queue.get_nowait()
    queue.put_nowait(event)
