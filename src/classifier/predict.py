"""``python -m src.classifier.predict --model DIR "text" ...``: classify tickets, one JSON line each.

Texts come from the arguments, ``--file`` (one text per line, or JSONL / CSV with a text column) or
stdin. Bad texts produce ``"valid": false`` lines rather than errors, so a batch is never lost;
a missing or broken bundle is a one-line error with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from src.classifier.types import BundleError

CHUNK = 512
PREVIEW_CHARS = 200


def read_texts(path: Path, text_field: str | None = None) -> list[str]:
    """Texts from a file: ``.jsonl`` (field ``text`` or ``--text-field``), ``.csv`` (auto-detected
    text column), anything else one text per line."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        out = []
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not JSON ({exc.msg})") from None
            key = text_field or next((k for k in ("text", "instruction", "utterance") if k in row), None)
            if not isinstance(row, dict) or key is None or key not in row:
                raise ValueError(f"{path}:{n}: no text field (pass --text-field)")
            out.append(row[key] if isinstance(row[key], str) else str(row[key]))
        return out
    if suffix == ".csv":
        import pandas as pd

        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        key = text_field or next((k for k in ("text", "instruction", "utterance") if k in df.columns), None)
        if key is None or key not in df.columns:
            raise ValueError(f"{path}: no text column among {list(df.columns)} (pass --text-field)")
        return df[key].tolist()
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


def prediction_lines(clf, texts: list[str], batch_size: int, progress: bool) -> Iterator[str]:
    """Yield one JSON line per text (index, text preview, bundle version, the prediction)."""
    from tqdm.auto import tqdm

    chunks = range(0, len(texts), CHUNK)
    for start in tqdm(
        chunks, desc="classifying", unit="chunk", disable=not progress or len(texts) <= CHUNK, file=sys.stderr
    ):
        batch = texts[start : start + CHUNK]
        for offset, (text, pred) in enumerate(
            zip(batch, clf.predict(batch, batch_size=batch_size), strict=True)
        ):
            row = {"index": start + offset, "text": text[:PREVIEW_CHARS] if isinstance(text, str) else None}
            row.update(pred.model_dump())
            row["bundle_version"] = clf.version
            yield json.dumps(row, ensure_ascii=False)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m src.classifier.predict",
        description="Classify ticket texts with a serving bundle; prints one JSON line per text "
        "(label, confidence, calibrated probs, top3, margin, entropy, valid, truncated).",
    )
    p.add_argument("texts", nargs="*", help="ticket texts (omit to use --file or stdin)")
    p.add_argument(
        "--model", default=None, help="bundle directory (default: TRIAGE_MODEL_DIR, models/intent)"
    )
    p.add_argument("--file", type=Path, help="read texts from a file: .jsonl, .csv, or one text per line")
    p.add_argument("--text-field", help="JSONL field / CSV column holding the text (default: auto)")
    p.add_argument(
        "--backend",
        choices=["auto", "onnx", "torch"],
        default="auto",
        help="auto = ONNX int8 when the bundle has it, else torch",
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.batch_size < 1:
        print("error: --batch-size must be >= 1", file=sys.stderr)
        return 2
    try:
        if args.texts:
            texts = list(args.texts)
        elif args.file is not None:
            if not args.file.is_file():
                print(f"error: --file {args.file} does not exist", file=sys.stderr)
                return 2
            texts = read_texts(args.file, args.text_field)
        elif not sys.stdin.isatty():
            texts = sys.stdin.read().splitlines()
        else:
            print("error: give texts as arguments, --file FILE, or pipe them on stdin", file=sys.stderr)
            return 2
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.model is None:
        from src.config import get_settings

        args.model = get_settings().model_dir
    try:
        from src.classifier.inference import IntentClassifier

        clf = IntentClassifier.load(args.model, backend=args.backend)
    except BundleError as exc:
        print(f"error: cannot load bundle {args.model}: {exc}", file=sys.stderr)
        return 2
    try:
        for line in prediction_lines(clf, texts, args.batch_size, progress=not args.no_progress):
            sys.stdout.write(line + "\n")
    except BrokenPipeError:  # e.g. `| head`
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
