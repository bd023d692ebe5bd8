"""Cheap baselines on the encoder's own split, so a model that does not beat them is visible.

- keyword rules: per intent, the words that point to it most reliably in the training rows (precision
  of the word for the intent >= ``MIN_PRECISION``, seen >= ``MIN_COUNT`` times); a text goes to the
  intent whose keywords it hits with the most weight, the most frequent intent when it hits none;
- TF-IDF (word 1-2-grams, sublinear tf) + logistic regression.

Both train on the training split and are scored on the same test texts the encoder is scored on
(the runtime view: preprocessed and PII-masked as the graph classifies them).

    python -m src.classifier.baselines --model models/intent     # the bundle's frozen split
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

MIN_COUNT = 2
MIN_PRECISION = 0.5
KEYWORDS_PER_INTENT = 12
_WORD = re.compile(r"[a-z][a-z']{2,}")


def _words(text: str) -> set[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return {w for w in _WORD.findall(text.lower()) if w not in ENGLISH_STOP_WORDS}


class KeywordRules:
    """Learnt keyword lists per intent (readable: ``rules`` is what a support lead would write by hand)."""

    def __init__(self, texts: Sequence[str], labels: Sequence[str]) -> None:
        by_word: dict[str, Counter] = defaultdict(Counter)
        for text, label in zip(texts, labels, strict=True):
            for w in _words(text):
                by_word[w][label] += 1
        self.default = Counter(labels).most_common(1)[0][0]
        scored: dict[str, list[tuple[float, str]]] = defaultdict(list)
        for w, counts in by_word.items():
            label, n = counts.most_common(1)[0]
            total = sum(counts.values())
            if n >= MIN_COUNT and n / total >= MIN_PRECISION:
                scored[label].append((n / total, w))
        self.rules: dict[str, dict[str, float]] = {
            label: {w: p for p, w in sorted(items, reverse=True)[:KEYWORDS_PER_INTENT]}
            for label, items in scored.items()
        }

    def predict(self, texts: Sequence[str]) -> list[str]:
        out = []
        for text in texts:
            words = _words(text)
            hits = {lab: sum(p for w, p in kw.items() if w in words) for lab, kw in self.rules.items()}
            best = max(hits.items(), key=lambda kv: (kv[1], kv[0]), default=(self.default, 0.0))
            out.append(best[0] if best[1] > 0 else self.default)
        return out


def tfidf_linear(texts: Sequence[str], labels: Sequence[str]):
    """A fitted TF-IDF + logistic-regression pipeline."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
                          LogisticRegression(max_iter=2000, C=10.0))
    return model.fit(list(texts), list(labels))


def run_baselines(train_texts: Sequence[str], train_labels: Sequence[str], test_texts: Sequence[str],
                  test_labels: Sequence[str]) -> dict[str, dict]:
    """Accuracy and macro-F1 of each baseline on the test rows (labels the model knows)."""
    from src.classifier.metrics import classification_summary

    labels = sorted(set(train_labels) | set(test_labels))
    preds = {
        "keyword_rules": KeywordRules(train_texts, train_labels).predict(test_texts),
        "tfidf_logreg": list(tfidf_linear(train_texts, train_labels).predict(list(test_texts))),
    }
    out = {}
    for name, pred in preds.items():
        s = classification_summary(list(test_labels), pred, labels)
        out[name] = {"accuracy": s["accuracy"], "macro_f1": s["macro_f1"], "n": len(pred)}
    return out


def baseline_lines(baselines: dict[str, dict], encoder: dict | None = None) -> list[str]:
    """One line per system, the encoder first, and a warning when a baseline is as good."""
    names = {"keyword_rules": "keyword rules", "tfidf_logreg": "TF-IDF + logistic regression"}
    lines = []
    if encoder:
        lines.append(f"encoder                                accuracy {encoder['accuracy']:.4f}  "
                     f"macro-F1 {encoder['macro_f1']:.4f}")
    for key, m in baselines.items():
        name = names.get(key, key)
        lines.append(f"baseline {name:<29} accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}")
    if encoder:
        best = max(baselines.values(), key=lambda m: m["macro_f1"], default=None)
        if best is not None and best["macro_f1"] >= encoder["macro_f1"]:
            lines.append("WARNING: a baseline matches or beats the encoder on macro-F1 on this split")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.classifier.baselines",
                                     description="Keyword rules and TF-IDF + logistic regression on a "
                                     "bundle's frozen train/test split, beside its own test numbers.")
    parser.add_argument("--model", type=Path, default=None, help="bundle (default: TRIAGE_MODEL_DIR)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    from src.classifier.data import DataError, load_split
    from src.classifier.runtime_text import runtime_view
    from src.config import get_settings

    model = args.model or get_settings().model_dir
    try:
        train, _ = load_split(model, "train")
        test, description = load_split(model, "test")
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    view = runtime_view(test["text"].tolist())
    labels = [test["label"].iloc[i] for i in view.kept]
    result = run_baselines(train["text"].tolist(), train["label"].tolist(), view.texts, labels)
    encoder = None
    eval_path = Path(model) / "eval.json"
    if eval_path.is_file():
        ev = json.loads(eval_path.read_text(encoding="utf-8"))
        encoder = {"accuracy": ev["accuracy"], "macro_f1": ev["macro_f1"]}
    print(f"{description}, {len(labels)} rows:")
    for line in baseline_lines(result, encoder):
        print("  " + line)
    if args.json:
        report = {"data": description, "baselines": result, "encoder": encoder}
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
