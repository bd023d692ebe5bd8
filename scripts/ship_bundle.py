"""Copy a trained bundle into the repository (``bundles/<name>``) small enough to commit.

    python scripts/ship_bundle.py models/intent --dest bundles/intent-bitext

Only the bundle's parts (every file ``bundle.json`` records) and its model card are copied; reports
stay in ``reports/``. When the copy is larger than ``--max-mb``, the int8 ONNX graph is dropped: it
is rebuilt from the torch model at first load and must reproduce the stored reference logits before
it serves (``src.classifier.inference.ensure_onnx``). The copy is verified before the script exits.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from src.classifier.bundle import BUNDLE_FILE, load_bundle_meta, unship_onnx  # noqa: E402
from src.classifier.types import BundleError  # noqa: E402


def size_mb(root: Path) -> float:
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) / 2**20


def ship(src: Path, dest: Path, max_mb: float) -> float:
    meta = load_bundle_meta(src)
    if dest.exists():
        shutil.rmtree(dest)
    for rel in [*meta["files"], BUNDLE_FILE, "MODEL_CARD.md"]:
        if (src / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / rel, dest / rel)
    load_bundle_meta(dest)
    if size_mb(dest) > max_mb:
        unship_onnx(dest)
    if (dest / "onnx").is_dir() and not any((dest / "onnx").iterdir()):
        (dest / "onnx").rmdir()
    mb = size_mb(dest)
    if mb > max_mb:
        raise BundleError(f"{dest} is {mb:.1f} MB even without the ONNX graph (limit {max_mb} MB)")
    load_bundle_meta(dest)
    return mb


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("bundle", type=Path, help="trained bundle directory")
    p.add_argument("--dest", type=Path, default=Path("bundles/intent-bitext"))
    p.add_argument("--max-mb", type=float, default=15.0)
    args = p.parse_args(argv)
    try:
        mb = ship(args.bundle, args.dest, args.max_mb)
    except BundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    version = load_bundle_meta(args.dest)["bundle_version"]
    print(f"shipped {args.bundle} -> {args.dest} ({mb:.1f} MB, version {version})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
