"""Audit failures callers can act on."""

from __future__ import annotations


class AuditUnavailable(RuntimeError):
    """The audit database cannot be reached or written: the caller keeps the record in the outbox."""
