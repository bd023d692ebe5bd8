"""ONNX Runtime backend for the sentence embedder: same vectors, ~2-3x less CPU per query.

A sentence-transformers model made of Transformer + mean/CLS Pooling (+ Normalize), like
all-MiniLM-L6-v2, is exported once to ``<models>/encoders/onnx/<name>.onnx`` (fp32, no
quantisation, so vectors match the torch backend and existing collections stay valid). The
export is checked against torch on probe sentences; anything else (extra Dense layers, other
pooling, a failed check) raises :class:`UnsupportedForOnnx` and the caller uses torch.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import numpy as np

from src.classifier.base_models import resolve_base_model

PROBES = ["where is my refund for order 123?", "I want to change the shipping address of my parcel"]
SUPPORTED_MODULES = {
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
}


class UnsupportedForOnnx(RuntimeError):
    """This model cannot be served by the ONNX backend (use torch)."""


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _pipeline_config(model_dir: Path) -> tuple[str, int]:
    """(pooling mode, max_seq_length) from the sentence-transformers files, or UnsupportedForOnnx."""
    modules = (
        json.loads((model_dir / "modules.json").read_text()) if (model_dir / "modules.json").exists() else []
    )
    kinds = {m.get("type", "") for m in modules}
    if not modules or not kinds <= SUPPORTED_MODULES:
        raise UnsupportedForOnnx(f"modules {sorted(kinds)} are not Transformer+Pooling(+Normalize)")
    pooling_path = next((m["path"] for m in modules if m["type"].endswith("Pooling")), "1_Pooling")
    pooling = _read_json(model_dir / pooling_path / "config.json")
    if pooling.get("pooling_mode_mean_tokens"):
        mode = "mean"
    elif pooling.get("pooling_mode_cls_token"):
        mode = "cls"
    else:
        raise UnsupportedForOnnx(f"pooling {pooling} is not mean or CLS")
    max_len = int(_read_json(model_dir / "sentence_bert_config.json").get("max_seq_length", 256))
    return mode, max_len


def _export(model_dir: Path, target: Path) -> None:
    """Export the bare transformer (last_hidden_state) with dynamic batch/sequence axes."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    class _Hidden(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001 - traced
            out = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModel.from_pretrained(str(model_dir)).eval()
    sample = tokenizer(PROBES, return_tensors="pt", padding=True)
    if "token_type_ids" not in sample:
        raise UnsupportedForOnnx("tokenizer has no token_type_ids")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        tmp_file = Path(tmp) / target.name
        with torch.no_grad():
            torch.onnx.export(
                _Hidden(model),
                tuple(sample[n] for n in names),
                str(tmp_file),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes={n: {0: "batch", 1: "seq"} for n in [*names, "last_hidden_state"]},
                opset_version=17,
                do_constant_folding=True,
                dynamo=False,
            )
        tmp_file.replace(target)  # atomic: a concurrent reader never sees half a file


class OnnxSentenceEmbedder:
    """Tokenizer + ONNX transformer + pooling + L2 normalisation in numpy."""

    def __init__(self, name: str, model_id: str, cache_dir: Path, threads: int) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        model_dir = Path(resolve_base_model(name))
        if not model_dir.is_dir():
            raise UnsupportedForOnnx("ONNX backend needs local weights (an offline alias or a folder)")
        self._pooling, self._max_len = _pipeline_config(model_dir)
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model_id)
        path = cache_dir / f"{slug}.onnx"
        self.exported = not path.exists()
        if self.exported:
            _export(model_dir, path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        # No busy-waiting between ops: on a shared CPU spinning threads steal cycles from others.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.model_id = model_id
        self.path = path
        self.dimension = int(self._session.get_outputs()[0].shape[-1] or self.encode(PROBES[:1]).shape[1])

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Embed ``texts`` -> unit vectors (same as the torch backend up to float rounding)."""
        chunks = []
        for i in range(0, len(texts), batch_size):
            enc = self._tokenizer(
                list(texts[i : i + batch_size]),
                padding=True,
                truncation=True,
                max_length=self._max_len,
                return_tensors="np",
            )
            feeds = {n: enc[n].astype(np.int64) for n in ("input_ids", "attention_mask", "token_type_ids")}
            hidden = self._session.run(None, feeds)[0]
            if self._pooling == "cls":
                pooled = hidden[:, 0]
            else:
                mask = enc["attention_mask"][..., None].astype(np.float32)
                pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
            chunks.append(pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None))
        if not chunks:
            return np.zeros((0, getattr(self, "dimension", 0)), dtype=np.float32)
        return np.concatenate(chunks).astype(np.float32)
