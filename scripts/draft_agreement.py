#!/usr/bin/env python
"""Measure the citation-agreement bound (src/llm/checks.citation_agreement) on resolved tickets.

A draft must cite a resolution that *agrees* with it: the share of the reply's content terms the
resolution also uses. This script measures how that share separates a reply from a resolution it
could be grounded in (another resolution of the *same* intent: same steps, different wording) from a
resolution of a *different* intent, and reports pass rates for candidate bounds.

python scripts/draft_agreement.py                       # Bitext 2023-08-18 release, all rows
python scripts/draft_agreement.py --rows 2000 --out reports/llm/draft_agreement
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from src.config import SHARED_DATA  # noqa: E402
from src.llm.checks import citation_agreement  # noqa: E402

DEFAULT_DATA = SHARED_DATA / "bitext-customer-support" / "bitext_release_2023-08-18.csv"
BOUNDS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5)


def _reply(response: str, words: int = 80) -> str:
    """A draft-sized reply: the first ``words`` words (drafts are capped at 80 words)."""
    return " ".join(response.split()[:words])


def measure(rows: list[dict], seed: int = 0, evidence_chars: int = 700) -> dict:
    rng = random.Random(seed)
    by_intent: dict[str, list[dict]] = {}
    for r in rows:
        by_intent.setdefault(r["intent"], []).append(r)
    pairs: dict[str, list[float]] = {
        "same_intent": [],
        "other_intent_same_category": [],
        "other_category": [],
    }
    for r in rows:
        same = [o for o in by_intent[r["intent"]] if o is not r]
        if not same:
            continue
        reply = _reply(r["response"])
        pairs["same_intent"].append(citation_agreement(reply, rng.choice(same)["response"][:evidence_chars]))
        sibling = [i for i in by_intent if i != r["intent"] and by_intent[i][0]["category"] == r["category"]]
        if sibling:
            other = rng.choice(by_intent[rng.choice(sibling)])
            pairs["other_intent_same_category"].append(
                citation_agreement(reply, other["response"][:evidence_chars])
            )
        far = [i for i in by_intent if by_intent[i][0]["category"] != r["category"]]
        other = rng.choice(by_intent[rng.choice(far)])
        pairs["other_category"].append(citation_agreement(reply, other["response"][:evidence_chars]))

    def quantiles(xs: list[float]) -> dict[str, float]:
        s = sorted(xs)
        return {
            f"p{q}": round(s[min(len(s) - 1, int(q / 100 * len(s)))], 3) for q in (5, 10, 25, 50, 75, 90, 95)
        }

    return {
        "pairs": {k: len(v) for k, v in pairs.items()},
        "quantiles": {k: quantiles(v) for k, v in pairs.items()},
        "pass_rate": {
            str(b): {k: round(sum(x >= b for x in v) / len(v), 4) for k, v in pairs.items()} for b in BOUNDS
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CSV with intent, category, response")
    parser.add_argument("--rows", type=int, default=0, help="use the first N rows (0 = all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "llm" / "draft_agreement")
    args = parser.parse_args(argv)

    import pandas as pd

    df = pd.read_csv(args.data).dropna(subset=["intent", "category", "response"])
    if args.rows:
        df = df.head(args.rows)
    result = measure(df[["intent", "category", "response"]].to_dict("records"), seed=args.seed)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    result["meta"] = {
        "data": str(args.data.name),
        "rows": len(df),
        "seed": args.seed,
        "commit": commit.stdout.strip(),
        "reply_words": 80,
        "evidence_chars": 700,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Citation agreement: reply vs cited resolution",
        "",
        f"Data `{result['meta']['data']}` ({len(df)} rows), seed {args.seed}, "
        f"commit {result['meta']['commit']}. "
        "Reply = first 80 words of a response; resolution = another response cut to 700 chars.",
        "",
        "| bound | " + " | ".join(result["pairs"]) + " |",
        "|---|" + "---|" * len(result["pairs"]),
    ]
    for b, rates in result["pass_rate"].items():
        lines.append(f"| {b} | " + " | ".join(f"{rates[k]:.3f}" for k in result["pairs"]) + " |")
    lines += ["", "Pairs: " + ", ".join(f"{k} {n}" for k, n in result["pairs"].items()), ""]
    args.out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
