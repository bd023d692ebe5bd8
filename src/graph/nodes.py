"""The graph's nodes: thin functions ``(state, deps) -> partial update``.

Every model/store call goes through :func:`guarded`, which times it, enforces
``Settings.node_timeout_s`` and turns any exception into a recorded failure ("node: Kind: why"),
so no exception leaves a node and the confidence estimator escalates the ticket. Decisions are made
in the pure functions (``confidence.score``, ``routing.assign``, ``review.outcome_of``).
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import sys
import time
from collections.abc import Callable
from typing import Any

from langgraph.types import interrupt

from src.audit.models import Decision, HumanAction, audit_id_for, content_hash
from src.graph.confidence import ConfidenceInputs, score
from src.graph.deps import Deps
from src.graph.review import ReviewAction, outcome_of, review_payload
from src.llm.types import Analysis, Draft
from src.retrieval.types import Hit
from src.text.types import Preprocessed

Update = dict[str, Any]

_pool: concurrent.futures.ThreadPoolExecutor | None = None


class NodeTimeout(TimeoutError):
    pass


def _executor() -> concurrent.futures.ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="triage-node")
    return _pool


def call_with_timeout(fn: Callable[[], Any], timeout_s: float | None) -> Any:
    """Run ``fn`` with a deadline (in a worker thread that keeps the tracing context)."""
    if not timeout_s or timeout_s <= 0:
        return fn()
    from src.llm.deadline import run_with_deadline  # the LLM calls inside stop at the deadline themselves

    ctx = contextvars.copy_context()
    future = _executor().submit(ctx.run, run_with_deadline, timeout_s, fn)
    try:
        return future.result(timeout=timeout_s)
    except concurrent.futures.TimeoutError as exc:
        future.cancel()
        raise NodeTimeout(f"no result within {timeout_s:g}s") from exc


def failure(node: str, exc: BaseException) -> str:
    kind = getattr(exc, "kind", None) or type(exc).__name__
    return f"{node}: {kind}: {str(exc)[:300]}"


def guarded(node: str, deps: Deps, body: Callable[[], Update], *, timeout: bool = True) -> Update:
    """Run a node body: latency recorded, exceptions and timeouts become failures, never raised."""
    start = time.perf_counter()
    try:
        update = call_with_timeout(body, deps.settings.node_timeout_s if timeout else None) or {}
    except Exception as exc:  # noqa: BLE001 - fail closed: the reason goes into the state, not up the stack
        update = {"failures": [failure(node, exc)]}
    elapsed = round((time.perf_counter() - start) * 1000, 2)
    update["latency_ms"] = {**update.get("latency_ms", {}), node: elapsed}
    return update


def _pre(state: dict[str, Any]) -> Preprocessed:
    """The state's preprocessed ticket: masked only (``text`` and ``pii_map`` never enter the state)."""
    pre = state.get("pre") or {"masked_text": "", "valid": False}
    return Preprocessed.model_validate({**pre, "text": pre.get("masked_text", ""), "pii_map": {}})


def private_part(pre: Preprocessed) -> dict[str, Any]:
    """What the state keeps of a preprocessed ticket: no cleaned-but-unmasked text, no PII map."""
    return pre.model_dump(mode="json", exclude={"text", "pii_map"})


def _usage(obj: Analysis | Draft, step: str) -> list[dict[str, Any]]:
    return [{"step": step, **obj.usage.model_dump(mode="json")}] if obj.usage is not None else []


# --- nodes ----------------------------------------------------------------------------------


def preprocess_node(state: dict[str, Any], deps: Deps) -> Update:
    """Read the submitted text from the PII vault, clean + mask it, keep the PII map in the vault.

    The state (and so every checkpoint and trace) only ever gets the masked text; the unmasked text
    is used here, in memory, for the rule signals and is gone when the node returns.
    """

    def body() -> Update:
        private = deps.audit.get_private(state["ticket_id"]) or {}
        raw = private.get("raw_text") or ""
        subject = private.get("subject")
        if subject and subject.strip() and subject.strip() not in raw:
            raw = f"{subject.strip()}\n\n{raw}"
        pre = deps.run_preprocess(raw)
        if pre.pii_map:
            deps.audit.save_pii_map(state["ticket_id"], pre.pii_map)
        update: Update = {"pre": private_part(pre), "signals": [], "injection": []}
        if pre.valid:
            update["signals"] = [s.model_dump(mode="json") for s in deps.signals(pre.text)]
            update["injection"] = list(deps.injection(pre.text))
        if private.get("raw_text") is None:
            update["failures"] = ["preprocess: the ticket text is not in the vault (purged or never stored)"]
        return update

    update = guarded("preprocess", deps, body)
    if "pre" not in update:  # preprocessing itself failed: treat as unreadable
        update["pre"] = {"masked_text": "", "valid": False, "flags": ["preprocess_failed"]}
    return update


