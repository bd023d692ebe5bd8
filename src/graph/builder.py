"""Wire the nodes into the LangGraph state machine.

    preprocess ─(unreadable)──────────────────────────────┐
        └─ classify ─┬─ analyze ─┐                        │
                     └─ retrieve ┴─ draft ─ score ◄───────┘
                            └─ route ─ audit ─ suggest_draft ─ review ─(human action)─ apply_action
                                                                 ▲─────────(escalate)────────┘

``analyze`` asks the LLM only where the cheap heads are unsure or a rule fired; ``draft`` scores
first (a draft can only lower a route): no draft for an escalation, a close same-intent resolution
as the draft, an LLM draft before the decision only when the ticket could auto-resolve, and a
suggest's LLM draft in ``suggest_draft``, after its decision is audited.

``audit`` runs before ``review`` so a ticket that waits for a human already has its Decision row
(invariant: every accepted ticket ends in exactly one Decision, whether or not anyone reviews it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langgraph.graph import END, START, StateGraph

from src.graph import nodes
from src.graph.deps import Deps
from src.graph.state import TriageState

NodeFn = Callable[[dict[str, Any], Deps], dict[str, Any]]

NODE_FUNCS: dict[str, NodeFn] = {
    "preprocess": nodes.preprocess_node,
    "classify": nodes.classify_node,
    "analyze": nodes.analyze_node,
    "retrieve": nodes.retrieve_node,
    "draft": nodes.draft_node,
    "score": nodes.score_node,
    "route": nodes.route_node,
    "audit": nodes.audit_node,
    "suggest_draft": nodes.suggest_draft_node,
    "review": nodes.review_node,
    "apply_action": nodes.apply_action_node,
}


def _bind(fn: NodeFn, deps: Deps) -> Callable[[dict[str, Any]], Any]:
    def node(state: dict[str, Any]) -> dict[str, Any]:
        return fn(state, deps)

    node.__name__ = fn.__name__
    return node


def build_graph(deps: Deps, checkpointer: Any | None = None) -> Any:
    """Compile the triage graph; ``checkpointer`` is required for review pauses to survive a restart."""
    g = StateGraph(TriageState)
    for name, fn in NODE_FUNCS.items():
        g.add_node(name, _bind(fn, deps))
    g.add_edge(START, "preprocess")
    g.add_conditional_edges("preprocess", nodes.route_after_preprocess, ["classify", "score"])
    g.add_edge("classify", "analyze")
    g.add_edge("classify", "retrieve")
    g.add_edge(["analyze", "retrieve"], "draft")
    g.add_edge("draft", "score")
    g.add_edge("score", "route")
    g.add_edge("route", "audit")
    g.add_edge("audit", "suggest_draft")
    g.add_edge("suggest_draft", "review")
    g.add_conditional_edges("review", nodes.route_after_review, {"apply_action": "apply_action", END: END})
    g.add_conditional_edges("apply_action", nodes.route_after_action, {"review": "review", END: END})
    return g.compile(checkpointer=checkpointer, name="triage")
