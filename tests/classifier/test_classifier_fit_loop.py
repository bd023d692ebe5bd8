"""The optimisation loop and the out-of-distribution maths, on a tiny random encoder (seconds of CPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from src.classifier.fit_loop import LoopConfig, fit, parameter_groups
from src.classifier.model import ModelSpec, build_classifier
from src.classifier.ood import GaussianDensity, energy, fpr_at_tpr, ood_scores, threshold_at_tpr


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import AutoTokenizer, BertConfig, BertModel

    from src.classifier.base_models import resolve_base_model

    path = tmp_path_factory.mktemp("tiny_bert")
    tokenizer = AutoTokenizer.from_pretrained(resolve_base_model("minilm"))
    BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1,
                         num_attention_heads=2, intermediate_size=32)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_head_gets_its_own_learning_rate_and_no_decay_on_bias_or_layernorm(tiny_bert: Path) -> None:
    for method in ("lora", "full"):
        built = build_classifier(str(tiny_bert), ["a", "b"], ModelSpec(method=method, r=2, alpha=4))
        cfg = LoopConfig(lr=1e-4, head_lr=2e-3, weight_decay=0.05)
        groups = parameter_groups(built.model, cfg)
        names = {id(p): n for n, p in built.model.named_parameters()}
        for g in groups:
            for p in g["params"]:
                name = names[id(p)]
                assert g["lr"] == (2e-3 if "classifier" in name else 1e-4), name
                decays = not (name.endswith("bias") or "LayerNorm" in name)
                assert g["weight_decay"] == (0.05 if decays else 0.0), name
        assert sum(len(g["params"]) for g in groups) == sum(p.requires_grad for p in built.model.parameters())


def test_early_stopping_triggers_with_default_settings(tiny_bert: Path) -> None:
    # nothing can improve (learning rates 0): the default patience must stop well before 5 epochs
    built = build_classifier(str(tiny_bert), ["a", "b"], ModelSpec(r=2, alpha=4))
    texts = [f"text number {i}" for i in range(40)]
    targets = [i % 2 for i in range(40)]
    cfg = LoopConfig(lr=0.0, head_lr=0.0, batch_size=8)
    assert cfg.epochs == 5 and cfg.patience == 2 and cfg.evals_per_epoch == 2
    res = fit(built.model, built.tokenizer, texts, targets, texts[:10], targets[:10], 2, cfg,
              progress=False, log=lambda _m: None)
    assert res.stopped_early and [h["epoch"] for h in res.history] == [0.4, 1.0, 1.4]  # 5 steps/epoch
    assert res.device == "cpu" and res.mixed_precision == "no"


def test_mean_pooling_ignores_padding(tiny_bert: Path) -> None:
    import torch

    built = build_classifier(str(tiny_bert), ["a", "b"], ModelSpec(method="full"))
    model = built.model.eval()
    one = built.tokenizer(["hello world"], return_tensors="pt")
    padded = built.tokenizer(["hello world", "a much longer second text to force padding"], padding=True,
                             return_tensors="pt")
    with torch.no_grad():
        alone = model(**one).embeddings[0]
        batched = model(**padded).embeddings[0]
    assert torch.allclose(alone, batched, atol=1e-5)


def test_mahalanobis_matches_the_definition_and_flags_far_points() -> None:
    rng = np.random.default_rng(0)
    centres = np.eye(8)[:3] * 5
    y = rng.integers(0, 3, 600)
    x = centres[y] + rng.normal(0, 0.3, (600, 8))
    density = GaussianDensity.fit(x, y, 3)
    z = x[:5] / np.linalg.norm(x[:5], axis=1, keepdims=True)
    brute = np.array([[(v - m) @ density.precision @ (v - m) for m in density.means] for v in z]).min(1)
    assert np.allclose(density.mahalanobis(x[:5]), brute)
    far = rng.normal(0, 1, (200, 8))
    scores_in, scores_far = density.mahalanobis(x[:200]), density.mahalanobis(far)
    assert fpr_at_tpr(scores_in, scores_far) < 0.1
    t = threshold_at_tpr(scores_in, 0.95)
    assert (scores_in <= t).mean() >= 0.95


def test_energy_and_score_names() -> None:
    logits = np.array([[10.0, 0.0], [0.1, 0.0]])
    e = energy(logits)
    assert e[0] < e[1]  # a confident row has lower energy
    assert e[0] == pytest.approx(-np.log(np.exp(10) + 1))
    scores = ood_scores(logits, None, 1.0, None)
    assert set(scores) == {"max_softmax", "energy"} and scores["max_softmax"][0] < scores["max_softmax"][1]
