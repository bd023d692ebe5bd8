"""Classifier test fixtures.

``tiny_bundle`` is a real bundle produced by the real training pipeline
(``src.classifier.train.train``: data cleaning, split manifest, MiniLM + LoRA, temperature
scaling, ``save_bundle`` with the int8 ONNX export, eval pack) on a small synthetic 4-intent set,
1 epoch, 1 thread: seconds of CPU, built once per session. Serving tests may reuse it (copy the
directory before mutating it). It needs no ../shared/data, so it runs in a user's clone too.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd
import pytest

CORES: dict[str, list[str]] = {
    "get_refund": ["get a refund for my order", "have my money back", "get a refund of the charge",
                   "be reimbursed for the purchase", "refund my payment"],
    "track_order": ["track my package", "know where my parcel is", "see the delivery status",
                    "find my shipment", "check when my order arrives"],
    "recover_password": ["reset my password", "recover my account password",
                         "log in after forgetting my password", "change my forgotten password",
                         "unlock my login"],
    "cancel_subscription": ["cancel my subscription", "stop my monthly plan", "end my membership",
                            "unsubscribe from the plan", "terminate my subscription"],
}
PREFIXES = ["i want to", "please help me", "how do i", "can you help me", "i need to",
            "could you tell me how to", "i would like to", "is it possible to"]
SUFFIXES = ["", " for order {{Order Number}}"]


def synthetic_intents() -> pd.DataFrame:
    """80 rows per intent (5 phrasings x 8 prefixes x 2 suffixes), deterministic."""
    rows = [
        {"text": f"{p} {c}{s}", "label": label}
        for label, cores in CORES.items()
        for p, c, s in itertools.product(PREFIXES, cores, SUFFIXES)
    ]
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def synthetic_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("synthetic") / "intents.csv"
    synthetic_intents().to_csv(path, index=False)
    return path


def tiny_train_config(data: Path, out: Path, **overrides):
    """A CI-sized TrainConfig: 1 epoch, small batches, 1 thread, no progress bar."""
    from src.classifier.train import TrainConfig

    cfg = TrainConfig(data=[str(data)], out=str(out), base_model="minilm", epochs=1, batch_size=16,
                      max_length=32, threads=1, progress=False, seed=7)
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory, synthetic_csv: Path) -> Path:
    """Directory of a bundle trained by ``src.classifier.train`` (see module docstring)."""
    from src.classifier.train import train

    out = tmp_path_factory.mktemp("tiny_bundle") / "bundle"
    train(tiny_train_config(synthetic_csv, out), log=lambda _msg: None)
    return out


@pytest.fixture(scope="session")
def tiny_config():
    """The :func:`tiny_train_config` factory, for tests that train their own variant."""
    return tiny_train_config
