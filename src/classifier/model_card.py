"""``MODEL_CARD.md`` for a bundle, in Hugging Face model-card format, rendered from the bundle itself.

Why generated: every number in the card comes from ``bundle.json`` (training config, versions,
data hash) and ``eval.json`` (what the evaluation measured), so the card cannot drift from the model
it describes. ``python -m src.classifier.model_card DIR`` re-renders it (e.g. after re-evaluation).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from src.classifier.base_models import ALIASES
from src.classifier.bundle import ADAPTER_CONFIG, read_parts
from src.classifier.types import BundleError

CARD_FILE = "MODEL_CARD.md"
EVAL_FILE = "eval.json"
BASE_MODEL_HUB_IDS = ALIASES  # one alias table (src.classifier.base_models)
# Known datasets: (hub id for the card's `datasets`, bias / provenance note for the data card).
KNOWN_DATA: dict[str, tuple[str, str]] = {
    "bitext": (
        "bitext/Bitext-customer-support-llm-chatbot-training-dataset",
        "Bitext customer-support data is synthetic/hybrid (seed texts expanded by NLG and curated by "
        "linguists), not live customer traffic: utterances are cleaner, more templated and more balanced "
        "than real tickets, English only, and placeholders such as `{{Order Number}}` stand in for "
        "entities. Scores on its held-out split overstate accuracy on real tickets (TF-IDF + linear SVM "
        "already reaches ~0.995 macro-F1). Licence CDLA-Sharing-1.0.",
    ),
    "clinc": (
        "clinc/clinc_oos",
        "CLINC150 utterances were crowd-sourced in English (paid workers writing queries for given "
        "intents), so they reflect the writers' phrasing rather than real users; 150 intents across 10 "
        "domains plus out-of-scope queries. Licence CC-BY-3.0.",
    ),
    "banking77": (
        "PolyAI/banking77",
        "BANKING77: English online-banking queries (single domain, fine-grained intents). Licence CC-BY-4.0.",
    ),
    "cfpb": (
        "",
        "CFPB consumer complaints are real US consumer narratives, heavily preprocessed and redacted; "
        "product labels reflect the complainant's own choice.",
    ),
}
LIMITATIONS = [
    "Closed label set: a ticket about something outside the trained intents still gets one of them. "
    "Use the calibrated confidence, margin and entropy (and the service's thresholds) to send "
    "uncertain tickets to a human; out-of-scope detection from confidence alone is imperfect.",
    "English only unless trained on other languages; other languages, code, HTML or very short texts "
    "give unreliable predictions.",
    "Texts longer than the maximum sequence length are truncated (flagged `truncated=true`); intent "
    "stated late in a long email can be missed.",
    "Calibration (temperature scaling and the auto-resolve thresholds) was fitted on the held-out "
    "calibration split of the training data (never used for a training decision); it "
    "degrades under distribution shift (new products, seasons, channels). Re-evaluate on recent "
    "labelled tickets before trusting auto-resolve thresholds.",
    "The int8 ONNX export can differ slightly from the torch model in probabilities; predictions are "
    "checked to agree in the test suite, not guaranteed for every input.",
]


def _data_key(sources: list[str]) -> list[str]:
    text = " ".join(sources).lower()
    return [k for k in KNOWN_DATA if k in text]


def _sources(meta: dict[str, Any]) -> list[str]:
    data = meta.get("data") or {}
    cfg = meta.get("train_config") or {}
    out = [str(data.get("source", ""))]
    raw = cfg.get("data")
    out += [str(x) for x in raw] if isinstance(raw, list) else [str(raw or "")]
    return list(dict.fromkeys(s for s in out if s))  # de-duplicated, order kept


def _fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return "n/a" if value is None else str(value)


def front_matter(meta: dict[str, Any], ev: dict[str, Any] | None) -> dict[str, Any]:
    """The YAML header Hugging Face reads (base_model, library_name, license, tags, datasets, metrics)."""
    base_id = str(meta["base_model"].get("id", ""))
    base = BASE_MODEL_HUB_IDS.get(base_id.lower(), base_id)
    keys = _data_key(_sources(meta))
    datasets = [KNOWN_DATA[k][0] for k in keys if KNOWN_DATA[k][0]]
    fm: dict[str, Any] = {
        "base_model": base,
        "library_name": "peft",
        "license": "apache-2.0",
        "pipeline_tag": "text-classification",
        "language": ["en"],
        "tags": [
            "lora",
            "peft",
            "text-classification",
            "intent-classification",
            "customer-support",
            "triage",
            "onnx",
            "temperature-scaling",
        ],
        "metrics": ["accuracy", "f1", "ece"],
    }
    if datasets:
        fm["datasets"] = datasets
    if ev:
        fm["model-index"] = [
            {
                "name": f"triage-intent-{meta['bundle_version']}",
                "results": [
                    {
                        "task": {"type": "text-classification", "name": "Intent classification"},
                        "dataset": {
                            "name": ", ".join(Path(x).name for x in _sources(meta)[:1]) or "held-out split",
                            "type": datasets[0] if datasets else "custom",
                        },
                        "metrics": [
                            {"type": "accuracy", "value": round(float(ev["accuracy"]), 4)},
                            {"type": "f1", "name": "macro F1", "value": round(float(ev["macro_f1"]), 4)},
                        ],
                    }
                ],
            }
        ]
    return fm


def _cfg(value: Any) -> str:
    """Config values as written on the command line (1e-03 not 0.0010)."""
    if isinstance(value, float):
        return f"{value:g}"
    return "n/a" if value is None else str(value)


def render_card(
    meta: dict[str, Any],
    ev: dict[str, Any] | None,
    *,
    temperature: float | None = None,
    modules_to_save: list[str] | None = None,
) -> str:
    """Pure: bundle metadata (+ eval.json when present) -> Markdown card text."""
    cfg = meta.get("train_config") or {}
    trained = cfg.get("modules_to_save") or modules_to_save or []
    base = meta["base_model"]
    fm = yaml.safe_dump(front_matter(meta, ev), sort_keys=False, allow_unicode=True).strip()
    labels_n = meta.get("num_labels")
    lines = [
        "---",
        fm,
        "---",
        "",
        f"# Triage intent classifier (bundle `{meta['bundle_version']}`)",
        "",
        f"A LoRA adapter on `{base.get('id')}` ({base.get('model_type')}) with a trained classification head "
        f"for {labels_n} support-ticket intents, calibrated with temperature scaling, plus an int8 ONNX "
        "export of the merged model for CPU serving. Produced by `python -m src.classifier.train` in the "
        "triage project.",
        "",
        "## Intended use",
        "",
        "- Route incoming customer-support tickets by intent inside the triage service, which combines this "
        "classifier with retrieval, an LLM analysis and calibrated thresholds; uncertain, invalid or "
        "sensitive tickets go to a human.",
        "- Not intended for decisions about people (credit, employment, legal), or as the only safeguard "
        "before an automatic reply.",
        "",
        "Load it with the project's serving code (verifies every file's sha256):",
        "",
        "```python",
        "from src.classifier.inference import IntentClassifier",
        'clf = IntentClassifier.load("path/to/bundle")  # ONNX int8 when present, else torch',
        'print(clf.predict(["where is my order?"])[0])',
        "```",
        "",
        "## Training details",
        "",
        "| setting | value |",
        "|---|---|",
        f"| base model | `{BASE_MODEL_HUB_IDS.get(str(base.get('id')).lower(), base.get('id'))}` "
        f"(`--base-model {Path(str(base.get('id'))).name}`) |",
        f"| LoRA r / alpha / dropout | {_cfg(cfg.get('lora_r'))} / {_cfg(cfg.get('lora_alpha'))} / "
        f"{_cfg(cfg.get('lora_dropout'))} |",
        f"| LoRA target modules | {', '.join(map(str, cfg.get('target_modules') or [])) or 'n/a'} |",
        f"| fully trained modules (modules_to_save) | {', '.join(map(str, trained)) or 'n/a'} |",
        f"| learning rate | {_cfg(cfg.get('lr'))} |",
        f"| epochs (best epoch) | {_cfg(cfg.get('epochs'))} ({_cfg(cfg.get('best_epoch'))}) |",
        f"| batch size | {_cfg(cfg.get('batch_size'))} |",
        f"| max sequence length | {meta.get('max_length')} tokens |",
        f"| class-weighted loss | {_cfg(cfg.get('class_weights'))} |",
        f"| seed | {_cfg(cfg.get('seed'))} |",
        f"| temperature (fitted on the calibration split) | {_cfg(temperature)} |",
        f"| training time | {_cfg(cfg.get('train_seconds'))} s |",
        f"| libraries | {', '.join(f'{k} {v}' for k, v in (meta.get('libraries') or {}).items() if v)} |",
        "",
        "## Data card",
        "",
        f"- Source: {', '.join(f'`{Path(x).name}`' for x in _sources(meta)) or 'unknown'}",
        f"- Data hash (sha256 of the cleaned rows): `{meta.get('data_hash')}`; the exact "
        "train/val/calibration/test rows are frozen in `split_manifest.json` (ids + content hashes).",
    ]
    data = meta.get("data") or {}
    for key in ("n_rows", "n_train", "n_val", "n_calibration", "n_test", "n_labels"):
        if key in data:
            lines.append(f"- {key}: {data[key]}")
    notes = [KNOWN_DATA[k][1] for k in _data_key(_sources(meta))]
    lines += ["", "Bias and representativeness notes:", ""]
    lines += [f"- {n}" for n in notes] or [
        "- Unknown dataset: check who wrote the texts, in which languages and channels, and how labels were "
        "assigned before relying on the scores below."
    ]
    lines += [
        "- Labels are a closed set chosen by the data's authors; rare or new intents are absorbed into "
        "the nearest known one.",
        "",
    ]
    lines += ["## Evaluation", ""]
    if ev:
        lines += [
            f"Held-out test split, n = {ev.get('n_test')}: accuracy **{_fmt(ev.get('accuracy'))}**, macro-F1 "
            f"**{_fmt(ev.get('macro_f1'))}**, ECE (15 bins) {_fmt(ev.get('ece_before'))} before and "
            f"{_fmt(ev.get('ece_after'))} after temperature scaling.",
            "",
        ]
        gates = ev.get("gates") or {}
        if gates:
            status = "passed" if gates.get("passed") else "FAILED: " + "; ".join(gates.get("failures", []))
            limits = ", ".join(f"{k} {v}" for k, v in (gates.get("config") or {}).items())
            lines += [f"Release gates ({limits}): {status}.", ""]
        lines += ["| intent | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
        for lab, row in sorted((ev.get("per_class") or {}).items()):
            lines.append(
                f"| {lab} | {_fmt(row.get('precision'))} | {_fmt(row.get('recall'))} | "
                f"{_fmt(row.get('f1'))} | "
                f"{row.get('support')} |"
            )
        lines.append("")
    else:
        lines += [
            "No `eval.json` next to the bundle: run `python -m src.classifier.evaluate` and re-render.",
            "",
        ]
    lines += ["## Limitations", ""] + [f"- {x}" for x in LIMITATIONS] + [""]
    lines += [
        "## Citation",
        "",
        "```bibtex",
        "@inproceedings{hu2022lora,",
        "  title={LoRA: Low-Rank Adaptation of Large Language Models},",
        "  author={Hu, Edward J. and Shen, Yelong and Wallis, Phillip and Allen-Zhu, Zeyuan and Li, Yuanzhi "
        "and Wang, Shean and Wang, Lu and Chen, Weizhu},",
        "  booktitle={International Conference on Learning Representations}, year={2022}",
        "}",
        "@inproceedings{guo2017calibration,",
        "  title={On Calibration of Modern Neural Networks},",
        "  author={Guo, Chuan and Pleiss, Geoff and Sun, Yu and Weinberger, Kilian Q.},",
        "  booktitle={International Conference on Machine Learning}, year={2017}",
        "}",
        "```",
        "",
        f"Bundle version `{meta['bundle_version']}` (sha256 of every part in `bundle.json`).",
        "",
    ]
    return "\n".join(lines)


def write_model_card(bundle_dir: str | Path) -> Path:
    """Render ``MODEL_CARD.md`` into a verified bundle (reads ``eval.json`` when present)."""
    root = Path(bundle_dir)
    parts = read_parts(root)
    meta = parts["meta"]
    adapter = json.loads((root / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    ev_path = root / EVAL_FILE
    ev = None
    if ev_path.is_file():
        try:
            ev = json.loads(ev_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise BundleError(f"{ev_path} is not valid JSON: {exc}") from None
        missing = [k for k in ("accuracy", "macro_f1", "per_class") if k not in ev]
        if missing:
            raise BundleError(f"{ev_path} lacks {missing}: not an eval.json from src.classifier")
    out = root / CARD_FILE
    out.write_text(
        render_card(
            meta,
            ev,
            temperature=parts["temperature"],
            modules_to_save=sorted(set(adapter.get("modules_to_save") or [])),
        ),
        encoding="utf-8",
    )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m src.classifier.model_card",
        description="Render MODEL_CARD.md (Hugging Face format) for a bundle.",
    )
    p.add_argument("bundle", nargs="?", default=None, help="bundle directory (default: TRIAGE_MODEL_DIR)")
    args = p.parse_args(argv)
    if args.bundle is None:
        from src.config import get_settings

        args.bundle = get_settings().model_dir
    try:
        print(f"wrote {write_model_card(args.bundle)}")
    except BundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
