"""Draft quality: a system's draft against the held-out Bitext reference reply for the same ticket.

Bitext's responses are reference replies. For a benchmark ticket that has one (the v11 rows with
responses, ``bitext_v11_first5000.csv``; the knowledge base is built from a different release, so
the reference was never retrievable), a draft is scored on:

* **similarity**: cosine of the draft's and the reference's sentence embeddings (MiniLM);
* **intent consistency**: the evidence the draft rests on (template source or cited ids) has the
  ticket's true intent;
* **grounding**: it cites evidence that was shown and agrees with it (``citation_agreement`` >=
  the draft checks' minimum), and carries no value that is not this ticket's (another customer's
  or an invented one).

Grounding is computed when the draft is made (the evidence is at hand then); similarity when the
report is built. Pure apart from the embedder.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from src.config import SHARED_DATA

DEFAULT_REFERENCES = SHARED_DATA / "bitext-customer-support" / "bitext_v11_first5000.csv"


def _key(text: str) -> str:
    return " ".join(text.lower().split())


def load_references(path: Path | None) -> dict[str, dict[str, str]]:
    """{normalised ticket text: {"response", "intent"}} from a Bitext-style CSV (instruction/response)."""
    if path is None or not Path(path).is_file():
        return {}
    out: dict[str, dict[str, str]] = {}
    with Path(path).open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            text = row.get("instruction") or row.get("text") or ""
            if text and row.get("response"):
                out.setdefault(_key(text), {"response": row["response"], "intent": row.get("intent", "")})
    return out


def grounding(draft: str, cited: Sequence[str], ticket_text: str, hits: Sequence[Mapping[str, Any]],
              min_agreement: float) -> dict[str, Any]:  # fmt: skip
    """Cited evidence exists and agrees; no foreign or invented values (``hits``: Hit dumps shown)."""
    from src.llm.checks import citation_agreement, foreign_values, invented_values

    shown = {h["id"]: h["ticket"] for h in hits}
    valid = [i for i in cited if i in shown]
    agreement = max((citation_agreement(draft, shown[i].get("response") or "") for i in valid), default=0.0)
    evidence = [f"{t.get('text', '')}\n{t.get('response', '')}" for t in shown.values()]
    foreign = foreign_values(draft, ticket_text, evidence)
    invented = invented_values(draft, [ticket_text, *evidence])
    return {
        "cited": list(cited),
        "cited_shown": len(valid) == len(cited) and bool(cited),
        "cited_intents": [shown[i].get("intent") for i in valid],
        "agreement": round(agreement, 4),
        "grounded": bool(valid) and agreement >= min_agreement and not foreign and not invented,
        "foreign_values": foreign[:5],
        "invented_values": invented[:5],
    }


def similarities(pairs: Sequence[tuple[str, str]], embedder: Any) -> list[float]:
    """Cosine similarity of each (draft, reference) pair (unit vectors: a dot product)."""
    if not pairs:
        return []
    a = embedder.encode([p[0] for p in pairs])
    b = embedder.encode([p[1] for p in pairs])
    return [float(x) for x in np.sum(np.asarray(a) * np.asarray(b), axis=1)]


def summarise(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean similarity (with a bootstrap 95% interval), intent consistency and grounding shares."""
    n = len(rows)
    if n == 0:
        return {"n": 0}
    sims = np.array([r["similarity"] for r in rows], dtype=float)
    rng = np.random.default_rng(0)
    boot = [float(rng.choice(sims, n).mean()) for _ in range(2000)] if n > 1 else [float(sims[0])] * 2
    return {
        "n": n,
        "similarity_mean": round(float(sims.mean()), 4),
        "similarity_ci95": [round(float(np.percentile(boot, q)), 4) for q in (2.5, 97.5)],
        "intent_consistent": round(sum(r["intent_consistent"] for r in rows) / n, 4),
        "grounded": round(sum(r["grounded"] for r in rows) / n, 4),
        "foreign_or_invented": sum(bool(r.get("foreign_values") or r.get("invented_values")) for r in rows),
        "by_source": dict(sorted(Counter(str(r.get("source")) for r in rows).items())),
    }


def score_drafts(items: Sequence[Mapping[str, Any]], references: Mapping[str, Mapping[str, str]],
                 embedder: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:  # fmt: skip
    """Score drafts that have a reference: ``items`` = {text, label, draft, source, grounding}."""
    scored = [it for it in items if it.get("draft") and _key(it["text"]) in references]
    sims = similarities([(it["draft"], references[_key(it["text"])]["response"]) for it in scored], embedder)
    rows = []
    for it, sim in zip(scored, sims, strict=True):
        g = it.get("grounding") or {}
        intents = g.get("cited_intents") or []
        rows.append({
            "text": it["text"], "label": it["label"], "source": it.get("source"), "similarity": round(sim, 4),
            "intent_consistent": bool(intents) and all(i == it["label"] for i in intents),
            "grounded": bool(g.get("grounded")), "foreign_values": g.get("foreign_values") or [],
            "invented_values": g.get("invented_values") or [],
        })  # fmt: skip
    summary = summarise(rows)
    summary["with_reference"] = sum(_key(it["text"]) in references for it in items)
    summary["without_draft"] = summary["with_reference"] - len(rows)
    return summary, rows
