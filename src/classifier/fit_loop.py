"""The training loop: dynamic padding, linear warm-up/decay, best-on-val-macro-F1 early stopping.

A hand-written loop rather than ``transformers.Trainer`` so the progress bar shows exactly what an
operator needs (live loss, val macro-F1), the best checkpoint is kept in memory (only the small
trainable LoRA + head tensors), and nothing is written to disk behind the user's back.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.metrics import f1_score
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase, get_linear_schedule_with_warmup


@dataclass
class LoopConfig:
    """Optimisation knobs (CLI flags map 1:1)."""

    epochs: int = 3
    lr: float = 1e-3
    batch_size: int = 32
    max_length: int = 64
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    patience: int = 2
    seed: int = 42
    class_weights: bool = False
    eval_batch_size: int = 128
    max_grad_norm: float = 1.0


@dataclass
class LoopResult:
    """What happened during training (for the report and the bundle's train_config)."""

    best_epoch: int
    best_val_macro_f1: float
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    stopped_early: bool = False


def encode(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids per text, truncated; no padding (padding is per batch)."""
    enc = tokenizer(list(texts), truncation=True, max_length=max_length, padding=False)
    return enc["input_ids"]


def collate(ids: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Dynamic padding to the longest sequence in the batch."""
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, x in enumerate(ids):
        input_ids[i, : len(x)] = torch.tensor(x, dtype=torch.long)
        mask[i, : len(x)] = 1
    return {"input_ids": input_ids, "attention_mask": mask}


def _pad_id(tokenizer: PreTrainedTokenizerBase) -> int:
    return int(tokenizer.pad_token_id) if tokenizer.pad_token_id is not None else 0


@torch.no_grad()
def predict_logits(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    *,
    max_length: int = 64,
    batch_size: int = 128,
    progress: bool = False,
) -> np.ndarray:
    """Uncalibrated logits for ``texts`` (length-sorted batches for speed, original order returned)."""
    was_training = model.training
    model.eval()
    ids = encode(tokenizer, texts, max_length)
    order = np.argsort([len(x) for x in ids], kind="stable")
    out: list[np.ndarray] = [None] * len(ids)  # type: ignore[list-item]
    pad = _pad_id(tokenizer)
    batches = range(0, len(order), batch_size)
    for start in tqdm(batches, desc="predict", disable=not progress, leave=False):
        idx = order[start : start + batch_size]
        logits = model(**collate([ids[i] for i in idx], pad)).logits.float().cpu().numpy()
        for j, i in enumerate(idx):
            out[i] = logits[j]
    model.train(was_training)
    return np.stack(out) if out else np.zeros((0, 0), dtype=np.float32)


def balanced_class_weights(targets: Sequence[int], n_classes: int) -> torch.Tensor:
    """``n / (K * count)`` per class (sklearn's "balanced"); absent classes get weight 1."""
    counts = np.bincount(np.asarray(targets, dtype=int), minlength=n_classes).astype(float)
    w = np.where(counts > 0, len(targets) / (n_classes * np.maximum(counts, 1)), 1.0)
    return torch.tensor(w, dtype=torch.float32)


def _trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


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
    """Train in place; afterwards ``model`` holds the best-on-validation trainable weights."""
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    ids = encode(tokenizer, train_texts, cfg.max_length)
    y = torch.tensor(list(train_targets), dtype=torch.long)
    pad = _pad_id(tokenizer)
    steps_per_epoch = math.ceil(len(ids) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = get_linear_schedule_with_warmup(optim, int(cfg.warmup_ratio * total), total)
    weight = balanced_class_weights(train_targets, n_classes) if cfg.class_weights else None
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight)

    result = LoopResult(best_epoch=0, best_val_macro_f1=-1.0)
    best_state = _trainable_state(model)
    bad_epochs = 0
    val_f1: float | None = None
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        perm = torch.randperm(len(ids), generator=gen).tolist()
        ema: float | None = None
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch}/{cfg.epochs}", disable=not progress)
        for step in bar:
            idx = perm[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            batch = collate([ids[i] for i in idx], pad)
            logits = model(**batch).logits
            loss = loss_fn(logits.float(), y[idx])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            optim.step()
            sched.step()
            optim.zero_grad(set_to_none=True)
            ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
            post = {"loss": f"{ema:.4f}"}
            if val_f1 is not None:
                post["val_f1"] = f"{val_f1:.4f}"
            bar.set_postfix(post)
        bar.close()
        val_logits = predict_logits(model, tokenizer, val_texts, max_length=cfg.max_length,
                                    batch_size=cfg.eval_batch_size)
        val_pred = val_logits.argmax(axis=1)
        val_f1 = float(f1_score(list(val_targets), val_pred, average="macro", zero_division=0))
        val_acc = float((val_pred == np.asarray(val_targets)).mean())
        result.history.append({"epoch": epoch, "train_loss_ema": ema, "val_macro_f1": val_f1,
                               "val_accuracy": val_acc, "seconds": round(time.perf_counter() - start, 1)})
        log(f"epoch {epoch}: loss {ema:.4f}  val macro-F1 {val_f1:.4f}  val acc {val_acc:.4f}")
        if val_f1 > result.best_val_macro_f1:
            result.best_val_macro_f1, result.best_epoch = val_f1, epoch
            best_state = _trainable_state(model)
            bad_epochs = 0
        else:
            bad_epochs += 1
            if bad_epochs >= cfg.patience and epoch < cfg.epochs:
                log(f"early stopping: no val macro-F1 improvement for {bad_epochs} epochs")
                result.stopped_early = True
                break
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n in best_state:
                p.copy_(best_state[n])
    model.eval()
    result.seconds = time.perf_counter() - start
    return result
