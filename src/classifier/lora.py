"""Build a LoRA-wrapped sequence classifier on any supported encoder.

Why the extra care about module names: BERT-style models (MiniLM) classify from ``pooler`` (a
``dense`` layer on [CLS]); a plain ``dense`` LoRA target would adapt it with a low-rank patch
while the [CLS] pooling of a sentence-transformers checkpoint was never trained for the task. So
the pooler, when the architecture has one, is trained fully and saved with the head through
``modules_to_save`` (PEFT then excludes it from LoRA targets), and LoRA adapts the encoder layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from peft import LoraConfig, PeftModel, TaskType, get_peft_model
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedTokenizerBase,
)

from src.classifier.base_models import lora_targets, resolve_base_model


@dataclass
class LoraSpec:
    """LoRA hyper-parameters; empty target/module lists mean "architecture defaults"."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.1
    target_modules: tuple[str, ...] = ()
    modules_to_save: tuple[str, ...] = ()


@dataclass
class BuiltModel:
    """The PEFT model plus what was actually chosen (recorded in the bundle's train_config)."""

    model: PeftModel
    tokenizer: PreTrainedTokenizerBase
    base_path: str
    model_type: str
    target_modules: list[str]
    modules_to_save: list[str]
    n_trainable: int
    n_total: int


def _has_pooler(model: torch.nn.Module) -> bool:
    return any(
        name.split(".")[-1] == "pooler" and any(True for _ in mod.parameters())
        for name, mod in model.named_modules()
    )


def build_lora_model(base_model: str, labels: list[str], spec: LoraSpec) -> BuiltModel:
    """Load ``base_model`` (alias/path/hub id) with a fresh ``len(labels)``-way head and wrap it in LoRA.

    Raises ValueError when the chosen target modules match nothing in the model.
    """
    path = resolve_base_model(base_model)
    config = AutoConfig.from_pretrained(path)
    model_type = config.model_type
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(
        path,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={lab: i for i, lab in enumerate(labels)},
    )
    if spec.target_modules:
        targets = list(spec.target_modules)
        to_save = list(spec.modules_to_save) or list(lora_targets(model_type).modules_to_save)
    else:
        defaults = lora_targets(model_type)
        targets = list(defaults.target_modules)
        to_save = list(spec.modules_to_save or defaults.modules_to_save)
        if _has_pooler(model) and "pooler" not in to_save:
            to_save.append("pooler")
    linear_names = {n.split(".")[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    if not set(targets) & linear_names:
        raise ValueError(
            f"--target-modules {targets} match no Linear layer of {model_type!r}; "
            f"available names: {sorted(linear_names)}"
        )
    lora = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=targets,
        modules_to_save=list(to_save),  # PEFT appends its own defaults in place
    )
    peft_model = get_peft_model(model, lora)
    n_train = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    n_total = sum(p.numel() for p in peft_model.parameters())
    return BuiltModel(peft_model, tokenizer, path, model_type, targets, to_save, n_train, n_total)
