"""Pure rules of the knowledge base: ids, junk detection, dates, ranking, metrics, file parsing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from src.retrieval.backends import Found
from src.retrieval.evaluate import (
    bootstrap_ci,
    paired_difference,
    precision_at_k,
    reciprocal_rank,
    stratified_sample,
    top_confusions,
)
from src.retrieval.ingest import _near_duplicates
from src.retrieval.ranking import (
    blended_score,
    competition_ranks,
    drop_cut_ties,
    merge_with_fallback,
    rank,
    recency_factor,
    rrf_fuse,
)
from src.retrieval.records import (
    looks_binary,
    normalise,
    parse_resolved_at,
    skip_reason,
    split_tags,
    stable_id,
    text_hash,
)
from src.retrieval.sources import SourceError, read_rows, resolve_columns
from src.retrieval.store import payload_matches
from src.retrieval.types import Hit, ResolvedTicket, SearchResult

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _hit(i: str, score: float, sim: float | None = None) -> Hit:
    return Hit(
        id=i, score=score, similarity=sim if sim is not None else score, ticket=ResolvedTicket(id=i, text=i)
    )


# --- records -------------------------------------------------------------------------------
def test_normalise_and_ids_ignore_case_space_punctuation_but_not_words() -> None:
    assert normalise("  How DO I\r\n cancel, my order?? ") == "how do i cancel my order"
    assert normalise("{{Order Number}}") == "{{order number}}"
    assert stable_id("Cancel my order!", "Done.") == stable_id("cancel my order", "done")
    assert stable_id("cancel my order", "done") != stable_id("cancel my order", "refunded")
    assert text_hash("Hello  world") == text_hash("hello world!")
    assert text_hash("hello world") != text_hash("hello there")


def test_binary_detection() -> None:
    assert looks_binary("abc\x00def")
    assert looks_binary("".join(chr(c) for c in range(1, 30)) + "ok")
    assert not looks_binary("Grüße, ¿dónde está mi pedido? 注文はどこですか")
    assert not looks_binary("line one\r\nline two\ttabbed")


@pytest.mark.parametrize(
    ("text", "response", "reason"),
    [
        ("", "r", "empty_text"),
        ("   \n ", "r", "empty_text"),
        (None, "r", "empty_text"),
        ("\x00\x01\x02 junk", "r", "binary"),
        ("x" * 101, "r", "too_long"),
        ("fine", "  ", "empty_response"),
        ("fine", "ok", None),
    ],
)
def test_skip_reason(text: str | None, response: str, reason: str | None) -> None:
    assert skip_reason(text, response, max_chars=100) == reason


def test_parse_resolved_at() -> None:
    assert parse_resolved_at("2024-03-01") == datetime(2024, 3, 1, tzinfo=timezone.utc)
    assert parse_resolved_at("2024-03-01T10:00:00+02:00").utcoffset() == timedelta(hours=2)
    assert parse_resolved_at("1700000000") == datetime.fromtimestamp(1_700_000_000, tz=timezone.utc)
    assert parse_resolved_at("") is None and parse_resolved_at(None) is None
    with pytest.raises(ValueError, match="unparseable"):
        parse_resolved_at("not a date")
    assert split_tags("a, b;c|") == ["a", "b", "c"] and split_tags(None) == []


# --- ranking -------------------------------------------------------------------------------
def test_recency_factor_halves_every_half_life() -> None:
    assert recency_factor(NOW, NOW, 30) == 1.0
    assert recency_factor(NOW - timedelta(days=30), NOW, 30) == pytest.approx(0.5)
    assert recency_factor(NOW - timedelta(days=60), NOW, 30) == pytest.approx(0.25)
    assert recency_factor(NOW + timedelta(days=5), NOW, 30) == 1.0
    assert recency_factor(None, NOW, 30) == 0.0


def test_blend_lets_recency_break_ties_but_not_beat_clear_similarity() -> None:
    new_tie = blended_score(0.80, 1.0, 0.02)
    old_tie = blended_score(0.80, 0.0, 0.02)
    assert new_tie > old_tie
    assert blended_score(0.90, 0.0, 0.02) > blended_score(0.85, 1.0, 0.02)
    assert blended_score(0.5, 1.0, 0.0) == 0.5


def test_rank_and_fallback_merge() -> None:
    hits = [_hit("b", 0.5), _hit("a", 0.5), _hit("c", 0.9)]
    assert [h.id for h in rank(hits, 2)] == ["c", "a"]
    merged = merge_with_fallback([_hit("x", 0.4)], [_hit("x", 0.4), _hit("y", 0.8), _hit("z", 0.7)], 3)
    assert [(h.id, h.fallback) for h in merged] == [("x", False), ("y", True), ("z", True)]
    result = SearchResult(merged, filtered=True, fallback_used=True)
    assert isinstance(result, list) and len(result) == 3 and result.fallback_used


def test_near_duplicates_keeps_first_occurrence() -> None:
    v = np.array([[1, 0], [1, 0], [0, 1], [0.6, 0.8]], dtype=np.float32)
    assert _near_duplicates(v, np.zeros((0, 2), np.float32), 0.98).tolist() == [False, True, False, False]
    assert _near_duplicates(v, np.array([[0, 1]], np.float32), 0.98).tolist() == [False, True, True, False]
    assert not _near_duplicates(v, np.zeros((0, 2), np.float32), 1.0).any()


# --- evaluation metrics --------------------------------------------------------------------
def test_precision_and_reciprocal_rank() -> None:
    labels = ["b", "a", "a", None]
    assert precision_at_k(labels, "a", 5) == pytest.approx(2 / 5)
    assert reciprocal_rank(labels, "a", 5) == pytest.approx(0.5)
    assert reciprocal_rank(labels, "z", 5) == 0.0
    assert reciprocal_rank(["x"] * 5 + ["a"], "a", 5) == 0.0


def test_stratified_sample_keeps_label_shares() -> None:
    df = pd.DataFrame({"text": [str(i) for i in range(100)], "label": ["a"] * 80 + ["b"] * 20})
    s = stratified_sample(df, "label", 10, seed=1)
    assert s.label.value_counts().to_dict() == {"a": 8, "b": 2}
    assert stratified_sample(df, "label", 10, seed=1).text.tolist() == s.text.tolist()
    assert len(stratified_sample(df, "label", 0, seed=1)) == 100


# --- file parsing --------------------------------------------------------------------------
def test_csv_with_crlf_and_embedded_newlines(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_bytes(
        b"instruction,intent,response\r\n"
        b'"cancel my order",cancel_order,"Step 1\r\nStep 2"\r\nhi,greet,hello\r\n'
    )
    rows = read_rows(p)
    assert len(rows.rows) == 2 and rows.rows[0]["response"] == "Step 1\r\nStep 2"
    assert resolve_columns(rows.columns, {}) == {
        "text": "instruction",
        "response": "response",
        "intent": "intent",
    }


def test_jsonl_malformed_lines_are_counted(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    p.write_text('{"text": "a", "response": "b"}\nnot json\n[1, 2]\n\n{"text": "c", "response": "d"}\n')
    rows = read_rows(p)
    assert len(rows.rows) == 2 and rows.malformed == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"text,response\n\xff\xfe caf\xe9,ok\n", "not valid utf-8"),
        (b"\x00\x01\x02\x03binary" * 10, "binary"),
    ],
)
def test_unusable_files_are_rejected_with_a_clear_message(
    tmp_path: Path, content: bytes, message: str
) -> None:
    p = tmp_path / "bad.csv"
    p.write_bytes(content)
    with pytest.raises(SourceError, match=message):
        read_rows(p)


def test_wrong_encoding_can_be_overridden(tmp_path: Path) -> None:
    p = tmp_path / "latin.csv"
    p.write_bytes("text,response\ncafé problem,réponse\n".encode("cp1252"))
    assert read_rows(p, encoding="cp1252").rows[0]["text"] == "café problem"


def test_missing_columns_name_the_fix() -> None:
    with pytest.raises(SourceError, match="--response-column"):
        resolve_columns(["text", "label"], {})
    with pytest.raises(SourceError, match="'body' is not in the file"):
        resolve_columns(["text", "response"], {"text": "body"})
    with pytest.raises(SourceError, match="file not found"):
        read_rows(Path("/nonexistent/x.csv"))


# --- ONNX backend eligibility --------------------------------------------------------------
def _st_dir(tmp_path: Path, modules: list[str], pooling: dict[str, bool]) -> Path:
    import json

    (tmp_path / "1_Pooling").mkdir(parents=True)
    entries = [
        {"idx": i, "name": str(i), "path": "1_Pooling" if m.endswith("Pooling") else "", "type": m}
        for i, m in enumerate(modules)
    ]
    (tmp_path / "modules.json").write_text(json.dumps(entries))
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    return tmp_path


def test_onnx_backend_only_takes_transformer_plus_pooling(tmp_path: Path) -> None:
    from src.retrieval.onnx_embedder import UnsupportedForOnnx, _pipeline_config

    st = "sentence_transformers.models."
    ok = _st_dir(
        tmp_path / "ok",
        [st + "Transformer", st + "Pooling", st + "Normalize"],
        {"pooling_mode_mean_tokens": True},
    )
    assert _pipeline_config(ok) == ("mean", 256)
    dense = _st_dir(
        tmp_path / "dense",
        [st + "Transformer", st + "Pooling", st + "Dense"],
        {"pooling_mode_mean_tokens": True},
    )
    with pytest.raises(UnsupportedForOnnx, match="Dense"):
        _pipeline_config(dense)
    maxpool = _st_dir(
        tmp_path / "max", [st + "Transformer", st + "Pooling"], {"pooling_mode_max_tokens": True}
    )
    with pytest.raises(UnsupportedForOnnx, match="pooling"):
        _pipeline_config(maxpool)


def test_payload_matches_mirrors_the_qdrant_filter() -> None:
    p = {"intent": "get_refund", "category": "REFUND"}
    assert payload_matches(p, None, None) and payload_matches(p, "get_refund", None)
    assert payload_matches(p, "get_refund", "REFUND") and not payload_matches(p, "get_refund", "ORDER")
    assert not payload_matches({}, "get_refund", None)


def test_bootstrap_interval_brackets_the_mean_and_narrows_with_more_data() -> None:
    from collections import Counter

    few = [1.0, 0.0] * 10
    many = [1.0, 0.0] * 1000
    lo, hi = bootstrap_ci(few, seed=1)
    assert lo < 0.5 < hi
    lo2, hi2 = bootstrap_ci(many, seed=1)
    assert lo < lo2 < 0.5 < hi2 < hi
    assert bootstrap_ci([1.0] * 5) == [1.0, 1.0]
    wrong = {"a": Counter({"b": 5, "c": 2, "d": 1, "e": 1}), "z": Counter()}
    assert top_confusions(wrong, ["a", "z"], n=2) == {"a": {"b": 5, "c": 2}}


def test_paired_difference_sees_a_consistent_small_gain() -> None:
    a = [0.8] * 200
    b = [0.8] * 180 + [1.0] * 20
    d = paired_difference(a, b)
    assert d["mean"] == 0.02 and d["queries_better"] == 20 and d["queries_worse"] == 0
    assert 0 < d["ci95"][0] <= 0.02 <= d["ci95"][1]


def _f(i: str, score: float, sim: float = 0.5) -> Found:
    return Found(id=i, similarity=sim, payload={}, score=score)


def test_rrf_ranks_ties_alike_so_engine_tie_order_does_not_matter() -> None:
    assert competition_ranks([3.0, 2.0, 2.0, 1.0]) == [1, 2, 2, 4]
    dense = [_f("a", 0.9, 0.9), _f("b", 0.8, 0.8), _f("c", 0.7, 0.7)]
    bm25 = [_f("c", 5.0), _f("b", 5.0), _f("d", 1.0)]
    fused = rrf_fuse([dense, bm25], k=60, limit=4)
    swapped = rrf_fuse([dense, [bm25[1], bm25[0], bm25[2]]], k=60, limit=4)
    assert [f.id for f in fused] == [f.id for f in swapped] == ["b", "c", "a", "d"]
    assert fused[0].fused == pytest.approx(1 / 62 + 1 / 61)
    assert fused[0].similarity == 0.8  # cosine travels with the hit


def test_a_full_list_drops_the_tie_group_at_its_cut() -> None:
    full = [_f("a", 3.0), _f("b", 2.0), _f("c", 1.0), _f("d", 1.0)]
    assert [f.id for f in drop_cut_ties(full, 4)] == ["a", "b"]
    assert drop_cut_ties(full[:3], 4) == full[:3]  # not full: nothing was cut
