"""What the benchmark passes around: one ticket in, one system's result per ticket out."""

from __future__ import annotations

from typing import Literal, Protocol

from pydantic import BaseModel, Field

Route = Literal["auto_resolve", "suggest", "escalate"]
ROUTES: tuple[Route, ...] = ("auto_resolve", "suggest", "escalate")
OUT_OF_SCOPE_LABELS = frozenset({"oos", "out_of_scope", "out-of-scope"})


class BenchTicket(BaseModel):
    """One benchmark ticket; ``source`` says whether it came from the labelled data or the slice."""

    id: str
    text: str
    label: str
    source: Literal["data", "slice"] = "data"
    should_escalate: bool = False
    why: str = ""


class SystemOutput(BaseModel):
    """What a system decided for one ticket, before the runner adds timing."""

    pred: str | None
    confidence: float = 0.0  # the system's own confidence in ``pred`` (calibrated prob / self-report)
    score: float = 0.0  # routing confidence (graph.confidence.score value)
    route: Route = "escalate"
    reasons: list[str] = Field(default_factory=list)
    llm_calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    # failed steps as "node:kind" (the graph's structured failure records, never parsed prose): a
    # ticket routed to a human *because something broke* is not a catch
    failure_codes: list[str] = Field(default_factory=list)
    details: dict = Field(default_factory=dict)  # system-specific record (hybrid: analysis/draft sources)


class TicketResult(SystemOutput):
    """One finished (system, ticket) pair as appended to the run's JSONL (the resumable unit)."""

    system: str
    ticket_id: str
    source: Literal["data", "slice"] = "data"
    label: str
    should_escalate: bool = False
    latency_s: float = 0.0
    cpu_s: float = 0.0
    error: str | None = None
    # provenance of this row: a log line says which configuration, code and machine produced it
    fingerprint: str = ""
    commit: str = ""
    host: str = ""
    finished_at: str = ""


class BenchSystem(Protocol):
    """A triage system under test: same ticket text in, one routed decision out."""

    name: str

    def run(self, ticket: BenchTicket) -> SystemOutput:
        """Decide one ticket; only ``ticket.id`` and ``ticket.text`` may be used (never the label)."""
        ...
