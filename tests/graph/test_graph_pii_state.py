"""#10 item 9 (state half): graph state and checkpoints never hold unmasked text or the PII map; the
vault keeps them, views are unmasked on read, and the retention command purges finished tickets.
(The trace half — LangSmith payloads masked — is tests/graph/test_graph_tracing.py.)
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from fakes_graph import FakeClassifier, make_deps, neutral_analysis

from src.graph.checkpoint import sqlite_checkpointer
from src.graph.service import TicketIn, TriageService
from src.llm.providers.fake import FakeProvider

EMAIL, PHONE, CARD = "jane.doe@example.com", "+1 415 555 0100", "4111 1111 1111 1111"
PII_TEXT = f"Please cancel my order, my email is {EMAIL}, phone {PHONE}, card {CARD}."
SECRETS = [EMAIL, PHONE, CARD, "4111111111111111", "jane.doe"]


def _service(tmp_path: Path, probability: float = 0.75) -> TriageService:
    provider = FakeProvider(json_responses=neutral_analysis(), text_responses="We will write to [EMAIL_1].")
    deps = make_deps(tmp_path, classifier=FakeClassifier(probability=probability), provider=provider)
    return TriageService(deps, sqlite_checkpointer(tmp_path / "ckpt.db"))


def _checkpoint_bytes(path: Path) -> bytes:
    """Every blob and text the SQLite checkpointer stored (checkpoints + pending writes)."""
    out = b""
    with sqlite3.connect(path) as conn:
        for table in ("checkpoints", "writes"):
            for row in conn.execute(f"SELECT * FROM {table}"):  # noqa: S608 - fixed table names
                out += b"".join(v if isinstance(v, bytes) else str(v).encode() for v in row if v is not None)
    return out


def test_state_and_checkpoints_hold_no_pii_but_views_do(tmp_path: Path) -> None:
    svc = _service(tmp_path)
    out = svc.run(TicketIn(id="P1", channel="email", subject=f"Order for {EMAIL}", text=PII_TEXT))
    assert out["status"] == "pending_review"
    assert out["draft"] == f"We will write to {EMAIL}."  # rebuilt on read from the vault
    review = svc.pending("email:P1")
    assert EMAIL in review["ticket"]["text"] and review["ticket"]["subject"] == f"Order for {EMAIL}"
    assert review["draft"] == f"We will write to {EMAIL}."

    done = svc.resume(
        "email:P1", {"action": "edit", "text": f"Done, confirmation sent to {EMAIL}.", "by": "ana"}
    )
    assert done["outcome"]["reply"] == f"Done, confirmation sent to {EMAIL}."  # the reviewer's reply, whole

    state = svc.graph.get_state({"configurable": {"thread_id": "email:P1"}}).values
    assert not {"raw_text", "subject", "metadata", "draft_display"} & set(state)
    assert "text" not in state["pre"] and "pii_map" not in state["pre"]
    blob = json.dumps(state, default=str)
    stored = _checkpoint_bytes(tmp_path / "ckpt.db")
    for secret in SECRETS:
        assert secret not in blob, secret
        assert secret.encode() not in stored, secret
    # the audit row's free text is masked too (the reviewer's reply is stored re-masked)
    row = svc.deps.audit.get_decision("email:P1")
    action = svc.deps.audit.list_actions("email:P1")[0]
    for secret in SECRETS:
        assert secret not in json.dumps(row, default=str) and secret not in (action["edited_draft"] or "")
    assert "[EMAIL_1]" in action["edited_draft"]


def test_retention_purges_finished_tickets_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from src import config
    from src.audit.retention import main as retention_main

    auto = _service(tmp_path, probability=0.97)
    auto.run(TicketIn(id="R1", channel="chat", text=PII_TEXT))
    waiting = _service(tmp_path, probability=0.75)
    waiting.run(TicketIn(id="R2", channel="chat", text=PII_TEXT))
    assert auto.get("chat:R1")["status"] == "auto_resolved"

    monkeypatch.setenv("TRIAGE_SQLITE_PATH", str(tmp_path / "audit.db"))
    monkeypatch.setenv("TRIAGE_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.delenv("TRIAGE_DATABASE_URL", raising=False)
    config.get_settings.cache_clear()
    try:
        assert retention_main(["--days", "0", "--dry-run"]) == 0
        assert json.loads(capsys.readouterr().out)["would_purge"] == 1
        assert auto.get("chat:R1")["draft"] == f"We will write to {EMAIL}."  # dry run: untouched
        assert retention_main(["--days", "0"]) == 0
        assert json.loads(capsys.readouterr().out) == {
            "days": 0,
            "dry_run": False,
            "purged": 1,
            "kept_unfinished": 1,
        }
        monkeypatch.setenv("TRIAGE_RETENTION_DAYS", "30")
        config.get_settings.cache_clear()
        assert retention_main([]) == 0  # the setting is the default; nothing that old
        assert json.loads(capsys.readouterr().out)["days"] == 30
    finally:
        config.get_settings.cache_clear()
    assert auto.get("chat:R1")["draft"] == "We will write to [EMAIL_1]."  # placeholders from now on
    assert auto.deps.audit.get_private("chat:R1")["raw_text"] is None
    assert EMAIL in waiting.pending("chat:R2")["ticket"]["text"]  # still waiting: kept


def test_retention_help() -> None:
    from src.audit.retention import main as retention_main

    with pytest.raises(SystemExit) as exc:
        retention_main(["--help"])
    assert exc.value.code == 0
