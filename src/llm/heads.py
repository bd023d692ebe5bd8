"""``python -m src.llm.heads``: distil the LLM's ticket analysis into cheap heads (src/llm/cascade.py).

    python -m src.llm.heads label --llm local:qwen2.5-1.5b --out runs/heads/teacher.jsonl
    python -m src.llm.heads fit --labels runs/heads/teacher.jsonl      # -> bundles/analysis-heads/heads.json
    python -m src.llm.heads evaluate --llm local:qwen2.5-1.5b          # heads vs LLM vs hand labels

``label`` runs the configured LLM (the teacher, ``analyze_llm``: the LLM alone, no rules) over
training tickets that are never benchmark tickets: the Bitext 2023-08-18 release (the knowledge
base's source; rows whose text also occurs in the v11 benchmark file are dropped), real consumer
complaints (CFPB, the angry and risky end) and CLINC150 queries (off-topic text). It is resumable
(one JSONL line per ticket). ``fit`` trains one logistic regression per field on the sentence
embedding, and picks the routine gate on out-of-fold predictions with a fixed-sequence test: from
the strictest gate down, keep lowering while the one-sided 95% lower bound of "the teacher also
says routine" stays >= ``--target``. ``evaluate`` reports agreement of heads, LLM and the cascade
with the hand-labelled set (benchmarks/analysis_tickets.jsonl), which is never used for training.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from src.config import PROJECT_ROOT, SHARED_DATA, get_settings
from src.llm.cascade import FIELDS, AnalysisHeads, LinearHead, lexical, routine_score

BITEXT = SHARED_DATA / "bitext-customer-support"
DEFAULT_SOURCES = {
    "bitext": BITEXT / "bitext_release_2023-08-18.csv",
    "cfpb": SHARED_DATA / "cfpb-complaints-ibm-sample" / "cfpb_train.json",
    "clinc": SHARED_DATA / "clinc150" / "train.csv",
}
BENCHMARK_FILES = (BITEXT / "bitext_v11_text_intent.csv",)  # never train on a benchmark ticket
DEFAULT_HEADS = PROJECT_ROOT / "bundles" / "analysis-heads" / "heads.json"
HAND_LABELLED = PROJECT_ROOT / "benchmarks" / "analysis_tickets.jsonl"


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _id(source: str, text: str) -> str:
    return f"{source}-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def _excluded_texts(files: Iterable[Path]) -> set[str]:
    out: set[str] = set()
    for path in files:
        if path.is_file():
            with path.open(encoding="utf-8", newline="") as fh:
                out |= {_norm(r.get("text") or r.get("instruction") or "") for r in csv.DictReader(fh)}
    return out


def teacher_corpus(
    n_bitext: int,
    n_cfpb: int,
    n_clinc: int,
    seed: int = 7,
    sources: dict[str, Path] | None = None,
    exclude_files: Sequence[Path] = BENCHMARK_FILES,
    n_offensive: int = 0,
) -> list[dict[str, str]]:
    """Training tickets for the teacher: stratified Bitext (per intent), CFPB, CLINC; no benchmark text.

    ``n_offensive`` more Bitext requests written with offensive words (Bitext's ``W`` tag): routine
    asks in an angry voice, the cases the heads must not call calm just because the request is routine.
    """
    src = {**DEFAULT_SOURCES, **(sources or {})}
    rng = np.random.default_rng(seed)
    excluded = _excluded_texts(exclude_files)
    rows: list[dict[str, str]] = []
    if n_bitext and src["bitext"].is_file():
        with src["bitext"].open(encoding="utf-8", newline="") as fh:
            data = [r for r in csv.DictReader(fh) if _norm(r["instruction"]) not in excluded]
        offensive = sorted({r["instruction"].strip() for r in data if "W" in (r.get("tags") or "")})
        for i in rng.permutation(len(offensive))[:n_offensive]:
            rows.append({"source": "bitext-offensive", "group": "W", "text": offensive[i]})
        by_intent: dict[str, list[str]] = {}
        for r in data:
            by_intent.setdefault(r["intent"], []).append(r["instruction"].strip())
        per = max(1, n_bitext // max(1, len(by_intent)))
        for intent in sorted(by_intent):
            texts = sorted(set(by_intent[intent]))
            for i in rng.permutation(len(texts))[:per]:
                rows.append({"source": "bitext", "group": intent, "text": texts[i]})
    if n_cfpb and src["cfpb"].is_file():
        data = json.loads(src["cfpb"].read_text(encoding="utf-8"))
        for i in rng.permutation(len(data))[:n_cfpb]:
            text = str(data[i]["input"]).removeprefix("Narrative:").strip()
            text = text.split("\n")[0][:600]
            rows.append({"source": "cfpb", "group": str(data[i].get("output", "")), "text": text})
    if n_clinc and src["clinc"].is_file():
        with src["clinc"].open(encoding="utf-8", newline="") as fh:
            data = list(csv.DictReader(fh))
        for i in rng.permutation(len(data))[:n_clinc]:
            rows.append({"source": "clinc", "group": data[i]["label"], "text": data[i]["text"].strip()})
    seen: set[str] = set()
    out = []
    for r in rows:
        if r["text"] and _norm(r["text"]) not in seen and _norm(r["text"]) not in excluded:
            seen.add(_norm(r["text"]))
            out.append({"id": _id(r["source"], r["text"]), **r})
    return out


def _masked(text: str) -> str:
    from src.text.pii import mask_pii

    return mask_pii(text).text


def teacher_row(row: dict[str, str], provider: Any) -> dict[str, Any]:
    """One teacher label: the LLM alone (``analyze_llm``) on the masked text, as at runtime."""
    from src.llm.analyze import analyze_llm
    from src.llm.types import LLMError

    start = time.perf_counter()
    out: dict[str, Any] = {**row, "teacher": f"{provider.name}:{provider.model}"}
    try:
        a = analyze_llm(_masked(row["text"]), provider)
        out.update(
            sentiment=a.sentiment,
            priority=a.priority,
            escalation_risk=a.escalation_risk,
            reliable=a.reliable,
            prompt_version=a.prompt_version,
            error=None,
        )
    except LLMError as exc:
        out.update(reliable=False, error=f"{exc.kind}: {exc}")
    out["latency_s"] = round(time.perf_counter() - start, 3)
    return out


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line torn by a kill
    return rows


def _labelled(paths: Sequence[Path]) -> set[str]:
    return {r["id"] for path in paths for r in read_jsonl(path) if r.get("error") is None}


def label(
    corpus: list[dict[str, str]],
    provider: Any,
    out: Path,
    *,
    progress: bool = True,
    order_seed: int = 0,
    others: Sequence[Path] = (),
) -> int:
    """Label what ``out`` does not have yet (resumable); returns how many were labelled now.

    ``others``: output files of parallel labelling processes; a ticket one of them has labelled by the
    time this process reaches it is skipped (re-read every few tickets), so two processes split the work.
    """
    done = _labelled([out, *others])
    todo = [r for r in corpus if r["id"] not in done]
    # seeded shuffle, then sources interleaved by weight (2 Bitext : 1 CFPB : 1 offensive : 0.5 CLINC),
    # so a run stopped early already has the rarer risky kinds beside the routine ones
    todo = [todo[i] for i in np.random.default_rng(order_seed).permutation(len(todo))]
    weight, seen = {"bitext": 2.0, "clinc": 0.5}, {}
    order = []
    for r in todo:
        seen[r["source"]] = seen.get(r["source"], 0) + 1
        order.append(seen[r["source"]] / weight.get(r["source"], 1.0))
    todo = [r for _, r in sorted(zip(order, todo, strict=True), key=lambda x: x[0])]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a", encoding="utf-8") as fh:
        n = 0
        for i, row in enumerate(tqdm(todo, desc=f"teacher {provider.model}", disable=not progress)):
            if others and i % 5 == 0:
                done = _labelled(others)
            if row["id"] in done:
                continue
            fh.write(json.dumps(teacher_row(row, provider), ensure_ascii=False) + "\n")
            fh.flush()
            n += 1
    return n


# ------------------------------------------------------------------------------------------ fit
def targets(rows: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Per-field class strings of the teacher labels (escalation_risk as 'true'/'false')."""
    return {
        "sentiment": np.array([r["sentiment"] for r in rows]),
        "priority": np.array([r["priority"] for r in rows]),
        "escalation_risk": np.array(["true" if r["escalation_risk"] else "false" for r in rows]),
    }


def is_routine(row: dict[str, Any]) -> bool:
    """The teacher's reading would not change a route: no escalation risk, not angry, not P1."""
    return not row["escalation_risk"] and row["sentiment"] != "angry" and row["priority"] != "P1"


def fit_head(x: np.ndarray, y: np.ndarray, c: float = 3.0) -> LinearHead:
    from sklearn.linear_model import LogisticRegression

    classes = sorted(set(y.tolist()))
    if len(classes) == 1:  # a field the teacher never varied: a constant head
        return LinearHead((classes[0],), np.zeros((1, x.shape[1]), np.float32), np.zeros(1, np.float32))
    model = LogisticRegression(C=c, max_iter=3000, class_weight=None)
    model.fit(x, y)
    return LinearHead(
        tuple(str(k) for k in model.classes_),
        model.coef_.astype(np.float32),
        model.intercept_.astype(np.float32),
    )


def out_of_fold(x: np.ndarray, ys: dict[str, np.ndarray], folds: int, seed: int, c: float) -> list[dict]:
    """Per-ticket head probabilities from models that never saw the ticket (k-fold)."""
    from sklearn.model_selection import KFold

    probs: list[dict[str, dict[str, float]]] = [{} for _ in range(len(x))]
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(x):
        for name, y in ys.items():
            head = fit_head(x[train], y[train], c)
            p = head.proba(x[test])
            for row, i in enumerate(test):
                probs[i][name] = {cl: float(v) for cl, v in zip(head.classes, p[row], strict=True)}
    return probs


def choose_gate(
    scores: np.ndarray,
    routine: np.ndarray,
    target: float,
    alpha: float = 0.05,
    grid: Sequence[float] | None = None,
    min_support: int = 30,
) -> dict[str, Any]:
    """The routine gate by the calibration's top-down fixed-sequence test (src.graph.calibrate).

    The heads may answer alone for ``routine score > gate``; the one-sided 95% lower bound of "the
    teacher also says routine" among those tickets is >= ``target``. No passing gate -> 1.0 (never).
    """
    from src.graph.calibrate import fixed_sequence_threshold

    grid = list(grid) if grid is not None else [round(g, 3) for g in np.arange(0.99, 0.499, -0.01)]
    row = fixed_sequence_threshold(
        scores, routine, target=target, alpha=alpha, min_support=min_support, grid=grid
    )
    gate = row["auto_resolve"]
    covered = int((scores > gate).sum()) if gate is not None else 0
    return {
        "min_routine": 1.0 if gate is None else float(gate),
        "covered": covered,
        "precision": row["precision"] if gate is not None else None,
        "lower_bound": row["precision_lb"] if gate is not None else None,
        "target": target,
        "alpha": alpha,
        "min_support": min_support,
        "n": int(len(scores)),
        "coverage": covered / max(1, len(scores)),
        "stopped_at": row.get("stopped_at"),
    }


def field_agreement(truth: Sequence[dict[str, Any]], pred: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Share of tickets where each field agrees (escalation as a bool)."""
    n = len(truth)
    out: dict[str, Any] = {"n": n}
    for f in ("sentiment", "priority", "escalation_risk"):
        out[f] = round(sum(t[f] == p[f] for t, p in zip(truth, pred, strict=True)) / n, 4) if n else None
    return out


def reading_labels(probs: dict[str, dict[str, float]]) -> dict[str, Any]:
    top = {name: max(p, key=lambda k: p[k]) for name, p in probs.items()}
    return {
        "sentiment": top["sentiment"],
        "priority": top["priority"],
        "escalation_risk": top["escalation_risk"] == "true",
    }


def embed(texts: list[str], model: str | None = None) -> tuple[np.ndarray, str]:
    from src.retrieval.embedder import get_embedder

    embedder = get_embedder(model)
    return embedder.encode([_masked(t) for t in texts]), embedder.model_id


def fit(
    rows: list[dict[str, Any]],
    *,
    target: float,
    folds: int = 5,
    seed: int = 7,
    c: float = 3.0,
    embedding_model: str | None = None,
    lexical_features: int = 1024,
) -> tuple[AnalysisHeads, dict[str, Any]]:
    """Heads on all reliable teacher rows + the gate from out-of-fold predictions."""
    rows = list({r["id"]: r for r in rows if r.get("reliable") and r.get("error") is None}.values())
    if len(rows) < 50:
        raise ValueError(f"only {len(rows)} reliable teacher labels: label more tickets first")
    vectors, model_id = embed([r["text"] for r in rows], embedding_model)
    x = vectors
    if lexical_features:
        x = np.hstack([vectors, lexical([_masked(r["text"]) for r in rows], lexical_features)])
    ys = targets(rows)
    oof = out_of_fold(x, ys, folds, seed, c)
    scores = np.array([routine_score(p) for p in oof])
    routine = np.array([is_routine(r) for r in rows])
    gate = choose_gate(scores, routine, target)
    alone = [r for r, sc in zip(rows, scores, strict=True) if sc > gate["min_routine"]]
    # what the LLM would have said on the tickets the heads answer alone (out of fold): the kinds that
    # change a route (risk -> escalate, angry -> suggest, P1 -> escalate), not just "not routine"
    gate["teacher_on_heads_alone"] = {
        "n": len(alone),
        "escalation_risk": sum(bool(r["escalation_risk"]) for r in alone),
        "angry": sum(r["sentiment"] == "angry" for r in alone),
        "p1": sum(r["priority"] == "P1" for r in alone),
        "frustrated_or_p2": sum(r["sentiment"] == "frustrated" or r["priority"] == "P2" for r in alone),
    }
    heads = {name: fit_head(x, ys[name], c) for name in FIELDS}
    teacher = sorted({r.get("teacher", "?") for r in rows})
    meta = {
        "teacher": teacher,
        "prompt_versions": sorted({r.get("prompt_version", "?") for r in rows}),
        "n_train": len(rows),
        "sources": {s: sum(r["source"] == s for r in rows) for s in sorted({r["source"] for r in rows})},
        "teacher_routine_share": round(float(routine.mean()), 4),
        "gate": gate,
        "out_of_fold_agreement_with_teacher": field_agreement(rows, [reading_labels(p) for p in oof]),
        "regularisation_c": c,
        "features": f"sentence embedding ({model_id}) + {lexical_features} hashed words",
        "folds": folds,
    }
    out = AnalysisHeads(
        heads=heads,
        min_routine=gate["min_routine"],
        embedding_model=model_id,
        dimension=int(vectors.shape[1]),
        version="",
        meta=meta,
        lexical_features=lexical_features,
    )
    return AnalysisHeads.from_json(out.to_json()), meta


# ------------------------------------------------------------------------------------- evaluate
def evaluate(
    heads: AnalysisHeads, rows: list[dict[str, Any]], provider: Any | None, *, progress: bool = True
) -> dict[str, Any]:
    """Heads alone, the LLM alone (optional) and the cascade the graph runs, against hand labels.

    The cascade is exactly the graph's: heads when sure and no rule fired, heads + rules when a rule
    fired (no LLM), otherwise rules + LLM raised by the heads and marked uncertain.
    """
    from src.llm.analyze import analyze_llm
    from src.llm.cascade import cascade_analyze
    from src.llm.combine import combine
    from src.llm.injection import looks_like_injection
    from src.text.signals import escalation_signals

    gold = [
        {"sentiment": r["sentiment"], "priority": r["priority"], "escalation_risk": r["escalation"]}
        for r in rows
    ]
    vectors, _ = embed([r["text"] for r in rows], heads.embedding_model)
    readings = heads.read_many(vectors, [_masked(r["text"]) for r in rows])
    head_preds = [reading_labels(rd.probs) for rd in readings]
    llm_preds: list[dict[str, Any]] = []
    cascade_preds: list[dict[str, Any]] = []
    per_ticket = []
    for i, (row, rd) in enumerate(
        tqdm(list(zip(rows, readings, strict=True)), desc="cascade", disable=not progress)
    ):
        text = _masked(row["text"])
        signals, injection = escalation_signals(text), looks_like_injection(text)
        alone = analyze_llm(text, provider) if provider is not None else None
        if alone is not None:
            llm_preds.append(
                {
                    "sentiment": alone.sentiment,
                    "priority": alone.priority,
                    "escalation_risk": alone.escalation_risk,
                }
            )
        called = [False]

        def llm(a: Any = alone, s: Any = signals, j: Any = injection, flag: list = called) -> Any:
            flag[0] = True
            if a is None:
                raise RuntimeError("no LLM to ask")
            return combine(a, s, extra_signals=[f"prompt_injection:{n}" for n in j])

        try:
            c = cascade_analyze(text, rd, heads.version, signals, injection, llm)
            cascade = {
                "sentiment": c.sentiment,
                "priority": c.priority,
                "escalation_risk": c.escalation_risk,
                "uncertain": c.uncertain,
                "source": c.source,
                "llm_called": called[0],
            }
        except RuntimeError:  # the graph fails closed: escalate
            cascade = {
                "sentiment": None,
                "priority": None,
                "escalation_risk": True,
                "uncertain": True,
                "source": "needs-llm",
                "llm_called": True,
            }
        cascade_preds.append(cascade)
        per_ticket.append(
            {
                "id": row["id"],
                "gold": gold[i],
                "routine": round(rd.routine, 4),
                "heads": head_preds[i],
                "llm": llm_preds[-1] if alone is not None else None,
                "cascade": cascade,
            }
        )
    # what reaches a human: escalation flagged, or unsure (capped at suggest)
    human = [bool(c["escalation_risk"] or c["uncertain"]) for c in cascade_preds]
    esc = [bool(g["escalation_risk"]) for g in gold]
    report: dict[str, Any] = {
        "n": len(rows),
        "heads_vs_hand": field_agreement(gold, head_preds),
        "cascade_vs_hand": field_agreement(gold, cascade_preds),
        "cascade_llm_calls": sum(c["llm_called"] for c in cascade_preds),
        "cascade_hand_escalations_reaching_a_human": f"{sum(h for h, e in zip(human, esc, strict=True) if e)}"
        f"/{sum(esc)}",
        "heads_confident_share": round(sum(rd.confident for rd in readings) / max(1, len(readings)), 4),
        "per_ticket": per_ticket,
    }
    if llm_preds:
        report["llm_alone_vs_hand"] = field_agreement(gold, llm_preds)
        report["heads_vs_llm_alone"] = field_agreement(llm_preds, head_preds)
    return report


# ------------------------------------------------------------------------------------------ CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m src.llm.heads",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    lab = sub.add_parser("label", help="teacher labels from the configured LLM (resumable JSONL)")
    lab.add_argument("--llm", default=None, metavar="PROVIDER[:MODEL]", help="teacher (default: settings)")
    lab.add_argument("--out", type=Path, default=Path("runs/heads/teacher.jsonl"))
    lab.add_argument("--n-bitext", type=int, default=540, help="Bitext release tickets (per intent)")
    lab.add_argument("--n-cfpb", type=int, default=200, help="CFPB complaint narratives")
    lab.add_argument("--n-clinc", type=int, default=120, help="CLINC150 queries")
    lab.add_argument("--n-offensive", type=int, default=60, help="Bitext requests with offensive words")
    lab.add_argument("--seed", type=int, default=7)
    lab.add_argument(
        "--order-seed",
        type=int,
        default=0,
        help="labelling order (a second process with another seed and --out labels other tickets first)",
    )
    lab.add_argument(
        "--others",
        type=Path,
        nargs="*",
        default=[],
        help="output files of parallel labelling processes: tickets they labelled are skipped",
    )
    lab.add_argument("--no-progress", action="store_true")
    f = sub.add_parser("fit", help="fit the heads + the routine gate, write the artefact")
    f.add_argument("--labels", type=Path, nargs="+", default=[Path("runs/heads/teacher.jsonl")])
    f.add_argument("--out", type=Path, default=DEFAULT_HEADS)
    f.add_argument(
        "--target",
        type=float,
        default=0.90,
        help="lower 95%% bound of 'the teacher's reading would not change the route' among tickets the heads "
        "answer alone (0.90: the lowest of 0.85/0.90/0.92/0.95 at which 'You people are incompetent ... "
        "I'm done being polite' of the hand-labelled set is not answered alone; docs/llm.md)",
    )
    f.add_argument("--c", type=float, default=3.0, help="inverse L2 regularisation of the heads")
    ev = sub.add_parser("evaluate", help="heads / LLM / cascade vs the hand-labelled set")
    ev.add_argument("--heads", type=Path, default=DEFAULT_HEADS)
    ev.add_argument("--data", type=Path, default=HAND_LABELLED)
    ev.add_argument("--llm", default=None, metavar="PROVIDER[:MODEL]", help="also run this LLM ('none')")
    ev.add_argument("--json", type=Path, default=None)
    ev.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    try:
        if args.cmd == "label":
            from src.llm.providers import get_provider

            provider = get_provider(settings, spec=args.llm)
            corpus = teacher_corpus(
                args.n_bitext, args.n_cfpb, args.n_clinc, seed=args.seed, n_offensive=args.n_offensive
            )
            n = label(
                corpus,
                provider,
                args.out,
                progress=not args.no_progress,
                order_seed=args.order_seed,
                others=args.others,
            )
            print(f"labelled {n} new tickets ({len(corpus)} in the corpus) -> {args.out}")
            return 0
        if args.cmd == "fit":
            rows = [r for path in args.labels for r in read_jsonl(path)]
            heads, meta = fit(rows, target=args.target, c=args.c, embedding_model=settings.embedding_model)
            heads.save(args.out)
            g = meta["gate"]
            print(
                f"wrote {args.out} ({heads.version}): {meta['n_train']} teacher labels, gate "
                f"{g['min_routine']:.3f} covers {g['coverage']:.1%} at routine precision "
                f"{g['precision'] or 0:.3f} (95% lower bound {g['lower_bound'] or 0:.3f} >= {g['target']})"
            )
            return 0
        from src.llm.evaluate import load_tickets

        heads = AnalysisHeads.load(args.heads, None)
        provider = None
        if args.llm != "none":
            from src.llm.providers import get_provider

            provider = get_provider(settings, spec=args.llm)
        report = evaluate(heads, load_tickets(args.data), provider, progress=not args.no_progress)
        report.update(
            heads=heads.version,
            heads_meta=heads.meta,
            data=str(args.data),
            llm=None if provider is None else f"{provider.name}:{provider.model}",
        )
        summary = {k: report[k] for k in report if "_vs_" in k or k.startswith("cascade_")}
        print(json.dumps(summary, indent=1))
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            print(f"wrote {args.json}")
        return 0
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
