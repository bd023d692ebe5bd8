"""One versioned serving bundle: everything needed to serve the classifier, checked as a whole.

Why a bundle and not "a checkpoint folder": a decision must be reproducible from its bundle version
(DESIGN invariant 5). Weights, tokenizer, label map, temperature, thresholds and the frozen split
manifest only make sense together, so ``bundle.json`` records a sha256 of every part and the bundle
version is a hash over all of them. Loading refuses (``BundleError``) when any part is missing,
edited behind the bundle's back, or inconsistent (e.g. label count != classification head size).

Layout::

    adapter_config.json, adapter_model.safetensors   method "lora": PEFT LoRA adapter + the linear head
    model.safetensors, encoder_config.json           method "full": every weight + the encoder's config
    tokenizer.json, tokenizer_config.json            tokenizer (tokenizer.json is required)
    labels.json                                      {"labels": [...]}  (id = list index)
    calibration.json                                 {"temperature": T, "fit_on": split, ...}
    thresholds.json                                  routing thresholds + provenance (``source``)
    split_manifest.json                              frozen train/val/calibration/test ids + hashes
    ood.safetensors                                  Gaussians of training embeddings (OOD score)
    onnx/model.int8.onnx                             LoRA-merged model, dynamic int8 (optional; may be
                                                     rebuilt at first load, see ``onnx.shipped``)
    onnx_reference.json                              torch logits of held-out texts the int8 graph must match
    bundle.json                                      metadata + sha256 of every part + version

The model is ``src.classifier.model.MeanPoolingClassifier`` (architecture recorded in bundle.json);
the base encoder's weight files are pinned by sha256 and checked whenever they are loaded.

Reports written next to the parts (eval.json, PNGs, MODEL_CARD.md) are not parts: they can be
regenerated without changing what the bundle predicts.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import platform
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from src.classifier.types import BundleError

FORMAT_VERSION = 2
BUNDLE_FILE = "bundle.json"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
LABELS_FILE = "labels.json"
CALIBRATION_FILE = "calibration.json"
THRESHOLDS_FILE = "thresholds.json"
MANIFEST_FILE = "split_manifest.json"
MODEL_WEIGHTS = "model.safetensors"
ENCODER_CONFIG = "encoder_config.json"
OOD_FILE = "ood.safetensors"
ONNX_FILE = "onnx/model.int8.onnx"
ONNX_REFERENCE = "onnx_reference.json"
COMMON_PARTS: tuple[str, ...] = (
    TOKENIZER_FILE, LABELS_FILE, CALIBRATION_FILE, THRESHOLDS_FILE, MANIFEST_FILE
)
METHOD_PARTS: dict[str, tuple[str, ...]] = {
    "lora": (ADAPTER_CONFIG, ADAPTER_WEIGHTS),
    "full": (MODEL_WEIGHTS, ENCODER_CONFIG),
}
REQUIRED_PARTS: tuple[str, ...] = (*METHOD_PARTS["lora"], *COMMON_PARTS)  # the default (LoRA) bundle
MANIFEST_KEYS: tuple[str, ...] = ("seed", "source", "data_hash", "train", "val", "test")
REQUIRED_META_KEYS: tuple[str, ...] = (
    "format_version",
    "bundle_version",
    "base_model",
    "architecture",
    "method",
    "num_labels",
    "max_length",
    "files",
)
# A fresh bundle's thresholds: "default" = nobody calibrated them, so the router never auto-resolves
# on them (suggest at most) until src.graph.calibrate (the last step of training) replaces them.
DEFAULT_THRESHOLDS: dict[str, Any] = {
    "source": "default", "auto_resolve": 0.85, "suggest": 0.60, "per_intent": {}
}
THRESHOLD_SOURCES = ("default", "calibrated")
DEFAULT_MAX_LENGTH = 64
_LIBRARIES = ("torch", "transformers", "peft", "tokenizers", "onnx", "onnxruntime", "numpy", "triage")
# The final classification layer's weight inside the adapter (BERT/DistilBERT "classifier",
# RoBERTa-style "classifier.out_proj"); "pre_classifier" must not match.
_HEAD_KEY = re.compile(r"(^|\.)classifier(\.out_proj)?(\.modules_to_save\.default)?\.weight$")


# ----------------------------------------------------------------------------- small helpers


def sha256_file(path: Path) -> str:
    """Streaming sha256 (parts can be tens of MB)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")


