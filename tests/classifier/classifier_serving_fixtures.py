"""A tiny but really trained bundle for the serving tests (built once per test session).

MiniLM (offline package) + mean pooling + LoRA, ~30 optimisation steps on a few short texts of 3
clearly distinct intents: enough for confident, stable predictions so torch-vs-ONNX agreement is a
meaningful check, and only seconds of CPU. Independent of the training CLI so serving tests do not
depend on it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

TRAIN: dict[str, list[str]] = {
    "refund": [
        "i want my money back",
        "please refund my order",
        "how do i get a refund",
        "refund the payment for my purchase",
        "i was charged and want a refund",
        "give me my money back now",
        "can i request a reimbursement",
        "return the money to my card",
    ],
    "shipping": [
        "where is my package",
        "my delivery has not arrived",
        "track my shipment",
        "when will my parcel be delivered",
        "the courier lost my package",
        "what is the shipping status of my order",
        "delivery is late",
        "how long does shipping take",
    ],
    "password": [
        "i forgot my password",
        "reset my password",
        "cannot log in to my account",
        "my login does not work",
        "help me recover my password",
        "account locked after wrong password",
        "change my account password",
        "i can't sign in",
    ],
}
HELD_OUT: dict[str, list[str]] = {
    "refund": ["i would like a refund for this", "send my money back please"],
    "shipping": ["has my parcel shipped yet", "where is my delivery"],
    "password": ["password reset link please", "i am unable to log into my account"],
}

_CACHE: dict[str, Path] = {}


def _manifest(rows: list[tuple[str, str]]) -> dict:
    entries = [
        {"id": str(i), "sha256": hashlib.sha256(f"{t}\t{lab}".encode()).hexdigest()}
        for i, (t, lab) in enumerate(rows)
    ]
    return {
        "seed": 0,
        "source": "tests/classifier/classifier_serving_fixtures.py",
        "data_hash": hashlib.sha256(repr(rows).encode()).hexdigest(),
        "train": entries,
        "val": [],
        "calibration": [],
        "test": [],
    }


def build_tiny_bundle(out_dir: Path, *, export_onnx: bool = True, steps: int = 30) -> Path:
    """Train MiniLM + mean pooling + LoRA for ``steps`` full-batch steps; save a bundle into ``out_dir``."""
    import torch

    from src.classifier.bundle import save_bundle
    from src.classifier.model import ModelSpec, build_classifier
    from src.classifier.ood import GaussianDensity

    torch.manual_seed(0)
    torch.set_num_threads(1)  # under CPU contention 2 threads is ~10x slower per step
    labels = list(TRAIN)
    rows = [(t, lab) for lab in labels for t in TRAIN[lab]]
    built = build_classifier("minilm", labels, ModelSpec(r=8, alpha=16, dropout=0.0,
                                                         target_modules=("query", "value"), head_dropout=0.0))
    model, tokenizer = built.model, built.tokenizer
    enc = tokenizer([t for t, _ in rows], padding=True, truncation=True, max_length=32, return_tensors="pt")
    target = torch.tensor([labels.index(lab) for _, lab in rows])
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    model.train()
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(**enc).logits, target)
        optim.zero_grad()
        loss.backward()
        optim.step()
    model.eval()
    with torch.no_grad():
        emb = model(**enc).embeddings.numpy()
    held_out = [t for v in HELD_OUT.values() for t in v]
    return save_bundle(
        out_dir,
        model=model,
        tokenizer=tokenizer,
        labels=labels,
        temperature=1.5,
        base_model="minilm",
        train_config={
            "max_length": 32,
            "lora_r": 8,
            "lora_alpha": 16,
            "lora_dropout": 0.0,
            "target_modules": ["query", "value"],
            "lr": 5e-3,
            "epochs": 1,
            "seed": 0,
            "steps": steps,
            "final_loss": float(loss.detach()),
        },
        data_info={"source": "tiny in-test data", "n_rows": len(rows)},
        split_manifest=_manifest(rows),
        export_onnx=export_onnx,
        ood=GaussianDensity.fit(emb, target.numpy(), len(labels)),
        verify_texts=held_out,
    )


def tiny_bundle_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's tiny bundle (built on first use). Copy it before mutating."""
    if "bundle" not in _CACHE:
        _CACHE["bundle"] = build_tiny_bundle(tmp_path_factory.mktemp("tiny_serving_bundle"))
    return _CACHE["bundle"]


def copy_bundle(src: Path, dest: Path) -> Path:
    """A private copy of a bundle a test may mutate."""
    import shutil

    return Path(shutil.copytree(src, dest))


def refinalise(bundle_dir: Path) -> None:
    """Re-record hashes + version after a deliberate edit, so only the *semantic* check can fail."""
    import json

    from src.classifier.bundle import BUNDLE_FILE, _finalise

    meta = json.loads((bundle_dir / BUNDLE_FILE).read_text())
    _finalise(bundle_dir, meta, meta["files"].keys())
