"""The resumable loop: every system sees the same tickets; each finished pair is logged at once."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone

from tqdm import tqdm

from src.eval.results import ResultLog
from src.eval.types import BenchSystem, BenchTicket, TicketResult


def run_one(system: BenchSystem, ticket: BenchTicket, stamp: Mapping[str, str] | None = None) -> TicketResult:
    """Time one decision (wall + process CPU, which includes llama.cpp threads).

    An unexpected exception is recorded (route escalate, ``error`` set, counted in the report and
    retried on resume) instead of killing a long benchmark; interrupts (Ctrl-C, kill) still stop
    the run. ``stamp`` (fingerprint, commit, host) goes on the row with the time it finished.
    """
    wall0, cpu0 = time.perf_counter(), time.process_time()
    error: str | None = None
    try:
        out = system.run(ticket)
        payload = out.model_dump()
    except Exception as exc:  # noqa: BLE001 - any system bug becomes a counted, fail-closed row
        error = f"{type(exc).__name__}: {exc}"
        tb = traceback.format_exc(limit=3)
        payload = {"pred": None, "route": "escalate", "reasons": [f"system error: {error}", tb[-500:]]}
    return TicketResult(
        **payload,
        system=system.name,
        ticket_id=ticket.id,
        source=ticket.source,
        label=ticket.label,
        should_escalate=ticket.should_escalate,
        latency_s=time.perf_counter() - wall0,
        cpu_s=time.process_time() - cpu0,
        error=error,
        finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **dict(stamp or {}),
    )


def run_benchmark(
    tickets: Sequence[BenchTicket],
    systems: Sequence[BenchSystem],
    log: ResultLog,
    *,
    progress: bool = True,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    stamp: Mapping[str, str] | None = None,
    retry_errors: bool = True,
) -> dict[str, list[TicketResult]]:
    """Run what the log does not have yet, append as it goes, and return finished results in ticket order.

    A row that ended in a system error (e.g. an LLM server that was down) is not a result: it is run
    again on resume (``retry_errors``), so an outage never stands in for a decision.

    Ticket-major order: each ticket goes to every system before the next ticket starts, so a run
    stopped early (crash, Ctrl-C, or ``deadline`` on ``clock``) has the same tickets for every system.
    With a deadline, no new ticket starts after it; the caller reports on what finished.
    """
    done = log.load()

    def pending(system: BenchSystem, ticket: BenchTicket) -> bool:
        row = done.get((system.name, ticket.id))
        return row is None or (retry_errors and row.error is not None)

    total = len(systems) * len(tickets)
    missing = sum(1 for t in tickets for s in systems if pending(s, t))
    bar = tqdm(total=total, initial=total - missing, disable=not progress, unit="run", desc="benchmark")
    try:
        for ticket in tickets:
            todo = [s for s in systems if pending(s, ticket)]
            if not todo:
                continue
            if deadline is not None and clock() >= deadline:
                break
            for system in todo:
                bar.set_postfix_str(system.name, refresh=False)
                result = run_one(system, ticket, stamp)
                log.append(result)
                done[(system.name, ticket.id)] = result
                bar.update(1)
    finally:
        bar.close()
    return {s.name: [done[(s.name, t.id)] for t in tickets if (s.name, t.id) in done] for s in systems}


def common_tickets(results: dict[str, list[TicketResult]]) -> dict[str, list[TicketResult]]:
    """Keep only tickets every system finished (the comparison must be on the same tickets)."""
    if not results:
        return results
    shared = set.intersection(*({r.ticket_id for r in rows} for rows in results.values()))
    return {name: [r for r in rows if r.ticket_id in shared] for name, rows in results.items()}
