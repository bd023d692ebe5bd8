"""Real (CI-sized) training runs: the pipeline learns, calibrates, saves the head, fails closed."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from safetensors import safe_open

from src.classifier.bundle import load_bundle_meta
from src.classifier.train import main as train_main
from src.classifier.train import train

pytestmark = pytest.mark.slow
QUIET = ["--threads", "1", "--no-progress", "--no-onnx", "--epochs", "1", "--batch-size", "16",
         "--max-length", "32"]


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_tiny_bundle_learns_and_calibrates(tiny_bundle: Path) -> None:
    ev = _json(tiny_bundle / "eval.json")
    assert ev["n_test"] == 32  # 10% of 320 synthetic rows, 8 per intent
    assert ev["accuracy"] >= 0.7  # chance is 0.25
    assert ev["nll_after"] <= ev["nll_before"]
    assert ev["temperature"] > 0
    for key in ("accuracy", "macro_f1", "per_class", "ece_before", "ece_after", "n_test", "gates"):
        assert key in ev
    assert set(ev["per_class"]) == {"get_refund", "track_order", "recover_password", "cancel_subscription"}
    assert ev["train_seconds"] > 0 and ev["context"]["hardware"]["cpu_count"] >= 1
    assert ev["context"]["backend"] == "onnx"  # the served model is the measured model
    thresholds = _json(tiny_bundle / "thresholds.json")
    assert thresholds["source"] == "calibrated" and "calibration split" in thresholds["calibration"]["data"]
    assert ev["temperature"] == _json(tiny_bundle / "calibration.json")["temperature"]
    for name in ("eval.md", "eval_confusion_matrix.png", "eval_reliability.png"):
        assert (tiny_bundle / name).is_file()


def test_tiny_bundle_is_complete_and_saves_the_head(tiny_bundle: Path) -> None:
    meta = load_bundle_meta(tiny_bundle)  # verifies every part + head size
    cfg = meta["train_config"]
    assert cfg["lora_r"] == 16 and cfg["epochs"] == 1 and cfg["seed"] == 7
    assert meta["metrics"]["accuracy"] == _json(tiny_bundle / "eval.json")["accuracy"]
    adapter = _json(tiny_bundle / "adapter_config.json")
    assert "classifier" in adapter["modules_to_save"]
    targets = adapter["target_modules"]
    assert {t.split(".")[-1] for t in targets} == {"query", "key", "value", "dense"}
    assert not any("pooler" in t for t in targets)
    with safe_open(str(tiny_bundle / "adapter_model.safetensors"), "pt") as fh:
        keys = list(fh.keys())
    assert any(k.endswith("classifier.weight") for k in keys)
    assert not any("pooler" in k for k in keys)  # mean pooling: BERT's [CLS] pooler is not used
    assert sum("lora_A" in k for k in keys) == 36  # q, k, v, attention out, 2 feed-forward x 6 layers
    assert meta["architecture"] == "mean-pooling-linear-v1" and meta["method"] == "lora"
    assert meta["base_model"]["weights_sha256"]["model.safetensors"]  # the base weights are pinned
    agreement = meta["onnx"]["agreement"]
    assert agreement["texts"] == "validation split" and agreement[agreement["chosen"]]["n"] == 32
    assert agreement[agreement["chosen"]]["argmax_agreement"] >= 0.99
    assert (tiny_bundle / "ood.safetensors").is_file()
    manifest = _json(tiny_bundle / "split_manifest.json")
    sizes = {part: len(manifest[part]) for part in ("train", "val", "calibration", "test")}
    assert sizes == {"train": 224, "val": 32, "calibration": 32, "test": 32}
    assert (tiny_bundle / "onnx" / "model.int8.onnx").is_file()


def test_untrained_model_fails_gates_reuses_manifest_and_scores_external_test(
    tiny_bundle: Path, synthetic_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """lr ~0 (encoder and head) = a model that has learnt nothing: default gates refuse it (exit code 1).

    Same run: the frozen split of an earlier bundle is reused, and ``--test FILE`` with a label the
    model never saw (``oos``) is scored as out-of-scope.
    """
    test_file = tmp_path / "external.csv"
    rows = [("please refund my last payment", "get_refund"), ("where is my parcel", "track_order"),
            ("reset my password please", "recover_password"), ("end my membership", "cancel_subscription"),
            ("what's the weather like", "oos"), ("tell me a joke", "oos")]
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(test_file, index=False)
    out = tmp_path / "untrained"
    rc = train_main(["--data", str(synthetic_csv), "--out", str(out), "--lr", "1e-9", "--head-lr", "1e-9",
                     "--seed", "11",
                     "--split-manifest", str(tiny_bundle / "split_manifest.json"), "--test", str(test_file),
                     *QUIET])
    assert rc == 1
    assert "GATES FAILED" in capsys.readouterr().err
    ev = _json(out / "eval.json")
    assert ev["gates"]["passed"] is False and ev["gates"]["failing_classes"]
    assert ev["n_test"] == 4 and ev["out_of_scope"]["n"] == 2
    reused, original = _json(out / "split_manifest.json"), _json(tiny_bundle / "split_manifest.json")
    for part in ("train", "val", "calibration"):
        assert reused[part] == original[part]
    assert reused["seed"] == original["seed"] == 7
    assert reused["test_source"] == str(test_file) and len(reused["test"]) == 6


def test_evaluate_cli_reports_out_of_scope(tiny_bundle: Path, tmp_path: Path) -> None:
    from src.classifier.evaluate import main as evaluate_main

    rows = [("i want to get a refund for my purchase", "get_refund"),
            ("where is my parcel now", "track_order"),
            ("help me reset my password", "recover_password"),
            ("please cancel my membership", "cancel_subscription"),
            ("what is the weather in paris tomorrow", "oos"), ("play some jazz music", "oos"),
            ("how many calories in an apple", "oos")]
    data = tmp_path / "eval.csv"
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(data, index=False)
    out = tmp_path / "reports" / "tiny.json"
    assert evaluate_main(["--model", str(tiny_bundle), "--data", str(data), "--json", str(out),
                          "--threshold", "0.5", "--no-progress"]) == 0
    ev = _json(out)
    assert ev["n_test"] == 4 and ev["threshold"] == 0.5
    oos = ev["out_of_scope"]
    assert oos["n"] == 3 and oos["auroc_confidence"] is not None
    from src.classifier.inference import IntentClassifier

    oos_texts = [t for t, lab in rows if lab == "oos"]
    conf = [p.confidence for p in IntentClassifier.load(tiny_bundle).predict(oos_texts)]
    assert oos["above_threshold"] == sum(c >= 0.5 for c in conf)
    assert (out.parent / "tiny_confusion_matrix.png").is_file() and out.with_suffix(".md").is_file()


def test_bitext_subset_learns(shared_data: Path, tmp_path: Path) -> None:
    """6 real Bitext intents x 40 rows, 1 epoch: held-out accuracy far above chance (1/6)."""
    data = shared_data / "bitext-customer-support" / "bitext_v11_first5000.csv"
    out = tmp_path / "bitext"
    rc = train_main(["--data", str(data), "--out", str(out), "--max-per-class", "40", *QUIET])
    ev = _json(out / "eval.json")
    assert ev["n_labels"] == 6 and ev["n_test"] == 24
    assert ev["accuracy"] >= 0.6, ev["accuracy"]
    assert rc in (0, 1)  # gates may or may not pass after one tiny epoch; the number above is the check


def _tiny_distilbert(root: Path) -> Path:
    """A randomly initialised 1-layer DistilBERT saved locally (no hub, no weights download)."""
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertModel

    from src.classifier.base_models import resolve_base_model

    path = root / "tiny-distilbert"
    config = DistilBertConfig(vocab_size=30522, dim=32, n_layers=1, n_heads=2, hidden_dim=64,
                              max_position_embeddings=128)
    DistilBertModel(config).save_pretrained(path)
    AutoTokenizer.from_pretrained(resolve_base_model("minilm")).save_pretrained(path)
    return path


def test_distilbert_path_trains_and_saves_its_head(tmp_path: Path, synthetic_csv: Path, tiny_config) -> None:
    base = _tiny_distilbert(tmp_path)
    out = tmp_path / "distil_bundle"
    res = train(tiny_config(synthetic_csv, out, base_model=str(base), export_onnx=False, lr=5e-3),
                log=lambda _m: None)
    adapter = _json(out / "adapter_config.json")
    assert "classifier" in adapter["modules_to_save"]
    # LoRA on every projection of every block, not just q/v
    assert {t.split(".")[-1] for t in adapter["target_modules"]} == {"q_lin", "k_lin", "v_lin", "out_lin",
                                                                      "lin1", "lin2"}
    with safe_open(str(out / "adapter_model.safetensors"), "pt") as fh:
        keys = list(fh.keys())
    assert any(k.endswith("classifier.weight") for k in keys) and any("lin1.lora_A" in k for k in keys)
    assert load_bundle_meta(out)["base_model"]["model_type"] == "distilbert"
    assert res.eval["n_test"] == 32


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        ("body,tag\nhello,a\n", [], "no text column"),
        ("", [], "empty"),
        ("text,label\n" + "".join(f"t{i},big\n" for i in range(95))
         + "".join(f"s{i},small\n" for i in range(5)), [], "--force"),
        ("text,label\nx,a\n", ["--epochs", "0"], "--epochs"),
    ],
)
def test_cli_bad_inputs_exit_2_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, extra: list[str], message: str
) -> None:
    data = tmp_path / "bad.csv"
    data.write_text(content, encoding="utf-8")
    assert train_main(["--data", str(data), "--out", str(tmp_path / "o"), *QUIET, *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err
    assert not (tmp_path / "o").exists()
