"""``python -m src.eval.drafts``: template drafts vs LLM drafts on the same tickets, against references.

For Bitext tickets that ship a reference reply (``bitext_v11_first5000.csv``; tickets the knowledge
base holds verbatim are left out), with the retrieved resolutions of the ticket's true intent:

* the **template** draft (src/llm/template_draft.py: a close same-intent resolution, placeholders
  filled, checked) where one exists, and
* the **LLM** draft (src/llm/draft.py, the configured or ``--llm`` model) on every ticket,

each scored by src/eval/draft_quality.py (similarity to the reference, intent consistency,
grounding) plus whether it passed the draft checks (``reliable``: only a reliable draft may be
auto-sent). On the tickets that have both, the paired difference template - LLM in similarity
comes with a bootstrap 95% interval: "not worse" means its lower end is above ``-margin``.

Writes ``runs/drafts/draft_quality.json`` (+ ``.md``), or ``reports/llm/`` with ``--publish``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from src.config import get_settings
from src.eval.draft_quality import DEFAULT_REFERENCES, grounding, similarities

OUT = Path("runs/drafts")
PUBLISH = Path("reports/llm")


def reference_rows(path: Path, limit: int, seed: int) -> list[dict[str, str]]:
    """Reference tickets stratified by intent (the file's own rows: instruction, intent, response)."""
    import csv

    with path.open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("instruction") and r.get("response")]
    rng = np.random.default_rng(seed)
    by_intent: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_intent.setdefault(r["intent"], []).append(r)
    per = max(1, limit // max(1, len(by_intent)))
    picked = [group[i] for _, group in sorted(by_intent.items()) for i in rng.permutation(len(group))[:per]]
    return picked[:limit]


def paired_difference(a: list[float], b: list[float], seed: int = 0) -> dict[str, Any]:
    """Mean of a - b with a bootstrap 95% interval (pairs resampled together)."""
    d = np.asarray(a, float) - np.asarray(b, float)
    if len(d) == 0:
        return {"n": 0}
    rng = np.random.default_rng(seed)
    boot = [float(rng.choice(d, len(d)).mean()) for _ in range(2000)]
    return {
        "n": int(len(d)),
        "mean": round(float(d.mean()), 4),
        "ci95": [round(float(np.percentile(boot, q)), 4) for q in (2.5, 97.5)],
    }


def evaluate(
    rows: list[dict[str, str]], kb: Any, provider: Any, embedder: Any, *, progress: bool = True
) -> dict[str, Any]:
    from src.llm.draft import draft
    from src.llm.template_draft import template_draft
    from src.llm.types import Analysis, LLMError
    from src.text.pii import mask_pii

    settings = get_settings()
    per_ticket = []
    for r in tqdm(rows, desc="drafts", disable=not progress):
        text, label = mask_pii(r["instruction"]).text, r["intent"]
        hits = kb.search(text, k=settings.retrieval_k, intent=label)
        dumps = [h.model_dump(mode="json") for h in hits]
        item: dict[str, Any] = {
            "text": r["instruction"],
            "label": label,
            "reference": r["response"],
            "best_similarity": max((h.similarity for h in hits), default=None),
        }
        t0 = time.perf_counter()
        tpl = template_draft(
            text,
            label,
            hits,
            min_similarity=settings.template_min_similarity,
            constants=settings.draft_placeholder_values,
            allowed_values=settings.draft_allowed_values,
            min_agreement=settings.draft_min_agreement,
        )
        item["template_s"] = round(time.perf_counter() - t0, 4)
        if tpl is not None:
            item["template"] = {
                "text": tpl.text,
                "reliable": tpl.reliable,
                "grounding": grounding(tpl.text, tpl.evidence_ids, text, dumps, settings.draft_min_agreement),
            }
        t0 = time.perf_counter()
        try:
            d = draft(text, Analysis(language="en"), hits, provider)
            item["llm"] = {
                "text": d.text,
                "reliable": d.reliable,
                "flags": d.flags,
                "grounding": grounding(d.text, d.evidence_ids, text, dumps, settings.draft_min_agreement),
            }
        except LLMError as exc:
            item["llm"] = {"text": "", "reliable": False, "error": f"{exc.kind}: {exc}"}
        item["llm_s"] = round(time.perf_counter() - t0, 3)
        per_ticket.append(item)
    for kind in ("template", "llm"):
        have = [it for it in per_ticket if (it.get(kind) or {}).get("text")]
        sims = similarities([(it[kind]["text"], it["reference"]) for it in have], embedder)
        for it, s in zip(have, sims, strict=True):
            it[kind]["similarity"] = round(s, 4)
    return {"per_ticket": per_ticket, "summary": summarise(per_ticket)}


def _side(items: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    pairs = [(it, it[kind]) for it in items if (it.get(kind) or {}).get("text")]
    n = len(pairs)
    if not n:
        return {"n": 0}

    def consistent(it: dict[str, Any], g: dict[str, Any]) -> bool:
        intents = g["grounding"]["cited_intents"]
        return bool(intents) and all(i == it["label"] for i in intents)

    return {
        "n": n,
        "similarity_mean": round(float(np.mean([g["similarity"] for _, g in pairs])), 4),
        "reliable": round(sum(g["reliable"] for _, g in pairs) / n, 4),
        "grounded": round(sum(g["grounding"]["grounded"] for _, g in pairs) / n, 4),
        "intent_consistent": round(sum(consistent(it, g) for it, g in pairs) / n, 4),
        "foreign_or_invented": sum(
            bool(g["grounding"]["foreign_values"] or g["grounding"]["invented_values"]) for _, g in pairs
        ),
    }


def summarise(items: list[dict[str, Any]]) -> dict[str, Any]:
    both = [
        it for it in items if (it.get("template") or {}).get("text") and (it.get("llm") or {}).get("text")
    ]
    only_llm = [it for it in items if not (it.get("template") or {}).get("text")]
    return {
        "n": len(items),
        "with_template": sum(bool((it.get("template") or {}).get("text")) for it in items),
        "on_tickets_with_both": {
            "template": _side(both, "template"),
            "llm": _side(both, "llm"),
            "similarity_template_minus_llm": paired_difference(
                [it["template"]["similarity"] for it in both], [it["llm"]["similarity"] for it in both]
            ),
        },
        "llm_where_no_template": _side(only_llm, "llm"),
        "latency_s": {
            "template_mean": round(float(np.mean([it["template_s"] for it in items])), 4) if items else None,
            "llm_mean": round(float(np.mean([it["llm_s"] for it in items])), 3) if items else None,
        },
    }


def markdown(report: dict[str, Any]) -> str:
    s = report["summary"]
    both = s["on_tickets_with_both"]
    diff = both["similarity_template_minus_llm"]

    def row(name: str, side: dict[str, Any]) -> str:
        if not side.get("n"):
            return f"| {name} | 0 | | | | | |"
        return (
            f"| {name} | {side['n']} | {side['similarity_mean']:.3f} | {side['intent_consistent']:.0%} | "
            f"{side['grounded']:.0%} | {side['reliable']:.0%} | {side['foreign_or_invented']} |"
        )

    verdict = "n/a"
    if diff.get("n"):
        verdict = (
            f"{diff['mean']:+.3f} [{diff['ci95'][0]:+.3f}, {diff['ci95'][1]:+.3f}] on {diff['n']} tickets: "
            + (
                "not worse (lower end above -" + f"{report['margin']})"
                if diff["ci95"][0] > -report["margin"]
                else "**not shown to be no worse**"
            )
        )
    return "\n".join(
        [
            "# Draft quality: template drafts vs LLM drafts",
            "",
            f"Generated by `{report['command']}` on {report['date']} (UTC), commit "
            f"`{report['commit'][:12]}`, "
            f"LLM {report['llm']}, knowledge base {report['kb_count']} resolved tickets. References: "
            f"`{report['references']}` ({s['n']} tickets, stratified by intent; tickets the "
            "knowledge base holds "
            f"verbatim left out: {report['dropped_in_kb']}).",
            "",
            f"A template exists (same-intent resolution >= {report['template_min_similarity']} similar) for "
            f"{s['with_template']} of {s['n']} tickets.",
            "",
            "| drafts | n | similarity to reference | intent-consistent | grounded | passes the "
            "draft checks | "
            "foreign or invented values |",
            "|---|---|---|---|---|---|---|",
            row("template (tickets with both)", both["template"]),
            row("LLM (same tickets)", both["llm"]),
            row("LLM where no template exists", s["llm_where_no_template"]),
            "",
            f"Paired similarity difference template - LLM (bootstrap 95% interval): {verdict}.",
            "",
            f"Mean time per draft: template {s['latency_s']['template_mean']} s, LLM "
            f"{s['latency_s']['llm_mean']} s "
            "(shared 2-core CPU).",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m src.eval.drafts",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--llm", default=None, metavar="PROVIDER[:MODEL]", help="LLM drafter (default: settings)")
    p.add_argument("--references", type=Path, default=DEFAULT_REFERENCES)
    p.add_argument("--limit", type=int, default=60, help="tickets (stratified by intent)")
    p.add_argument("--seed", type=int, default=5)
    p.add_argument(
        "--margin", type=float, default=0.02, help="'not worse': paired difference lower end > -margin"
    )
    p.add_argument("--publish", action="store_true", help=f"write {PUBLISH}/draft_quality.* (default {OUT})")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    from datetime import datetime, timezone

    from src.eval.overlap import kb_overlap
    from src.eval.provenance import git_state, llm_identity, llm_label
    from src.llm.providers import get_provider
    from src.retrieval.embedder import get_embedder
    from src.retrieval.store import KnowledgeBase

    settings = get_settings()
    if not args.references.is_file():
        print(f"error: no reference file at {args.references}", file=sys.stderr)
        return 2
    kb = KnowledgeBase.from_settings(settings)
    rows = reference_rows(args.references, args.limit * 2, args.seed)
    leaked = kb_overlap([r["instruction"] for r in rows], kb)
    rows = [r for i, r in enumerate(rows) if i not in leaked][: args.limit]
    provider = get_provider(settings, spec=args.llm)
    result = evaluate(rows, kb, provider, get_embedder(), progress=not args.no_progress)
    report = {
        "command": "python -m src.eval.drafts " + " ".join(sys.argv[1:] if argv is None else argv),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "commit": git_state()["commit"],
        "llm": llm_label(llm_identity(provider)),
        "kb_count": kb.count(),
        "references": str(args.references),
        "dropped_in_kb": len(leaked),
        "margin": args.margin,
        "template_min_similarity": settings.template_min_similarity,
        **result,
    }
    out = PUBLISH if args.publish else OUT
    out.mkdir(parents=True, exist_ok=True)
    (out / "draft_quality.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", "utf-8")
    (out / "draft_quality.md").write_text(markdown(report), "utf-8")
    print(markdown(report))
    print(f"wrote {out / 'draft_quality.json'} and {out / 'draft_quality.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
