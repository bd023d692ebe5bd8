"""Threshold calibration: the fixed-sequence rule (pure), and the CLI on a tiny real bundle."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from src.graph.calibrate import calibrate, fixed_sequence_threshold, main, threshold_grid

GRID = threshold_grid(0.85)


def _fs(conf, correct, *, target=0.99, min_support=30, grid=GRID) -> dict:
    return fixed_sequence_threshold(conf, correct, target=target, alpha=0.05, min_support=min_support,
                                    grid=grid)


def test_grid_is_fixed_before_seeing_data_and_runs_top_down() -> None:
    assert GRID[0] == pytest.approx(1 - 1e-5) and GRID[-1] == pytest.approx(0.85)
    assert np.all(np.diff(GRID) < 0) and len(GRID) == 200
    assert np.array_equal(threshold_grid(0.85), GRID)


def test_stops_at_the_first_failure_instead_of_keeping_the_lowest_pass() -> None:
    # 400 right at 0.999, 20 wrong at 0.99, 3000 right at 0.95: the cumulative set at 0.95 passes again
    # (3400 with 20 wrong: LB ~0.991), but a valid fixed-sequence test stopped at the 0.99 band already.
    conf = [0.999] * 400 + [0.99] * 20 + [0.95] * 3000
    correct = [True] * 400 + [False] * 20 + [True] * 3000
    row = _fs(conf, correct)
    assert 0.99 <= row["auto_resolve"] < 0.999
    assert row["support"] == 400 and row["correct"] == 400 and row["precision_lb"] >= 0.99
    assert 0.95 < row["stopped_at"] < 0.99


def test_too_few_tickets_at_the_top_are_skipped_not_a_failure() -> None:
    conf = [0.99999] * 5 + [0.995] * 400
    row = _fs(conf, [True] * 405)
    assert row["auto_resolve"] is not None and row["auto_resolve"] < 0.995
    assert row["first_tested"] < 0.995 and row["support"] == 405


def test_the_search_starts_where_the_bound_can_pass_at_all() -> None:
    # 1000 correct predictions spread over (0.9, 1): the top 30..298 can never prove 0.99 (30/30 has a
    # lower bound of 0.905), so testing starts at the first threshold with >= 299 tickets above it
    conf = np.linspace(0.9, 0.99999, 1000)
    row = _fs(conf, [True] * 1000)
    assert row["auto_resolve"] is not None and row["auto_resolve"] < 0.91
    assert row["support"] > 900 and row["stopped_at"] is None


def test_perfect_but_small_evidence_never_auto_resolves() -> None:
    # 100 correct out of 100: the 95% CP lower bound is ~0.970 < 0.99 -> not enough evidence
    row = _fs([0.9] * 100, [True] * 100)
    assert row["auto_resolve"] is None and row["support"] == 100
    assert 0.96 < row["precision_lb"] < 0.99
    assert _fs([0.99] * 20, [True] * 20, target=0.5)["auto_resolve"] is None  # min_support


def _pooled_case() -> tuple[list[str], list[str], list[float]]:
    """Intents a..f, 100 calibration tickets each, all correct at 0.97; 'f' also has 15 wrong at 0.90;
    'g' only 4 calibration predictions."""
    y_true, y_pred, conf = [], [], []
    for label in "abcdef":
        y_true += [label] * 100
        y_pred += [label] * 100
        conf += [0.97] * 100
    y_true += ["a"] * 15
    y_pred += ["f"] * 15
    conf += [0.90] * 15
    y_true += ["g"] * 4
    y_pred += ["g"] * 4
    conf += [0.99] * 4
    return y_true, y_pred, conf


def test_pooled_bound_and_per_intent_numbers_at_that_threshold() -> None:
    y_true, y_pred, conf = _pooled_case()
    res = calibrate(list("abcdefg"), y_true, y_pred, conf, target=0.98, min_support=30, floor=0.85)
    t = res["global_threshold"]
    assert 0.90 <= t < 0.97  # the 15 mistakes at 0.90 stop the downward search
    per = res["per_intent"]
    assert all(per[x]["auto_resolve"] == t for x in "abcdef")
    assert per["g"]["auto_resolve"] is None and "only 4" in per["g"]["why"]  # ineligible: too few (< 5)
    # per-intent rows describe the set above *their* threshold, not another one's
    assert per["f"]["support"] == 100 and per["f"]["correct"] == 100
    assert res["pooled"]["support"] == 600 and res["pooled"]["precision_lb"] >= 0.98
    strict = calibrate(list("abcdefg"), y_true, y_pred, conf, target=0.98, min_support=30, scope="per-intent")
    assert all(row["auto_resolve"] is None for row in strict["per_intent"].values())


def test_pooled_without_enough_evidence_never_auto_resolves() -> None:
    res = calibrate(["a"], ["a"] * 40, ["a"] * 40, [0.99] * 40, target=0.99, min_support=30)
    assert res["global_threshold"] is None and res["per_intent"]["a"]["auto_resolve"] is None


def test_per_intent_scope_fits_each_intent_on_its_own() -> None:
    y = ["a"] * 400 + ["b"] * 400
    res = calibrate(["a", "b"], y, y, [0.999] * 800, target=0.99, min_support=30, scope="per-intent")
    assert res["per_intent"]["a"]["auto_resolve"] is not None and res["per_intent"]["a"]["support"] == 400


@pytest.mark.parametrize("split", ["test", "val"])
def test_calibrate_refuses_the_test_and_val_splits(split: str, tmp_path: Path, capsys) -> None:
    assert main(["--model", str(tmp_path), "--split", split, "--report-dir", str(tmp_path)]) == 2
    assert f"--split {split} refused" in capsys.readouterr().err


def test_calibrate_cli_bad_bundle_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["--model", str(tmp_path / "missing"), "--report-dir", str(tmp_path)]) == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.slow
def test_trained_bundle_is_calibrated_on_its_calibration_split(graph_tiny_bundle: Path) -> None:
    from src.classifier.bundle import read_parts

    parts = read_parts(graph_tiny_bundle)
    th, manifest = parts["thresholds"], json.loads((graph_tiny_bundle / "split_manifest.json").read_text())
    assert th["source"] == "calibrated"
    cal = th["calibration"]
    assert "calibration split" in cal["data"] and cal["n"] == len(manifest["calibration"]) == 32
    assert cal["method"].startswith("fixed-sequence") and "95%" in cal["guarantee"]
    calibration = json.loads((graph_tiny_bundle / "calibration.json").read_text())
    assert calibration["fit_on"] == "calibration" and calibration["temperature"] == cal["temperature"]
    assert (graph_tiny_bundle / "calibration_thresholds.md").is_file()


@pytest.mark.slow
def test_calibrate_cli_uses_runtime_text_and_records_provenance(
    graph_tiny_bundle: Path, tmp_path: Path, monkeypatch
) -> None:
    import pandas as pd

    from src.classifier.bundle import read_parts, update_bundle
    from src.classifier.inference import IntentClassifier

    bundle = Path(shutil.copytree(graph_tiny_bundle, tmp_path / "bundle"))
    rows = [{"text": f"please, I want to cancel my order {i}. write to jane.doe{i}@example.com", "label":
             "cancel_order"} for i in range(40)]
    rows += [{"text": "<html><body><p>   </p></body></html>", "label": "cancel_order"}]  # empty at runtime
    data = tmp_path / "held_out.csv"
    pd.DataFrame(rows).to_csv(data, index=False)
    seen: list[str] = []
    original = IntentClassifier.outputs

    def spy(self, texts, batch_size=64):
        seen.extend(texts)
        return original(self, texts, batch_size)

    monkeypatch.setattr(IntentClassifier, "outputs", spy)
    reports = tmp_path / "reports"
    rc = main(["--model", str(bundle), "--data", str(data), "--target", "0.5", "--min-support", "5",
               "--floor", "0.2", "--report-dir", str(reports), "--no-progress"])
    assert rc == 0
    assert len(seen) == 40 and not any("@example.com" in t for t in seen)  # masked as at runtime
    report = json.loads((reports / "calibration_thresholds.json").read_text())
    assert report["n"] == 40 and report["n_dropped"] == 1
    md = (reports / "calibration_thresholds.md").read_text()
    assert "| intent | threshold | support |" in md and "what holds:" in md
    parts = read_parts(bundle)
    assert parts["thresholds"]["source"] == "calibrated" and report["bundle_version"] == parts["meta"][
        "bundle_version"]
    # a new temperature makes the thresholds describe another model: stale, not calibrated
    update_bundle(bundle, temperature=parts["temperature"] * 2)
    assert read_parts(bundle)["thresholds"]["source"] == "stale"