def route_after_preprocess(state: dict[str, Any]) -> str:
    """Empty/unreadable tickets skip the models (and the LLM) and go straight to scoring -> human."""
    return "classify" if (state.get("pre") or {}).get("valid") else "score"


def classify_node(state: dict[str, Any], deps: Deps) -> Update:
    def body() -> Update:
        if deps.classifier is None:
            raise RuntimeError("no classifier loaded")
        pred = deps.classifier.predict([_pre(state).masked_text])[0]
        update: Update = {"prediction": pred.model_dump(mode="json")}
        if not pred.valid or pred.label is None:
            update["failures"] = [f"classify: invalid prediction: {pred.reason or 'no label'}"]
        return update

    return guarded("classify", deps, body)


def _heads_reading(deps: Deps, text: str) -> Any | None:
    """What the analysis heads read in the ticket's embedding; None (-> ask the LLM) if they can't."""
    embed = getattr(deps.knowledge_base, "embed_query", None)
    if deps.heads is None or embed is None:
        return None
    try:
        return deps.heads.read(embed(text), text)
    except Exception:  # noqa: BLE001 - no embedding (retrieval down) just means the LLM reads it
        return None


def analyze_node(state: dict[str, Any], deps: Deps) -> Update:
    """Cheap heads first; the LLM only where they are unsure or a rule fired (src/llm/cascade.py)."""
    from src.llm.cascade import cascade_analyze
    from src.text.types import Signal

    def body() -> Update:
        text = _pre(state).masked_text

        def llm() -> Analysis:
            if deps.provider is None:
                raise RuntimeError("no LLM provider configured/available")
            return deps.analyze(text, deps.provider)

        signals = [Signal.model_validate(s) for s in state.get("signals") or []]
        reading = _heads_reading(deps, text)
        version = getattr(deps.heads, "version", "")
        analysis = cascade_analyze(text, reading, version, signals, state.get("injection") or [], llm,
                                   llm_on_rules=deps.settings.analysis_llm_on_rules)
        update: Update = {"analysis": analysis.model_dump(mode="json"), "usage": _usage(analysis, "analyze")}
        if not analysis.reliable:
            why = analysis.reason or "analysis did not validate"
            update["failures"] = [f"analyze: invalid_output: {why}"]
        return update

    return guarded("analyze", deps, body)


def retrieve_node(state: dict[str, Any], deps: Deps) -> Update:
    def body() -> Update:
        if deps.knowledge_base is None:
            raise RuntimeError("knowledge base not available")
        intent = (state.get("prediction") or {}).get("label")
        text, k = _pre(state).masked_text, deps.settings.retrieval_k
        kb = deps.knowledge_base
        # Embed once, search twice (a knowledge base without embed_query, e.g. a fake, embeds itself).
        embed = getattr(kb, "embed_query", None)
        by_vector: dict[str, Any] = {"vector": embed(text)} if embed is not None else {}
        # Evidence for the draft: filtered by the predicted intent (the store tops up if too few).
        hits = kb.search(text, k=k, intent=intent, **by_vector)
        # Support for the score: the *unfiltered* neighbours, or agreement would be true by construction.
        neighbours = kb.search(text, k=k, **by_vector) if intent is not None else hits
        return {
            "hits": [h.model_dump(mode="json") for h in hits],
            "retrieval": {
                "filtered": bool(getattr(hits, "filtered", intent is not None)),
                "fallback_used": bool(getattr(hits, "fallback_used", False)),
                "neighbours": [
                    {"id": h.id, "intent": h.ticket.intent, "similarity": h.similarity} for h in neighbours
                ],
            },
        }

    return guarded("retrieve", deps, body)


