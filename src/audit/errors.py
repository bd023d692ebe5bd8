"""Audit failures callers can act on.

The split matters for the outbox: ``AuditUnavailable`` is about the *store* (down, restarting, a
table missing) and the record is kept to retry later; ``AuditRejected`` is about *one record* the
store will never accept (a constraint, a value Postgres cannot hold), so retrying it would block
every later record: it goes to the dead-letter folder with the reason instead.
"""

from __future__ import annotations


class AuditUnavailable(RuntimeError):
    """The audit database cannot be reached or written: the caller keeps the record in the outbox."""


class AuditRejected(RuntimeError):
    """The database refused this particular record (integrity/data error): dead-letter it, carry on."""
