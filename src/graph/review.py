"""Human-in-the-loop: the payload a review UI renders, and the validated resume action (pure)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, model_validator

from src.audit.models import ACTIONS

ActionName = Literal["accept", "edit", "respond", "reassign", "ignore", "escalate"]


class ReviewAction(BaseModel):
    """What a reviewer did. ``edit``/``respond`` need ``text``; ``reassign`` needs ``team``.

    ``escalate`` does not complete the review: the ticket moves to its escalation team's queue and
    pauses again for the next action (``note`` says why).
    """

    action: ActionName
    text: str | None = None  # edited draft (edit) or the reviewer's own reply (respond)
    by: str = "unknown"
    intent: str | None = None  # corrected intent (feeds the training export)
    team: str | None = None  # reassign target
    note: str | None = None
    action_id: str | None = None  # idempotency key from the caller (e.g. a review UI click id)
    # never learn from this ticket: kept out of retraining rows and the knowledge base (docs/lifecycle.md)
    bad_example: bool = False

    @model_validator(mode="after")
    def _needs(self) -> ReviewAction:
        if self.action in ("edit", "respond") and not (self.text and self.text.strip()):
            raise ValueError(f"action {self.action!r} needs a non-empty text")
        if self.action == "reassign" and not self.team:
            raise ValueError("action 'reassign' needs a team")
        return self


def review_payload(state: dict[str, Any]) -> dict[str, Any]:
    """Everything a reviewer needs on one screen, JSON-able — masked, because it is checkpointed
    (interrupt value) and traced; ``TriageService`` restores the PII from the vault when it shows it."""
    pred = state.get("prediction") or {}
    score = state.get("score") or {}
    hits = state.get("hits") or []
    return {
        "ticket_id": state.get("ticket_id"),
        "audit_id": state.get("audit_id"),
        "route": score.get("route"),
        "ticket": {
            "channel": state.get("channel"),
            "subject": None,  # in the vault; filled in on display
            "text": (state.get("pre") or {}).get("masked_text") or "",
            "language": (state.get("pre") or {}).get("language"),
            "flags": (state.get("pre") or {}).get("flags", []),
        },
        "intent": pred.get("label"),
        "intent_confidence": pred.get("confidence"),
        "top3": pred.get("top3", []),
        "confidence": score.get("value"),
        "reasons": score.get("reasons", []),
        "analysis": state.get("analysis"),
        "similar_tickets": [
            {
                "id": h["id"],
                "similarity": h.get("similarity"),
                "intent": (h.get("ticket") or {}).get("intent"),
                "text": (h.get("ticket") or {}).get("text"),
                "response": (h.get("ticket") or {}).get("response"),
            }
            for h in hits
        ],
        "draft": (state.get("draft") or {}).get("text"),
        "assignment": state.get("assignment"),
        "failures": state.get("failures", []),
        "allowed_actions": list(ACTIONS),
    }


def outcome_of(action: ReviewAction, state: dict[str, Any]) -> dict[str, Any]:
    """The final result of a review (pure): what is sent, to whom, with which intent (masked text)."""
    draft = (state.get("draft") or {}).get("text")
    assignment = state.get("assignment") or {}
    reply = {"accept": draft, "edit": action.text, "respond": action.text}.get(action.action)
    return {
        "action": action.action,
        "by": action.by,
        "reply": reply,
        "sent": reply is not None,
        "team": action.team if action.action == "reassign" else assignment.get("team"),
        "intent": action.intent or (state.get("prediction") or {}).get("label"),
        "closed": action.action == "ignore",
    }
