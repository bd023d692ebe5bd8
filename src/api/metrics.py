"""Prometheus metrics (``GET /metrics``; workers serve theirs on ``--metrics-port``).

Counters are per process (Prometheus sums replicas and workers at query time). Decision metrics are
recorded where the decision is made: the API process in embedded mode, each worker with a broker.
Queue depth is read from the intake table at scrape time, so it is the same number in every process.
"""

from __future__ import annotations

import re
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

ACCEPTED = Counter("triage_tickets_accepted_total", "Tickets accepted for triage", ["channel"])
DUPLICATES = Counter(
    "triage_tickets_duplicate_total", "Intake requests for an already accepted ticket", ["channel"]
)
DECIDED = Counter("triage_tickets_decided_total", "Decisions by route and channel", ["route", "channel"])
NODE_LATENCY = Histogram(
    "triage_node_latency_seconds",
    "Graph node latency",
    ["node"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
DECISION_LATENCY = Histogram(
    "triage_decision_seconds",
    "Accepted -> decided",
    ["channel"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
LLM_TOKENS = Counter("triage_llm_tokens_total", "LLM tokens", ["direction", "model"])
LLM_COST = Counter("triage_llm_cost_usd_total", "LLM cost in USD", ["model"])
FAILURES = Counter("triage_failures_total", "Failures by kind (node: kind)", ["kind"])
QUEUE_DEPTH = Gauge("triage_queue_depth", "Accepted tickets not decided yet", ["state"])
WEBHOOKS = Counter(
    "triage_webhooks_total", "Webhook deliveries by helpdesk and outcome", ["helpdesk", "outcome"]
)
WRITEBACKS = Counter(
    "triage_writebacks_total", "Helpdesk write-backs by helpdesk and outcome", ["helpdesk", "outcome"]
)

_KIND = re.compile(r"^\s*([a-z_]+):\s*([A-Za-z_][\w.]*)")


def failure_kind(failure: str) -> str:
    """``"analyze: TimeoutError: ..."`` -> ``"analyze:TimeoutError"`` (bounded label values)."""
    m = _KIND.match(failure)
    return f"{m.group(1)}:{m.group(2)}"[:60] if m else "other"


def observe_decision(view: dict[str, Any], channel: str, seconds_since_accept: float | None) -> None:
    DECIDED.labels(view.get("route") or "unknown", channel).inc()
    for node, ms in ((view.get("latency") or {}).get("per_node_ms") or {}).items():
        NODE_LATENCY.labels(node).observe(float(ms) / 1000.0)
    for call in (view.get("usage") or {}).get("calls") or []:
        model = str(call.get("model") or "unknown")
        LLM_TOKENS.labels("in", model).inc(int(call.get("tokens_in") or 0))
        LLM_TOKENS.labels("out", model).inc(int(call.get("tokens_out") or 0))
        LLM_COST.labels(model).inc(float(call.get("cost_usd") or 0.0))
    for f in view.get("failures") or []:
        FAILURES.labels(failure_kind(str(f))).inc()
    if seconds_since_accept is not None:
        DECISION_LATENCY.labels(channel).observe(max(0.0, seconds_since_accept))
