"""The data tools every training run reports beside the encoder's numbers (called by ``train``).

On the run's own split: the baselines (``src.classifier.baselines``) and the failure clusters of the
misclassified test rows (``src.classifier.failure_clusters``), both on the runtime view of the test
text through the served bundle. They are added to ``eval.json`` (``baselines``, ``failure_clusters``)
and as a section of ``eval.md``, and printed. A failure here is reported, never fatal: the bundle
and its evaluation are already written.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

SECTION = "## Baselines and failure clusters"


def data_tools(bundle: Path, splits: dict[str, pd.DataFrame]) -> dict:
    """Baselines + failure clusters for the bundle on ``splits['train']`` / ``splits['test']``."""
    from src.classifier.baselines import run_baselines
    from src.classifier.failure_clusters import failure_clusters
    from src.classifier.inference import IntentClassifier
    from src.classifier.metrics import softmax
    from src.classifier.runtime_text import runtime_view

    train, test = splits["train"], splits["test"]
    clf = IntentClassifier.load(bundle)
    view = runtime_view(test["text"].tolist())
    labels = [str(test["label"].iloc[i]) for i in view.kept]
    known = [i for i, y in enumerate(labels) if y in set(clf.labels)]  # out-of-scope rows have no "right"
    texts = [view.texts[i] for i in known]
    truth = [labels[i] for i in known]
    logits, emb = clf.outputs(texts)
    preds = [clf.labels[i] for i in softmax(np.asarray(logits, dtype=np.float64), clf.temperature).argmax(1)]
    baselines = run_baselines(train["text"].tolist(), train["label"].tolist(), texts, truth)
    clusters = failure_clusters(texts, truth, preds, emb)
    n_wrong = sum(t != p for t, p in zip(truth, preds, strict=True))
    return {"baselines": baselines, "failure_clusters": clusters, "n_misclassified": n_wrong}


def add_to_eval(bundle: Path, result: dict) -> None:
    """Merge into ``eval.json`` and append (or replace) the section of ``eval.md``."""
    from src.classifier.baselines import baseline_lines
    from src.classifier.failure_clusters import clusters_markdown

    path = bundle / "eval.json"
    ev = json.loads(path.read_text(encoding="utf-8"))
    ev.update(result)
    path.write_text(json.dumps(ev, indent=1) + "\n", encoding="utf-8")
    md = bundle / "eval.md"
    text = md.read_text(encoding="utf-8") if md.is_file() else ""
    text = text.split("\n" + SECTION)[0].rstrip("\n")
    encoder = {"accuracy": ev["accuracy"], "macro_f1": ev["macro_f1"]}
    section = [SECTION, "", "Same test rows (runtime view) and training rows as the encoder above.", "",
               "```",
               *baseline_lines(result["baselines"], encoder), "```", "",
               clusters_markdown(result["failure_clusters"], result["n_misclassified"])]  # fmt: skip
    md.write_text(text + "\n\n" + "\n".join(section), encoding="utf-8")


def report_data_tools(bundle: Path, splits: dict[str, pd.DataFrame], log=print) -> dict | None:
    """The hook ``train`` calls after writing the eval pack; logs the lines, never raises."""
    from src.classifier.baselines import baseline_lines
    from src.classifier.failure_clusters import cluster_lines

    try:
        result = data_tools(bundle, splits)
        add_to_eval(bundle, result)
    except Exception as exc:  # noqa: BLE001 - the trained bundle matters more than its extra report
        log(f"WARNING: baselines / failure clusters not reported: {type(exc).__name__}: {exc}")
        return None
    ev = json.loads((bundle / "eval.json").read_text(encoding="utf-8"))
    for line in baseline_lines(result["baselines"], {"accuracy": ev["accuracy"], "macro_f1": ev["macro_f1"]}):
        log(line)
    for line in cluster_lines(result["failure_clusters"], result["n_misclassified"]):
        log(line)
    return result
