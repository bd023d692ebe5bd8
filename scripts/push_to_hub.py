#!/usr/bin/env python
"""Upload a classifier bundle's adapter, model card, tokenizer and label map to the Hugging Face Hub.

    python scripts/push_to_hub.py --repo-id you/triage-intent [--model DIR] [--private] [--include-onnx]
    python scripts/push_to_hub.py --repo-id you/triage-intent --dry-run     # lists files, works offline

The token comes from Settings (``HF_TOKEN`` / ``TRIAGE_HF_TOKEN``); without one the script refuses
before touching the network (DESIGN invariant 4: no network call unless configured). The bundle is
verified first, so a tampered or half-written bundle is never published. ``MODEL_CARD.md`` is
uploaded as the repo's ``README.md`` (where the Hub reads a model card).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from src.classifier.bundle import (  # noqa: E402
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    BUNDLE_FILE,
    CALIBRATION_FILE,
    LABELS_FILE,
    ONNX_FILE,
    THRESHOLDS_FILE,
    load_bundle_meta,
)
from src.classifier.types import BundleError  # noqa: E402

CARD = "MODEL_CARD.md"


def upload_plan(bundle_dir: Path, meta: dict, *, include_onnx: bool = False) -> list[tuple[Path, str]]:
    """(local file, path in the hub repo) pairs: adapter, card, tokenizer, labels and their metadata."""
    parts = [ADAPTER_CONFIG, ADAPTER_WEIGHTS, LABELS_FILE, CALIBRATION_FILE, THRESHOLDS_FILE, BUNDLE_FILE]
    tokenizer = sorted(p for p in meta["files"] if p.startswith("tokenizer") or p in ("vocab.txt",))
    tokenizer += [p for p in ("special_tokens_map.json",) if p in meta["files"] and p not in tokenizer]
    plan = [(bundle_dir / p, p) for p in parts + tokenizer]
    if include_onnx and meta.get("onnx"):
        plan.append((bundle_dir / ONNX_FILE, ONNX_FILE))
    plan.append((bundle_dir / CARD, "README.md"))
    return plan


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python scripts/push_to_hub.py",
        description="Upload a bundle's LoRA adapter + model card + tokenizer + labels to the "
        "Hugging Face Hub.",
    )
    p.add_argument("--repo-id", required=True, help="hub repository, e.g. your-name/triage-intent")
    p.add_argument("--model", default=None,
                   help="bundle directory (default: TRIAGE_MODEL_DIR, models/intent)")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--include-onnx", action="store_true", help="also upload onnx/model.int8.onnx")
    p.add_argument("--revision", default=None, help="branch to push to (default: main)")
    p.add_argument("--dry-run", action="store_true", help="list what would be uploaded; no token or network")
    return p


def main(argv: list[str] | None = None, settings=None) -> int:
    args = build_parser().parse_args(argv)
    if settings is None:
        from src.config import get_settings

        settings = get_settings()
    bundle_dir = Path(args.model or settings.model_dir)
    try:
        meta = load_bundle_meta(bundle_dir)
    except BundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    token = settings.hf_token.get_secret_value() if settings.hf_token is not None else None
    if not token and not args.dry_run:
        print("error: no Hugging Face token: set HF_TOKEN (or TRIAGE_HF_TOKEN) to a write token, "
              "or use --dry-run to only list the files", file=sys.stderr)
        return 2
    if not (bundle_dir / CARD).is_file() and not args.dry_run:
        from src.classifier.model_card import write_model_card

        write_model_card(bundle_dir)
        print(f"rendered {bundle_dir / CARD}", file=sys.stderr)
    plan = upload_plan(bundle_dir, meta, include_onnx=args.include_onnx)
    sizes = [src.stat().st_size if src.is_file() else 0 for src, _ in plan]
    header = "would upload" if args.dry_run else "uploading"
    print(f"{header} {len(plan)} files ({sum(sizes) / 1e6:.1f} MB) from {bundle_dir} to {args.repo_id} "
          f"(bundle {meta['bundle_version']}):")
    for (src, dest), size in zip(plan, sizes, strict=True):
        note = f"{size:,} bytes" if src.is_file() else f"rendered from the bundle into {CARD} first"
        print(f"  {dest}  ({note})")
    if args.dry_run:
        return 0
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(token=token)
    try:
        api.create_repo(args.repo_id, repo_type="model", private=args.private, exist_ok=True)
        ops = [CommitOperationAdd(path_in_repo=dest, path_or_fileobj=str(src)) for src, dest in plan]
        info = api.create_commit(
            args.repo_id, ops, commit_message=f"triage intent bundle {meta['bundle_version']}",
            revision=args.revision,
        )
    except Exception as exc:  # noqa: BLE001 - network/auth errors become one clear line
        print(f"error: upload to {args.repo_id} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"uploaded: {getattr(info, 'commit_url', info)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