def _llm_draft(state: dict[str, Any], deps: Deps) -> Update:
    analysis = Analysis.model_validate(state["analysis"])
    hits = [Hit.model_validate(h) for h in state.get("hits") or []]
    result = deps.draft(_pre(state).masked_text, analysis, hits, deps.provider)
    # masked, like everything in the state: the service unmasks it for display (TriageService.get)
    return {"draft": result.model_dump(mode="json"), "usage": _usage(result, "draft")}


def draft_node(state: dict[str, Any], deps: Deps) -> Update:
    """Route before drafting: a draft can only lower the route, so score without it first.

    escalate -> no draft; a close same-intent resolution -> it is the draft (no LLM); otherwise an
    LLM draft now only if the ticket could auto-resolve, and for a suggest after the decision
    (``suggest_draft``, ``Settings.draft_suggest``).
    """
    failures = state.get("failures") or []
    if any(f.startswith(("analyze:", "classify:")) for f in failures) or not state.get("analysis"):
        # The LLM just failed (or we do not know what the ticket is): don't spend another call.
        return {"draft": None, "latency_ms": {"draft": 0.0}}

    def body() -> Update:
        inputs = confidence_inputs(state, deps).model_copy(update={"draft_reliable": None})
        before = score(inputs, deps.thresholds()).route
        if before == "escalate":
            return {"draft": None}
        if deps.template is not None:
            hits = [Hit.model_validate(h) for h in state.get("hits") or []]
            label = (state.get("prediction") or {}).get("label")
            template = deps.template(_pre(state).masked_text, label, hits)
            if template is not None:
                return {"draft": template.model_dump(mode="json")}
        if deps.provider is None:  # no LLM (TRIAGE_SERVICE_LLM=false): no draft, so no auto-resolve
            return {"draft": None}
        if before == "auto_resolve":
            return _llm_draft(state, deps)
        if deps.settings.draft_suggest == "off":
            return {"draft": None}
        later = Draft(text="", reliable=False, source="deferred", flags=["deferred: after the decision"])
        return {"draft": later.model_dump(mode="json")}

    return guarded("draft", deps, body)


def suggest_draft_node(state: dict[str, Any], deps: Deps) -> Update:
    """A suggest's LLM draft, written after its decision is audited (off the decision's critical path).

    Only for a draft ``draft_node`` deferred, and only while the route is still suggest. A failure
    here is recorded but changes nothing: the decision is already made and a human will see it.
    """
    deferred = (state.get("draft") or {}).get("source") == "deferred"
    if not deferred or (state.get("score") or {}).get("route") != "suggest" or deps.provider is None:
        return {}
    return guarded("suggest_draft", deps, lambda: _llm_draft(state, deps))


def confidence_inputs(state: dict[str, Any], deps: Deps) -> ConfidenceInputs:
    """Collect what the estimator needs from the state (pure given deps.settings)."""
    pre = _pre(state)
    pred = state.get("prediction") or {}
    failures = list(state.get("failures") or [])
    if not pre.valid:
        failures.append(f"preprocess: unreadable ticket ({', '.join(pre.flags) or 'invalid'})")
    analysis = state.get("analysis") or {}
    signals = state.get("signals") or []
    sensitive = {name for name, on in (analysis.get("sensitive") or {}).items() if on}
    sensitive |= {s["sensitive_flag"] for s in signals if s.get("sensitive_flag")}
    signal_names = {s["name"] for s in signals} | {
        s for s in analysis.get("signals", []) if not s.startswith("prompt_injection")
    }
    retrieved = "retrieval" in state and not any(f.startswith("retrieve:") for f in failures)
    neighbours = (state.get("retrieval") or {}).get("neighbours") or []
    label = pred.get("label")
    same_intent = sum(n.get("intent") == label for n in neighbours)
    draft = state.get("draft")
    lang = pre.language
    return ConfidenceInputs(
        intent=label,
        probability=float(pred.get("confidence", 0.0)),
        margin=float(pred.get("margin", 0.0)),
        entropy=float(pred.get("entropy", 1.0)),
        ood_score=pred.get("ood_score"),
        classifier_valid=bool(pred.get("valid", False)) and pre.valid,
        best_similarity=max((n["similarity"] for n in neighbours), default=None) if retrieved else None,
        neighbours_total=len(neighbours) if retrieved else None,
        neighbours_same_intent=same_intent if retrieved else None,
        sentiment=analysis.get("sentiment"),
        priority=analysis.get("priority"),
        escalation_risk=analysis.get("escalation_risk"),
        analysis_reliable=analysis.get("reliable") if analysis else None,
        analysis_uncertain=bool(analysis.get("uncertain")),
        escalation_signals=sorted(signal_names),
        sensitive_flags=sorted(sensitive),
        language=lang,
        language_supported=None if lang is None else lang in deps.settings.supported_languages,
        draft_reliable=(draft.get("reliable") if draft else (False if pre.valid and label else None)),
        injection=bool(state.get("injection")) or any(
            s.startswith("prompt_injection") for s in analysis.get("signals", [])
        ),
        failures=failures,
    )


