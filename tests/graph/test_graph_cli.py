"""``python -m src.graph.run``: text / --file / --resume, on a fake-backed service; clear user errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes_graph import make_deps

from src.config import PROJECT_ROOT
from src.graph import run as run_cli
from src.graph.checkpoint import sqlite_checkpointer
from src.graph.deps import StartupError
from src.graph.service import TriageService

SAMPLES = PROJECT_ROOT / "samples" / "tickets.jsonl"


@pytest.fixture()
def fake_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TriageService:
    deps = make_deps(tmp_path)
    svc = TriageService(deps, sqlite_checkpointer(tmp_path / "ckpt.db"))
    monkeypatch.setattr(TriageService, "from_settings", classmethod(lambda cls, settings=None: svc))
    return svc


def _lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_single_ticket_prints_one_decision(fake_service: TriageService, capsys) -> None:
    assert run_cli.main(["I want to cancel my order please, it has not shipped", "--id", "C1"]) == 0
    (decision,) = _lines(capsys.readouterr().out)
    for key in ("route", "intent", "confidence", "reasons", "draft", "evidence", "audit_id", "trace_id"):
        assert key in decision
    assert decision["ticket_id"] == "cli:C1" and decision["route"] == "auto_resolve"


def test_sample_file_every_ticket_decided_safely(fake_service: TriageService, capsys) -> None:
    assert run_cli.main(["--file", str(SAMPLES)]) == 0
    decisions = {d["ticket_id"].split(":", 1)[1]: d for d in _lines(capsys.readouterr().out)}
    assert len(decisions) == len(SAMPLES.read_text().splitlines())
    assert decisions["sample-08"]["route"] == "escalate"  # empty
    assert decisions["sample-06"]["route"] == "escalate"  # legal threat
    assert decisions["sample-10"]["route"] == "escalate"  # prompt injection
    assert decisions["sample-05"]["route"] != "auto_resolve"  # angry (rules)
    assert "html" in decisions["sample-07"]["flags"]
    assert decisions["sample-09"]["language"] == "es"
    assert decisions["sample-09"]["route"] != "auto_resolve"
    assert fake_service.deps.audit.count_decisions() == len(decisions)


def test_resume_completes_a_paused_ticket(fake_service: TriageService, capsys) -> None:
    run_cli.main(["Cancel my order or I will call my lawyer", "--id", "C2"])
    assert _lines(capsys.readouterr().out)[0]["status"] == "pending_review"
    argv = ["--resume", "C2", "--action", "respond", "--text", "We called you.", "--by", "ana"]
    assert run_cli.main(argv) == 0
    done = _lines(capsys.readouterr().out)[0]
    assert done["status"] == "completed" and done["outcome"]["reply"] == "We called you."


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "exactly one of"),
        (["x", "--file", "y.jsonl"], "exactly one of"),
        (["--resume", "C9"], "needs --action"),
        (["--file", "/nonexistent.jsonl"], "no such file"),
        (["--resume", "nope", "--action", "accept"], "no ticket"),
        (["--resume", "nope", "--action", "edit"], "needs a non-empty text"),
    ],
)
def test_user_errors_are_messages_not_tracebacks(fake_service, capsys, argv: list[str], message: str) -> None:
    assert run_cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_bad_jsonl_line_is_reported(tmp_path: Path, fake_service, capsys) -> None:
    bad = tmp_path / "t.jsonl"
    bad.write_text('{"text": "ok"}\n{not json}\n')
    assert run_cli.main(["--file", str(bad)]) == 2
    assert "t.jsonl:2" in capsys.readouterr().err


def test_startup_error_is_a_clear_message(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    def boom(cls, settings=None):
        raise StartupError("cannot load the classifier bundle at models/intent")

    monkeypatch.setattr(TriageService, "from_settings", classmethod(boom))
    assert run_cli.main(["hello"]) == 2
    assert "cannot load the classifier bundle" in capsys.readouterr().err
