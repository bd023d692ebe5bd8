"""Everything one API or worker process holds: settings, the database, stores, queue, events, service.

Built once per process. The triage service (classifier, graph, checkpointer) is built lazily on
first use, so the API starts and accepts tickets even when the service cannot start yet (no
bundle, Postgres down): those tickets wait in the intake table and ``/readyz`` says why.
"""

from __future__ import annotations

import importlib
import sys
import threading
from typing import Any

from src.api.auth import KeyCache, load_pepper
from src.api.events import Broadcaster
from src.api.queue import BrokerQueue, EmbeddedQueue, TicketQueue
from src.api.spool import IntakeSpool
from src.api.store import ApiStore
from src.audit.db import Database, open_database
from src.config import Settings


def build_service(settings: Settings) -> Any:
    """``TRIAGE_SERVICE_FACTORY`` ("module:function", called with Settings) or the real wiring."""
    if settings.service_factory:
        module, _, name = settings.service_factory.partition(":")
        return getattr(importlib.import_module(module), name)(settings)
    from src.graph.service import TriageService

    service = TriageService.from_settings(settings)
    if not settings.service_llm:  # classifier-only fast path: analyze/draft fail closed, no LLM call
        service.deps.provider = None
    return service


def events_url(settings: Settings) -> str | None:
    if settings.events_redis_url:
        return settings.events_redis_url
    url = settings.broker_url or ""
    return url if url.startswith(("redis://", "rediss://")) else None


class Runtime:
    def __init__(self, settings: Settings, *, service: Any = None, db: Database | None = None) -> None:
        self.settings = settings
        self.db = db or open_database(settings)
        self.store = ApiStore(self.db)
        self.spool = IntakeSpool(settings.data_dir / "intake_spool")
        self.pepper = load_pepper(settings)
        self.key_cache = KeyCache(settings.api_key_cache_s, settings.api_key_stale_s)
        self.events = Broadcaster(events_url(settings), channel=f"{settings.queue_name}:events")
        self.queue: TicketQueue | None = None
        self._service = service
        self._service_error: str | None = None
        self._service_lock = threading.Lock()
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None
        self.started = False

    # --- the triage service ---------------------------------------------------------------
    def service(self) -> Any:
        if self._service is None:
            with self._service_lock:
                if self._service is None:
                    try:
                        self._service = build_service(self.settings)
                        self._service_error = None
                    except Exception as exc:
                        self._service_error = f"{type(exc).__name__}: {exc}"
                        raise
        return self._service

    @property
    def service_error(self) -> str | None:
        return self._service_error

    def ticket_view(self, ticket_id: str) -> dict[str, Any] | None:
        """The decision view (status, route, reasons, draft ...) or None when there is no decision."""
        return self.service().get(ticket_id)

    # --- lifecycle ------------------------------------------------------------------------
    def start_api(self) -> None:
        """API process: embedded workers + sweep, or a broker producer + the event relay."""
        if self.started:
            return
        self.started = True
        if self.settings.broker_url:
            self.queue = BrokerQueue(self.settings)
            self.events.start_relay()
            # workers re-enqueue stale tickets too; the API's sweep matters for its own spool
            self.start_sweeper(first_older_than_s=self.settings.requeue_after_s)
        else:
            self.queue = EmbeddedQueue(self._process, workers=self.settings.service_workers)
            self.start_sweeper(first_older_than_s=0.0)

    def _process(self, ticket_id: str) -> None:
        from src.api.processing import NotProcessed, process_ticket

        try:
            process_ticket(self, ticket_id)
        except NotProcessed as exc:
            print(f"triage-worker: {exc}; will retry", file=sys.stderr)

    def start_sweeper(self, first_older_than_s: float = 0.0) -> None:
        """Sweep now (embedded: every undecided ticket) and then periodically (the stale ones)."""
        try:
            self.sweep(older_than_s=first_older_than_s)
        except Exception as exc:  # noqa: BLE001 - database down at start: the loop retries
            print(f"triage-sweeper: {exc}", file=sys.stderr)
        self.start_sweeper_loop()

    def start_sweeper_loop(self) -> None:
        self._sweeper = threading.Thread(target=self._sweep_loop, name="triage-sweeper", daemon=True)
        self._sweeper.start()

    def _sweep_loop(self) -> None:
        interval = max(1.0, self.settings.requeue_after_s / 2)
        while not self._stop.wait(interval):
            try:
                self.sweep(older_than_s=self.settings.requeue_after_s)
            except Exception as exc:  # noqa: BLE001 - the database may be restarting
                print(f"triage-sweeper: {exc}", file=sys.stderr)

    def sweep(self, older_than_s: float, writeback_after_s: float = 30.0) -> int:
        """Re-enqueue undecided tickets untouched for ``older_than_s``; retry failed write-backs."""
        from src.api.intake import enqueue
        from src.api.processing import write_back

        self.import_spool()
        ids = self.store.stale_undecided(older_than_s)
        for ticket_id in ids:
            enqueue(self, ticket_id)
        for ticket_id in self.store.pending_writebacks(older_than_s=writeback_after_s):
            write_back(self, ticket_id)
        return len(ids)

    def import_spool(self) -> int:
        """Move spooled intake records (taken while the database was down) into the intake table."""
        from src.api.intake import enqueue

        moved = 0
        for path, rec in self.spool.items():
            _, created = self.store.add_intake(
                rec["ticket_id"], rec["channel"], rec["source_id"], rec["payload"]
            )
            path.unlink(missing_ok=True)
            moved += 1
            if created:
                enqueue(self, rec["ticket_id"])
        return moved

    def close(self) -> None:
        """Stop the sweep, let tickets in flight finish, then release the service and the database."""
        self._stop.set()
        drained = True
        if self.queue is not None:
            drained = self.queue.close() is not False
        self.events.stop()
        if self._sweeper is not None:
            self._sweeper.join(timeout=3)
        if not drained:  # a ticket is still running: closing its databases would fail it (it resumes later)
            print(
                "triage-api: tickets still in flight at shutdown; they resume at the next start",
                file=sys.stderr,
            )
            return
        if self._service is not None and hasattr(self._service, "close"):
            self._service.close()
        self.db.close()
