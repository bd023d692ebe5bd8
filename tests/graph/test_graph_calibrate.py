"""Per-intent threshold calibration: the pure rule, and the CLI on a tiny real bundle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from src.graph.calibrate import calibrate, calibrate_pooled, fit_threshold, main


def test_perfect_but_small_evidence_never_auto_resolves() -> None:
    # 100 correct out of 100: the 95% CP lower bound is ~0.970 < 0.99 -> not enough evidence
    row = fit_threshold([0.9] * 100, [True] * 100, target=0.99, alpha=0.05, min_support=30)
    assert row["auto_resolve"] is None and row["support"] == 100
    assert 0.96 < row["precision_lb"] < 0.99


def test_enough_evidence_gives_the_lowest_safe_threshold() -> None:
    conf = [0.99] * 400 + [0.7] * 50
    correct = [True] * 400 + [False] * 10 + [True] * 40
    row = fit_threshold(conf, correct, target=0.99, alpha=0.05, min_support=30)
    assert row["auto_resolve"] == pytest.approx(0.99)  # including the 0.7 group breaks the bound
    loose = fit_threshold(conf, correct, target=0.95, alpha=0.05, min_support=30)
    assert loose["auto_resolve"] == pytest.approx(0.7)


def test_min_support_is_enforced() -> None:
    row = fit_threshold([0.99] * 20, [True] * 20, target=0.5, alpha=0.05, min_support=30)
    assert row["auto_resolve"] is None


def test_calibrate_per_intent_and_reliability() -> None:
    y_true = ["a"] * 80 + ["b"] * 80
    y_pred = ["a"] * 80 + ["b"] * 70 + ["a"] * 10
    conf = [0.95] * 160
    res = calibrate(["a", "b"], y_true, y_pred, conf, target=0.9, min_support=30)
    assert res["per_intent"]["b"]["auto_resolve"] == pytest.approx(0.95)  # 70/70 correct
    assert res["per_intent"]["a"]["auto_resolve"] is None  # 80/90: precision too low
    assert res["reliability"]["a"]["predicted"] == 90
    assert res["reliability"]["a"]["table"][0]["accuracy"] == pytest.approx(80 / 90)


@pytest.mark.slow
def test_calibrate_cli_updates_bundle_and_writes_report(
    graph_tiny_bundle: Path, graph_labelled_csv: Path, tmp_path: Path
) -> None:
    import shutil

    from src.classifier.bundle import load_bundle_meta

    bundle = Path(shutil.copytree(graph_tiny_bundle, tmp_path / "bundle"))
    before = load_bundle_meta(bundle)["bundle_version"]
    reports = tmp_path / "reports"
    rc = main(["--model", str(bundle), "--data", str(graph_labelled_csv), "--target", "0.9",
               "--min-support", "5", "--report-dir", str(reports)])
    assert rc == 0
    meta = load_bundle_meta(bundle)
    assert meta["bundle_version"] != before
    thresholds = json.loads((bundle / "thresholds.json").read_text())
    assert set(thresholds["per_intent"]) == {"get_refund", "track_order", "recover_password", "cancel_order"}
    assert thresholds["calibration"]["target_precision"] == 0.9
    report = json.loads((reports / "calibration_thresholds.json").read_text())
    assert report["n"] == 320 and report["bundle_version"] == meta["bundle_version"]
    assert "| intent | threshold |" in (reports / "calibration_thresholds.md").read_text()
    # default data = the frozen val split via the manifest (32 rows here)
    rc = main(["--model", str(bundle), "--dry-run", "--report-dir", str(reports)])
    assert rc == 0
    assert json.loads((reports / "calibration_thresholds.json").read_text())["n"] == 32


def test_calibrate_cli_bad_bundle_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["--model", str(tmp_path / "missing"), "--report-dir", str(tmp_path)]) == 2
    assert "error:" in capsys.readouterr().err


def _pooled_case() -> tuple[list[str], list[str], list[float]]:
    """Intents a..f, 100 held-out tickets each, all correct at 0.97; 'f' also has 5 wrong at 0.90;
    'g' only 10 held-out predictions."""
    y_true, y_pred, conf = [], [], []
    for label in "abcdef":
        y_true += [label] * 100
        y_pred += [label] * 100
        conf += [0.97] * 100
    y_true += ["a"] * 5
    y_pred += ["f"] * 5
    conf += [0.90] * 5
    y_true += ["g"] * 10
    y_pred += ["g"] * 10
    conf += [0.99] * 10
    return y_true, y_pred, conf


def test_pooled_bound_holds_on_all_auto_resolved_tickets() -> None:
    y_true, y_pred, conf = _pooled_case()
    res = calibrate_pooled(list("abcdefg"), y_true, y_pred, conf, target=0.98, min_support=30, floor=0.85)
    per = res["per_intent"]
    # per intent, 100/100 cannot reach a 0.98 lower bound, but the pooled 500+ tickets can
    assert all(per[x]["auto_resolve"] == pytest.approx(0.85) for x in "abcde")
    assert per["f"]["auto_resolve"] == pytest.approx(0.97)  # raised past its 0.90 mistakes
    assert per["g"]["auto_resolve"] is None  # 10 < min_support: not enough evidence
    assert res["pooled"]["precision_lb"] >= 0.98 and res["pooled"]["correct"] == res["pooled"]["support"]
    strict = calibrate(list("abcdefg"), y_true, y_pred, conf, target=0.98, min_support=30)
    assert all(row["auto_resolve"] is None for row in strict["per_intent"].values())


def test_pooled_without_enough_evidence_never_auto_resolves() -> None:
    y_true, y_pred, conf = ["a"] * 40, ["a"] * 40, [0.99] * 40
    res = calibrate_pooled(["a"], y_true, y_pred, conf, target=0.99, min_support=30)
    assert res["global_threshold"] is None and res["per_intent"]["a"]["auto_resolve"] is None