def _read_json(path: Path, part: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"bundle part {part} is missing ({path})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"bundle part {part} is not valid JSON ({path}): {exc}") from None


def compute_version(meta: Mapping[str, Any]) -> str:
    """Bundle version = hash of the metadata (which holds every part's sha256), minus volatile keys.

    ``created_at`` is excluded so re-saving identical content gives the same version.
    """
    stable = {k: v for k, v in meta.items() if k not in ("bundle_version", "created_at", "updated_at")}
    return hashlib.sha256(_canonical(stable).encode()).hexdigest()[:16]


def library_versions() -> dict[str, str | None]:
    """Versions recorded in bundle.json: a bundle is only guaranteed to load with what built it."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            out[name] = None
    return out


# ----------------------------------------------------------------------------- validation (pure)


def validate_labels(obj: Any) -> list[str]:
    """labels.json -> list of unique, non-empty label strings."""
    labels = obj.get("labels") if isinstance(obj, dict) else None
    if not isinstance(labels, list) or not labels:
        raise BundleError(f"{LABELS_FILE} must be an object with a non-empty 'labels' list")
    if not all(isinstance(x, str) and x.strip() for x in labels):
        raise BundleError(f"{LABELS_FILE}: every label must be a non-empty string")
    if len(set(labels)) != len(labels):
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        raise BundleError(f"{LABELS_FILE}: duplicate labels {dupes}")
    return list(labels)


def validate_temperature(obj: Any) -> float:
    """calibration.json -> a finite temperature > 0."""
    temp = obj.get("temperature") if isinstance(obj, dict) else None
    if isinstance(temp, bool) or not isinstance(temp, (int, float)) or not math.isfinite(temp) or temp <= 0:
        raise BundleError(f"{CALIBRATION_FILE}: 'temperature' must be a finite number > 0, got {temp!r}")
    return float(temp)


def _check_prob(value: Any, where: str, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise BundleError(f"{THRESHOLDS_FILE}: {where} must be a number in [0, 1], got {value!r}")


def validate_thresholds(obj: Any, labels: Iterable[str]) -> dict[str, Any]:
    """Thresholds: global auto_resolve >= suggest in [0,1]; per_intent only for known intents.

    ``per_intent[intent]["auto_resolve"] = None`` means that intent never auto-resolves.
    """
    if not isinstance(obj, dict):
        raise BundleError(f"{THRESHOLDS_FILE} must be a JSON object")
    for key in ("auto_resolve", "suggest"):
        if key not in obj:
            raise BundleError(f"{THRESHOLDS_FILE}: missing '{key}'")
        _check_prob(obj[key], key)
    if obj["suggest"] > obj["auto_resolve"]:
        raise BundleError(
            f"{THRESHOLDS_FILE}: suggest ({obj['suggest']}) must not exceed "
            f"auto_resolve ({obj['auto_resolve']})"
        )
    if obj.get("source", "default") not in THRESHOLD_SOURCES:
        raise BundleError(
            f"{THRESHOLDS_FILE}: 'source' must be one of {THRESHOLD_SOURCES}, got {obj['source']!r}"
        )
    per_intent = obj.get("per_intent", {})
    if not isinstance(per_intent, dict):
        raise BundleError(f"{THRESHOLDS_FILE}: 'per_intent' must be an object")
    known = set(labels)
    unknown = sorted(set(per_intent) - known)
    if unknown:
        raise BundleError(f"{THRESHOLDS_FILE}: per_intent names intents the model does not know: {unknown}")
    for intent, row in per_intent.items():
        if not isinstance(row, dict):
            raise BundleError(f"{THRESHOLDS_FILE}: per_intent[{intent!r}] must be an object")
        for key, value in row.items():
            if key in ("auto_resolve", "suggest"):
                _check_prob(value, f"per_intent[{intent!r}][{key!r}]", allow_none=True)
    return {**obj, "per_intent": per_intent}


def validate_manifest(obj: Any) -> dict[str, Any]:
    """The frozen split manifest must carry the keys evaluation relies on."""
    if not isinstance(obj, dict):
        raise BundleError(f"{MANIFEST_FILE} must be a JSON object")
    missing = [k for k in MANIFEST_KEYS if k not in obj]
    if missing:
        raise BundleError(f"{MANIFEST_FILE}: missing keys {missing}")
    return obj


def weights_part(meta: Mapping[str, Any]) -> str:
    """The file holding the trained head: the adapter (LoRA) or the full weights."""
    return MODEL_WEIGHTS if meta.get("method") == "full" else ADAPTER_WEIGHTS


def head_size_from_adapter(weights_path: Path) -> int:
    """Output size of the saved classification head, read from the safetensors header only."""
    from safetensors import safe_open

    try:
        with safe_open(str(weights_path), framework="np") as fh:
            keys = list(fh.keys())
            heads = [k for k in keys if _HEAD_KEY.search(k)]
            if not heads:
                raise BundleError(
                    f"{ADAPTER_WEIGHTS} holds no trained classification head (no '*classifier.weight'): "
                    "the head must be saved through modules_to_save, or serving would use an untrained head"
                )
            return int(fh.get_slice(heads[0]).get_shape()[0])
    except BundleError:
        raise
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a broken part
        raise BundleError(f"{ADAPTER_WEIGHTS} cannot be read as safetensors: {exc}") from None


# ----------------------------------------------------------------------------- load / verify


def load_bundle_meta(out_dir: str | Path) -> dict[str, Any]:
    """Read and fully verify ``bundle.json``; returns it. Raises ``BundleError`` naming the bad part.

    Checks: format version, required keys, every recorded part present with a matching sha256, all
    required parts recorded, the bundle version, labels vs head size vs ``num_labels``, temperature,
    thresholds and manifest shape.
    """
    root = Path(out_dir)
    if not root.is_dir():
        raise BundleError(
            f"bundle directory {root} does not exist (train one with `python -m src.classifier.train`)"
        )
    meta = _read_json(root / BUNDLE_FILE, BUNDLE_FILE)
    if not isinstance(meta, dict):
        raise BundleError(f"{BUNDLE_FILE} must be a JSON object")
    if meta.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"{BUNDLE_FILE}: unsupported format_version {meta.get('format_version')!r} "
            f"(this code reads {FORMAT_VERSION})"
        )
    missing_keys = [k for k in REQUIRED_META_KEYS if k not in meta]
    if missing_keys:
        raise BundleError(f"{BUNDLE_FILE}: missing keys {missing_keys}")
    files = meta["files"]
    if not isinstance(files, dict):
        raise BundleError(f"{BUNDLE_FILE}: 'files' must map part path -> sha256")
    from src.classifier.model import ARCHITECTURE

    if meta["architecture"] != ARCHITECTURE:
        raise BundleError(f"{BUNDLE_FILE}: architecture {meta['architecture']!r} is not served by this code "
                          f"({ARCHITECTURE}); retrain the bundle")
    if meta["method"] not in METHOD_PARTS:
        raise BundleError(f"{BUNDLE_FILE}: unknown method {meta['method']!r}")
    unrecorded = [p for p in (*METHOD_PARTS[meta["method"]], *COMMON_PARTS) if p not in files]
    if unrecorded:
        raise BundleError(f"{BUNDLE_FILE} does not record required part(s) {unrecorded}")
    for rel, expected in files.items():
        path = root / rel
        if not path.is_file():
            raise BundleError(f"bundle part {rel} is missing ({path})")
        actual = sha256_file(path)
        if actual != expected:
            raise BundleError(
                f"bundle part {rel} does not match bundle.json (sha256 {actual[:12]}… != recorded "
                f"{str(expected)[:12]}…): it was changed after saving; re-save the bundle or use "
                "update_bundle() for thresholds/metrics"
            )
    if compute_version(meta) != meta["bundle_version"]:
        raise BundleError(
            f"{BUNDLE_FILE}: bundle_version {meta['bundle_version']!r} does not match its contents "
            "(bundle.json was edited by hand)"
        )
    labels = validate_labels(_read_json(root / LABELS_FILE, LABELS_FILE))
    if len(labels) != meta["num_labels"]:
        raise BundleError(
            f"{LABELS_FILE} has {len(labels)} labels but bundle.json says num_labels={meta['num_labels']}"
        )
    head = head_size_from_adapter(root / weights_part(meta))
    if head != len(labels):
        raise BundleError(
            f"classification head has {head} outputs but {LABELS_FILE} has {len(labels)} labels"
        )
    validate_temperature(_read_json(root / CALIBRATION_FILE, CALIBRATION_FILE))
    validate_thresholds(_read_json(root / THRESHOLDS_FILE, THRESHOLDS_FILE), labels)
    validate_manifest(_read_json(root / MANIFEST_FILE, MANIFEST_FILE))
    onnx = meta.get("onnx")
    if onnx is not None and onnx.get("shipped", True) and onnx.get("path") not in files:
        raise BundleError(f"{BUNDLE_FILE}: onnx export {onnx.get('path')!r} is not a recorded part")
    return meta


def model_fingerprint(meta: Mapping[str, Any]) -> dict[str, str]:
    """sha256 of the parts that decide a probability (weights, ONNX graph, temperature).

    Thresholds record it when they are calibrated; if any of these parts changes later, the
    thresholds no longer describe the model and are treated as uncalibrated ("stale").
    """
    files = meta.get("files") or {}
    # The int8 graph itself is not listed: it must reproduce ONNX_REFERENCE (the torch logits) within
    # the stated bound, so a bundle may ship without it and rebuild it without losing its calibration.
    weights = (ADAPTER_WEIGHTS, MODEL_WEIGHTS, OOD_FILE, CALIBRATION_FILE, ONNX_REFERENCE)
    return {rel: files[rel] for rel in weights if rel in files}


def effective_thresholds(thresholds: dict[str, Any], meta: Mapping[str, Any]) -> dict[str, Any]:
    """``source`` as the router must see it: "calibrated" only for the model it was calibrated on."""
    out = dict(thresholds)
    out.setdefault("source", "default")
    if out["source"] == "calibrated":
        recorded = (out.get("calibration") or {}).get("model_fingerprint")
        if recorded != model_fingerprint(meta):
            out["source"] = "stale"
    return out


def read_parts(out_dir: str | Path) -> dict[str, Any]:
    """Verified metadata plus the parsed small parts (labels, temperature, thresholds).

    ``thresholds["source"]`` is downgraded to "stale" when they were calibrated for other weights or
    another temperature (see :func:`effective_thresholds`).
    """
    root = Path(out_dir)
    meta = load_bundle_meta(root)
    labels = validate_labels(_read_json(root / LABELS_FILE, LABELS_FILE))
    thresholds = validate_thresholds(_read_json(root / THRESHOLDS_FILE, THRESHOLDS_FILE), labels)
    return {
        "meta": meta,
        "labels": labels,
        "temperature": validate_temperature(_read_json(root / CALIBRATION_FILE, CALIBRATION_FILE)),
        "thresholds": effective_thresholds(thresholds, meta),
    }


# ----------------------------------------------------------------------------- save


def _finalise(root: Path, meta: dict[str, Any], parts: Iterable[str]) -> str:
    meta["files"] = {rel: sha256_file(root / rel) for rel in sorted(set(parts))}
    meta["bundle_version"] = compute_version(meta)
    _write_json(root / BUNDLE_FILE, meta)
    return meta["bundle_version"]


def _max_length(train_config: Mapping[str, Any], tokenizer: Any) -> int:
    for key in ("max_length", "max_len", "max_seq_length"):
        value = train_config.get(key)
        if isinstance(value, int) and value > 0:
            return value
    model_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(model_max, int) and 0 < model_max <= 4096:
        return min(model_max, 512)
    return DEFAULT_MAX_LENGTH


def _check_label_order(config: Any, labels: list[str]) -> None:
    """The head's ids must mean what labels.json says; a silent reorder would mislabel everything."""
    if getattr(config, "num_labels", len(labels)) != len(labels):
        raise BundleError(f"model head has {config.num_labels} outputs but {len(labels)} labels were given")
    id2label = getattr(config, "id2label", None) or {}
    named = {int(k): v for k, v in id2label.items()}
    if named and not all(v == f"LABEL_{k}" for k, v in named.items()):
        expected = [named.get(i) for i in range(len(labels))]
        if expected != labels:
            raise BundleError(
                f"labels order {labels[:5]}… does not match the model's id2label {expected[:5]}…"
            )


def base_weights_sha256(source: str) -> dict[str, str] | None:
    """sha256 of the base encoder's weight files (None when it is a hub id not on disk)."""
    root = Path(source)
    if not root.is_dir():
        return None
    files = sorted(f for f in root.iterdir() if f.suffix in (".safetensors", ".bin") and f.is_file())
    return {f.name: sha256_file(f) for f in files} or None


def check_base_weights(meta: Mapping[str, Any], source: str) -> None:
    """Refuse base weights that differ from the ones the bundle was trained on (LoRA needs the exact
    base: an adapter on other weights predicts something else without any error)."""
    pinned = (meta.get("base_model") or {}).get("weights_sha256")
    if not pinned:
        return
    actual = base_weights_sha256(source)
    if actual != pinned:
        raise BundleError(
            f"base model weights at {source} do not match the ones this bundle was trained on "
            f"(sha256 {actual} != pinned {pinned}): reinstall the pinned base model"
        )


def _base_model_info(base_model: str, config: Any, *, pin: bool) -> dict[str, Any]:
    from src.classifier.base_models import resolve_base_model

    try:
        source = resolve_base_model(base_model)
    except FileNotFoundError:
        source = getattr(config, "_name_or_path", None) or base_model
    return {
        "id": base_model,
        "source": source,
        "model_type": getattr(config, "model_type", None),
        "hidden_size": getattr(config, "hidden_size", getattr(config, "dim", None)),
        "num_hidden_layers": getattr(config, "num_hidden_layers", getattr(config, "n_layers", None)),
        "weights_sha256": base_weights_sha256(source) if pin else None,
    }


def _save_weights(root: Path, model: Any, method: str) -> list[str]:
    """Write the trained weights; returns the parts written."""
    from safetensors.torch import save_file

    from src.classifier.model import unwrap

    if method == "lora":
        if not hasattr(model, "peft_config"):
            raise BundleError("method 'lora' expects a PEFT model (LoRA adapter + head in modules_to_save)")
        model.save_pretrained(str(root))
        (root / "README.md").unlink(missing_ok=True)  # PEFT's stub card; MODEL_CARD.md is ours
        return list(METHOD_PARTS["lora"])
    inner = unwrap(model)
    state = {k: v.detach().to("cpu").contiguous() for k, v in inner.state_dict().items()}
    save_file(state, str(root / MODEL_WEIGHTS))
    _write_json(root / ENCODER_CONFIG, inner.encoder.config.to_dict())
    return list(METHOD_PARTS["full"])


def save_bundle(
    out_dir: str | Path,
    *,
    model: Any,
    tokenizer: Any,
    labels: list[str],
    temperature: float,
    base_model: str,
    train_config: dict,
    data_info: dict,
    split_manifest: dict,
    metrics: dict | None = None,
    thresholds: dict | None = None,
    export_onnx: bool = True,
    temperature_fit_on: str = "calibration",
    method: str = "lora",
    ood: Any = None,
    verify_texts: list[str] | None = None,
) -> Path:
    """Write a complete serving bundle into ``out_dir`` (created; existing parts overwritten).

    ``model`` is the trained model (a PEFT-wrapped ``MeanPoolingClassifier`` for ``method="lora"``,
    the classifier itself for ``"full"``); it is not modified — the ONNX export merges a deep copy and
    is checked against it on ``verify_texts`` (the validation split). ``ood`` is the fitted
    ``GaussianDensity`` of training embeddings. Returns the bundle directory.
    """
    from src.classifier.model import ARCHITECTURE, merged_copy, unwrap

    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    labels = validate_labels({"labels": list(labels)})
    temperature = validate_temperature({"temperature": temperature})
    thresholds = validate_thresholds(copy.deepcopy(thresholds or DEFAULT_THRESHOLDS), labels)
    split_manifest = validate_manifest(split_manifest)
    inner = unwrap(model)
    config = inner.config
    _check_label_order(config, labels)
    if method not in METHOD_PARTS:
        raise BundleError(f"unknown method {method!r}")
    for stale in (*METHOD_PARTS["lora"], *METHOD_PARTS["full"], OOD_FILE, ONNX_FILE, ONNX_REFERENCE):
        (root / stale).unlink(missing_ok=True)
    parts = _save_weights(root, model, method)
    saved = tokenizer.save_pretrained(str(root))
    tokenizer_parts = {Path(p).relative_to(root).as_posix() for p in saved if Path(p).is_file()}
    if TOKENIZER_FILE not in tokenizer_parts:
        raise BundleError(
            "the tokenizer did not write tokenizer.json: a fast tokenizer is required for serving"
        )
    head = head_size_from_adapter(root / weights_part({"method": method}))
    if head != len(labels):
        raise BundleError(
            f"saved head has {head} outputs but {len(labels)} labels: is the head in modules_to_save?"
        )
    _write_json(root / LABELS_FILE, {"labels": labels})
    _write_json(
        root / CALIBRATION_FILE,
        {"temperature": temperature, "method": "temperature_scaling", "fit_on": temperature_fit_on},
    )
    _write_json(root / THRESHOLDS_FILE, thresholds)
    _write_json(root / MANIFEST_FILE, split_manifest)
    parts += [*COMMON_PARTS, *sorted(tokenizer_parts)]
    if ood is not None:
        ood.save(root / OOD_FILE)
        parts.append(OOD_FILE)
    max_length = _max_length(train_config, tokenizer)
    names = list(inner.input_names)

    onnx_meta: dict[str, Any] | None = None
    if export_onnx:
        from src.classifier.onnx_export import export_verified

        onnx_meta, reference = export_verified(merged_copy(model), tokenizer, names, root / ONNX_FILE,
                                               list(verify_texts or []), max_length=max_length)
        onnx_meta = {"path": ONNX_FILE, "shipped": True, **onnx_meta}
        _write_json(root / ONNX_REFERENCE, reference)
        parts += [ONNX_FILE, ONNX_REFERENCE]

    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "bundle_version": "",
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "task": "intent-classification",
        "architecture": ARCHITECTURE,
        "method": method,
        "base_model": _base_model_info(base_model, config, pin=method == "lora"),
        "num_labels": len(labels),
        "max_length": max_length,
        "model_input_names": names,
        "libraries": library_versions(),
        "data_hash": split_manifest.get("data_hash") or data_info.get("data_hash"),
        "data": data_info,
        "train_config": train_config,
        "metrics": metrics or {},
        "ood": {"path": OOD_FILE, "embedding": "mean-pooled, L2-normalised"} if ood is not None else None,
        "onnx": onnx_meta,
        "files": {},
    }
    _finalise(root, meta, parts)
    load_bundle_meta(root)  # never hand back a bundle that would not load
    return root


