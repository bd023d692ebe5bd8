"""Analysis heads: artefact round trip and refusal, the fixed-sequence gate, fitting on teacher labels."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from src.llm import heads as heads_mod
from src.llm.cascade import AnalysisHeads, HeadsError, cascade_analyze, routine_score
from src.llm.heads import choose_gate, fit, teacher_corpus
from src.llm.types import Analysis


def test_gate_is_a_fixed_sequence_test_from_the_strictest_down() -> None:
    # 100 tickets at each score level; only the 0.95 level has non-routine ones (teacher said so)
    scores = np.repeat([0.99, 0.97, 0.95, 0.60], 100)
    routine = np.ones(400, dtype=bool)
    routine[200:260] = False
    grid = [0.98, 0.96, 0.9, 0.5]
    g = choose_gate(scores, routine, target=0.9, grid=grid)
    assert g["min_routine"] == 0.96 and g["covered"] == 200  # stops at 0.9 although 0.5 alone would pass
    assert g["stopped_at"] == 0.9
    assert choose_gate(scores, routine, target=0.999, grid=grid)["min_routine"] == 1.0  # never alone


def _rows(n: int = 120) -> list[dict]:
    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        risky = i % 4 == 0
        out.append(
            {
                "id": f"t{i}",
                "source": "x",
                "text": ("ANGRY " if risky else "calm ") + str(rng.random()),
                "sentiment": "angry" if risky else "neutral",
                "priority": "P1" if risky else "P3",
                "escalation_risk": risky,
                "reliable": True,
                "error": None,
                "teacher": "fake:t",
                "prompt_version": "analyze-v3",
            }
        )
    return out


def _fake_embed(texts: list[str], model: str | None = None) -> tuple[np.ndarray, str]:
    rng = np.random.default_rng(len(texts))
    base = np.array([[1.0, 0.0, 0.0] if t.startswith("ANGRY") else [0.0, 1.0, 0.0] for t in texts])
    return base + 0.05 * rng.standard_normal(base.shape), "fake-embedder"


def test_fit_separates_routine_from_risky_and_round_trips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(heads_mod, "embed", _fake_embed)
    heads, meta = fit(_rows(), target=0.9, folds=3)
    assert meta["n_train"] == 120 and meta["gate"]["coverage"] > 0.5 and heads.min_routine < 1.0
    calm, angry = heads.read(np.array([0.0, 1.0, 0.0])), heads.read(np.array([1.0, 0.0, 0.0]))
    assert calm.confident and not angry.confident and angry.top("escalation_risk") == "true"
    path = heads.save(tmp_path / "heads.json")
    again = AnalysisHeads.load(path, "fake-embedder")
    assert again.version == heads.version and again.version.startswith("heads-")
    assert path.stat().st_size < 200_000  # small enough to commit
    with pytest.raises(HeadsError, match="trained on fake-embedder"):
        AnalysisHeads.load(path, "sentence-transformers/all-mpnet-base-v2")
    with pytest.raises(HeadsError, match="no analysis heads"):
        AnalysisHeads.load(tmp_path / "missing.json")


def test_too_few_labels_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heads_mod, "embed", _fake_embed)
    with pytest.raises(ValueError, match="label more"):
        fit(_rows(20), target=0.9)


def test_routine_score_is_the_least_sure_head() -> None:
    probs = {
        "sentiment": {"neutral": 0.9, "angry": 0.1},
        "priority": {"P3": 0.6, "P1": 0.4},
        "escalation_risk": {"false": 0.95, "true": 0.05},
    }
    assert routine_score(probs) == pytest.approx(0.6)


def test_cascade_without_heads_is_the_llm_unchanged() -> None:
    llm = Analysis(sentiment="neutral", reason="routine")
    out = cascade_analyze("where is my order", None, "", [], [], lambda: llm)
    assert out == llm and out.source == "llm" and not out.uncertain


def test_teacher_corpus_never_contains_benchmark_text(tmp_path: Path) -> None:
    release = tmp_path / "release.csv"
    release.write_text(
        "instruction,intent,tags,response\nwhere is my order,track_order,B,r\n"
        "cancel my damn order,cancel_order,BW,r\nrefund please,get_refund,B,r\n"
    )
    bench = tmp_path / "bench.csv"
    bench.write_text("text,category\nWhere is my  order,track_order\n")
    rows = teacher_corpus(10, 0, 0, sources={"bitext": release}, exclude_files=[bench], n_offensive=5)
    texts = {r["text"] for r in rows}
    assert "where is my order" not in texts and "cancel my damn order" in texts and "refund please" in texts
    assert any(r["source"] == "bitext-offensive" for r in rows)


def test_evaluate_reports_heads_llm_and_the_graphs_cascade(monkeypatch: pytest.MonkeyPatch) -> None:
    from src.llm.heads import evaluate
    from src.llm.providers.fake import FakeProvider

    monkeypatch.setattr(heads_mod, "embed", _fake_embed)
    heads, _ = fit(_rows(), target=0.9, folds=3)
    hand = [
        {
            "id": "h1",
            "text": "calm where is my order",
            "sentiment": "neutral",
            "priority": "P3",
            "escalation": False,
        },
        {
            "id": "h2",
            "text": "ANGRY you are useless",
            "sentiment": "angry",
            "priority": "P2",
            "escalation": True,
        },
        {
            "id": "h3",
            "text": "calm my lawyer will call",
            "sentiment": "neutral",
            "priority": "P2",
            "escalation": True,
        },
    ]
    calm = {"reason": "routine request", "sentiment": "neutral", "priority": "P3", "risk": False, "flags": []}
    report = evaluate(heads, hand, FakeProvider(json_responses=calm), progress=False)
    sources = [t["cascade"]["source"] for t in report["per_ticket"]]
    assert sources == ["heads", "heads+llm", "heads+rules"]  # sure / unsure / a rule fired
    assert report["cascade_llm_calls"] == 1
    assert report["cascade_hand_escalations_reaching_a_human"] == "2/2"
    assert report["llm_alone_vs_hand"]["n"] == 3 and "heads_vs_llm_alone" in report


class _CountingTeacher:
    name, model = "fake", "teacher"

    def __init__(self) -> None:
        self.seen: list[str] = []


def test_parallel_labellers_skip_what_the_other_already_labelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = [{"id": f"t{i}", "source": "bitext", "group": "g", "text": f"ticket {i}"} for i in range(12)]
    teacher = _CountingTeacher()

    def fake_row(row: dict, provider: _CountingTeacher) -> dict:
        provider.seen.append(row["id"])
        return {**row, "sentiment": "neutral", "priority": "P3", "escalation_risk": False, "error": None}

    monkeypatch.setattr(heads_mod, "teacher_row", fake_row)
    other = tmp_path / "other.jsonl"
    heads_mod.label(corpus[:5], teacher, other, progress=False)  # the other process did these
    n = heads_mod.label(corpus, teacher, tmp_path / "mine.jsonl", progress=False, others=[other])
    assert n == 7 and sorted(teacher.seen[5:]) == sorted(r["id"] for r in corpus[5:])
    assert heads_mod.label(corpus, teacher, tmp_path / "mine.jsonl", progress=False, others=[other]) == 0


def test_a_new_gate_is_a_new_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heads_mod, "embed", _fake_embed)
    heads, _ = fit(_rows(), target=0.9, folds=3)
    before = heads.to_json()["version"]
    stricter = dataclasses.replace(heads, min_routine=min(0.99, heads.min_routine + 0.05))
    assert stricter.to_json()["version"] != before
