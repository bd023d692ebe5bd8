#!/usr/bin/env python
"""Profile the local llama.cpp analysis call: JSON-schema grammar vs none, threads, prefix cache.

    python scripts/llm_profile.py --llm local:smollm2 --n 8 --threads 1,2
    python scripts/llm_profile.py --llm local:qwen2.5-1.5b --n 5 --threads 1 --json runs/profile_q15.json

For each setting, the same ``analyze-v3`` call on the first N hand-labelled tickets (the first call
of a setting loads the model and fills the prefix cache: reported apart as ``cold_s``). "no grammar"
asks for the same JSON with no schema constraint (what grammar sampling costs; the answer is not
validated). Wall times on a shared CPU are indicative; run it on an idle machine to compare settings.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a plain checkout

from src.config import get_settings  # noqa: E402
from src.llm.analyze import analysis_schema  # noqa: E402
from src.llm.evaluate import DEFAULT_DATA, load_tickets  # noqa: E402
from src.llm.models import local_model_file  # noqa: E402
from src.llm.prompts import ANALYZE_PROMPT_VERSION, ANALYZE_SYSTEM, ticket_block  # noqa: E402
from src.llm.providers.local import LocalProvider  # noqa: E402


def profile(model: str, threads: int, cache_mb: int, grammar: bool, texts: list[str]) -> dict:
    provider = LocalProvider(
        local_model_file(model), model=model, n_threads=threads, prompt_cache_mb=cache_mb
    )
    schema = analysis_schema()
    lat, toks_in, toks_out = [], [], []
    for text in texts:
        user = ticket_block(text, 2000)
        start = time.perf_counter()
        if grammar:
            _, usage = provider.complete_json(ANALYZE_SYSTEM, user, schema, max_tokens=96)
        else:
            _, usage = provider.complete_text(
                ANALYZE_SYSTEM, user + "\nAnswer with the JSON object only.", max_tokens=96
            )
        lat.append(time.perf_counter() - start)
        toks_in.append(usage.tokens_in)
        toks_out.append(usage.tokens_out)
    warm = lat[1:] or lat
    return {
        "model": model,
        "threads": threads,
        "prompt_cache_mb": cache_mb,
        "grammar": grammar,
        "n": len(texts),
        "cold_s": round(lat[0], 3),
        "warm_p50_s": round(statistics.median(warm), 3),
        "warm_mean_s": round(statistics.fmean(warm), 3),
        "tokens_in_mean": round(statistics.fmean(toks_in), 1),
        "tokens_out_mean": round(statistics.fmean(toks_out), 1),
        "decode_tok_per_s_upper": round(statistics.fmean(toks_out) / max(1e-9, statistics.fmean(warm)), 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--llm", default="local:smollm2", help="local:MODEL (smollm2, qwen2.5-0.5b, qwen2.5-1.5b)")
    p.add_argument("--n", type=int, default=8, help="tickets per setting")
    p.add_argument("--threads", default="1,2", help="comma-separated llama.cpp thread counts")
    p.add_argument("--json", type=Path, default=None, help="write the rows here")
    args = p.parse_args(argv)
    model = args.llm.partition(":")[2] or get_settings().local_model
    texts = [r["text"] for r in load_tickets(DEFAULT_DATA)[: args.n]]
    rows = []
    for threads in (int(t) for t in args.threads.split(",")):
        for grammar in (True, False):
            rows.append(profile(model, threads, get_settings().llm_prompt_cache_mb, grammar, texts))
            print(json.dumps(rows[-1]), flush=True)
    rows.append(profile(model, int(args.threads.split(",")[0]), 0, True, texts))  # no prefix cache
    print(json.dumps(rows[-1]), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        out = {
            "prompt_version": ANALYZE_PROMPT_VERSION,
            "note": "shared 2-core CPU; indicative",
            "rows": rows,
        }
        args.json.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
