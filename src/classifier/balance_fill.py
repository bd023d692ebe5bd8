"""Class-balance fill: the configured LLM as teacher, a human as the gate.

For every intent with fewer than ``--min-per-class`` rows, the teacher (``src.llm.providers``: the
local model by default, an API model when configured, PII-masked when external) writes paraphrases of
that intent's real tickets, and *hard negatives*: tickets that sound like the intent but ask for its
most confusable neighbour (labelled with the neighbour). Nothing trains yet: every generated row goes
to a review queue (a JSONL file), where a person accepts it or rejects it with a reason
(``another_intent``, ``too_short``, ``mixed_intent``, ``label_drift``). Rows the generator itself
doubts (too short, a near duplicate of a real row) carry a flag. ``export`` writes only accepted rows
and reports the normalised class entropy of the data before and after adding them.

    python -m src.classifier.balance_fill generate --data train.csv --min-per-class 40 --queue q.jsonl
    python -m src.classifier.balance_fill list --queue q.jsonl
    python -m src.classifier.balance_fill review --queue q.jsonl --accept ID ID --by ana
    python -m src.classifier.balance_fill review --queue q.jsonl --reject ID --reason mixed_intent --by ana
    python -m src.classifier.balance_fill export --queue q.jsonl --data train.csv --out accepted.csv
    python -m src.classifier.train --data train.csv --data accepted.csv --out models/candidate
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from src.classifier.data import DataError, class_balance, clean_labelled, load_labelled, text_key

REJECT_REASONS = ("another_intent", "too_short", "mixed_intent", "label_drift")
MIN_WORDS = 4
SEEDS_PER_CALL = 5
PER_CALL = 5
SYSTEM = ("You write realistic customer-support tickets for training a classifier. Reply with JSON only: "
          '{"tickets": ["...", "..."]}. Each ticket is one short customer message, in English, without '
          "names, emails, phone numbers or order numbers, and different from the examples.")  # fmt: skip
SCHEMA = {"type": "object", "properties": {"tickets": {"type": "array", "items": {"type": "string"}}},
          "required": ["tickets"]}  # fmt: skip


@dataclass
class QueueItem:
    """One generated row waiting for (or after) a human decision."""

    id: str
    text: str
    label: str
    kind: str  # "paraphrase" | "hard_negative"
    for_intent: str  # the under-represented intent this row was generated for
    seeds: list[str]
    teacher: str
    created_at: str
    flags: list[str] = field(default_factory=list)
    status: str = "pending"  # pending | accepted | rejected
    reason: str | None = None
    reviewer: str | None = None
    reviewed_at: str | None = None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_queue(path: Path) -> list[QueueItem]:
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [QueueItem(**json.loads(line)) for line in lines if line.strip()]


def write_queue(path: Path, items: list[QueueItem]) -> None:
    """Whole-file rewrite through a temporary file: a crash leaves the old queue or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text("".join(json.dumps(asdict(i), ensure_ascii=False) + "\n" for i in items), encoding="utf-8")
    os.replace(tmp, path)


