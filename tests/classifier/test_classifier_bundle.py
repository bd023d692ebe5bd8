"""Serving bundle: round trip, versioning, and clear BundleErrors for every broken part."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from classifier_serving_fixtures import copy_bundle, refinalise, tiny_bundle_path

from src.classifier import bundle as B
from src.classifier.types import BundleError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def serving_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_bundle_path(tmp_path_factory)


@pytest.fixture()
def bundle_copy(serving_bundle: Path, tmp_path: Path) -> Path:
    return copy_bundle(serving_bundle, tmp_path / "bundle")


def _edit_json(path: Path, fn) -> None:
    obj = json.loads(path.read_text())
    path.write_text(json.dumps(fn(obj) or obj))


# ----------------------------------------------------------------------------- round trip


def test_bundle_has_every_part_recorded_and_verified(serving_bundle: Path) -> None:
    meta = B.load_bundle_meta(serving_bundle)
    for part in (*B.REQUIRED_PARTS, B.ONNX_FILE):
        assert part in meta["files"], part
        assert (serving_bundle / part).is_file()
        assert meta["files"][part] == B.sha256_file(serving_bundle / part)
    assert meta["format_version"] == B.FORMAT_VERSION
    assert meta["bundle_version"] == B.compute_version(meta)
    assert meta["num_labels"] == 3 and meta["max_length"] == 32
    assert meta["base_model"]["id"] == "minilm" and meta["base_model"]["model_type"] == "bert"
    assert meta["libraries"]["torch"] and meta["libraries"]["peft"] and meta["libraries"]["onnxruntime"]
    assert meta["data_hash"]
    assert not (serving_bundle / "README.md").exists()  # PEFT's stub card is not shipped
    parts = B.read_parts(serving_bundle)
    assert parts["labels"] == ["refund", "shipping", "password"]
    assert parts["temperature"] == pytest.approx(1.5)
    assert parts["thresholds"] == B.DEFAULT_THRESHOLDS
    manifest = json.loads((serving_bundle / B.MANIFEST_FILE).read_text())
    assert set(B.MANIFEST_KEYS) <= set(manifest)
    adapter = json.loads((serving_bundle / B.ADAPTER_CONFIG).read_text())
    assert "classifier" in adapter["modules_to_save"]
    assert B.head_size_from_adapter(serving_bundle / B.ADAPTER_WEIGHTS) == 3


def test_version_depends_on_content_not_time() -> None:
    meta = {"format_version": 1, "files": {"a": "1"}, "created_at": "x", "bundle_version": "?"}
    same = {**meta, "created_at": "y", "bundle_version": "other"}
    changed = {**meta, "files": {"a": "2"}}
    assert B.compute_version(meta) == B.compute_version(same)
    assert B.compute_version(meta) != B.compute_version(changed)


def test_update_bundle_rewrites_thresholds_and_metrics(bundle_copy: Path) -> None:
    from src.classifier.inference import IntentClassifier

    old = B.load_bundle_meta(bundle_copy)["bundle_version"]
    before = IntentClassifier.load(bundle_copy, backend="onnx")
    new_thr = {"auto_resolve": 0.9, "suggest": 0.5, "per_intent": {"refund": {"auto_resolve": None}}}
    version = B.update_bundle(bundle_copy, thresholds=new_thr, metrics={"macro_f1": 0.5})
    assert version != old
    meta = B.load_bundle_meta(bundle_copy)
    assert meta["bundle_version"] == version and meta["metrics"] == {"macro_f1": 0.5}
    after = IntentClassifier.load(bundle_copy, backend="onnx")  # cache keyed on bundle.json mtime
    assert after is not before
    assert after.version == version and after.thresholds["per_intent"]["refund"]["auto_resolve"] is None
    # metrics only: thresholds untouched, version changes again
    assert B.update_bundle(bundle_copy, metrics={"macro_f1": 0.6}) != version
    assert B.read_parts(bundle_copy)["thresholds"]["auto_resolve"] == 0.9


@pytest.mark.parametrize(
    ("thresholds", "message"),
    [
        ({"auto_resolve": 0.5, "suggest": 0.7, "per_intent": {}}, "must not exceed"),
        ({"auto_resolve": 1.5, "suggest": 0.7}, "in \\[0, 1\\]"),
        ({"suggest": 0.7}, "missing 'auto_resolve'"),
        ({"auto_resolve": 0.9, "suggest": 0.7, "per_intent": {"nope": {"auto_resolve": 0.9}}}, "nope"),
    ],
)
def test_update_bundle_rejects_bad_thresholds_and_leaves_bundle_valid(
    bundle_copy: Path, thresholds: dict, message: str
) -> None:
    version = B.load_bundle_meta(bundle_copy)["bundle_version"]
    with pytest.raises(BundleError, match=message):
        B.update_bundle(bundle_copy, thresholds=thresholds)
    assert B.load_bundle_meta(bundle_copy)["bundle_version"] == version


# ----------------------------------------------------------------------------- broken bundles


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="does not exist"):
        B.load_bundle_meta(tmp_path / "nope")


@pytest.mark.parametrize("part", ["tokenizer.json", "adapter_model.safetensors", "labels.json", B.ONNX_FILE])
def test_missing_part_is_named(bundle_copy: Path, part: str) -> None:
    (bundle_copy / part).unlink()
    with pytest.raises(BundleError, match=f"{part} is missing"):
        B.load_bundle_meta(bundle_copy)


def test_missing_bundle_json(bundle_copy: Path) -> None:
    (bundle_copy / "bundle.json").unlink()
    with pytest.raises(BundleError, match="bundle.json is missing"):
        B.load_bundle_meta(bundle_copy)


def test_tampered_part_is_a_hash_mismatch(bundle_copy: Path) -> None:
    _edit_json(bundle_copy / "thresholds.json", lambda t: {**t, "auto_resolve": 0.0, "suggest": 0.0})
    with pytest.raises(BundleError, match="thresholds.json does not match bundle.json"):
        B.load_bundle_meta(bundle_copy)


def test_tampered_weights_are_a_hash_mismatch(bundle_copy: Path) -> None:
    path = bundle_copy / B.ADAPTER_WEIGHTS
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="adapter_model.safetensors does not match"):
        B.load_bundle_meta(bundle_copy)


def test_hand_edited_bundle_json_is_caught(bundle_copy: Path) -> None:
    _edit_json(bundle_copy / "bundle.json", lambda m: m.__setitem__("max_length", 512))
    with pytest.raises(BundleError, match="bundle_version"):
        B.load_bundle_meta(bundle_copy)


def test_unsupported_format_version(bundle_copy: Path) -> None:
    _edit_json(bundle_copy / "bundle.json", lambda m: m.__setitem__("format_version", 99))
    with pytest.raises(BundleError, match="format_version 99"):
        B.load_bundle_meta(bundle_copy)


def test_label_count_must_match_head_size(bundle_copy: Path) -> None:
    _edit_json(bundle_copy / "labels.json", lambda o: {"labels": [*o["labels"], "extra"]})
    _edit_json(bundle_copy / "bundle.json", lambda m: m.__setitem__("num_labels", 4))
    refinalise(bundle_copy)  # hashes now agree: only the semantic check can catch it
    with pytest.raises(BundleError, match="head has 3 outputs but labels.json has 4"):
        B.load_bundle_meta(bundle_copy)


def test_labels_vs_num_labels(bundle_copy: Path) -> None:
    _edit_json(bundle_copy / "labels.json", lambda o: {"labels": o["labels"][:2]})
    refinalise(bundle_copy)
    with pytest.raises(BundleError, match="2 labels but bundle.json says num_labels=3"):
        B.load_bundle_meta(bundle_copy)


def test_bad_temperature(bundle_copy: Path) -> None:
    _edit_json(bundle_copy / "calibration.json", lambda c: c.__setitem__("temperature", -1))
    refinalise(bundle_copy)
    with pytest.raises(BundleError, match="temperature"):
        B.load_bundle_meta(bundle_copy)


def test_corrupt_onnx_is_a_clear_error(bundle_copy: Path) -> None:
    from src.classifier.inference import IntentClassifier

    (bundle_copy / B.ONNX_FILE).write_bytes(b"not an onnx graph")
    refinalise(bundle_copy)
    with pytest.raises(BundleError, match="onnxruntime"):
        IntentClassifier.load(bundle_copy, backend="onnx")


def test_adapter_without_trained_head_is_refused(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    path = tmp_path / "adapter_model.safetensors"
    save_file(
        {
            "base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight": np.zeros(
                (8, 4), np.float32
            )
        },
        path,
    )
    with pytest.raises(BundleError, match="no trained classification head"):
        B.head_size_from_adapter(path)


def test_distilbert_head_name_is_found_not_pre_classifier(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    path = tmp_path / "adapter_model.safetensors"
    save_file(
        {
            "base_model.model.pre_classifier.weight": np.zeros((16, 16), np.float32),
            "base_model.model.classifier.weight": np.zeros((5, 16), np.float32),
        },
        path,
    )
    assert B.head_size_from_adapter(path) == 5


def test_bundle_without_its_int8_graph_rebuilds_and_verifies_it(bundle_copy: Path, tmp_path: Path,
                                                                 monkeypatch) -> None:
    from src.classifier import inference

    thresholds_before = B.read_parts(bundle_copy)["thresholds"]
    version = B.unship_onnx(bundle_copy)
    meta = B.load_bundle_meta(bundle_copy)
    assert not (bundle_copy / B.ONNX_FILE).exists() and B.ONNX_FILE not in meta["files"]
    assert meta["onnx"]["shipped"] is False and meta["bundle_version"] == version
    assert B.read_parts(bundle_copy)["thresholds"]["source"] == thresholds_before["source"]
    cache = tmp_path / "cache" / "rebuilt.onnx"
    monkeypatch.setattr(inference, "onnx_cache_path", lambda _meta: cache)
    onnx = inference.IntentClassifier.load(bundle_copy, backend="onnx", threads=1)
    torch_clf = inference.IntentClassifier.load(bundle_copy, backend="torch", threads=1)
    assert cache.is_file() and onnx.backend.name == "onnx"
    texts = ["i want my money back", "where is my package", "reset my password"]
    assert (onnx.predict_proba(texts).argmax(1) == torch_clf.predict_proba(texts).argmax(1)).all()
    # a damaged cached graph fails the reference check and is rebuilt, never served
    inference.clear_cache()
    cache.write_bytes(b"garbage")
    again = inference.IntentClassifier.load(bundle_copy, backend="onnx", threads=1)
    assert cache.read_bytes() != b"garbage"
    assert (again.predict_proba(texts).argmax(1) == torch_clf.predict_proba(texts).argmax(1)).all()


def test_base_weights_are_pinned_and_checked(serving_bundle: Path, tmp_path: Path) -> None:
    meta = B.load_bundle_meta(serving_bundle)
    pinned = meta["base_model"]["weights_sha256"]
    assert pinned and all(len(v) == 64 for v in pinned.values())
    B.check_base_weights(meta, meta["base_model"]["source"])  # the real base passes
    fake = tmp_path / "other_base"
    fake.mkdir()
    (fake / "model.safetensors").write_bytes(b"other weights")
    with pytest.raises(BundleError, match="do not match"):
        B.check_base_weights(meta, str(fake))


def test_onnx_agreement_is_recorded_at_save_time(serving_bundle: Path) -> None:
    agreement = B.load_bundle_meta(serving_bundle)["onnx"]["agreement"]
    assert set(agreement) >= {"per_tensor", "per_channel", "chosen", "bound"}
    chosen = agreement[agreement["chosen"]]
    assert chosen["n"] == 6 and chosen["argmax_agreement"] >= 0.99 and chosen["max_prob_diff"] < 0.1


# ----------------------------------------------------------------------------- pure validation


def test_label_order_must_match_model_id2label() -> None:
    cfg = SimpleNamespace(num_labels=2, id2label={0: "b", 1: "a"})
    with pytest.raises(BundleError, match="does not match"):
        B._check_label_order(cfg, ["a", "b"])
    B._check_label_order(cfg, ["b", "a"])
    B._check_label_order(SimpleNamespace(num_labels=2, id2label={0: "LABEL_0", 1: "LABEL_1"}), ["x", "y"])
    with pytest.raises(BundleError, match="3 outputs but 2 labels"):
        B._check_label_order(SimpleNamespace(num_labels=3, id2label={}), ["x", "y"])


def test_labels_validation() -> None:
    assert B.validate_labels({"labels": ["a", "b"]}) == ["a", "b"]
    for bad in ({"labels": []}, {"labels": ["a", "a"]}, {"labels": ["a", ""]}, ["a"], {"labels": [1]}):
        with pytest.raises(BundleError):
            B.validate_labels(bad)


def test_thresholds_allow_never_auto_resolve() -> None:
    out = B.validate_thresholds(
        {"auto_resolve": 0.85, "suggest": 0.6, "per_intent": {"a": {"auto_resolve": None, "suggest": 0.7}}},
        ["a"],
    )
    assert out["per_intent"]["a"]["auto_resolve"] is None


def test_threshold_provenance_is_validated_and_tied_to_the_model() -> None:
    with pytest.raises(BundleError, match="'source'"):
        B.validate_thresholds({"auto_resolve": 0.85, "suggest": 0.6, "source": "guessed"}, ["a"])
    assert B.DEFAULT_THRESHOLDS["source"] == "default"
    meta = {"files": {B.ADAPTER_WEIGHTS: "w1", B.CALIBRATION_FILE: "t1", B.LABELS_FILE: "l"},
            "onnx": None}
    fingerprint = B.model_fingerprint(meta)
    assert fingerprint == {B.ADAPTER_WEIGHTS: "w1", B.CALIBRATION_FILE: "t1"}
    calibrated = {"source": "calibrated", "calibration": {"model_fingerprint": fingerprint}}
    assert B.effective_thresholds(calibrated, meta)["source"] == "calibrated"
    retrained = {**meta, "files": {**meta["files"], B.ADAPTER_WEIGHTS: "w2"}}
    assert B.effective_thresholds(calibrated, retrained)["source"] == "stale"
    assert B.effective_thresholds({"auto_resolve": 0.85}, meta)["source"] == "default"


# ----------------------------------------------------------------------------- DistilBERT path


def test_distilbert_bundle_serves_with_both_backends(tmp_path: Path) -> None:
    """DistilBERT (tiny random config, no hub): 2 model inputs, LoRA on every block projection."""
    import torch
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertModel

    from src.classifier.base_models import resolve_base_model
    from src.classifier.inference import IntentClassifier
    from src.classifier.model import ModelSpec, build_classifier

    torch.manual_seed(0)
    labels = ["a", "b"]
    base_dir = tmp_path / "tiny-distilbert"
    tokenizer = AutoTokenizer.from_pretrained(resolve_base_model("minilm"))  # any BERT vocab works
    config = DistilBertConfig(vocab_size=tokenizer.vocab_size, dim=32, hidden_dim=64, n_layers=2, n_heads=2,
                              max_position_embeddings=64)
    DistilBertModel(config).save_pretrained(base_dir)
    tokenizer.save_pretrained(base_dir)
    built = build_classifier(str(base_dir), labels, ModelSpec(r=4, alpha=8))
    model = built.model
    enc = tokenizer(["good thing", "bad thing"], return_tensors="pt", padding=True)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(5):
        loss = torch.nn.functional.cross_entropy(
            model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits,
            torch.tensor([0, 1]),
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    manifest = {"seed": 0, "source": "x", "data_hash": "h", "train": [], "val": [], "test": []}
    out = B.save_bundle(
        tmp_path / "bundle",
        model=model,
        tokenizer=tokenizer,
        labels=labels,
        temperature=1.0,
        base_model=str(base_dir),
        train_config={"max_length": 16},
        data_info={},
        split_manifest=manifest,
    )
    meta = B.load_bundle_meta(out)
    assert meta["model_input_names"] == ["input_ids", "attention_mask"]  # no token_type_ids for DistilBERT
    assert meta["onnx"]["inputs"] == ["input_ids", "attention_mask"]
    assert meta["base_model"]["model_type"] == "distilbert"
    texts = ["good thing", "bad thing", "something else entirely"]
    p_onnx = IntentClassifier.load(out, backend="onnx", threads=1).predict_proba(texts)
    p_torch = IntentClassifier.load(out, backend="torch", threads=1).predict_proba(texts)
    assert p_onnx.shape == (3, 2) and np.abs(p_onnx - p_torch).max() < 0.05
