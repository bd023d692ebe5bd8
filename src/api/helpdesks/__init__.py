"""Helpdesk adapters (Zendesk, Freshdesk, Intercom): webhook verification, payload mapping, write-back."""

from __future__ import annotations

from src.api.helpdesks.base import Helpdesk
from src.config import Settings

HELPDESKS = ("zendesk", "freshdesk", "intercom")


def get_helpdesk(name: str, settings: Settings) -> Helpdesk:
    """The adapter for ``name``; KeyError for an unknown helpdesk."""
    if name == "zendesk":
        from src.api.helpdesks.zendesk import Zendesk

        return Zendesk(settings)
    if name == "freshdesk":
        from src.api.helpdesks.freshdesk import Freshdesk

        return Freshdesk(settings)
    if name == "intercom":
        from src.api.helpdesks.intercom import Intercom

        return Intercom(settings)
    raise KeyError(name)
