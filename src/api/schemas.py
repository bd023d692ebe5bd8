"""Request and response bodies of the API (pydantic; they are the OpenAPI schema too).

Requests forbid unknown fields so a typo ("txt") is a clear 422 naming the field, not a silently
empty ticket. ``IntakeTicket`` is the one normalised shape every intake path (JSON, raw email,
helpdesk webhooks) produces before identity, persistence and queueing.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

CHANNEL_PATTERN = r"^[a-z0-9_-]{1,32}$"
HELPDESK_CHANNELS = ("zendesk", "freshdesk", "intercom")
MAX_TEXT_CHARS = 200_000


class Customer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    name: str | None = Field(default=None, max_length=200)


class IntakeTicket(BaseModel):
    """A ticket as received, before identity: ``id`` is the *source's* id (message id, helpdesk id)."""

    channel: str = Field(default="api", pattern=CHANNEL_PATTERN)
    id: str | None = Field(default=None, max_length=200)
    subject: str | None = None
    text: str = ""
    customer: dict[str, Any] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class TicketRequest(BaseModel):
    """``POST /v1/tickets`` JSON body: ``text`` or ``html`` (HTML is turned into text)."""

    model_config = ConfigDict(extra="forbid")

    channel: str = Field(default="api", pattern=CHANNEL_PATTERN, description="chat, email, api, ...")
    id: str | None = Field(default=None, max_length=200, description="the source's ticket or message id")
    subject: str | None = Field(default=None, max_length=2000)
    text: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    html: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    customer: Customer | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> TicketRequest:
        if self.text is None and self.html is None:
            raise ValueError("one of 'text' or 'html' is required")
        if self.channel in HELPDESK_CHANNELS:
            raise ValueError(f"channel {self.channel!r} is reserved for POST /webhooks/{self.channel}")
        if self.id is not None and not self.id.strip():
            raise ValueError("'id' must not be blank (omit it when the source has no id)")
        return self

    def to_intake(self) -> IntakeTicket:
        from src.text.preprocess import strip_html

        text = self.text if self.text is not None else strip_html(self.html or "")
        customer = self.customer.model_dump(exclude_none=True) if self.customer else None
        return IntakeTicket(
            channel=self.channel,
            id=self.id,
            subject=self.subject,
            text=text,
            customer=customer or None,
            metadata=self.metadata,
        )


class Accepted(BaseModel):
    ticket_id: str
    state: str
    status_url: str
    duplicate: bool = False


class TicketStatus(BaseModel):
    """``GET /v1/tickets/{id}``: intake state plus the decision once there is one."""

    ticket_id: str
    state: str = Field(description="queued | processing | auto_resolved | pending_review | completed")
    channel: str | None = None
    accepted_at: str | None = None
    decided_at: str | None = None
    decision: dict[str, Any] | None = None


class ReviewRequest(BaseModel):
    """``POST /v1/review/{id}``: what the reviewer did; ``intent`` corrects the predicted intent."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["accept", "edit", "respond", "reassign", "ignore", "escalate"]
    text: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    intent: str | None = Field(default=None, max_length=200)
    team: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None, max_length=5000)
    by: str | None = Field(
        default=None, max_length=200, description="reviewer name (recorded with the key name)"
    )
    action_id: str | None = Field(default=None, max_length=200, description="idempotency key of the click")
    bad_example: bool = Field(default=False, description="never learn from this ticket (training, KB)")


class Problem(BaseModel):
    """Every 4xx/5xx body: what went wrong, in words a client developer can act on."""

    error: str
    detail: Any = None
