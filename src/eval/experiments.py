"""Benchmark systems as LangSmith experiments over one dataset of the benchmark tickets.

With ``LANGSMITH_API_KEY`` set (``TRIAGE_LANGSMITH_*``), ``python -m src.eval.runner`` uploads the
tickets once as a dataset (name = a digest of the ticket set, so the same sample is the same
dataset) and records each system's finished results as an experiment on it (``langsmith.evaluate``
with a target that returns the logged result: the benchmark itself stays resumable and is not run
twice), with per-ticket evaluators (intent correct, reached a human when it should, auto-resolved)
and the run's fingerprint and commit as experiment metadata. An engineer compares systems ticket
by ticket in the UI; the hybrid's rows carry the graph's trace id.

Ticket text, drafts and reasons are PII-masked before they leave the box (invariant 8).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from src.config import Settings
from src.eval.types import BenchTicket, TicketResult


def langsmith_configured(settings: Settings) -> bool:
    return settings.langsmith_api_key is not None


def _masked(value: Any) -> Any:
    from src.text.pii import mask_pii

    if isinstance(value, str):
        return mask_pii(value).text
    if isinstance(value, list):
        return [_masked(v) for v in value]
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    return value


def example_inputs(ticket: BenchTicket) -> dict[str, Any]:
    return {"ticket_id": ticket.id, "text": _masked(ticket.text), "source": ticket.source}


def example_outputs(ticket: BenchTicket) -> dict[str, Any]:
    return {"label": ticket.label, "should_escalate": ticket.should_escalate}


def result_outputs(row: TicketResult) -> dict[str, Any]:
    """What an experiment row shows for one ticket (masked)."""
    return _masked({
        "route": row.route, "pred": row.pred, "confidence": row.confidence, "score": row.score,
        "reasons": row.reasons[:20], "failure_codes": row.failure_codes, "error": row.error,
        "latency_s": round(row.latency_s, 4), "cpu_s": round(row.cpu_s, 4), "llm_calls": row.llm_calls,
        "details": row.details,
    })  # fmt: skip


def intent_correct(outputs: dict, reference_outputs: dict) -> dict:
    return {"key": "intent_correct", "score": int(outputs.get("pred") == reference_outputs.get("label"))}


def reached_human_when_due(outputs: dict, reference_outputs: dict) -> dict:
    """1 unless the ticket had to reach a human and was auto-resolved (a wrongful auto-resolve)."""
    wrongful = reference_outputs.get("should_escalate") and outputs.get("route") == "auto_resolve"
    return {"key": "no_wrongful_auto_resolve", "score": int(not wrongful)}


def auto_resolved(outputs: dict) -> dict:
    return {"key": "auto_resolved", "score": int(outputs.get("route") == "auto_resolve")}


def dataset_name(tickets: Sequence[BenchTicket]) -> str:
    from src.eval.provenance import digest

    return f"triage-benchmark-{digest(sorted(t.id for t in tickets))}"


def ensure_dataset(client: Any, tickets: Sequence[BenchTicket]) -> Any:
    """The dataset for this exact ticket set (created with its examples on first use)."""
    name = dataset_name(tickets)
    if client.has_dataset(dataset_name=name):
        return client.read_dataset(dataset_name=name)
    dataset = client.create_dataset(
        name, description="triage benchmark tickets (Bitext test split sample + escalation slice), PII-masked"
    )
    client.create_examples(
        dataset_id=dataset.id,
        examples=[{"inputs": example_inputs(t), "reference_outputs": example_outputs(t),
                   "metadata": {"source": t.source}} for t in tickets],  # fmt: skip
    )
    return dataset


def record_experiments(
    settings: Settings,
    tickets: Sequence[BenchTicket],
    results: Mapping[str, Sequence[TicketResult]],
    run_meta: Mapping[str, Any],
    client: Any | None = None,
) -> dict[str, Any]:
    """One experiment per system; returns {"dataset": name, "experiments": {system: name}} (or an error)."""
    try:
        from langsmith import Client, evaluate

        if client is None:
            key = settings.langsmith_api_key.get_secret_value() if settings.langsmith_api_key else None
            client = Client(api_url=settings.langsmith_endpoint or None, api_key=key)
        finished = {r.ticket_id for rows in results.values() for r in rows}
        done = [t for t in tickets if t.id in finished]
        dataset = ensure_dataset(client, done)
        examples = list(client.list_examples(dataset_id=dataset.id))
        experiments: dict[str, str] = {}
        meta = {"fingerprint": run_meta["fingerprint"], "commit": run_meta.get("git", {}).get("commit"),
                "llm": run_meta["models"].get("llm"), "classifier": run_meta["models"].get("classifier")}
        for system, rows in results.items():
            by_id = {r.ticket_id: result_outputs(r) for r in rows}

            def target(inputs: dict, by_id: dict = by_id) -> dict:
                return by_id.get(inputs["ticket_id"], {"route": "missing"})

            out = evaluate(
                target, data=examples, evaluators=[intent_correct, reached_human_when_due, auto_resolved],
                experiment_prefix=f"{system}-{run_meta['fingerprint'][:8]}", client=client, max_concurrency=0,
                metadata={"system": system, **meta},
                description=f"triage benchmark: {system} ({run_meta['command']})",
            )  # fmt: skip
            experiments[system] = out.experiment_name
        flush = getattr(client, "flush", None)
        if flush is not None:
            flush()  # the runs go up from a background thread: send them before the process exits
        return {"dataset": dataset.name, "experiments": experiments}
    except Exception as exc:  # noqa: BLE001 - the report on disk stands; say why the upload did not
        return {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
