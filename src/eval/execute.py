"""The resumable loop: every system sees the same tickets; each finished pair is logged at once."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence

from tqdm import tqdm

from src.eval.results import ResultLog
from src.eval.types import BenchSystem, BenchTicket, TicketResult


def run_one(system: BenchSystem, ticket: BenchTicket) -> TicketResult:
    """Time one decision (wall + process CPU, which includes llama.cpp threads).

    An unexpected exception is recorded (route escalate, ``error`` set, counted in the report)
    instead of killing a long benchmark; interrupts (Ctrl-C, kill) still stop the run.
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
    )


def run_benchmark(
    tickets: Sequence[BenchTicket],
    systems: Sequence[BenchSystem],
    log: ResultLog,
    *,
    progress: bool = True,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, list[TicketResult]]:
    """Run what the log does not have yet, append as it goes, and return finished results in ticket order.

    Ticket-major order: each ticket goes to every system before the next ticket starts, so a run
    stopped early (crash, Ctrl-C, or ``deadline`` on ``clock``) has the same tickets for every system.
    With a deadline, no new ticket starts after it; the caller reports on what finished.
    """
    done = log.load()
    total = len(systems) * len(tickets)
    missing = sum(1 for t in tickets for s in systems if (s.name, t.id) not in done)
    bar = tqdm(total=total, initial=total - missing, disable=not progress, unit="run", desc="benchmark")
    try:
        for ticket in tickets:
            todo = [s for s in systems if (s.name, ticket.id) not in done]
            if not todo:
                continue
            if deadline is not None and clock() >= deadline:
                break
            for system in todo:
                bar.set_postfix_str(system.name, refresh=False)
                result = run_one(system, ticket)
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
