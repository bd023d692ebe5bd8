"""``python -m src.classifier.bench --model DIR --json OUT``: serving latency, throughput, memory.

Each backend (ONNX int8, torch) is measured in its own fresh process so peak RSS is that
backend's alone. Latency is end to end through ``IntentClassifier.predict`` (validation,
tokenisation, inference, calibration, ``Prediction`` objects), i.e. what the graph pays per
ticket. The report records hardware, thread counts and the load average, because on a shared
machine other processes move these numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from src.classifier.types import BundleError
from src.system_info import cpu_model

TARGET_P50_MS = 3.0
TARGET_THROUGHPUT = 500.0
# Used when no --data is given: realistic ticket shapes and lengths (short chat to a paragraph).
SAMPLE_TICKETS: tuple[str, ...] = (
    "where is my order",
    "I want a refund",
    "how do I reset my password?",
    "my package says delivered but I never got it, can you check with the courier please",
    "Hi, I was charged twice for order {{Order Number}}. Please cancel one of the payments.",
    "can i change the shipping address on my order",
    "I need to speak to a human agent right now, this is the third time I write",
    "what payment methods do you accept",
    "please delete my account and all my data",
    "the invoice I received has the wrong company name on it, how can I get a corrected one?",
    "cancel my subscription",
    "Hello, I ordered a pair of shoes last week and they arrived in the wrong size. I would like to "
    "exchange them for a bigger size, or if that is not possible get my money back. What do I do?",
    "is there a newsletter I can sign up for",
    "I can't log in, it says my account is locked",
    "how long does delivery to Canada take",
    "I want to file a complaint about the support I got yesterday",
)


def percentile_ms(samples_s: list[float], q: float) -> float:
    """q-th percentile of durations in seconds, reported in milliseconds."""
    return float(np.percentile(np.asarray(samples_s) * 1000.0, q)) if samples_s else float("nan")


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB.

    Linux: ``VmHWM`` from /proc/self/status, which starts afresh at exec; ``ru_maxrss`` would
    carry over the parent's peak into a spawned worker. Elsewhere ``ru_maxrss`` (KiB on Linux,
    bytes on macOS).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def measure_backend(
    model: str,
    backend: str,
    texts: list[str],
    n_single: int,
    n_batches: int,
    batch_size: int,
    threads: int,
    progress: bool,
    max_seconds: float = 60.0,
) -> dict[str, Any]:
    """Run in a fresh process: load, warm up, single-ticket latency, batched throughput, peak RSS.

    Each phase stops after ``n`` calls or ``max_seconds``, whichever comes first, so a slow
    backend on a busy machine cannot hold the benchmark for many minutes.
    """
    from tqdm.auto import tqdm

    from src.classifier.inference import IntentClassifier

    rss_before = peak_rss_mb()
    start = time.perf_counter()
    clf = IntentClassifier.load(model, backend=backend, threads=threads)
    load_s = time.perf_counter() - start
    for text in texts[:10]:  # warm-up: first calls allocate arenas / JIT kernels
        clf.predict([text])
    single: list[float] = []
    for i in tqdm(
        range(n_single), desc=f"{backend} single", unit="ticket", disable=not progress, file=sys.stderr
    ):
        text = texts[i % len(texts)]
        t0 = time.perf_counter()
        clf.predict([text], batch_size=1)
        single.append(time.perf_counter() - t0)
        if sum(single) > max_seconds:
            break
    batch_times: list[float] = []
    n_batch_texts = 0
    for b in tqdm(
        range(n_batches),
        desc=f"{backend} batch-{batch_size}",
        unit="batch",
        disable=not progress,
        file=sys.stderr,
    ):
        batch = [texts[(b * batch_size + j) % len(texts)] for j in range(batch_size)]
        t0 = time.perf_counter()
        clf.predict(batch, batch_size=batch_size)
        batch_times.append(time.perf_counter() - t0)
        n_batch_texts += len(batch)
        if sum(batch_times) > max_seconds:
            break
    labels = [p.label for p in clf.predict(texts, batch_size=batch_size)]
    total = sum(batch_times)
    return {
        "backend": backend,
        "load_seconds": round(load_s, 3),
        "single": {
            "n": len(single),
            "p50_ms": round(percentile_ms(single, 50), 3),
            "p95_ms": round(percentile_ms(single, 95), 3),
            "mean_ms": round(float(np.mean(single)) * 1000.0, 3),
        },
        "batch": {
            "batch_size": batch_size,
            "n_batches": len(batch_times),
            "throughput_per_s": round(n_batch_texts / total, 1) if total > 0 else None,
            "p50_batch_ms": round(percentile_ms(batch_times, 50), 2),
        },
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_before_load_mb": round(rss_before, 1),
        "threads_setting": threads,
        "bundle_version": clf.version,
        "labels": labels,
    }


def bundle_test_texts(model: str | Path, limit: int, seed: int) -> tuple[list[str], str] | None:
    """The bundle's own held-out test texts (its split manifest), when that data is on this machine.

    Latency and throughput depend on text length, so the default benchmark uses the texts the
    model was evaluated on rather than an arbitrary set. None when the data cannot be found.
    """
    from src.classifier.data import DataError, load_split

    try:
        frame, description = load_split(Path(model), "test")
    except (OSError, KeyError, ValueError, DataError):
        return None
    texts = frame["text"].tolist()
    if not texts:
        return None
    random.Random(seed).shuffle(texts)
    return texts[:limit], f"{description} (random {min(limit, len(texts))})"


def load_texts(
    data: str | None, limit: int, seed: int, model: str | Path | None = None
) -> tuple[list[str], str]:
    """Benchmark texts: ``--data``'s texts, else the bundle's test split, else built-in tickets."""
    if data is None:
        found = bundle_test_texts(model, limit, seed) if model is not None else None
        return found or (list(SAMPLE_TICKETS), "built-in sample tickets (src/classifier/bench.py)")
    from src.classifier.data import load_labelled

    texts = [t for t in load_labelled(data)["text"].tolist() if t.strip()]
    if not texts:
        raise ValueError(f"{data} has no non-empty texts")
    random.Random(seed).shuffle(texts)
    return texts[:limit], f"{data} (random {min(limit, len(texts))} texts, seed {seed})"


def hardware() -> dict[str, Any]:
    """CPU model, cores visible to this process and the load average (shared-machine context)."""
    cpu = cpu_model()
    import platform

    import onnxruntime

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu": cpu or platform.processor(),
        "cpu_count": os.cpu_count(),
        "usable_cores": usable,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }


def run_bench(
    model: str,
    *,
    backends: list[str],
    texts: list[str],
    n_single: int,
    n_batches: int,
    batch_size: int,
    threads: int,
    progress: bool = True,
    max_seconds: float = 60.0,
) -> dict[str, Any]:
    """Measure each backend in its own spawned process; returns the report dict."""
    results: dict[str, Any] = {}
    hw_before = hardware()
    for backend in backends:
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
            results[backend] = pool.submit(
                measure_backend,
                model,
                backend,
                texts,
                n_single,
                n_batches,
                batch_size,
                threads,
                progress,
                max_seconds,
            ).result()
    report: dict[str, Any] = {"hardware": hw_before}
    report["hardware"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    if "onnx" in results and "torch" in results:
        a, b = results["onnx"]["labels"], results["torch"]["labels"]
        report["onnx_torch_label_agreement"] = round(
            sum(x == y for x, y in zip(a, b, strict=True)) / len(a), 4
        )
    for r in results.values():
        r.pop("labels", None)
    report["backends"] = results
    if "onnx" in results:
        onnx = results["onnx"]
        report["targets"] = {
            "single_p50_ms_max": TARGET_P50_MS,
            "batch_throughput_min_per_s": TARGET_THROUGHPUT,
            "onnx_single_p50_ok": onnx["single"]["p50_ms"] <= TARGET_P50_MS,
            "onnx_throughput_ok": (onnx["batch"]["throughput_per_s"] or 0) >= TARGET_THROUGHPUT,
        }
    return report


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m src.classifier.bench",
        description="Benchmark a classifier bundle: single-ticket latency p50/p95, batched throughput and "
        "peak RSS for the ONNX int8 and torch backends (each in a fresh process).",
    )
    p.add_argument(
        "--model", default=None, help="bundle directory (default: TRIAGE_MODEL_DIR, models/intent)"
    )
    p.add_argument("--json", dest="json_out", required=True, type=Path, help="where to write the JSON report")
    p.add_argument("--backends", default="onnx,torch", help="comma-separated subset of onnx,torch")
    p.add_argument(
        "--data",
        help="labelled CSV/JSONL whose texts to use (default: the bundle's test split when its data is "
        "on this machine, else built-in sample tickets)",
    )
    p.add_argument("--limit", type=int, default=1000, help="max texts sampled from --data")
    p.add_argument("--n-single", type=int, default=300, help="single-ticket calls per backend")
    p.add_argument("--n-batches", type=int, default=30, help="batches per backend for throughput")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="intra-op threads (default: TRIAGE_CLASSIFIER_THREADS; 0 = library default)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--max-seconds", type=float, default=60.0, help="time cap per phase (single / batch) per backend"
    )
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from src.config import get_settings

    settings = get_settings()
    model = str(args.model or settings.model_dir)
    threads = settings.classifier_threads if args.threads is None else args.threads
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    bad = [b for b in backends if b not in ("onnx", "torch")]
    if bad or not backends:
        print(f"error: --backends must be a subset of onnx,torch (got {args.backends!r})", file=sys.stderr)
        return 2
    if min(args.n_single, args.n_batches, args.batch_size) < 1:
        print("error: --n-single, --n-batches and --batch-size must be >= 1", file=sys.stderr)
        return 2
    try:
        from src.classifier.bundle import load_bundle_meta

        meta = load_bundle_meta(model)  # fail fast, before spawning workers
        if "onnx" in backends and not meta.get("onnx"):
            print(f"error: bundle {model} has no ONNX export; use --backends torch", file=sys.stderr)
            return 2
        texts, source = load_texts(args.data, args.limit, args.seed, model)
    except BundleError as exc:
        print(f"error: cannot load bundle {model}: {exc}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = run_bench(
        model,
        backends=backends,
        texts=texts,
        n_single=args.n_single,
        n_batches=args.n_batches,
        batch_size=args.batch_size,
        threads=threads,
        progress=not args.no_progress,
        max_seconds=args.max_seconds,
    )
    report = {
        "model": model,
        "bundle_version": meta["bundle_version"],
        "base_model": meta["base_model"].get("id"),
        "texts": source,
        "n_texts": len(texts),
        "command": "python -m src.classifier.bench " + " ".join(sys.argv[1:] if argv is None else argv),
        "note": "latency is end to end through IntentClassifier.predict; measured on a shared machine "
        "(see load_average) so other processes may inflate the numbers",
        **report,
    }
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for name, r in report["backends"].items():
        print(
            f"{name:5s}  single p50 {r['single']['p50_ms']:.2f} ms  p95 {r['single']['p95_ms']:.2f} ms  "
            f"batch-{r['batch']['batch_size']} {r['batch']['throughput_per_s']}/s  "
            f"peak RSS {r['peak_rss_mb']:.0f} MB  "
            f"load {r['load_seconds']:.1f}s"
        )
    print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
