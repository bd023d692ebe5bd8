"""Graph test fixtures: a tiny real classifier bundle trained by the real pipeline (session-scoped)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd
import pytest

GRAPH_CORES: dict[str, list[str]] = {
    "get_refund": ["get a refund for my order", "have my money back", "be reimbursed for the purchase",
                   "refund my payment", "get a refund of the charge"],
    "track_order": ["track my package", "know where my parcel is", "see the delivery status",
                    "find my shipment", "check when my order arrives"],
    "recover_password": ["reset my password", "recover my account password", "change my forgotten password",
                         "log in after forgetting my password", "unlock my login"],
    "cancel_order": ["cancel my order", "cancel the purchase i made", "stop my order from shipping",
                     "call off my order", "cancel order {{Order Number}}"],
}
PREFIXES = ["i want to", "please help me", "how do i", "can you help me", "i need to",
            "could you tell me how to", "i would like to", "is it possible to"]
SUFFIXES = ["", " today"]


@pytest.fixture(scope="session")
def graph_labelled_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = [
        {"text": f"{p} {c}{s}", "label": label}
        for label, cores in GRAPH_CORES.items()
        for p, c, s in itertools.product(PREFIXES, cores, SUFFIXES)
    ]
    path = tmp_path_factory.mktemp("graph_data") / "intents.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def graph_tiny_bundle(tmp_path_factory: pytest.TempPathFactory, graph_labelled_csv: Path) -> Path:
    """A real bundle (MiniLM + LoRA, 1 epoch, 1 thread, int8 ONNX) for the 4 intents above."""
    from src.classifier.train import TrainConfig, train

    out = tmp_path_factory.mktemp("graph_bundle") / "bundle"
    cfg = TrainConfig(data=[str(graph_labelled_csv)], out=str(out), base_model="minilm", epochs=1,
                      batch_size=16, max_length=32, threads=1, progress=False, seed=7, lr=5e-3,
                      min_macro_f1=0.0, min_accuracy=0.0, min_per_class_f1=0.0)
    train(cfg, log=lambda _msg: None)
    return out