def score_node(state: dict[str, Any], deps: Deps) -> Update:
    start = time.perf_counter()
    try:
        result = score(confidence_inputs(state, deps), deps.thresholds()).model_dump(mode="json")
    except Exception as exc:  # noqa: BLE001 - even a scoring bug must end in a human queue
        result = {"value": 0.0, "route": "escalate", "reasons": [failure("score", exc)], "adjustments": {}}
    from src.graph.clarify import clarify_update  # ambiguous: a clarifying question, routed as suggest

    update: Update = {"score": result, **clarify_update(state, deps, result)}
    update["latency_ms"] = {"score": round((time.perf_counter() - start) * 1000, 2)}
    return update


def assignment_for(state: dict[str, Any], deps: Deps, route: str) -> Update:
    """Team/queue/SLA for ``route``: the one place an assignment is made, so it always follows the route."""
    priority = (state.get("analysis") or {}).get("priority")
    intent = (state.get("prediction") or {}).get("label")
    try:
        return {"assignment": deps.routing.assign(intent, route, priority).model_dump(mode="json")}
    except Exception as exc:  # noqa: BLE001
        assignment = {"team": deps.routing.escalation_team, "queue": "escalation", "sla_hours": 1.0}
        return {"assignment": assignment, "failures": [failure("route", exc)]}


def escalated(state: dict[str, Any], deps: Deps, reason: str) -> Update:
    """Lower the route to escalate *and* move the ticket to the escalation team (one update)."""
    sc = dict(state.get("score") or {"value": 0.0, "reasons": [], "adjustments": {}})
    sc["route"] = "escalate"
    sc["reasons"] = [*sc.get("reasons", []), reason]
    update = assignment_for(state, deps, "escalate")
    return {**update, "score": sc}


def route_node(state: dict[str, Any], deps: Deps) -> Update:
    sc = state.get("score") or {"route": "escalate"}
    return assignment_for(state, deps, sc.get("route", "escalate"))


def _intent(hit: dict[str, Any]) -> str | None:
    return (hit.get("ticket") or {}).get("intent")


def build_decision(state: dict[str, Any], deps: Deps) -> Decision:
    pre = _pre(state)
    pred = state.get("prediction") or {}
    sc = state.get("score") or {}
    usage = state.get("usage") or []
    assignment = state.get("assignment") or {}
    return Decision(
        ticket_id=state["ticket_id"],
        content_hash=state.get("content_hash") or content_hash(""),
        channel=state.get("channel") or "api",
        text=pre.masked_text,
        language=pre.language,
        flags=pre.flags,
        bundle_version=getattr(deps.classifier, "version", None),
        prompt_versions=deps.prompt_versions,
        intent=pred.get("label"),
        confidence=pred.get("confidence"),
        top3=[tuple(t) for t in pred.get("top3", [])],
        analysis=state.get("analysis"),
        evidence=[
            {"id": h["id"], "score": h["score"], "similarity": h["similarity"], "intent": _intent(h)}
            for h in state.get("hits") or []
        ],
        draft=(state.get("draft") or {}).get("text"),
        score=float(sc.get("value", 0.0)),
        route=sc.get("route", "escalate"),
        reasons=[*sc.get("reasons", [])],
        team=assignment.get("team"),
        sla_hours=assignment.get("sla_hours"),
        latency_ms=state.get("latency_ms") or {},
        tokens_in=sum(int(u.get("tokens_in", 0)) for u in usage),
        tokens_out=sum(int(u.get("tokens_out", 0)) for u in usage),
        cost_usd=round(sum(float(u.get("cost_usd", 0.0)) for u in usage), 8),
        trace_id=state.get("trace_id"),
    )


