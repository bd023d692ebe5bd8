"""The int8 ONNX graph that serves the classifier, and the proof that it is the model we measured.

Dynamic int8 quantisation is what makes single-ticket CPU latency ~2 ms (NOTES.md), but int8 is an
approximation. So an export is only accepted after comparing it with the fp32 torch model (LoRA
merged) on real held-out texts — the validation split at save time: argmax agreement and the largest
probability difference are stored in ``bundle.json`` and an export below
``MIN_ARGMAX_AGREEMENT`` is refused. Per-tensor and per-channel weight quantisation are both tried
and the closer one is kept. A sample of those texts with their torch logits is kept in the bundle
(``onnx_reference.json``) so an export rebuilt later (a bundle shipped without its ONNX file) is
checked against the same reference before it serves.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from src.classifier.metrics import softmax
from src.classifier.types import BundleError

ONNX_OPSET = 17
MIN_ARGMAX_AGREEMENT = 0.99  # share of verification texts whose top intent is the same as torch's
REFERENCE_TEXTS = 64
OUTPUTS = ["logits", "embeddings"]
FALLBACK_TEXTS = ["reset my password please", "a second, longer example ticket text", "where is my order",
                  "i want a refund for the last invoice", "cancel my subscription today"]


def _batches(tokenizer: Any, texts: list[str], names: list[str], max_length: int, size: int = 64):
    for i in range(0, len(texts), size):
        enc = tokenizer(texts[i : i + size], padding=True, truncation=True, max_length=max_length,
                        return_tensors="np")
        yield {n: enc[n].astype(np.int64) for n in names if n in enc}


def torch_logits(
    merged: Any, tokenizer: Any, texts: list[str], names: list[str], max_length: int
) -> np.ndarray:
    import torch

    out = []
    with torch.inference_mode():
        for batch in _batches(tokenizer, texts, names, max_length):
            out.append(merged(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits.float().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def onnx_logits(
    path: Path, tokenizer: Any, texts: list[str], names: list[str], max_length: int
) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = [i.name for i in session.get_inputs()]
    out = [session.run(["logits"], {k: b[k] for k in inputs})[0]
           for b in _batches(tokenizer, texts, names, max_length)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)


def agreement(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    """How close int8 logits are to torch's: argmax agreement and probability differences (T = 1)."""
    p_ref, p_new = softmax(reference), softmax(candidate)
    diff = np.abs(p_ref - p_new).max(axis=1)
    return {
        "n": len(reference),
        "argmax_agreement": float((p_ref.argmax(1) == p_new.argmax(1)).mean()),
        "max_prob_diff": float(diff.max()),
        "mean_prob_diff": float(diff.mean()),
        "max_logit_diff": float(np.abs(reference - candidate).max()),
    }


def _export_fp32(merged: Any, tokenizer: Any, names: list[str], path: Path, opset: int) -> None:
    import torch

    sample = tokenizer(FALLBACK_TEXTS[:2], padding=True, return_tensors="pt")

    class _Outputs(torch.nn.Module):
        """Positional inputs -> (logits, embeddings): named graph outputs for onnxruntime."""

        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out = self.inner(**dict(zip(names, tensors, strict=True)))
            return out.logits, out.embeddings

    dynamic = {n: {0: "batch", 1: "sequence"} for n in names}
    dynamic.update({o: {0: "batch"} for o in OUTPUTS})
    with torch.inference_mode(), warnings.catch_warnings():
        # TracerWarnings about shape-dependent branches: constant for padded encoder inputs
        warnings.simplefilter("ignore")
        torch.onnx.export(_Outputs(merged), tuple(sample[n] for n in names), str(path), input_names=names,
                          output_names=OUTPUTS, dynamic_axes=dynamic, opset_version=opset,
                          do_constant_folding=True, dynamo=False)


def _quantize(fp32: Path, out: Path, per_channel: bool) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # onnxruntime's generic "consider pre-processing" notice
    try:
        quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, per_channel=per_channel)
    finally:
        logging.disable(previous)


