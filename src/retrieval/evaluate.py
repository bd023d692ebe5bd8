"""``python -m src.retrieval.evaluate --corpus FILE --queries FILE --json OUT``: retrieval quality and speed.

Builds a throw-away knowledge base from ``--corpus`` (embedded in a temp folder, so the real
``data/qdrant`` is untouched and the ingest rate is measured too; or a throw-away collection on
the server given by ``--qdrant-url``), then searches with labelled queries that are *not* in the
corpus: same-intent precision@k, MRR, hit rate, and search latency p50/p95 including the query
embedding, for dense search, hybrid (dense + BM25, RRF) or both (``--mode``). A corpus without a
reply column (e.g. CLINC150) gets placeholder replies: quality depends on texts and labels only.
Writes OUT (JSON) and a Markdown summary next to it.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import SecretStr
from tqdm import tqdm

from src.config import get_settings
from src.retrieval.embedder import get_embedder
from src.retrieval.ingest import ingest_file
from src.retrieval.records import normalise
from src.retrieval.sources import SourceError, read_rows, resolve_columns
from src.retrieval.store import KnowledgeBase, close_clients
from src.retrieval.types import RetrievalUnavailable

QUERY_TEXT = ("text", "instruction", "utterance", "query", "question")
QUERY_LABEL = ("intent", "label", "category")
TARGETS = {"precision_at_k": 0.95, "latency_p50_ms": 15.0, "ingest_tickets_per_s": 200.0}


# --- pure metrics --------------------------------------------------------------------------
def precision_at_k(hit_labels: list[str | None], label: str, k: int) -> float:
    """Share of the ``k`` slots holding a hit with the query's label (missing hits count as misses)."""
    return sum(1 for h in hit_labels[:k] if h == label) / k


def reciprocal_rank(hit_labels: list[str | None], label: str, k: int) -> float:
    """1/rank of the first hit with the query's label within the top ``k``; 0 if none."""
    for rank, h in enumerate(hit_labels[:k], start=1):
        if h == label:
            return 1.0 / rank
    return 0.0


