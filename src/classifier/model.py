"""The classifier's architecture: a sentence encoder, mean pooling, a linear head (+ LoRA or full tuning).

Why mean pooling and not ``AutoModelForSequenceClassification``: that head reads the [CLS] token
through BERT's ``pooler`` (a dense + tanh trained for next-sentence prediction), but both offline
bases (all-MiniLM-L6-v2, all-mpnet-base-v2) were trained as sentence encoders with *mean pooling*
over tokens. Reading them the way they were trained starts fine-tuning from good sentence
embeddings, and the same pooled embedding serves the out-of-distribution score
(:mod:`src.classifier.ood`).

Two ways to train it (``--method``): LoRA adapters on the encoder's linear layers (small bundle: the
adapter + head are a few MB, so a bundle can ship in the repository) or full fine-tuning (every
weight; larger bundle, measured better on hard data in NOTES.md).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedTokenizerBase
from transformers.utils import ModelOutput

from src.classifier.base_models import lora_targets, resolve_base_model

ARCHITECTURE = "mean-pooling-linear-v1"
METHODS = ("lora", "full")


@dataclass
class ClassifierOutput(ModelOutput):
    """``logits`` [batch, labels] and the pooled sentence ``embeddings`` [batch, hidden]."""

    logits: torch.Tensor | None = None
    embeddings: torch.Tensor | None = None


class MeanPoolingClassifier(nn.Module):
    """encoder -> masked mean over tokens -> dropout -> linear head."""

    def __init__(self, encoder: nn.Module, labels: list[str], head_dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(head_dropout)
        hidden = getattr(encoder.config, "hidden_size", None) or encoder.config.dim
        self.classifier = nn.Linear(hidden, len(labels))
        self.config = encoder.config
        self.config.num_labels = len(labels)
        self.config.id2label = dict(enumerate(labels))
        self.config.label2id = {lab: i for i, lab in enumerate(labels)}
        accepted = set(inspect.signature(encoder.forward).parameters)
        self.input_names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in accepted]

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        **_: object,
    ) -> ClassifierOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None and "token_type_ids" in self.input_names:
            kwargs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**kwargs).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return ClassifierOutput(logits=self.classifier(self.dropout(pooled)), embeddings=pooled)


@dataclass
class ModelSpec:
    """How to adapt the encoder; empty ``target_modules`` means "architecture defaults"."""

    method: str = "lora"
    r: int = 16
    alpha: int = 32
    dropout: float = 0.1
    target_modules: tuple[str, ...] = ()
    head_dropout: float = 0.1


@dataclass
class BuiltModel:
    """The trainable model plus what was actually chosen (recorded in the bundle's train_config)."""

    model: nn.Module  # PeftModel around MeanPoolingClassifier (lora) or the classifier itself (full)
    tokenizer: PreTrainedTokenizerBase
    base_path: str
    model_type: str
    method: str
    target_modules: list[str]
    n_trainable: int
    n_total: int


def load_encoder(path: str) -> nn.Module:
    """The bare encoder (no task head), quietly: the unused-weights report is expected."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        return AutoModel.from_pretrained(path)
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def encoder_from_config(config_dict: dict) -> nn.Module:
    """An encoder with the recorded architecture and random weights (a full bundle loads its own)."""
    config = AutoConfig.for_model(**config_dict)
    return AutoModel.from_config(config)


def lora_module_names(model: MeanPoolingClassifier, short_names: list[str]) -> list[str]:
    """Full names of the encoder's Linear layers called ``short_names`` (the unused pooler excluded)."""
    return [
        f"encoder.{name}"
        for name, mod in model.encoder.named_modules()
        if isinstance(mod, nn.Linear) and name.split(".")[-1] in short_names and "pooler" not in name
    ]


def build_classifier(base_model: str, labels: list[str], spec: ModelSpec) -> BuiltModel:
    """Load ``base_model`` (alias/path/hub id), add a fresh ``len(labels)``-way head, wrap for training.

    Raises ValueError for an unknown method or LoRA targets that match nothing.
    """
    if spec.method not in METHODS:
        raise ValueError(f"--method must be one of {METHODS}, not {spec.method!r}")
    path = resolve_base_model(base_model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = MeanPoolingClassifier(load_encoder(path), labels, spec.head_dropout)
    model_type = model.config.model_type
    targets: list[str] = []
    wrapped: nn.Module = model
    if spec.method == "lora":
        from peft import LoraConfig, get_peft_model

        targets = list(spec.target_modules) or list(lora_targets(model_type).target_modules)
        names = lora_module_names(model, targets)
        if not names:
            encoder_modules = model.encoder.named_modules()
            linear = sorted({n.split(".")[-1] for n, m in encoder_modules if isinstance(m, nn.Linear)})
            raise ValueError(f"--target-modules {targets} match no Linear layer of {model_type!r}; "
                             f"available names: {linear}")
        config = LoraConfig(r=spec.r, lora_alpha=spec.alpha, lora_dropout=spec.dropout,
                            target_modules=names, modules_to_save=["classifier"])
        wrapped = get_peft_model(model, config)
    n_train = sum(p.numel() for p in wrapped.parameters() if p.requires_grad)
    n_total = sum(p.numel() for p in wrapped.parameters())
    return BuiltModel(wrapped, tokenizer, path, model_type, spec.method, targets, n_train, n_total)


def unwrap(model: nn.Module) -> MeanPoolingClassifier:
    """The MeanPoolingClassifier inside a PEFT wrapper (or the model itself)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    if not isinstance(inner, MeanPoolingClassifier):
        raise TypeError(f"expected a MeanPoolingClassifier, got {type(inner).__name__}")
    return inner


def merged_copy(model: nn.Module) -> MeanPoolingClassifier:
    """A CPU, eval-mode copy with LoRA merged into the weights (for export and reference logits)."""
    import copy

    clone = copy.deepcopy(model)
    if hasattr(clone, "merge_and_unload"):
        clone = clone.merge_and_unload()
    return unwrap(clone).to("cpu").eval()
