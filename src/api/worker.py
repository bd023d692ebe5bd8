"""``python -m src.api.worker``: process queued tickets from ``TRIAGE_BROKER_URL`` (Dramatiq).

Run as many as needed, on as many machines (they share Postgres, Qdrant and the broker). A message
is acknowledged only after its ticket is decided, so a worker killed mid-ticket leaves it to
another worker, which resumes the ticket from its last checkpoint. Each worker also sweeps the
intake table for tickets accepted but never enqueued or decided (e.g. the broker lost a message).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any

EXIT_USAGE = 2


class _ActorQueue:
    """The sweep's view of the broker: send a ticket id to the actor."""

    kind = "broker"

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    def enqueue(self, ticket_id: str) -> None:
        self.actor.send(ticket_id)

    def depth(self) -> int | None:
        return None

    def ping(self) -> None:
        client = getattr(self.actor.broker, "client", None)
        if client is not None:
            client.ping()

    def close(self) -> None:
        pass


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m src.api.worker",
        description="Triage worker: consumes ticket ids from the broker in TRIAGE_BROKER_URL "
        "(redis://... or amqp://...) and decides them with the triage graph.",
    )
    p.add_argument(
        "--threads", type=int, default=None, help="worker threads (default: TRIAGE_WORKER_THREADS)"
    )
    p.add_argument("--metrics-port", type=int, default=None, help="serve Prometheus metrics on this port")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    import dramatiq

    from src.api.processing import process_ticket
    from src.api.queue import declare_actor, make_broker
    from src.api.runtime import Runtime
    from src.config import get_settings

    settings = get_settings()
    if not settings.broker_url:
        print(
            "error: set TRIAGE_BROKER_URL (redis://... or amqp://...); without a broker the API "
            "processes tickets itself (python -m src.api)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    rt = Runtime(settings)
    broker = make_broker(settings)

    def triage_ticket(ticket_id: str) -> None:
        process_ticket(rt, ticket_id)  # NotProcessed propagates: Dramatiq retries with backoff

    actor = declare_actor(broker, triage_ticket, settings)
    rt.queue = _ActorQueue(actor)
    if args.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port)
    threads = args.threads or settings.worker_threads
    worker = dramatiq.Worker(broker, queues={settings.queue_name}, worker_threads=max(1, threads))
    worker.start()
    rt.sweep(older_than_s=settings.requeue_after_s)
    rt.start_sweeper_loop()
    print(
        f"triage-worker: consuming {settings.queue_name!r} from {settings.broker_url.split('@')[-1]} "
        f"with {threads} thread(s)",
        file=sys.stderr,
        flush=True,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    worker.stop(timeout=30_000)
    broker.close()
    rt.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
