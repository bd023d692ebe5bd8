"""``python -m src.eval.runner``: zero-shot LLM vs classifier-only vs hybrid on the same tickets.

Loads the tickets (default: the Bitext test split from the classifier bundle's frozen manifest),
adds the hand-written escalation slice, runs every requested system on every ticket (resumable:
each finished (system, ticket) pair is appended to ``<out>/benchmark_runs/<fingerprint>.jsonl``),
then writes ``<out>/benchmark.json``, PNG figures under ``<out>/benchmark/`` and the Markdown page.
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
from src.eval.systems import SYSTEM_NAMES, ClassifierOnlySystem, HybridSystem, ZeroShotSystem
from src.eval.types import BenchSystem, BenchTicket, TicketResult
from src.eval.zero_shot import PROMPT_VERSION

DEFAULT_SLICE = Path("benchmarks/escalation_slice.jsonl")
DEFAULT_DOCS = Path("docs/pipeline_comparison.md")


class BenchmarkError(RuntimeError):
    """A user-fixable problem (missing bundle, bad file, unknown system): printed, no traceback."""


# ------------------------------------------------------------------------------------------ tickets
def _ticket_id(prefix: str, text: str, label: str) -> str:
    return prefix + hashlib.sha256(f"{text}\x1f{label}".encode()).hexdigest()[:16]


def load_data_tickets(
    data: str | None, model_dir: Path, limit: int | None, seed: int
) -> tuple[list[BenchTicket], str]:
    """Labelled tickets (cleaned, stratified to ``limit``) and a one-line description of their origin."""
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
    df = stratified_sample(df, limit, seed)
    tickets = [
        BenchTicket(
            id=_ticket_id("d-", t, lab),
            text=t,
            label=lab,
            source="data",
            should_escalate=lab.strip().lower() in {"oos", "out_of_scope", "out-of-scope"},
        )
        for t, lab in zip(df["text"], df["label"], strict=True)
    ]
    return tickets, description


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
def write_outputs(
    results: dict[str, list[TicketResult]],
    labels: list[str],
    run_meta: dict,
    out_dir: Path,
    docs: Path | None,
) -> dict:
    """benchmark.json, PNGs under ``<out>/benchmark/`` and the Markdown page; returns the report dict."""
    from src.eval.plots import plot_route_mix, system_plots

    fig_dir = out_dir / "benchmark"
    blocks = {name: system_metrics(rows, labels) for name, rows in results.items()}
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
        description="Benchmark zero-shot LLM vs classifier-only vs hybrid triage on the same tickets.",
    )
    p.add_argument(
        "--data",
        default=None,
        help="labelled CSV/JSONL (default: Bitext test split from the bundle manifest)",
    )
    p.add_argument(
        "--model", type=Path, default=None, help="classifier bundle dir (default: Settings.model_dir)"
    )
    p.add_argument(
        "--systems", default=",".join(SYSTEM_NAMES), help="comma-separated: zero-shot,classifier-only,hybrid"
    )
    p.add_argument(
        "--llm",
        default=None,
        metavar="PROVIDER[:MODEL]",
        help="e.g. local, local:smollm2, anthropic:claude-haiku-4-5",
    )
    p.add_argument("--limit", type=int, default=None, help="stratified sample of N labelled tickets")
    p.add_argument("--seed", type=int, default=13, help="sampling seed (default 13)")
    p.add_argument("--out", type=Path, default=Path("reports"), help="output dir (default reports/)")
    p.add_argument(
        "--escalation-slice",
        type=Path,
        default=DEFAULT_SLICE,
        help=f"JSONL slice (default {DEFAULT_SLICE}; '' = none)",
    )
    p.add_argument(
        "--docs",
        type=Path,
        default=DEFAULT_DOCS,
        help=f"Markdown page to write (default {DEFAULT_DOCS}; '' = none)",
    )
    p.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="time budget: start no new ticket after this; the report covers finished tickets "
        "(marked partial) and the same command resumes the rest",
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="run nothing: rebuild benchmark.json, figures and docs from this run's results log",
    )
    p.add_argument("--fresh", action="store_true", help="ignore finished results of an earlier identical run")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _now() -> float:
    """The budget clock (a function so tests can move time)."""
    return time.monotonic()


def interleave(tickets: list[BenchTicket], seed: int) -> list[BenchTicket]:
    """Seeded shuffle of data + slice tickets, so a run stopped early is a fair sample of both."""
    order = np.random.default_rng(seed).permutation(len(tickets))
    return [tickets[i] for i in order]


def run(
    args: argparse.Namespace,
    settings: Settings | None = None,
    systems_override: list[BenchSystem] | None = None,
    provider: Any | None = None,
) -> dict:
    """Everything behind the CLI (tests inject fake ``systems_override`` or a fake LLM ``provider``)."""
    settings = settings or get_settings()
    model_dir = Path(args.model) if args.model is not None else settings.model_dir
    names = parse_systems(args.systems)
    if args.limit is not None and args.limit <= 0:
        raise BenchmarkError("--limit must be a positive number of tickets")

    data_tickets, description = load_data_tickets(args.data, model_dir, args.limit, args.seed)
    slice_path = (
        args.escalation_slice
        if args.escalation_slice and str(args.escalation_slice) not in ("", ".")
        else None
    )
    tickets = interleave(dedupe(data_tickets + load_slice(slice_path)), args.seed)
    if args.max_minutes is not None and args.max_minutes <= 0:
        raise BenchmarkError("--max-minutes must be positive")
    deadline = None if args.max_minutes is None else _now() + 60.0 * args.max_minutes
    if args.report_only:
        deadline = _now() - 1.0  # start nothing: rebuild the outputs from the results log

    classifier = None
    if systems_override is None and (
        "classifier-only" in names or "hybrid" in names or (model_dir / "bundle.json").is_file()
    ):
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

    llm_desc = None if provider is None else f"{provider.name}:{provider.model}"
    if provider is None and systems_override is None and ("zero-shot" in names or "hybrid" in names):
        provider = load_provider(settings, args.llm)
        llm_desc = f"{provider.name}:{provider.model}"
    config = {
        "classifier": getattr(classifier, "version", None),
        "llm": llm_desc,
        "seed": args.seed,
        "limit": args.limit,
        "data": args.data,
        "prompt": PROMPT_VERSION,
    }
    fingerprint = run_fingerprint(sorted(tickets, key=lambda t: t.id), config)
    log = ResultLog(Path(args.out) / "benchmark_runs" / f"{fingerprint}.jsonl")
    if args.fresh and log.path.exists():
        log.path.unlink()

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
                else:
                    hybrid, hybrid_notes = build_hybrid(
                        hybrid_settings(settings, model_dir, Path(tmp)), provider, fingerprint
                    )
                    systems.append(hybrid)
        results = run_benchmark(
            tickets, systems, log, progress=not args.no_progress, deadline=deadline, clock=_now
        )
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
    run_meta = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "command": "python -m src.eval.runner "
        + shlex.join(a for a in getattr(args, "argv", sys.argv[1:]) if a != "--report-only"),
        "rebuilt_from_log": bool(args.report_only),
        "fingerprint": fingerprint,
        "results_log": str(log.path),
        "report_path": str(Path(args.out) / "benchmark.json"),
        "hardware": hardware(),
        "models": {"classifier": classifier_desc, "llm": llm_desc},
        "data": {
            "description": description,
            "n_tickets": n_data_done,
            "n_planned": len(data_tickets),
            "n_labels": len(labels),
            "labels": labels,
            "limit": args.limit,
            "seed": args.seed,
        },
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
    docs = args.docs if args.docs and str(args.docs) not in ("", ".") else None
    return write_outputs(results, labels, run_meta, Path(args.out), docs)


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
        print(
            f"{name:16s} acc={_fmt(b['accuracy'])} macroF1={_fmt(b['macro_f1'])} "
            f"auto={_fmt(b['auto_resolve_rate'])} auto_prec={_fmt(ar['precision'])} "
            f"(n={ar['auto_resolved']}) "
            f"slice_wrongful={b['escalation_slice']['wrongful_auto_resolves']} "
            f"p50={_fmt(b['usage']['latency_p50_s'])}s p95={_fmt(b['usage']['latency_p95_s'])}s "
            f"ece={_fmt(b['ece'])} "
            f"errors={b['usage']['errors']}"
        )
    docs = args.docs if args.docs and str(args.docs) not in ("", ".") else None
    print(f"wrote {Path(args.out) / 'benchmark.json'}" + (f" and {docs}" if docs else ""))
    return 0


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


if __name__ == "__main__":
    raise SystemExit(main())
