"""Agreement of ``analyze`` with hand-labelled tickets, per provider/model.

    python -m src.llm.evaluate --provider local:smollm2 --json reports/llm/analysis_smollm2.json

Reports per-field agreement for the LLM alone, the rules alone (escalation only) and the combined
analysis the graph uses, plus latency, tokens and cost, and the hardware it ran on.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from src.config import get_settings
from src.llm.analyze import analyze_llm
from src.llm.combine import PRIORITY_ORDER, combine
from src.llm.injection import looks_like_injection
from src.llm.prompts import ANALYZE_PROMPT_VERSION
from src.llm.types import Analysis, LLMError
from src.text.signals import escalation_signals

DEFAULT_DATA = Path("benchmarks/analysis_tickets.jsonl")
FIELDS = ("sentiment", "priority", "escalation")


def load_tickets(path: Path) -> list[dict[str, Any]]:
    """Read the labelled JSONL; raises ValueError naming the bad line."""
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{n}: not JSON ({exc.msg})") from exc
        missing = {"id", "text", *FIELDS} - set(row)
        if missing:
            raise ValueError(f"{path}:{n}: missing fields {sorted(missing)}")
        rows.append(row)
    return rows


def _prediction(a: Analysis | None) -> dict[str, Any] | None:
    if a is None:
        return None
    return {
        "sentiment": a.sentiment,
        "priority": a.priority,
        "escalation": a.escalation_risk,
        "language": a.language,
        "reliable": a.reliable,
    }


def agreement(
    rows: list[dict[str, Any]], preds: list[dict[str, Any] | None]
) -> dict[str, float | int | None]:
    """Per-field agreement (errors count as disagreement), priority within one level, escalation P/R."""
    n = len(rows)
    if n == 0:
        return {"n": 0}
    out: dict[str, float | int | None] = {"n": n}
    for field in FIELDS:
        out[field] = round(
            sum(p is not None and p[field] == r[field] for r, p in zip(rows, preds, strict=True)) / n, 4
        )
    out["priority_within_1"] = round(
        sum(
            p is not None
            and abs(PRIORITY_ORDER.index(p["priority"]) - PRIORITY_ORDER.index(r["priority"])) <= 1
            for r, p in zip(rows, preds, strict=True)
        )
        / n,
        4,
    )
    tp = sum(p is not None and p["escalation"] and r["escalation"] for r, p in zip(rows, preds, strict=True))
    pos = sum(bool(r["escalation"]) for r in rows)
    flagged = sum(p is not None and bool(p["escalation"]) for p in preds)
    out["escalation_recall"] = round(tp / pos, 4) if pos else None
    out["escalation_precision"] = round(tp / flagged, 4) if flagged else None
    return out


def evaluate(rows: list[dict[str, Any]], provider: Any, *, progress: bool = True) -> dict[str, Any]:
    """Run the LLM once per ticket; derive LLM-only, rules-only and combined predictions."""
    per_ticket = []
    llm_preds, rule_preds, comb_preds = [], [], []
    latencies, tokens_in, tokens_out, cost, errors, reliable = [], 0, 0, 0.0, 0, 0
    for row in tqdm(rows, desc=f"analyze {provider.name}:{provider.model}", disable=not progress):
        signals = escalation_signals(row["text"])
        injection = [f"prompt_injection:{n}" for n in looks_like_injection(row["text"])]
        rule_names = [s.name for s in signals] + injection
        start = time.perf_counter()
        error = None
        try:
            llm = analyze_llm(row["text"], provider)
        except LLMError as exc:
            llm, error = None, f"{exc.kind}: {exc}"
            errors += 1
        latencies.append(time.perf_counter() - start)
        combined = combine(llm, signals, extra_signals=injection) if llm is not None else None
        if llm is not None:
            reliable += llm.reliable
            if llm.usage:
                tokens_in += llm.usage.tokens_in
                tokens_out += llm.usage.tokens_out
                cost += llm.usage.cost_usd
        rule = {"escalation": bool(rule_names)}
        llm_preds.append(_prediction(llm))
        comb_preds.append(_prediction(combined))
        rule_preds.append(rule)
        per_ticket.append(
            {
                "id": row["id"],
                "gold": {f: row[f] for f in FIELDS},
                "llm": _prediction(llm),
                "combined": _prediction(combined),
                "rule_signals": rule_names,
                "latency_s": round(latencies[-1], 3),
                "error": error,
            }
        )
    n = len(rows)
    rules_only = agreement(rows, [{"sentiment": None, "priority": "P3", **r} for r in rule_preds])
    return {
        "agreement": {
            "llm_only": agreement(rows, llm_preds),
            "combined": agreement(rows, comb_preds),
            "rules_only_escalation": {
                k: rules_only[k] for k in ("n", "escalation", "escalation_recall", "escalation_precision")
            },
        },
        "reliable_rate": round(reliable / n, 4) if n else None,
        "errors": errors,
        "latency_s": {
            "p50": round(statistics.median(latencies), 3) if latencies else None,
            "p95": round(sorted(latencies)[max(0, int(0.95 * n) - 1)], 3) if latencies else None,
            "mean": round(statistics.fmean(latencies), 3) if latencies else None,
            "total": round(sum(latencies), 1),
        },
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "cost_usd": round(cost, 6),
        "per_ticket": per_ticket,
    }


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def markdown_table(reports: list[dict[str, Any]]) -> str:
    """One row per report: the table docs/llm.md quotes (numbers straight from the JSON)."""
    head = (
        "| model | n | sentiment (LLM) | priority (LLM) | priority ±1 (LLM) | priority (combined) "
        "| escalation (LLM) | escalation (rules only) | escalation (combined) P / R | valid output "
        "| p50 latency | cost |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for r in reports:
        a = r["agreement"]
        llm, comb, rules = a["llm_only"], a["combined"], a["rules_only_escalation"]
        rows.append(
            f"| {r['provider']}:{r['model']} | {r['n']} | {llm['sentiment']:.2f} | {llm['priority']:.2f} "
            f"| {llm['priority_within_1']:.2f} | {comb['priority']:.2f} | {llm['escalation']:.2f} "
            f"| {rules['escalation']:.2f} "
            f"| {comb['escalation']:.2f} ({_fmt(comb['escalation_precision'])} / "
            f"{_fmt(comb['escalation_recall'])}) "
            f"| {r['reliable_rate']:.2f} | {r['latency_s']['p50']:.1f} s | ${r['cost_usd']:.4f} |"
        )
    return head + "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Agreement of llm.analyze with hand-labelled tickets.")
    parser.add_argument("--provider", default=None, help="kind[:model], e.g. local, local:qwen2.5-1.5b")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="labelled JSONL")
    parser.add_argument("--json", type=Path, default=None, help="write the full report here")
    parser.add_argument("--limit", type=int, default=None, help="first N tickets only (smoke runs)")
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (local only)")
    parser.add_argument(
        "--table",
        type=Path,
        nargs="+",
        default=None,
        help="print a Markdown table of these report JSONs and exit",
    )
    args = parser.parse_args(argv)
    if args.table:
        try:
            reports = [json.loads(p.read_text(encoding="utf-8")) for p in args.table]
        except (OSError, json.JSONDecodeError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(markdown_table(reports))
        return 0

    from src.llm.providers import get_provider

    settings = get_settings()
    if args.threads:
        settings = settings.model_copy(update={"llm_threads": args.threads})
    try:
        rows = load_tickets(args.data)[: args.limit]
        provider = get_provider(settings, spec=args.provider)
    except (OSError, ValueError, LLMError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = evaluate(rows, provider)
    report = {
        "provider": provider.name,
        "model": provider.model,
        "data": str(args.data),
        "n": len(rows),
        "prompt_version": ANALYZE_PROMPT_VERSION,
        "hardware": {
            "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "llm_threads": settings.llm_threads if provider.name == "local" else None,
            "note": "shared 2-core CPU box; latencies include contention from other jobs",
        },
        **result,
    }
    a = report["agreement"]
    print(
        f"{provider.name}:{provider.model} n={len(rows)} | LLM only: sentiment {a['llm_only']['sentiment']}, "
        f"priority {a['llm_only']['priority']}, escalation {a['llm_only']['escalation']} | combined: "
        f"sentiment {a['combined']['sentiment']}, priority {a['combined']['priority']}, escalation "
        f"{a['combined']['escalation']} (recall {a['combined']['escalation_recall']}) | rules only "
        f"escalation {a['rules_only_escalation']['escalation']} | reliable {report['reliable_rate']} | p50 "
        f"{report['latency_s']['p50']} s | cost ${report['cost_usd']}"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