def neighbours(df: pd.DataFrame) -> dict[str, str]:
    """Each intent's most confusable other intent (cosine of TF-IDF centroids)."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    labels = sorted(set(df["label"]))
    if len(labels) < 2:
        return {}
    x = TfidfVectorizer(sublinear_tf=True).fit_transform(df["text"])
    cent = np.vstack([np.asarray(x[(df["label"] == lab).to_numpy()].mean(axis=0)) for lab in labels])
    cent /= np.clip(np.linalg.norm(cent, axis=1, keepdims=True), 1e-12, None)
    sims = cent @ cent.T
    np.fill_diagonal(sims, -1.0)
    return {lab: labels[int(sims[i].argmax())] for i, lab in enumerate(labels)}


def _prompt(kind: str, intent: str, other: str | None, seeds: list[str], n: int) -> str:
    examples = "\n".join(f"- {s}" for s in seeds)
    if kind == "paraphrase":
        return (f"Intent: {intent}\nReal tickets with this intent:\n{examples}\n\nWrite {n} new tickets with "
                "exactly this intent, worded differently (other words, lengths and tones).")
    return (f"Intent A: {intent}\nReal tickets with intent A:\n{examples}\n\nWrite {n} tickets that use "
            f"similar words to intent A but actually ask for intent B: {other}. Each must be clearly "
            "intent B to a careful reader.")


def _flags(text: str, known_keys: set[str]) -> list[str]:
    flags = []
    if len(text.split()) < MIN_WORDS:
        flags.append("too_short")
    if text_key(text) in known_keys:
        flags.append("duplicate of an existing row")
    return flags


def generate(df: pd.DataFrame, provider: Any, *, min_per_class: int, queue: list[QueueItem],
             hard_negative_share: float = 0.25, seed: int = 0, max_calls: int = 50,
             log=print) -> list[QueueItem]:
    """New queue items for every intent below ``min_per_class`` (counting rows already queued)."""
    from src.llm.types import LLMError

    rng = random.Random(seed)
    counts = Counter(df["label"])
    pending = Counter(i.label for i in queue if i.status != "rejected")
    known = set(df["text"].map(text_key)) | {text_key(i.text) for i in queue}
    near = neighbours(df)
    teacher = f"{getattr(provider, 'name', 'llm')}:{getattr(provider, 'model', '?')}"
    new: list[QueueItem] = []
    calls = 0
    for intent in sorted(counts, key=lambda lab: (counts[lab], lab)):
        need = min_per_class - counts[intent] - pending[intent]
        if need <= 0:
            continue
        n_neg = int(round(need * hard_negative_share)) if near.get(intent) else 0
        plan = [("paraphrase", need - n_neg), ("hard_negative", n_neg)]
        pool = df.loc[df["label"] == intent, "text"].tolist()
        for kind, wanted in plan:
            made = 0
            while made < wanted and calls < max_calls:
                seeds = rng.sample(pool, min(SEEDS_PER_CALL, len(pool)))
                other = near.get(intent) if kind == "hard_negative" else None
                calls += 1
                prompt = _prompt(kind, intent, other, seeds, min(PER_CALL, wanted - made))
                try:
                    data, _usage = provider.complete_json(SYSTEM, prompt, SCHEMA)
                except LLMError as exc:
                    log(f"teacher failed for {intent} ({kind}): {exc}")
                    break
                texts = [str(t).strip() for t in (data.get("tickets") or []) if str(t).strip()]
                if not texts:
                    break
                for text in texts[: wanted - made]:
                    label = other if kind == "hard_negative" else intent
                    item_id = hashlib.sha256(f"{label}\x1f{text}".encode()).hexdigest()[:12]
                    new.append(QueueItem(id=item_id, text=text, label=label, kind=kind, for_intent=intent,
                                         seeds=seeds, teacher=teacher, created_at=_now(),
                                         flags=_flags(text, known)))  # fmt: skip
                    known.add(text_key(text))
                    made += 1
        log(f"{intent}: {counts[intent]} rows, {pending[intent]} queued before; generated "
            f"{sum(i.for_intent == intent for i in new)}")
    return new


def review(items: list[QueueItem], ids: list[str], *, accept: bool, reviewer: str,
           reason: str | None = None) -> int:
    """Accept or reject the given ids (a rejection needs one of ``REJECT_REASONS``); returns how many."""
    if not accept and reason not in REJECT_REASONS:
        raise ValueError(f"a rejection needs --reason, one of {', '.join(REJECT_REASONS)}")
    by_id = {i.id: i for i in items}
    unknown = [x for x in ids if x not in by_id]
    if unknown:
        raise ValueError(f"unknown queue ids: {unknown[:5]}")
    for x in ids:
        item = by_id[x]
        item.status, item.reason = ("accepted", None) if accept else ("rejected", reason)
        item.reviewer, item.reviewed_at = reviewer, _now()
    return len(ids)


def accepted_rows(items: list[QueueItem]) -> pd.DataFrame:
    rows = [(i.text, i.label) for i in items if i.status == "accepted"]
    return pd.DataFrame(rows, columns=["text", "label"], dtype=str)


def entropy_report(df: pd.DataFrame, added: pd.DataFrame) -> dict[str, float]:
    """Normalised class entropy (1 = perfectly balanced) of the data before and after the accepted rows."""
    before = class_balance(df["label"].tolist())
    after = class_balance(df["label"].tolist() + added["label"].tolist())
    return {"before": round(before.entropy_normalised, 4), "after": round(after.entropy_normalised, 4),
            "rows_added": len(added)}  # fmt: skip


def _load(path: str) -> pd.DataFrame:
    df, _ = clean_labelled(load_labelled(path), source=path)
    if df.empty:
        raise DataError(f"{path}: no usable rows")
    return df


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m src.classifier.balance_fill",
                                description="Fill under-represented intents with teacher-written rows that a "
                                "human accepts or rejects before anything trains.")
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="ask the teacher for rows of intents below the minimum")
    g.add_argument("--data", required=True)
    g.add_argument("--queue", required=True, type=Path)
    g.add_argument("--min-per-class", required=True, type=int)
    g.add_argument("--hard-negative-share", type=float, default=0.25)
    g.add_argument("--max-calls", type=int, default=50, help="teacher calls at most (cost bound)")
    g.add_argument("--llm", default=None, help="provider spec, e.g. local:qwen2.5-1.5b (default: settings)")
    ls = sub.add_parser("list", help="show the queue")
    ls.add_argument("--queue", required=True, type=Path)
    ls.add_argument("--status", choices=["pending", "accepted", "rejected"], default=None)
    r = sub.add_parser("review", help="accept or reject queued rows")
    r.add_argument("--queue", required=True, type=Path)
    r.add_argument("--by", required=True, help="reviewer name (recorded)")
    act = r.add_mutually_exclusive_group(required=True)
    act.add_argument("--accept", nargs="+", metavar="ID")
    act.add_argument("--reject", nargs="+", metavar="ID")
    r.add_argument("--reason", choices=REJECT_REASONS, help="why rejected (required with --reject)")
    e = sub.add_parser("export", help="write accepted rows; report class entropy before/after")
    e.add_argument("--queue", required=True, type=Path)
    e.add_argument("--data", required=True)
    e.add_argument("--out", required=True, type=Path)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        items = read_queue(args.queue)
        if args.cmd == "generate":
            from src.llm.providers import get_provider

            df = _load(args.data)
            new = generate(df, get_provider(spec=args.llm), min_per_class=args.min_per_class, queue=items,
                           hard_negative_share=args.hard_negative_share, max_calls=args.max_calls)
            write_queue(args.queue, items + new)
            print(f"queued {len(new)} rows for review in {args.queue}")
        elif args.cmd == "list":
            for i in items:
                if args.status in (None, i.status):
                    note = f" [{', '.join(i.flags)}]" if i.flags else ""
                    print(f"{i.id} {i.status:<8} {i.label:<24} {i.kind:<13} {i.text[:80]!r}{note}")
        elif args.cmd == "review":
            n = review(items, args.accept or args.reject, accept=bool(args.accept), reviewer=args.by,
                       reason=args.reason)
            write_queue(args.queue, items)
            print(f"{'accepted' if args.accept else 'rejected'} {n} rows")
        else:
            added = accepted_rows(items)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            added.to_csv(args.out, index=False)
            ent = entropy_report(_load(args.data), added)
            print(f"wrote {len(added)} accepted rows to {args.out}; normalised class entropy "
                  f"{ent['before']:.4f} -> {ent['after']:.4f}")
    except (DataError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - e.g. the LLM is not installed: say so, no traceback
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
