"""``python -m src.eval.runner``: zero-shot LLM vs classifier-only vs classifier+rules vs hybrid.

Loads the tickets (default: the Bitext test split from the classifier bundle's frozen manifest),
drops the ones the knowledge base already holds (the hybrid would retrieve its own test ticket),
adds the hand-written escalation slice, runs every requested system on every ticket (resumable:
each finished (system, ticket) pair is appended to ``<out>/benchmark_runs/<fingerprint>.jsonl``,
error rows are retried), then writes ``<out>/benchmark.json``, PNG figures under
``<out>/benchmark/`` and, with ``--docs`` or ``--publish``, the Markdown page.

Honest by default: output goes to the git-ignored ``runs/benchmark``; only ``--publish`` writes the
committed ``reports/`` + ``docs/pipeline_comparison.md``. The fingerprint covers the code commit,
prompts, thresholds, similarity cut-offs, knowledge base and model files, so a run never resumes
across a changed configuration; every row carries the fingerprint, commit and host.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import shlex
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from src.config import Settings, get_settings
from src.eval.execute import common_tickets, run_benchmark
from src.eval.metrics import system_metrics
from src.eval.report import check_targets, hardware, render_markdown
from src.eval.results import ResultLog, run_fingerprint
from src.eval.sampling import stratified_sample
from src.eval.systems import (
    SYSTEM_NAMES,
    ClassifierOnlySystem,
    ClassifierRulesSystem,
    HybridSystem,
    ZeroShotSystem,
)
from src.eval.types import BenchSystem, BenchTicket, TicketResult

DEFAULT_SLICE = Path("benchmarks/escalation_slice.jsonl")
DEFAULT_DOCS = Path("docs/pipeline_comparison.md")
DEFAULT_OUT = Path("runs/benchmark")  # git-ignored: smoke runs never overwrite the committed headline
PUBLISH_OUT = Path("reports")


class BenchmarkError(RuntimeError):
    """A user-fixable problem (missing bundle, bad file, unknown system): printed, no traceback."""


# ------------------------------------------------------------------------------------------ tickets
def _ticket_id(prefix: str, text: str, label: str) -> str:
    return prefix + hashlib.sha256(f"{text}\x1f{label}".encode()).hexdigest()[:16]


def load_labelled_rows(data: str | None, model_dir: Path) -> tuple[Any, str]:
    """All labelled rows (cleaned; the bundle's frozen test split by default) and where they came from."""
    from src.classifier.data import DataError, clean_labelled, load_labelled, split_from_manifest

    try:
        if data is not None:
            df, _ = clean_labelled(load_labelled(data), source=str(data))
            description = f"`{data}` (all rows after cleaning)"
        else:
            manifest_path = model_dir / "split_manifest.json"
            if not manifest_path.is_file():
                raise BenchmarkError(
                    f"no --data given and no split manifest at {manifest_path}: train a classifier bundle "
                    "first (python -m src.classifier.train) or pass --data FILE / --model DIR"
                )
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            source = manifest.get("test_source") or manifest["source"]
            df, _ = clean_labelled(load_labelled(source), source=str(source))
            df = split_from_manifest(df, manifest, "test")
            description = (
                f"test split of `{source}` from `{manifest_path}` "
                f"(frozen manifest, seed {manifest.get('seed')})"
            )
    except DataError as exc:
        raise BenchmarkError(str(exc)) from None
    if df.empty:
        raise BenchmarkError("the labelled data has no usable rows")
    return df, description


def to_tickets(df: Any) -> list[BenchTicket]:
    return [
        BenchTicket(
            id=_ticket_id("d-", t, lab),
            text=t,
            label=lab,
            source="data",
            should_escalate=lab.strip().lower() in {"oos", "out_of_scope", "out-of-scope"},
        )
        for t, lab in zip(df["text"], df["label"], strict=True)
    ]


def load_data_tickets(
    data: str | None, model_dir: Path, limit: int | None, seed: int
) -> tuple[list[BenchTicket], str]:
    """Labelled tickets (cleaned, stratified to ``limit``) and a one-line description of their origin."""
    df, description = load_labelled_rows(data, model_dir)
    return to_tickets(stratified_sample(df, limit, seed)), description


def drop_kb_overlap(df: Any, kb: Any | None, mode: str) -> tuple[Any, dict[str, Any]]:
    """Remove (``drop``), refuse (``refuse``) or only count (``flag``) rows the knowledge base holds."""
    from src.eval.overlap import kb_overlap

    if kb is None:
        return df, {"checked": False, "why": "no knowledge base to check against", "mode": mode}
    try:
        hit = kb_overlap(list(df["text"]), kb)
    except Exception as exc:  # noqa: BLE001 - an unreadable KB: say so, the hybrid will fail closed anyway
        return df, {"checked": False, "why": f"{type(exc).__name__}: {str(exc)[:200]}", "mode": mode}
    info = {"checked": True, "mode": mode, "in_kb": len(hit), "of": len(df), "dropped": 0}
    if hit and mode == "refuse":
        raise BenchmarkError(
            f"{len(hit)} of {len(df)} benchmark tickets are in the knowledge base (the hybrid would retrieve "
            "its own test ticket): rebuild the KB from other data, or pass --kb-overlap drop|flag"
        )
    if hit and mode == "drop":
        df = df.drop(df.index[sorted(hit)])
        info["dropped"] = len(hit)
    return df, info


def load_slice(path: Path | None) -> list[BenchTicket]:
    """The escalation slice: JSONL rows ``{text, label, should_escalate, why}``; empty path -> no slice."""
    if path is None or str(path) == "":
        return []
    if not path.is_file():
        raise BenchmarkError(
            f"escalation slice not found: {path} (pass --escalation-slice '' to run without one)"
        )
    tickets = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            text, label = str(row["text"]), str(row["label"])
            should = row["should_escalate"]
            if not isinstance(should, bool):
                raise TypeError("should_escalate must be true or false")
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise BenchmarkError(
                f"{path}:{n}: bad slice row ({exc}); need text, label, should_escalate, why"
            ) from None
        tickets.append(
            BenchTicket(
                id=_ticket_id("s-", text, label),
                text=text,
                label=label,
                source="slice",
                should_escalate=should,
                why=str(row.get("why", "")),
            )
        )
    return tickets


def dedupe(tickets: list[BenchTicket]) -> list[BenchTicket]:
    """Keep the first of any repeated id (same text + label twice would be one resumable unit)."""
    seen: set[str] = set()
    out = []
    for t in tickets:
        if t.id not in seen:
            seen.add(t.id)
            out.append(t)
    return out


# ------------------------------------------------------------------------------------------ systems
def parse_systems(value: str) -> list[str]:
    names = [s.strip() for s in value.split(",") if s.strip()]
    bad = [s for s in names if s not in SYSTEM_NAMES]
    if bad or not names:
        raise BenchmarkError(f"unknown system(s) {bad or value!r}; choose from {', '.join(SYSTEM_NAMES)}")
    return list(dict.fromkeys(names))


def load_classifier(model_dir: Path) -> Any:
    from src.classifier.inference import IntentClassifier
    from src.classifier.types import BundleError

    if not model_dir.is_dir():
        raise BenchmarkError(f"classifier bundle not found at {model_dir}: train one or pass --model DIR")
    try:
        return IntentClassifier.load(model_dir)
    except (BundleError, FileNotFoundError) as exc:
        raise BenchmarkError(f"cannot load the classifier bundle at {model_dir}: {exc}") from None


def load_provider(settings: Settings, spec: str | None) -> Any:
    from src.llm.providers import get_provider
    from src.llm.types import LLMError

    try:
        return get_provider(settings, spec=spec)
    except (LLMError, ValueError) as exc:
        raise BenchmarkError(f"cannot set up the LLM {spec or '(from settings)'}: {exc}") from None


def hybrid_settings(settings: Settings, model_dir: Path, work_dir: Path) -> Settings:
    """Same configuration, but audit + checkpoints in a throw-away SQLite dir (never the real audit DB)."""
    update: dict[str, Any] = {
        "model_dir": model_dir,
        "database_url": None,
        "sqlite_path": work_dir / "audit.db",
        "checkpoint_sqlite_path": work_dir / "checkpoints.db",
        "outbox_dir": work_dir / "outbox",
        "langsmith_tracing": False,
    }
    return settings.model_copy(update=update)


def build_hybrid(settings: Settings, provider: Any, fingerprint: str) -> tuple[HybridSystem, list[str]]:
    """The real graph with the benchmark's LLM injected and an in-memory checkpointer.

    Returns the system and the service's startup notes (e.g. "knowledge base unavailable"), which
    go into the report: a hybrid without retrieval is not the hybrid a reader assumes.
    """
    try:
        from src.graph.deps import Deps, StartupError
        from src.graph.service import TicketIn, TriageService
    except ImportError as exc:
        raise BenchmarkError(
            f"the hybrid system needs the graph service (src/graph/service.py): {exc}"
        ) from None
    try:
        deps = Deps.from_settings(settings)
    except StartupError as exc:
        raise BenchmarkError(f"the hybrid system cannot start: {exc}") from None
    if provider is not None:
        deps = dataclasses.replace(deps, provider=provider)
    service = TriageService(deps)  # no checkpointer given -> in-memory, gone after the run
    return HybridSystem(service, TicketIn, id_prefix=f"bench-{fingerprint}"), list(deps.startup_notes)


# ------------------------------------------------------------------------------------------- report
def hybrid_quality(results: dict[str, list[TicketResult]], references: dict, tickets: dict[str, BenchTicket]
                   ) -> dict[str, Any]:  # fmt: skip
    """Draft quality of every system that drafts (the hybrid) against the held-out reference replies."""
    from src.eval.draft_quality import score_drafts

    out: dict[str, Any] = {}
    embedder = None
    for name, rows in results.items():
        items = [
            {"text": tickets[r.ticket_id].text, "label": r.label, "draft": r.details.get("draft"),
             "source": r.details.get("draft_source"), "grounding": r.details.get("grounding")}
            for r in rows if r.source == "data" and r.ticket_id in tickets and "draft_source" in r.details
        ]  # fmt: skip
        if not items:
            continue
        if embedder is None:
            from src.retrieval.embedder import get_embedder

            embedder = get_embedder()
        summary, scored = score_drafts(items, references, embedder)
        by_source = {}
        for source in sorted({str(r["source"]) for r in scored}):
            from src.eval.draft_quality import summarise

            by_source[source] = summarise([r for r in scored if str(r["source"]) == source])
        out[name] = {**summary, "per_source": by_source}
    return out


def write_outputs(
    results: dict[str, list[TicketResult]],
    labels: list[str],
    run_meta: dict,
    out_dir: Path,
    docs: Path | None,
    draft_quality: dict[str, Any] | None = None,
) -> dict:
    """benchmark.json, PNGs under ``<out>/benchmark/`` and the Markdown page; returns the report dict."""
    from src.eval.plots import plot_route_mix, system_plots

    fig_dir = out_dir / "benchmark"
    blocks = {name: system_metrics(rows, labels) for name, rows in results.items()}
    for name, quality in (draft_quality or {}).items():
        blocks[name]["draft_quality"] = quality
    plots: dict[str, Any] = {
        "systems": {name: system_plots(name, rows, labels, fig_dir) for name, rows in results.items()}
    }
    plots["route_mix"] = str(
        plot_route_mix(
            {n: b["route_mix"]["shares"] for n, b in blocks.items()},
            fig_dir / "route_mix.png",
            title=f"Route mix on {run_meta['data']['n_tickets']} labelled tickets",
        )
    )
    report = {
        "run": run_meta,
        "systems": blocks,
        "targets": {name: check_targets(b) for name, b in blocks.items()},
        "plots": plots,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "benchmark.json").write_text(
        json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8"
    )
    if docs is not None and str(docs) != "":
        docs.parent.mkdir(parents=True, exist_ok=True)
        docs.write_text(render_markdown(report, docs.parent), encoding="utf-8")
    return report


# ---------------------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m src.eval.runner",
        description="Benchmark zero-shot LLM vs classifier-only vs classifier+rules vs hybrid triage on the "
        "same tickets (resumable; output to the git-ignored runs/benchmark unless --publish).",
    )
    p.add_argument("--data", default=None,
                   help="labelled CSV/JSONL (default: Bitext test split from the bundle manifest)")
    p.add_argument("--model", type=Path, default=None, help="classifier bundle (default: Settings.model_dir)")
    p.add_argument("--systems", default=",".join(SYSTEM_NAMES), metavar="NAMES",
                   help=f"comma-separated: {','.join(SYSTEM_NAMES)}")
    p.add_argument("--llm", default=None, metavar="PROVIDER[:MODEL]",
                   help="e.g. local, local:smollm2, local:qwen2.5-1.5b, anthropic:claude-haiku-4-5")
    p.add_argument("--limit", type=int, default=None, help="stratified sample of N labelled tickets")
    p.add_argument("--seed", type=int, default=13, help="sampling seed (default 13)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help=f"output dir (default {DEFAULT_OUT}, git-ignored; --publish: {PUBLISH_OUT})")
    p.add_argument("--publish", action="store_true",
                   help=f"write the committed {PUBLISH_OUT}/benchmark.json and {DEFAULT_DOCS} (the headline)")
    p.add_argument("--escalation-slice", type=Path, default=DEFAULT_SLICE,
                   help=f"JSONL slice (default {DEFAULT_SLICE}; '' = none)")
    p.add_argument("--docs", type=Path, default=None,
                   help=f"Markdown page to write (default: none, or {DEFAULT_DOCS} with --publish)")
    p.add_argument("--kb-overlap", choices=("drop", "refuse", "flag"), default="drop",
                   help="benchmark tickets the knowledge base already holds: drop them (default), refuse to "
                   "run, or only count them")
    p.add_argument("--references", type=Path, default=None,
                   help="reference replies for the draft-quality score (default: Bitext v11 rows with "
                   "responses in the shared data folder)")
    p.add_argument("--langsmith", choices=("auto", "on", "off"), default="auto",
                   help="record each system as a LangSmith experiment: auto = when LANGSMITH_API_KEY is set")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="time budget: start no new ticket after this; the report covers finished tickets "
                   "(marked partial) and the same command resumes the rest")
    p.add_argument("--report-only", action="store_true",
                   help="run nothing: rebuild benchmark.json, figures and docs from this run's results log "
                   "(never deletes anything)")
    p.add_argument("--fresh", action="store_true",
                   help="start this configuration's results log again (not with --report-only)")
    p.add_argument("--no-retry-errors", action="store_true", help="keep error rows (default: re-run them)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _now() -> float:
    """The budget clock (a function so tests can move time)."""
    return time.monotonic()


def interleave(tickets: list[BenchTicket], seed: int) -> list[BenchTicket]:
    """Seeded shuffle of data + slice tickets, so a run stopped early is a fair sample of both."""
    order = np.random.default_rng(seed).permutation(len(tickets))
    return [tickets[i] for i in order]


def open_knowledge_base(settings: Settings) -> Any | None:
    try:
        from src.retrieval.store import KnowledgeBase

        kb = KnowledgeBase.from_settings(settings)
        kb.count()
        return kb
    except Exception:  # noqa: BLE001 - no KB: the overlap check says "not checked", the hybrid fails closed
        return None


def _output_paths(args: argparse.Namespace) -> tuple[Path, Path | None]:
    out = Path(args.out)
    if args.publish and out == DEFAULT_OUT:
        out = PUBLISH_OUT
    docs = args.docs if args.docs is not None and str(args.docs) not in ("", ".") else None
    if args.publish and args.docs is None:
        docs = DEFAULT_DOCS
    return out, docs


def run(
    args: argparse.Namespace,
    settings: Settings | None = None,
    systems_override: list[BenchSystem] | None = None,
    provider: Any | None = None,
    kb: Any | None = None,
) -> dict:
    """Everything behind the CLI (tests inject fake ``systems_override``, a fake LLM ``provider`` or
    a fake knowledge base ``kb`` for the overlap check)."""
    from src.eval.provenance import git_state, host, kb_identity, llm_identity, llm_label, run_config

    settings = settings or get_settings()
    model_dir = Path(args.model) if args.model is not None else settings.model_dir
    names = parse_systems(args.systems)
    if args.limit is not None and args.limit <= 0:
        raise BenchmarkError("--limit must be a positive number of tickets")
    if args.report_only and args.fresh:
        raise BenchmarkError("--report-only never deletes results: drop --fresh (or drop --report-only)")
    if args.max_minutes is not None and args.max_minutes <= 0:
        raise BenchmarkError("--max-minutes must be positive")
    out_dir, docs = _output_paths(args)

    df, description = load_labelled_rows(args.data, model_dir)
    slice_path = (
        args.escalation_slice
        if args.escalation_slice and str(args.escalation_slice) not in ("", ".")
        else None
    )
    slice_tickets = load_slice(slice_path)
    if kb is None and systems_override is None:
        kb = open_knowledge_base(settings)
    df, overlap = drop_kb_overlap(df, kb, args.kb_overlap)
    data_tickets = to_tickets(stratified_sample(df, args.limit, args.seed))
    if kb is not None and overlap.get("checked"):
        from src.eval.overlap import near_copies

        try:
            overlap["near_copies_0.98"] = near_copies([t.text for t in data_tickets], kb)
        except Exception as exc:  # noqa: BLE001 - a count for the report, never a reason to stop
            overlap["near_copies_0.98"] = f"not measured: {type(exc).__name__}"
    tickets = interleave(dedupe(data_tickets + slice_tickets), args.seed)
    deadline = None if args.max_minutes is None else _now() + 60.0 * args.max_minutes
    if args.report_only:
        deadline = _now() - 1.0  # start nothing: rebuild the outputs from the results log

    classifier = None
    uses_classifier = {"classifier-only", "classifier-rules", "hybrid"} & set(names)
    if systems_override is None and (uses_classifier or (model_dir / "bundle.json").is_file()):
        classifier = load_classifier(model_dir)
    if classifier is not None:
        labels = list(classifier.labels)
        thresholds: Any = classifier.thresholds
    else:
        labels = sorted({t.label for t in data_tickets if not t.should_escalate})
        thresholds = {
            "auto_resolve": settings.auto_threshold,
            "suggest": settings.suggest_threshold,
            "per_intent": {},
        }

    if provider is None and systems_override is None and ("zero-shot" in names or "hybrid" in names):
        provider = load_provider(settings, args.llm)
    llm = llm_identity(provider)
    git = git_state()
    config = run_config(
        settings=settings, classifier=classifier, llm=llm,
        kb=kb_identity(kb) if "hybrid" in names else {"not_used": True},
        args={"seed": args.seed, "limit": args.limit, "data": args.data, "kb_overlap": overlap,
              "systems": names},
        git=git,
    )  # fmt: skip
    fingerprint = run_fingerprint(sorted(tickets, key=lambda t: t.id), config)
    log = ResultLog(out_dir / "benchmark_runs" / f"{fingerprint}.jsonl")
    if args.fresh and log.path.exists():
        log.path.unlink()
    stamp = {"fingerprint": fingerprint, "commit": git["commit"] + ("+dirty" if git["dirty"] else ""),
             "host": host()}  # fmt: skip

    hybrid_notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="triage-bench-") as tmp:
        if systems_override is not None:
            systems = [s for s in systems_override if s.name in names]
        else:
            systems = []
            for name in names:
                if name == "zero-shot":
                    systems.append(ZeroShotSystem(provider, labels, thresholds))
                elif name == "classifier-only":
                    systems.append(ClassifierOnlySystem(classifier))
                elif name == "classifier-rules":
                    systems.append(ClassifierRulesSystem(classifier,
                                                         supported_languages=tuple(settings.supported_languages)))
                else:
                    hybrid, hybrid_notes = build_hybrid(
                        hybrid_settings(settings, model_dir, Path(tmp)), provider, fingerprint
                    )
                    systems.append(hybrid)
        results = run_benchmark(
            tickets, systems, log, progress=not args.no_progress, deadline=deadline, clock=_now,
            stamp=stamp, retry_errors=not args.no_retry_errors,
        )  # fmt: skip
    results = common_tickets(results)
    finished = {r.ticket_id for rows in results.values() for r in rows}
    partial = len(finished) < len(tickets)

    slice_rows = [t for t in tickets if t.source == "slice" and t.id in finished]
    n_data_done = sum(1 for t in data_tickets if t.id in finished)
    classifier_desc = None
    if classifier is not None:
        meta = getattr(classifier, "meta", {}) or {}
        base = meta.get("base_model", "?")
        base = base.get("id", base) if isinstance(base, dict) else base
        classifier_desc = (
            f"`{model_dir}` version {getattr(classifier, 'version', '?')}, "
            f"base {base}, "
            f"temperature {getattr(classifier, 'temperature', float('nan')):.3f}"
        )
    from src.eval.draft_quality import DEFAULT_REFERENCES, load_references

    references = load_references(args.references or DEFAULT_REFERENCES)
    quality = hybrid_quality(results, references, {t.id: t for t in tickets}) if references else {}
    run_meta = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "command": "python -m src.eval.runner "
        + shlex.join(a for a in getattr(args, "argv", sys.argv[1:]) if a != "--report-only"),
        "rebuilt_from_log": bool(args.report_only),
        "published": bool(args.publish),
        "fingerprint": fingerprint,
        "config": config,
        "git": git,
        "host": stamp["host"],
        "results_log": str(log.path),
        "report_path": str(out_dir / "benchmark.json"),
        "hardware": hardware(),
        "models": {"classifier": classifier_desc, "llm": llm_label(llm)},
        "data": {
            "description": description,
            "n_tickets": n_data_done,
            "n_planned": len(data_tickets),
            "n_labels": len(labels),
            "labels": labels,
            "limit": args.limit,
            "seed": args.seed,
        },
        "kb_overlap": overlap,
        "references": {"path": str(args.references or DEFAULT_REFERENCES), "n": len(references)},
        "escalation_slice": {
            "path": str(slice_path) if slice_path else None,
            "n_should_escalate": sum(1 for t in slice_rows if t.should_escalate),
            "n_controls": sum(1 for t in slice_rows if not t.should_escalate),
        },
        "systems": [s.name for s in systems],
        "hybrid_startup_notes": hybrid_notes,
        "partial": partial,
        "max_minutes": args.max_minutes,
    }
    report = write_outputs(results, labels, run_meta, out_dir, docs, quality)
    from src.eval.experiments import langsmith_configured, record_experiments

    wanted = args.langsmith == "on" or (args.langsmith == "auto" and systems_override is None)
    if wanted and langsmith_configured(settings):
        report["run"]["langsmith"] = record_experiments(settings, tickets, results, run_meta)
    elif args.langsmith == "on":
        report["run"]["langsmith"] = {"error": "LANGSMITH_API_KEY is not set"}
    return report


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        report = run(args)
    except BenchmarkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "interrupted: finished tickets are saved; run the same command again to resume", file=sys.stderr
        )
        return 130
    for name, b in report["systems"].items():
        ar = b["auto_resolve_precision"]
        sl = b["escalation_slice"]
        print(
            f"{name:16s} acc={_fmt(b['accuracy'])} macroF1={_fmt(b['macro_f1'])} "
            f"auto={_fmt(b['auto_resolve_rate'])} auto_prec={_fmt(ar['precision'])} "
            f"[{ar['ci95'][0]:.3f}, {ar['ci95'][1]:.3f}] (n={ar['auto_resolved']}) "
            f"slice_wrongful={sl['wrongful_auto_resolves']}/{sl['n_should_escalate']} "
            f"(upper {sl['wrongful_ci95'][1]:.3f}) caught_by_failure={sl['caught_by_failure']} "
            f"p50={_fmt(b['usage']['latency_p50_s'])}s p95={_fmt(b['usage']['latency_p95_s'])}s "
            f"errors={b['usage']['errors']}"
        )
    out_dir, docs = _output_paths(args)
    print(f"wrote {out_dir / 'benchmark.json'}" + (f" and {docs}" if docs else ""))
    return 0


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


if __name__ == "__main__":
    raise SystemExit(main())
