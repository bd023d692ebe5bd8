"""The optimisation loop: any device via ``accelerate``, two learning rates, early stopping that can fire.

Why these choices (each measured in reports/classifier/RUNS.md):

* ``accelerate`` places the model on a GPU with mixed precision (bf16, else fp16) when one exists and
  on the CPU otherwise: the same command trains anywhere.
* The fresh head needs a larger learning rate than the pretrained encoder (or its LoRA adapters);
  biases and LayerNorm weights get no weight decay (decaying them only hurts).
* Validation is scored several times per epoch; training stops after ``patience`` evaluations
  without a better validation macro-F1 (ties broken by lower validation NLL) and the best weights
  are restored. The validation split is used for this choice only.
* Padding is dynamic per batch (``DataCollatorWithPadding``), batches are length-agnostic shuffles.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.metrics import f1_score
from sklearn.utils.class_weight import compute_class_weight
from tqdm.auto import tqdm
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase, get_linear_schedule_with_warmup

from src.classifier.metrics import negative_log_likelihood, softmax


@dataclass
class LoopConfig:
    """Optimisation knobs (CLI flags map 1:1)."""

    epochs: int = 5
    lr: float = 3e-4  # encoder weights (full) or LoRA adapters
    head_lr: float = 3e-3  # the freshly initialised linear head
    batch_size: int = 32
    max_length: int = 64
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    patience: int = 2  # validation evaluations without improvement before stopping
    evals_per_epoch: int = 2
    seed: int = 42
    class_weights: bool = False
    eval_batch_size: int = 128
    max_grad_norm: float = 1.0
    mixed_precision: str = "auto"  # auto: bf16/fp16 on a GPU, none on the CPU


@dataclass
class LoopResult:
    """What happened during training (for the report and the bundle's train_config)."""

    best_epoch: float
    best_val_macro_f1: float
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    stopped_early: bool = False
    device: str = "cpu"
    mixed_precision: str = "no"


def _no_decay(name: str) -> bool:
    low = name.lower()
    return low.endswith("bias") or "layernorm" in low or "layer_norm" in low or ".norm" in low


def parameter_groups(model: torch.nn.Module, cfg: LoopConfig) -> list[dict]:
    """AdamW groups: head vs the rest (two learning rates) x decay vs no decay (bias, LayerNorm)."""
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            groups.setdefault(("classifier" in name, _no_decay(name)), []).append(p)
    return [
        {"params": ps, "lr": cfg.head_lr if head else cfg.lr, "weight_decay": 0.0 if nd else cfg.weight_decay}
        for (head, nd), ps in sorted(groups.items())
    ]


def _mixed_precision(requested: str) -> str:
    if requested != "auto":
        return requested
    if not torch.cuda.is_available():
        return "no"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


class Batcher:
    """Tokenise once, pad per batch with ``DataCollatorWithPadding``."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int,
                 input_names: Sequence[str]) -> None:
        enc = tokenizer(list(texts), truncation=True, max_length=max_length, padding=False)
        self.features = [{k: enc[k][i] for k in input_names if k in enc} for i in range(len(texts))]
        self.collate = DataCollatorWithPadding(tokenizer, return_tensors="pt")

    def __len__(self) -> int:
        return len(self.features)

    def batch(self, idx: Sequence[int], device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        out = self.collate([self.features[i] for i in idx])
        return {k: v.to(device) for k, v in out.items()}

    def lengths(self) -> list[int]:
        return [len(f["input_ids"]) for f in self.features]


def _input_names(model: torch.nn.Module) -> list[str]:
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return list(getattr(inner, "input_names", ["input_ids", "attention_mask"]))


@torch.no_grad()
def predict_outputs(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    *,
    max_length: int = 64,
    batch_size: int = 128,
    progress: bool = False,
    device: torch.device | str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(logits, pooled embeddings) for ``texts``; length-sorted batches, original order returned."""
    was_training = model.training
    model.eval()
    device = device or next(model.parameters()).device
    data = Batcher(tokenizer, texts, max_length, _input_names(model))
    order = np.argsort(data.lengths(), kind="stable")
    logits: list[np.ndarray] = [None] * len(data)  # type: ignore[list-item]
    embeddings: list[np.ndarray] = [None] * len(data)  # type: ignore[list-item]
    for start in tqdm(range(0, len(order), batch_size), desc="predict", disable=not progress, leave=False):
        idx = order[start : start + batch_size]
        out = model(**data.batch(idx, device))
        lg, em = out.logits.float().cpu().numpy(), out.embeddings.float().cpu().numpy()
        for j, i in enumerate(idx):
            logits[i], embeddings[i] = lg[j], em[j]
    model.train(was_training)
    if not logits:
        return np.zeros((0, 0), dtype=np.float32), np.zeros((0, 0), dtype=np.float32)
    return np.stack(logits), np.stack(embeddings)


def _trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def _score_val(model, tokenizer, val_texts, val_targets, cfg: LoopConfig, device) -> dict[str, float]:
    logits, _ = predict_outputs(model, tokenizer, val_texts, max_length=cfg.max_length,
                                batch_size=cfg.eval_batch_size, device=device)
    pred = logits.argmax(axis=1)
    y = np.asarray(val_targets)
    return {
        "val_macro_f1": float(f1_score(y, pred, average="macro", zero_division=0)),
        "val_accuracy": float((pred == y).mean()),
        "val_nll": negative_log_likelihood(softmax(logits), list(y)),
    }


def fit(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    train_texts: Sequence[str],
    train_targets: Sequence[int],
    val_texts: Sequence[str],
    val_targets: Sequence[int],
    n_classes: int,
    cfg: LoopConfig,
    *,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> LoopResult:
    """Train in place; afterwards ``model`` (on the CPU) holds the best-on-validation weights."""
    from accelerate import Accelerator

    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    precision = _mixed_precision(cfg.mixed_precision)
    accelerator = Accelerator(mixed_precision=precision, cpu=not torch.cuda.is_available())
    data = Batcher(tokenizer, train_texts, cfg.max_length, _input_names(model))
    y = torch.tensor(list(train_targets), dtype=torch.long)
    steps_per_epoch = math.ceil(len(data) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    optim = torch.optim.AdamW(parameter_groups(model, cfg))
    sched = get_linear_schedule_with_warmup(optim, int(cfg.warmup_ratio * total), total)
    model, optim, sched = accelerator.prepare(model, optim, sched)
    device = accelerator.device
    weight = None
    if cfg.class_weights:
        w = compute_class_weight("balanced", classes=np.arange(n_classes), y=np.asarray(train_targets))
        weight = torch.tensor(w, dtype=torch.float32, device=device)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight)
    # evaluation points inside each epoch, the last one at its end (no two evaluations a step apart)
    per_epoch = max(1, min(cfg.evals_per_epoch, steps_per_epoch))
    eval_steps = {round(k * steps_per_epoch / per_epoch) for k in range(1, per_epoch + 1)}

    result = LoopResult(best_epoch=0, best_val_macro_f1=-1.0, device=str(device), mixed_precision=precision)
    best_key = (-1.0, 0.0)
    best_state = _trainable_state(model)
    bad_evals, step, stop = 0, 0, False
    ema: float | None = None
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        perm = torch.randperm(len(data), generator=gen).tolist()
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch}/{cfg.epochs}", disable=not progress)
        for i in bar:
            idx = perm[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            with accelerator.autocast():
                logits = model(**data.batch(idx, device)).logits
            loss = loss_fn(logits.float(), y[idx].to(device))
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optim.step()
            sched.step()
            optim.zero_grad(set_to_none=True)
            step += 1
            ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
            bar.set_postfix({"loss": f"{ema:.4f}", "best_val_f1": f"{max(best_key[0], 0):.4f}"})
            if i + 1 not in eval_steps:
                continue
            scores = _score_val(model, tokenizer, val_texts, val_targets, cfg, device)
            at = round(epoch - 1 + (i + 1) / steps_per_epoch, 2)
            result.history.append({"epoch": at, "step": step, "train_loss_ema": ema, **scores,
                                   "seconds": round(time.perf_counter() - start, 1)})
            log(f"epoch {at:.2f}: loss {ema:.4f}  val macro-F1 {scores['val_macro_f1']:.4f}  "
                f"val acc {scores['val_accuracy']:.4f}  val NLL {scores['val_nll']:.4f}")
            key = (scores["val_macro_f1"], -scores["val_nll"])
            if key > best_key:
                best_key, bad_evals = key, 0
                result.best_val_macro_f1, result.best_epoch = scores["val_macro_f1"], at
                best_state = _trainable_state(model)
            else:
                bad_evals += 1
                if bad_evals >= cfg.patience:
                    log(f"early stopping at epoch {at:.2f}: no better validation score in {bad_evals} "
                        "evaluations")
                    result.stopped_early = stop = True
                    break
        bar.close()
        if stop:
            break
    model = accelerator.unwrap_model(model)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n in best_state:
                p.copy_(best_state[n])
    model.to("cpu").eval()
    accelerator.free_memory()
    result.seconds = time.perf_counter() - start
    return result