def bootstrap_ci(values: list[float], *, n: int = 2000, seed: int = 0, level: float = 0.95) -> list[float]:
    """Percentile-bootstrap interval of the mean (how much a different query sample could move it)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    means = arr[rng.integers(0, arr.size, size=(n, arr.size))].mean(axis=1)
    lo, hi = np.percentile(means, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return [round(float(lo), 4), round(float(hi), 4)]


def paired_difference(a: list[float], b: list[float], *, n: int = 2000, seed: int = 0) -> dict[str, object]:
    """Mean of ``b - a`` over the same queries with a paired bootstrap 95% interval: whether one
    mode beats the other on these queries, which two overlapping marginal intervals cannot say."""
    diff = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    return {
        "mean": round(float(diff.mean()), 4) if diff.size else float("nan"),
        "ci95": bootstrap_ci(diff.tolist(), n=n, seed=seed),
        "queries_better": int((diff > 0).sum()),
        "queries_worse": int((diff < 0).sum()),
    }


def top_confusions(
    wrong: dict[str, Counter[str]], labels: list[str], n: int = 3
) -> dict[str, dict[str, int]]:
    """For each label, the other labels its neighbours most often carry."""
    return {label: dict(wrong[label].most_common(n)) for label in labels if wrong.get(label)}


def percentile_ms(seconds: list[float], q: float) -> float:
    """The ``q``-th percentile of durations in seconds, in milliseconds."""
    return float(np.percentile(np.asarray(seconds) * 1000.0, q)) if seconds else float("nan")


def stratified_sample(df: pd.DataFrame, label: str, n: int, seed: int) -> pd.DataFrame:
    """About ``n`` rows keeping each label's share (at least one per label); all rows if n >= len."""
    if n <= 0 or n >= len(df):
        return df.reset_index(drop=True)
    frac = n / len(df)
    parts = [
        g.sample(n=max(1, round(len(g) * frac)), random_state=seed) for _, g in df.groupby(label, sort=True)
    ]
    return pd.concat(parts).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _pick(columns: list[str], explicit: str | None, candidates: tuple[str, ...], what: str) -> str:
    lower = {c.lower(): c for c in columns}
    if explicit:
        if explicit in columns:
            return explicit
        raise SourceError(f"queries file has no column {explicit!r}; columns are: {', '.join(columns)}")
    for c in candidates:
        if c in lower:
            return lower[c]
    raise SourceError(f"cannot find the query {what} column (looked for {', '.join(candidates)})")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_queries(
    path: Path, corpus_texts: set[str], text_col: str | None, label_col: str | None
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Labelled queries not in the corpus (normalised text), one per distinct text."""
    rows = read_rows(path)
    tcol = _pick(rows.columns, text_col, QUERY_TEXT, "text")
    lcol = _pick(rows.columns, label_col, QUERY_LABEL, "label")
    df = pd.DataFrame(
        {
            "text": [str(r.get(tcol) or "") for r in rows.rows],
            "label": [str(r.get(lcol) or "") for r in rows.rows],
        }
    )
    n_read = len(df)
    df = df[(df.text.str.strip() != "") & (df.label.str.strip() != "")]
    df = df.assign(norm=df.text.map(normalise))
    in_corpus = df.norm.isin(corpus_texts)
    n_in_corpus = int(in_corpus.sum())
    df = df[~in_corpus].drop_duplicates("norm")
    return df[["text", "label"]], {
        "read": n_read,
        "in_corpus_excluded": n_in_corpus,
        "distinct_unseen": len(df),
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m src.retrieval.evaluate",
        description="Same-intent precision@k, MRR and search latency of the knowledge base "
        "on labelled queries.",
    )
    p.add_argument(
        "--corpus", type=Path, required=True, help="resolved tickets CSV/JSONL (ingested into a temp store)"
    )
    p.add_argument("--queries", type=Path, required=True, help="labelled queries CSV/JSONL (text + intent)")
    p.add_argument(
        "--json", type=Path, required=True, dest="out", help="output JSON (Markdown written next to it)"
    )
    p.add_argument("--k", type=int, default=5, help="hits per query (default 5)")
    p.add_argument("--sample", type=int, default=2000, help="stratified sample of queries (0 = all)")
    p.add_argument("--seed", type=int, default=13, help="sampling seed")
    p.add_argument("--query-text-column", default=None)
    p.add_argument("--query-label-column", default=None, help="label column holding the intent")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument(
        "--filtered-sample", type=int, default=100, help="queries also timed with an intent filter"
    )
    p.add_argument(
        "--backend", choices=["auto", "onnx", "torch"], default=None, help="embedder (default: settings)"
    )
    p.add_argument(
        "--mode",
        choices=["dense", "hybrid", "both"],
        default="dense",
        help="dense vectors, dense + BM25 fused with RRF, or both on the same store (default dense)",
    )
    p.add_argument(
        "--qdrant-url",
        default=None,
        help="evaluate against a Qdrant server (a throw-away collection, dropped afterwards) instead of "
        "an embedded store in a temp folder",
    )
    p.add_argument(
        "--qdrant-api-key", default=None, help="API key for --qdrant-url (or TRIAGE_QDRANT_API_KEY)"
    )
    p.add_argument("--no-progress", action="store_true")
    return p


def _modes_table(report: dict) -> list[str]:
    """Dense vs hybrid side by side when both ran (same store, same queries)."""
    modes = report.get("modes") or {}
    if len(modes) < 2:
        return [""]
    k = report["k"]
    lines = [
        "",
        f"| mode | precision@{k} | 95% interval | MRR@{k} | p50 ms | p95 ms |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for name, m in modes.items():
        lo, hi = m["precision_at_k_ci95"]
        lines.append(
            f"| {name} | {m['precision_at_k']:.4f} | {lo:.4f} – {hi:.4f} | {m['mrr']:.4f} "
            f"| {m['latency_ms']['p50']:.1f} | {m['latency_ms']['p95']:.1f} |"
        )
    diff = report.get("hybrid_minus_dense_precision")
    if diff:
        lo, hi = diff["ci95"]
        lines.append(
            f"\nHybrid minus dense, same queries: {diff['mean']:+.4f} (paired bootstrap 95% interval "
            f"{lo:+.4f} – {hi:+.4f}); hybrid better on {diff['queries_better']} queries, worse on "
            f"{diff['queries_worse']}."
        )
    return [*lines, ""]


def _summary_markdown(report: dict) -> str:
    t = report["targets"]
    lat = report["latency_ms"]
    ing = report["ingest"]
    env = report["environment"]
    lines = [
        "# Retrieval evaluation",
        "",
        f"Corpus `{report['corpus']['path']}` ({ing['upserted']} tickets stored of {ing['read']} read; "
        f"{ing['deduped']} near-duplicates dropped); queries `{report['queries']['path']}` "
        f"({report['queries']['evaluated']} evaluated, stratified sample of "
        f"{report['queries']['distinct_unseen']} distinct texts not in the corpus, "
        f"seed {report['queries']['seed']}).",
        f"Embedding model `{env['embedding_model']}` ({env['embedding_backend']}), "
        f"Qdrant {env['qdrant_mode']}, k = {report['k']}, mode `{report['mode']}`"
        + (" (corpus has no replies: placeholders)" if report["corpus"].get("placeholder_replies") else "")
        + ".",
        "",
        "| metric | value | target | met |",
        "|---|---:|---:|:---:|",
        f"| same-intent precision@{report['k']} | {report['precision_at_k']:.4f} "
        f"| ≥ {TARGETS['precision_at_k']} | {'yes' if t['precision_at_k'] else 'no'} |",
        f"| precision@{report['k']} bootstrap 95% interval | {report['precision_at_k_ci95'][0]:.4f} – "
        f"{report['precision_at_k_ci95'][1]:.4f} | | |",
        f"| MRR@{report['k']} | {report['mrr']:.4f} | | |",
        f"| hit rate@{report['k']} (≥1 same-intent hit) | {report['hit_rate_at_k']:.4f} | | |",
        f"| search latency p50 (incl. embedding) | {lat['p50']:.1f} ms | ≤ {TARGETS['latency_p50_ms']} ms "
        f"| {'yes' if t['latency_p50_ms'] else 'no'} |",
        f"| search latency p95 (incl. embedding) | {lat['p95']:.1f} ms | | |",
        f"| CPU time per search p50 (all threads) | {report['cpu_ms_per_search']['p50']:.1f} ms | | |",
        f"| query embedding alone p50 | {report['embed_latency_ms']['p50']:.1f} ms | | |",
        f"| search with intent filter p50 | {report['filtered_latency_ms']['p50']:.1f} ms | | |",
        f"| ingest rate (mask + dedupe + embed + upsert) | {ing['tickets_per_s']:.0f} tickets/s | "
        f"≥ {TARGETS['ingest_tickets_per_s']:.0f} | {'yes' if t['ingest_tickets_per_s'] else 'no'} |",
        f"| ingest per CPU-second | {ing['tickets_per_cpu_s']:.0f} tickets | | |",
        *_modes_table(report),
        "Worst intents by precision: "
        + ", ".join(f"`{k}` {v:.3f}" for k, v in list(report["per_intent_precision"].items())[:5]),
        "",
        "Their neighbours' intents instead: "
        + "; ".join(
            f"`{k}` -> " + ", ".join(f"{w} ({c})" for w, c in v.items())
            for k, v in report["confusions_worst_intents"].items()
        ),
        "",
        f"Hardware: {env['platform']}, {env['cpu_count']} CPUs, torch threads {env['torch_threads']}, "
        f"load average {env['load_avg_before']} before / {env['load_avg_after']} after. "
        "**The CPU is shared with other engineers' jobs (training, tests) while this ran**, so "
        "latency and ingest rate are pessimistic and vary run to run.",
        "",
        f"Command: `{report['command']}`",
        "",
    ]
    return "\n".join(lines)


@dataclass
class ModeRun:
    """Per-query outcomes of one retrieval mode over the query sample."""

    precisions: list[float] = field(default_factory=list)
    rrs: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    cpu_times: list[float] = field(default_factory=list)
    per_intent: dict[str, list[float]] = field(default_factory=dict)
    wrong: dict[str, Counter[str]] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        return {
            "precision_at_k": round(statistics.fmean(self.precisions), 4),
            "precision_at_k_ci95": bootstrap_ci(self.precisions),
            "mrr": round(statistics.fmean(self.rrs), 4),
            "hit_rate_at_k": round(statistics.fmean(1.0 if r > 0 else 0.0 for r in self.rrs), 4),
            "latency_ms": {
                "p50": round(percentile_ms(self.latencies, 50), 2),
                "p95": round(percentile_ms(self.latencies, 95), 2),
                "mean": round(1000 * statistics.fmean(self.latencies), 2),
            },
        }


def run_mode(
    kb: KnowledgeBase, texts: list[str], labels: list[str], k: int, hybrid: bool, progress: bool
) -> ModeRun:
    """Search every query once (query embedding included in the latency) and score the hits."""
    run = ModeRun()
    for q in texts[:10]:  # warm-up: first calls allocate
        kb.search(q, k=k, hybrid=hybrid)
    pairs = list(zip(texts, labels, strict=True))
    desc = "search (hybrid)" if hybrid else "search (dense)"
    for q, label in tqdm(pairs, desc=desc, disable=not progress, file=sys.stderr):
        t0, c0 = time.perf_counter(), time.process_time()
        hits = kb.search(q, k=k, hybrid=hybrid)
        run.latencies.append(time.perf_counter() - t0)
        run.cpu_times.append(time.process_time() - c0)
        hit_labels = [h.ticket.intent for h in hits]
        p = precision_at_k(hit_labels, label, k)
        run.precisions.append(p)
        run.rrs.append(reciprocal_rank(hit_labels, label, k))
        run.per_intent.setdefault(label, []).append(p)
        run.wrong.setdefault(label, Counter()).update(str(h) for h in hit_labels if h != label)
    return run


NO_REPLY = "(no reply in the evaluation corpus)"


def corpus_with_replies(path: Path, mapping_text: str, label: str | None, out_dir: Path) -> Path:
    """A copy of a labelled-utterance corpus (e.g. CLINC150) with a placeholder reply per row.

    Retrieval quality only depends on the texts and labels; ingest requires a reply column.
    """
    rows = read_rows(path)
    target = out_dir / "corpus_with_replies.jsonl"
    with target.open("w", encoding="utf-8") as f:
        for r in rows.rows:
            row = {"text": r.get(mapping_text), "response": NO_REPLY}
            if label:
                row["intent"] = r.get(label)
            f.write(json.dumps(row) + "\n")
    return target


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.k < 1:
        print("error: --k must be >= 1", file=sys.stderr)
        return 2
    import torch  # already loaded by the embedder; imported here to set/report its threads

    if args.threads:
        torch.set_num_threads(args.threads)

    base = get_settings()
    load_before = [round(x, 2) for x in os.getloadavg()]
    tmp = tempfile.TemporaryDirectory(prefix="triage-retrieval-eval-")
    collection = f"triage_eval_{uuid.uuid4().hex[:8]}"
    settings = base.model_copy(
        update={"qdrant_url": args.qdrant_url, "qdrant_path": Path(tmp.name), "qdrant_collection": collection}
    )
    if args.qdrant_api_key:
        settings = settings.model_copy(update={"qdrant_api_key": SecretStr(args.qdrant_api_key)})
    modes = ["dense", "hybrid"] if args.mode == "both" else [args.mode]
    kb: KnowledgeBase | None = None
    try:
        corpus_rows = read_rows(args.corpus)
        try:
            mapping = resolve_columns(corpus_rows.columns, {})
            corpus = args.corpus
        except SourceError:  # no reply column (raises again when the text column is missing too)
            mapping = resolve_columns([*corpus_rows.columns, "response"], {})
            corpus = corpus_with_replies(args.corpus, mapping["text"], mapping.get("intent"), Path(tmp.name))
        corpus_texts = {normalise(str(r.get(mapping["text"]) or "")) for r in corpus_rows.rows}
        queries, qinfo = load_queries(
            args.queries, corpus_texts, args.query_text_column, args.query_label_column
        )
        sample = stratified_sample(queries, "label", args.sample, args.seed)
        kb = KnowledgeBase(settings, embedder=get_embedder(settings.embedding_model, args.backend))
        stats = ingest_file(corpus, settings=settings, kb=kb, progress=not args.no_progress)
        # Search the way a service does: from a store opened fresh (after ingest built the index).
        if not args.qdrant_url:
            close_clients()
            kb = KnowledgeBase(settings, embedder=kb.embedder)
        texts, labels = sample.text.tolist(), sample.label.tolist()
        runs = {m: run_mode(kb, texts, labels, args.k, m == "hybrid", not args.no_progress) for m in modes}
        main_run = runs[modes[0]]
        embed_lat: list[float] = []
        for q in texts[:200]:
            t0 = time.perf_counter()
            kb.embedder.encode([q])
            embed_lat.append(time.perf_counter() - t0)
        filtered_lat: list[float] = []
        for q, label in list(zip(texts, labels, strict=True))[: args.filtered_sample]:
            t0 = time.perf_counter()
            kb.search(q, k=args.k, intent=label, hybrid=modes[0] == "hybrid")
            filtered_lat.append(time.perf_counter() - t0)
    except SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RetrievalUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    finally:
        if args.qdrant_url and kb is not None:
            with contextlib.suppress(Exception):  # best effort: the throw-away name is unique
                kb.backend.drop()
        close_clients()
        tmp.cleanup()

    ingest = stats.as_dict()
    summary = main_run.summary()
    per_intent, wrong = main_run.per_intent, main_run.wrong
    report = {
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python -m src.retrieval.evaluate " + " ".join(argv if argv is not None else sys.argv[1:]),
        "corpus": {
            "path": str(args.corpus),
            "sha256": _sha256(args.corpus),
            "columns": mapping,
            "placeholder_replies": corpus != args.corpus,
        },
        "queries": {
            "path": str(args.queries),
            "sha256": _sha256(args.queries),
            "seed": args.seed,
            "evaluated": len(texts),
            **qinfo,
        },
        "k": args.k,
        "mode": modes[0],
        **summary,
        "modes": {m: r.summary() for m, r in runs.items()},
        "hybrid_minus_dense_precision": paired_difference(runs["dense"].precisions, runs["hybrid"].precisions)
        if len(runs) == 2
        else None,
        "cpu_ms_per_search": {
            "p50": round(percentile_ms(main_run.cpu_times, 50), 2),
            "p95": round(percentile_ms(main_run.cpu_times, 95), 2),
        },
        "embed_latency_ms": {
            "p50": round(percentile_ms(embed_lat, 50), 2),
            "p95": round(percentile_ms(embed_lat, 95), 2),
        },
        "filtered_latency_ms": {
            "p50": round(percentile_ms(filtered_lat, 50), 2),
            "p95": round(percentile_ms(filtered_lat, 95), 2),
            "n": len(filtered_lat),
        },
        "ingest": ingest,
        "per_intent_precision": dict(
            sorted(((k, round(statistics.fmean(v), 4)) for k, v in per_intent.items()), key=lambda kv: kv[1])
        ),
        "confusions_worst_intents": top_confusions(
            wrong, sorted(per_intent, key=lambda k: statistics.fmean(per_intent[k]))[:5]
        ),
        "environment": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_avg_before": load_before,
            "load_avg_after": [round(x, 2) for x in os.getloadavg()],
            "embedding_model": settings.embedding_model if kb is None else kb.embedder.model_id,
            "embedding_backend": type(kb.embedder).__name__ if kb is not None else "",
            "qdrant_mode": f"server {args.qdrant_url}"
            if args.qdrant_url
            else f"embedded ({settings.qdrant_embedded})",
            "hnsw": {
                "m": settings.qdrant_hnsw_m,
                "ef_construct": settings.qdrant_hnsw_ef_construct,
                "ef": settings.qdrant_hnsw_ef,
                "quantization": settings.qdrant_quantization,
            },
            "shared_cpu": True,
        },
    }
    report["targets"] = {
        "precision_at_k": report["precision_at_k"] >= TARGETS["precision_at_k"],
        "latency_p50_ms": report["latency_ms"]["p50"] <= TARGETS["latency_p50_ms"],
        "ingest_tickets_per_s": ingest["tickets_per_s"] >= TARGETS["ingest_tickets_per_s"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(_summary_markdown(report))
    for m, r in report["modes"].items():
        print(
            f"{m}: precision@{args.k}={r['precision_at_k']:.4f} {r['precision_at_k_ci95']} "
            f"mrr={r['mrr']:.4f} "
            f"p50={r['latency_ms']['p50']:.1f}ms p95={r['latency_ms']['p95']:.1f}ms"
        )
    print(f"ingest={ingest['tickets_per_s']:.0f}/s queries={len(texts)} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