def unship_onnx(out_dir: str | Path) -> str:
    """Drop the int8 graph from a bundle (to keep a committed bundle small): it is rebuilt from the
    torch model at first load and must match ``onnx_reference.json`` before it serves. Returns the
    new bundle version."""
    root = Path(out_dir)
    meta = load_bundle_meta(root)
    onnx = meta.get("onnx")
    if not onnx or not onnx.get("shipped", True):
        return meta["bundle_version"]
    if ONNX_REFERENCE not in meta["files"]:
        raise BundleError("cannot drop the ONNX graph: no onnx_reference.json to check a rebuilt one against")
    meta["files"].pop(onnx["path"], None)
    (root / onnx["path"]).unlink(missing_ok=True)
    meta["onnx"] = {**onnx, "shipped": False}
    return _finalise(root, meta, meta["files"].keys())


def update_bundle(
    out_dir: str | Path,
    *,
    metrics: dict | None = None,
    thresholds: dict | None = None,
    temperature: float | None = None,
    calibration_info: dict | None = None,
) -> str:
    """Replace metrics, thresholds and/or the temperature of a verified bundle; returns the new version.

    A new temperature changes every probability, so it must come before thresholds fitted on it
    (the thresholds record the model fingerprint, temperature included).
    """
    root = Path(out_dir)
    meta = load_bundle_meta(root)  # refuse to bless a bundle that was tampered with
    if temperature is not None:
        value = validate_temperature({"temperature": temperature})
        _write_json(root / CALIBRATION_FILE, {"temperature": value, "method": "temperature_scaling",
                                              **(calibration_info or {})})
        meta["files"][CALIBRATION_FILE] = sha256_file(root / CALIBRATION_FILE)
    if thresholds is not None:
        labels = validate_labels(_read_json(root / LABELS_FILE, LABELS_FILE))
        _write_json(root / THRESHOLDS_FILE, validate_thresholds(copy.deepcopy(thresholds), labels))
    if metrics is not None:
        meta["metrics"] = metrics
    meta["updated_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return _finalise(root, meta, meta["files"].keys())
