"""The analysis benchmark file and the agreement arithmetic of src.llm.evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from src.config import PROJECT_ROOT
from src.llm.evaluate import agreement, evaluate, load_tickets, markdown_table
from src.llm.providers.fake import FakeProvider

BENCH = PROJECT_ROOT / "benchmarks" / "analysis_tickets.jsonl"


def test_benchmark_file_is_well_formed_and_mixed() -> None:
    rows = load_tickets(BENCH)
    assert len(rows) >= 40 and len({r["id"] for r in rows}) == len(rows)
    assert {r["sentiment"] for r in rows} == {"angry", "frustrated", "neutral", "positive"}
    assert {r["priority"] for r in rows} == {"P1", "P2", "P3", "P4"}
    assert {r["escalation"] for r in rows} == {True, False}
    assert sum(r["language"] != "en" for r in rows) >= 4
    assert sum("injection" in r["tags"] for r in rows) >= 3


def test_agreement_counts_errors_as_misses() -> None:
    rows = [
        {"sentiment": "angry", "priority": "P1", "escalation": True},
        {"sentiment": "neutral", "priority": "P4", "escalation": False},
    ]
    preds = [{"sentiment": "angry", "priority": "P2", "escalation": True}, None]
    out = agreement(rows, preds)
    assert out["sentiment"] == 0.5 and out["priority"] == 0.0 and out["priority_within_1"] == 0.5
    assert out["escalation"] == 0.5 and out["escalation_recall"] == 1.0 and out["escalation_precision"] == 1.0


def test_evaluate_with_scripted_model(tmp_path: Path) -> None:
    calm = {
        "language": "en", "summary": "s", "sentiment": "neutral", "priority": "P4", "escalation_risk": False,
        "reason": "r", "legal_threat": False, "health_safety": False, "security_account_takeover": False,
        "churn": False,
    }  # fmt: skip
    rows = [
        {"id": "1", "text": "I will sue you, my lawyer is ready.", "sentiment": "angry", "priority": "P1",
         "escalation": True},
        {"id": "2", "text": "Do you ship to Canada?", "sentiment": "neutral", "priority": "P4",
         "escalation": False},
    ]  # fmt: skip
    result = evaluate(rows, FakeProvider(json_responses=[calm]), progress=False)
    a = result["agreement"]
    assert a["llm_only"]["escalation"] == 0.5  # the model missed the legal threat
    assert a["combined"]["escalation"] == 1.0  # the rules caught it
    assert a["rules_only_escalation"]["escalation"] == 1.0
    assert result["errors"] == 0 and result["reliable_rate"] == 1.0
    assert json.dumps(result)  # JSON-able report


def test_bad_benchmark_line_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "text": "hi"}\n')
    with pytest.raises(ValueError, match="missing fields"):
        load_tickets(bad)


def test_markdown_table_quotes_report_numbers() -> None:
    rows = [
        {
            "id": "1",
            "text": "My lawyer will call.",
            "sentiment": "angry",
            "priority": "P1",
            "escalation": True,
        },
    ]
    calm = {
        "language": "en", "summary": "s", "sentiment": "angry", "priority": "P1", "escalation_risk": True,
        "reason": "r", "legal_threat": True, "health_safety": False, "security_account_takeover": False,
        "churn": False,
    }  # fmt: skip
    report = {
        "provider": "fake",
        "model": "m",
        "n": 1,
        **evaluate(rows, FakeProvider(json_responses=[calm]), progress=False),
    }
    table = markdown_table([report])
    assert table.splitlines()[2].startswith("| fake:m | 1 | 1.00 | 1.00 |")


def test_cli_errors_are_messages_not_tracebacks(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from src.llm.evaluate import main

    assert main(["--provider", "gemini"]) == 2
    assert "unknown LLM provider" in capsys.readouterr().err
    assert main(["--data", str(tmp_path / "missing.jsonl")]) == 2
    assert main(["--table", str(tmp_path / "missing.json")]) == 2
