"""Serving CLIs: predict (JSON lines), bench (JSON report), model card, push_to_hub (token / dry run)."""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from classifier_serving_fixtures import copy_bundle, tiny_bundle_path

from src.classifier import predict as predict_cli
from src.config import PROJECT_ROOT, Settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def serving_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_bundle_path(tmp_path_factory)


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# ----------------------------------------------------------------------------- predict


def test_predict_module_help_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "src.classifier.predict", "--help"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0 and "--model" in out.stdout and "--file" in out.stdout


def test_predict_prints_one_json_line_per_text(serving_bundle: Path, capsys) -> None:
    rc = predict_cli.main(["--model", str(serving_bundle), "where is my package", "", "reset my password"])
    assert rc == 0
    rows = _json_lines(capsys.readouterr().out)
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert rows[0]["label"] == "shipping" and rows[0]["valid"] is True
    assert rows[1]["valid"] is False and rows[1]["label"] is None and "empty" in rows[1]["reason"]
    assert rows[2]["label"] == "password"
    for r in rows:
        assert {"confidence", "probs", "top3", "margin", "entropy", "truncated", "bundle_version"} <= set(r)


def test_predict_reads_jsonl_csv_and_stdin(serving_bundle: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text('{"text": "please refund my order"}\n\n{"text": "track my shipment"}\n')
    assert predict_cli.main(["--model", str(serving_bundle), "--file", str(jsonl), "--no-progress"]) == 0
    assert [r["label"] for r in _json_lines(capsys.readouterr().out)] == ["refund", "shipping"]

    csv = tmp_path / "t.csv"
    csv.write_text('id,utterance\n1,"i forgot my password"\n')
    assert predict_cli.main(["--model", str(serving_bundle), "--file", str(csv)]) == 0
    assert [r["label"] for r in _json_lines(capsys.readouterr().out)] == ["password"]

    monkeypatch.setattr(sys, "stdin", io.StringIO("where is my delivery\nrefund please\n"))
    assert predict_cli.main(["--model", str(serving_bundle)]) == 0
    assert [r["label"] for r in _json_lines(capsys.readouterr().out)] == ["shipping", "refund"]


def test_predict_user_errors_are_one_line_not_tracebacks(
    serving_bundle: Path, tmp_path: Path, capsys
) -> None:
    assert predict_cli.main(["--model", str(tmp_path / "missing"), "hello"]) == 2
    err = capsys.readouterr().err
    assert "error: cannot load bundle" in err and "Traceback" not in err
    assert predict_cli.main(["--model", str(serving_bundle), "--file", str(tmp_path / "nope.txt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    assert predict_cli.main(["--model", str(serving_bundle), "--file", str(bad)]) == 2
    assert "not JSON" in capsys.readouterr().err


# ----------------------------------------------------------------------------- bench


def test_bench_writes_report(serving_bundle: Path, tmp_path: Path, capsys) -> None:
    from src.classifier import bench

    out = tmp_path / "bench.json"
    rc = bench.main(
        [
            "--model",
            str(serving_bundle),
            "--json",
            str(out),
            "--backends",
            "onnx",
            "--n-single",
            "20",
            "--n-batches",
            "2",
            "--batch-size",
            "8",
            "--threads",
            "1",
            "--no-progress",
        ]
    )
    assert rc == 0
    report = json.loads(out.read_text())
    onnx = report["backends"]["onnx"]
    assert 0 < onnx["single"]["p50_ms"] <= onnx["single"]["p95_ms"]
    assert onnx["batch"]["throughput_per_s"] > 0 and onnx["batch"]["batch_size"] == 8
    assert onnx["peak_rss_mb"] > onnx["rss_before_load_mb"] > 0
    assert report["hardware"]["cpu_count"] >= 1 and "load_average_1_5_15" in report["hardware"]
    assert set(report["targets"]) >= {"onnx_single_p50_ok", "onnx_throughput_ok"}
    assert report["bundle_version"] == onnx["bundle_version"]
    assert "single p50" in capsys.readouterr().out


def test_bench_refuses_bad_arguments(serving_bundle: Path, tmp_path: Path, capsys) -> None:
    from src.classifier import bench

    assert bench.main(["--model", str(tmp_path / "x"), "--json", str(tmp_path / "o.json")]) == 2
    assert "cannot load bundle" in capsys.readouterr().err
    assert (
        bench.main(["--model", str(serving_bundle), "--json", str(tmp_path / "o.json"), "--backends", "gpu"])
        == 2
    )
    assert not (tmp_path / "o.json").exists()


# ----------------------------------------------------------------------------- model card


def _front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_model_card_without_eval(serving_bundle: Path, tmp_path: Path) -> None:
    from src.classifier.model_card import write_model_card

    bundle = copy_bundle(serving_bundle, tmp_path / "b")
    card = write_model_card(bundle).read_text()
    fm = _front_matter(card)
    assert fm["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert fm["library_name"] == "peft" and fm["license"] and "lora" in fm["tags"]
    for section in (
        "## Intended use",
        "## Training details",
        "## Data card",
        "## Limitations",
        "## Citation",
    ):
        assert section in card
    assert "| LoRA r / alpha / dropout | 8 / 16 / 0 |" in card
    assert "| temperature (fitted on the calibration split) | 1.5 |" in card
    assert "No `eval.json`" in card


def test_model_card_with_eval_has_per_intent_table(serving_bundle: Path, tmp_path: Path) -> None:
    from src.classifier.model_card import write_model_card

    bundle = copy_bundle(serving_bundle, tmp_path / "b")
    per_class = {
        lab: {"precision": 0.9, "recall": 0.8 + i / 100, "f1": 0.85, "support": 10 + i}
        for i, lab in enumerate(["refund", "shipping", "password"])
    }
    ev = {
        "accuracy": 0.91,
        "macro_f1": 0.876,
        "per_class": per_class,
        "ece_before": 0.08,
        "ece_after": 0.02,
        "n_test": 33,
        "gates": {"passed": False, "failures": ["class 'refund' f1 0.4 < 0.5"], "config": {}},
    }
    (bundle / "eval.json").write_text(json.dumps(ev))
    card = write_model_card(bundle).read_text()
    assert "| shipping | 0.9000 | 0.8100 | 0.8500 | 11 |" in card
    assert "accuracy **0.9100**" in card and "macro-F1 **0.8760**" in card and "n = 33" in card
    assert "FAILED: class 'refund'" in card
    results = _front_matter(card)["model-index"][0]["results"][0]["metrics"]
    assert {"type": "accuracy", "value": 0.91} in results


def test_model_card_for_a_bundle_from_the_training_cli(tiny_bundle: Path, tmp_path: Path) -> None:
    """Integration with A's train: its eval.json renders into the per-intent table."""
    from src.classifier.model_card import write_model_card

    bundle = copy_bundle(tiny_bundle, tmp_path / "trained")
    ev = json.loads((bundle / "eval.json").read_text())
    card = write_model_card(bundle).read_text()
    for label in ev["per_class"]:
        assert f"| {label} |" in card
    assert f"n = {ev['n_test']}" in card


# ----------------------------------------------------------------------------- push_to_hub


@pytest.fixture()
def push_module():
    spec = importlib.util.spec_from_file_location(
        "push_to_hub_script", PROJECT_ROOT / "scripts" / "push_to_hub.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _NoNetworkApi:
    def __init__(self, *a, **k) -> None:
        raise AssertionError("the hub client must not be created")


def test_push_refuses_without_token(
    push_module, serving_bundle: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", _NoNetworkApi)
    bundle = copy_bundle(serving_bundle, tmp_path / "b")
    rc = push_module.main(
        ["--repo-id", "me/triage", "--model", str(bundle)], settings=Settings(hf_token=None)
    )
    assert rc == 2
    assert "no Hugging Face token" in capsys.readouterr().err
    assert not (bundle / "MODEL_CARD.md").exists()


def test_push_dry_run_lists_files_offline(push_module, serving_bundle: Path, capsys, monkeypatch) -> None:
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", _NoNetworkApi)
    rc = push_module.main(
        ["--repo-id", "me/triage", "--model", str(serving_bundle), "--dry-run"],
        settings=Settings(hf_token=None),
    )
    assert rc == 0
    out = capsys.readouterr().out
    for name in (
        "adapter_config.json",
        "adapter_model.safetensors",
        "tokenizer.json",
        "labels.json",
        "README.md",
    ):
        assert f"  {name}  (" in out
    assert "would upload" in out and "model.int8.onnx" not in out


def test_push_uploads_planned_files_with_token(
    push_module, serving_bundle: Path, tmp_path: Path, monkeypatch
):
    import huggingface_hub

    calls: dict = {}

    class FakeApi:
        def __init__(self, token: str) -> None:
            calls["token"] = token

        def create_repo(self, repo_id, **kw):
            calls["repo"] = (repo_id, kw)

        def create_commit(self, repo_id, operations, **kw):
            calls["paths"] = sorted(op.path_in_repo for op in operations)
            return "https://example.invalid/commit"

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    bundle = copy_bundle(serving_bundle, tmp_path / "b")
    rc = push_module.main(
        ["--repo-id", "me/triage", "--model", str(bundle), "--private"], settings=Settings(hf_token="hf_test")
    )
    assert rc == 0 and calls["token"] == "hf_test" and calls["repo"][1]["private"] is True
    assert "README.md" in calls["paths"] and "adapter_model.safetensors" in calls["paths"]
    assert (bundle / "MODEL_CARD.md").is_file()  # rendered on the way


def test_report_regenerates_every_classifier_report_for_the_bundle(tiny_bundle: Path, tmp_path: Path) -> None:
    from src.classifier.report import main as report_main

    out = tmp_path / "reports"
    assert report_main(["--model", str(tiny_bundle), "--out", str(out), "--no-bench", "--no-progress"]) == 0
    version = json.loads((tiny_bundle / "bundle.json").read_text())["bundle_version"]
    ev = json.loads((out / "eval.json").read_text())
    cal = json.loads((out / "calibration_thresholds.json").read_text())
    assert ev["context"]["bundle_version"] == cal["bundle_version"] == version
    assert ev["n_test"] == 32 and ev["context"]["backend"] == "onnx"
    # re-computed on the calibration split without touching the bundle: same thresholds as recorded
    recorded = json.loads((tiny_bundle / "thresholds.json").read_text())
    assert cal["global_threshold"] == recorded["calibration"]["global_threshold"]
    assert json.loads((tiny_bundle / "bundle.json").read_text())["bundle_version"] == version
    index = (out / "README.md").read_text()
    assert version in index and "commit:" in index and (out / "MODEL_CARD.md").is_file()