def export_verified(
    merged: Any,
    tokenizer: Any,
    names: list[str],
    out_path: Path,
    verify_texts: list[str],
    *,
    max_length: int,
    modes: tuple[str, ...] = ("per_tensor", "per_channel"),
    opset: int = ONNX_OPSET,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Export ``merged`` (fp32, eval) to int8 ONNX at ``out_path``, keeping the quantisation mode that
    agrees best with torch on ``verify_texts``. Returns (onnx metadata, reference sample).

    Raises ``BundleError`` when no mode reaches ``MIN_ARGMAX_AGREEMENT``.
    """
    texts = list(verify_texts) or FALLBACK_TEXTS
    source = "validation split" if verify_texts else "built-in sample texts (no validation split given)"
    reference = torch_logits(merged, tokenizer, texts, names, max_length)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    measured: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "model.fp32.onnx"
        _export_fp32(merged, tokenizer, names, fp32, opset)
        for mode in modes:
            candidate = Path(tmp) / f"model.{mode}.onnx"
            _quantize(fp32, candidate, per_channel=mode == "per_channel")
            measured[mode] = agreement(reference, onnx_logits(candidate, tokenizer, texts, names, max_length))
        best = max(modes, key=lambda m: (measured[m]["argmax_agreement"], -measured[m]["max_prob_diff"]))
        if measured[best]["argmax_agreement"] < MIN_ARGMAX_AGREEMENT:
            raise BundleError(
                f"int8 ONNX export refused: top-intent agreement with torch "
                f"{measured[best]['argmax_agreement']:.4f} < {MIN_ARGMAX_AGREEMENT} on {len(texts)} {source} "
                f"texts ({measured}); use --no-onnx"
            )
        shutil.move(str(Path(tmp) / f"model.{best}.onnx"), out_path)
    meta = {
        "inputs": names,
        "outputs": OUTPUTS,
        "opset": opset,
        "quantization": f"dynamic int8 (onnxruntime quantize_dynamic, QInt8 weights, {best})",
        "quantization_mode": best,
        "exporter": "torch.onnx.export(dynamo=False), LoRA merged",
        "agreement": {"texts": source, "bound": f"argmax agreement >= {MIN_ARGMAX_AGREEMENT}",
                      "chosen": best, **{m: measured[m] for m in modes}},
    }
    sample = {"texts": texts[:REFERENCE_TEXTS], "max_length": max_length,
              "logits": np.round(reference[:REFERENCE_TEXTS], 5).tolist()}
    return meta, sample


def verify_against_reference(path: Path, tokenizer: Any, names: list[str], sample: dict[str, Any]) -> dict:
    """Re-check a (re)built int8 graph against the torch logits stored at save time."""
    logits = onnx_logits(path, tokenizer, sample["texts"], names, int(sample["max_length"]))
    result = agreement(np.asarray(sample["logits"], dtype=np.float32), logits)
    if result["argmax_agreement"] < MIN_ARGMAX_AGREEMENT:
        raise BundleError(f"rebuilt int8 ONNX disagrees with the reference torch logits ({result}); "
                          "serve with backend='torch'")
    return result


def rebuild(merged: Any, tokenizer: Any, names: list[str], out_path: Path, *, mode: str,
            opset: int = ONNX_OPSET) -> Path:
    """Re-create the int8 graph of a bundle shipped without it (checked by the caller against the
    bundle's reference logits before serving)."""
    import os

    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "model.fp32.onnx"
        _export_fp32(merged, tokenizer, names, fp32, opset)
        _quantize(fp32, Path(tmp) / "model.int8.onnx", per_channel=mode == "per_channel")
        # same-directory temp file + rename: another process never sees a half-written graph
        staged = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
        shutil.copyfile(Path(tmp) / "model.int8.onnx", staged)
        os.replace(staged, out_path)
    return out_path