def audit_node(state: dict[str, Any], deps: Deps) -> Update:
    """Write the Decision (exactly once per ticket id) *before* any human pause."""
    start = time.perf_counter()
    audit_id = audit_id_for(state["ticket_id"])
    update: Update = {"audit_id": audit_id}
    try:
        update["audit_id"] = deps.audit.record_decision(build_decision(state, deps))
    except Exception as exc:  # noqa: BLE001 - outbox itself failed (e.g. disk): keep going, say so loudly
        print(f"triage: AUDIT WRITE FAILED for ticket {state['ticket_id']}: {exc}", file=sys.stderr)
        if (state.get("score") or {}).get("route") == "auto_resolve":
            reason = "audit write failed: not auto-resolving (route capped)"
            update.update(escalated(state, deps, reason))  # the team follows the route (#10 item 17)
        update["failures"] = [*update.get("failures", []), failure("audit", exc)]
    update["latency_ms"] = {"audit": round((time.perf_counter() - start) * 1000, 2)}
    if deps.shadow is not None:  # after the decision is recorded; never raises, never acts
        deps.shadow.observe(state, deps)
    return update


def review_node(state: dict[str, Any], deps: Deps) -> Update:
    """Pause suggest/escalate tickets for a human. Re-runs on resume, so it only reads + interrupts."""
    route = (state.get("score") or {}).get("route", "escalate")
    if route == "auto_resolve":
        return {"status": "auto_resolved", "action": None}
    action = interrupt(review_payload(state))
    return {"action": action}


def route_after_review(state: dict[str, Any]) -> str:
    return "apply_action" if state.get("action") else "__end__"


def apply_action_node(state: dict[str, Any], deps: Deps) -> Update:
    """Record the reviewer's action (idempotent key) and the outcome. Safe to re-run."""
    try:
        action = ReviewAction.model_validate(state.get("action") or {})
    except Exception as exc:  # noqa: BLE001 - a malformed resume value is recorded, never applied
        return {"status": "pending_review", "failures": [failure("review", exc)]}
    predicted = (state.get("prediction") or {}).get("label")
    human = HumanAction(
        ticket_id=state["ticket_id"],
        action=action.action,
        actor=action.by,
        edited_draft=action.text if action.action in ("edit", "respond") else None,
        corrected_intent=action.intent if action.intent != predicted else None,
        team=action.team,
        note=action.note,
        action_id=action.action_id,
        bad_example=action.bad_example,
    )
    if action.action == "escalate":
        return _escalate_by_reviewer(state, deps, action, human)
    update: Update = {"status": "completed", "outcome": outcome_of(action, state)}
    try:
        update["outcome"]["action_key"] = deps.audit.record_action(human)
    except Exception as exc:  # noqa: BLE001
        print(f"triage: AUDIT ACTION WRITE FAILED for ticket {state['ticket_id']}: {exc}", file=sys.stderr)
        update["failures"] = [failure("audit_action", exc)]
    return update


def _escalate_by_reviewer(
    state: dict[str, Any], deps: Deps, action: ReviewAction, human: HumanAction
) -> Update:
    """A reviewer hands the ticket to its escalation team: route and team change, the ticket waits again."""
    reason = f"escalated by reviewer {action.by}" + (f": {action.note}" if action.note else "")
    update = escalated(state, deps, reason)
    human.team = (update.get("assignment") or {}).get("team")
    update["status"] = "pending_review"
    try:
        deps.audit.record_action(human)
    except Exception as exc:  # noqa: BLE001
        print(f"triage: AUDIT ACTION WRITE FAILED for ticket {state['ticket_id']}: {exc}", file=sys.stderr)
        update["failures"] = [*update.get("failures", []), failure("audit_action", exc)]
    return update


def route_after_action(state: dict[str, Any]) -> str:
    """An escalation goes back to ``review`` (a new pause, now in the escalation queue); the rest end."""
    escalating = (state.get("action") or {}).get("action") == "escalate"
    return "review" if escalating and state.get("status") == "pending_review" else "__end__"
