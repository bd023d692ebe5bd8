"""Cheap analysis heads first, the LLM only where they are unsure or the rules fire.

Three linear heads (sentiment, priority, escalation risk) read the sentence embedding the
retrieval step computes anyway (all-MiniLM-L6-v2 by default); they were distilled from the
configured LLM's answers on training tickets (``python -m src.llm.heads``). A ticket skips the LLM
only when the heads are *confident it is routine* (calm, P3/P4, no risk: routine score above the
gate ``min_routine``, chosen on held-out teacher labels with the calibration's fixed-sequence test)
and no rule or injection pattern fired. Everything else goes to the LLM as before, and then:

* the heads can only raise what the LLM says (like the rules), and
* the analysis is marked ``uncertain``: the router caps it at suggest, so an unsure ticket is never
  auto-resolved on a (possibly small) LLM's word. The LLM adds caution and a reason for the human;
  the auto-resolve decision never depends on it.

Pure given the heads and the embedding; the artefact is a small JSON committed in the repository
(``bundles/analysis-heads/heads.json``), so the default install works offline.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from src.llm.combine import PRIORITY_ORDER, SENTIMENT_ORDER, combine, max_priority, max_sentiment
from src.llm.types import Analysis
from src.text.language import detect_language
from src.text.types import Signal

FIELDS: dict[str, tuple[str, ...]] = {
    "sentiment": SENTIMENT_ORDER,
    "priority": PRIORITY_ORDER,
    "escalation_risk": ("false", "true"),
}
# The readings that change a route (escalation risk -> escalate, angry -> suggest, P1 -> escalate).
# "Routine" for the gate means none of them: frustrated or P2 only lower the score a little and the
# heads may say so themselves; a route-changing reading always goes past the LLM (and the rules).
ROUTE_CHANGING: dict[str, frozenset[str]] = {
    "sentiment": frozenset({"angry"}),
    "priority": frozenset({"P1"}),
    "escalation_risk": frozenset({"true"}),
}


class HeadsError(ValueError):
    """The heads artefact is missing, malformed or made for another embedding model."""


@dataclass(frozen=True)
class LinearHead:
    """Multinomial (or binary) logistic regression: ``classes`` x ``dimension`` weights."""

    classes: tuple[str, ...]
    coef: np.ndarray  # (k, d), or (1, d) for a binary head
    intercept: np.ndarray  # (k,) or (1,)

    def proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities for the rows of ``x`` (n, d) -> (n, k)."""
        z = np.atleast_2d(x) @ self.coef.T + self.intercept
        if self.coef.shape[0] == 1 and len(self.classes) == 2:
            p = 1.0 / (1.0 + np.exp(-z[:, 0]))
            return np.stack([1.0 - p, p], axis=1)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def to_json(self) -> dict[str, Any]:
        return {
            "classes": list(self.classes),
            "coef": self.coef.round(6).tolist(),
            "intercept": self.intercept.round(6).tolist(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LinearHead:
        coef = np.asarray(data["coef"], dtype=np.float32)
        intercept = np.asarray(data["intercept"], dtype=np.float32)
        classes = tuple(str(c) for c in data["classes"])
        if coef.ndim != 2 or coef.shape[0] not in (1, len(classes)) or intercept.shape != (coef.shape[0],):
            raise HeadsError(f"head weights have shape {coef.shape} for {len(classes)} classes")
        return cls(classes=classes, coef=coef, intercept=intercept)


@dataclass(frozen=True)
class HeadsReading:
    """What the heads say about one ticket: per-field probabilities and the routine score."""

    probs: dict[str, dict[str, float]]
    routine: float  # min over heads of the probability mass on the routine values
    confident: bool  # routine > the gate: the heads may answer without the LLM

    def top(self, name: str, without: frozenset[str] = frozenset()) -> str:
        """Most likely value of head ``name`` (optionally leaving out ``without``)."""
        p = self.probs[name]
        keys = [k for k in p if k not in without] or list(p)
        return max(keys, key=lambda k: p[k])


def lexical(text: str | Sequence[str], n_features: int) -> np.ndarray:
    """Hashed lower-cased word counts, L2-normalised (stateless: nothing to store but the width)."""
    from sklearn.feature_extraction.text import HashingVectorizer

    hv = HashingVectorizer(n_features=n_features, alternate_sign=False, norm="l2", lowercase=True)
    return hv.transform([text] if isinstance(text, str) else list(text)).toarray().astype(np.float32)


def routine_score(probs: Mapping[str, Mapping[str, float]]) -> float:
    """How sure the heads are that no reading would change the route (the least sure head decides)."""
    return float(min(1.0 - sum(p.get(v, 0.0) for v in ROUTE_CHANGING[name]) for name, p in probs.items()))


@dataclass(frozen=True)
class AnalysisHeads:
    """The three heads + the gate, loaded from the committed JSON artefact."""

    heads: dict[str, LinearHead]
    min_routine: float
    embedding_model: str
    dimension: int  # of the sentence embedding
    version: str
    meta: dict[str, Any] = field(default_factory=dict)
    lexical_features: int = 0  # hashed word features beside the embedding (0: none)

    def features(self, vector: np.ndarray, text: str = "") -> np.ndarray:
        """The heads' input: the embedding, plus hashed words (an embedding hears topic, not tone:
        "a damn new shipping address" embeds next to "a new shipping address")."""
        x = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        if x.shape[1] != self.dimension:
            raise HeadsError(f"embedding has {x.shape[1]} dimensions, the heads expect {self.dimension}")
        if self.lexical_features:
            x = np.hstack([x, lexical(text, self.lexical_features)])
        return x

    def read(self, vector: np.ndarray, text: str = "") -> HeadsReading:
        x = self.features(vector, text)
        probs = {
            name: {c: float(p) for c, p in zip(head.classes, head.proba(x)[0], strict=True)}
            for name, head in self.heads.items()
        }
        score = routine_score(probs)
        return HeadsReading(probs=probs, routine=score, confident=score > self.min_routine)

    def read_many(self, vectors: np.ndarray, texts: Sequence[str] | None = None) -> list[HeadsReading]:
        texts = list(texts) if texts is not None else [""] * len(vectors)
        return [self.read(v, t) for v, t in zip(np.asarray(vectors), texts, strict=True)]

    def to_json(self) -> dict[str, Any]:
        body = {
            "format": "triage-analysis-heads/1",
            "embedding_model": self.embedding_model,
            "dimension": self.dimension,
            "lexical_features": self.lexical_features,
            "min_routine": self.min_routine,
            "heads": {name: head.to_json() for name, head in self.heads.items()},
            "meta": self.meta,
        }
        # the gate decides which tickets skip the LLM: a new gate is a new version (and benchmark fingerprint)
        what_acts = {"heads": body["heads"], "gate": self.min_routine, "lexical": self.lexical_features}
        digest = hashlib.sha256(json.dumps(what_acts, sort_keys=True).encode()).hexdigest()[:12]
        return {**body, "version": f"heads-{digest}"}

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=None, separators=(",", ":")) + "\n", "utf-8")
        return path

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AnalysisHeads:
        if data.get("format") != "triage-analysis-heads/1":
            raise HeadsError(f"not an analysis-heads artefact (format {data.get('format')!r})")
        heads = {name: LinearHead.from_json(h) for name, h in data["heads"].items()}
        if set(heads) != set(FIELDS):
            raise HeadsError(f"heads {sorted(heads)} != {sorted(FIELDS)}")
        dims = {h.coef.shape[1] for h in heads.values()}
        width = int(data["dimension"]) + int(data.get("lexical_features", 0))
        if dims != {width}:
            raise HeadsError(f"head dimensions {sorted(dims)} != declared {width}")
        gate = float(data["min_routine"])
        if not 0.5 <= gate <= 1.0:
            raise HeadsError(f"gate min_routine={gate} outside [0.5, 1]")
        return cls(
            heads=heads,
            min_routine=gate,
            embedding_model=str(data["embedding_model"]),
            dimension=int(data["dimension"]),
            version=str(data.get("version", "heads-?")),
            meta=dict(data.get("meta") or {}),
            lexical_features=int(data.get("lexical_features", 0)),
        )

    @classmethod
    def load(cls, path: Path, embedding_model: str | None = None) -> AnalysisHeads:
        """Read the artefact; refuse one trained on another embedding model's vectors."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise HeadsError(f"no analysis heads at {path} (see python -m src.llm.heads --help)") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise HeadsError(f"cannot read analysis heads at {path}: {exc}") from None
        try:
            heads = cls.from_json(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise HeadsError(f"bad analysis heads at {path}: {exc}") from None
        if embedding_model is not None and heads.embedding_model != embedding_model:
            raise HeadsError(
                f"analysis heads at {path} were trained on {heads.embedding_model} vectors, the configured "
                f"embedding model is {embedding_model}: retrain them (python -m src.llm.heads fit)"
            )
        return heads


def heads_analysis(text: str, reading: HeadsReading, version: str) -> Analysis:
    """The heads' own Analysis for a ticket they are sure no reading would re-route (no LLM call)."""
    sentiment = reading.top("sentiment", ROUTE_CHANGING["sentiment"])
    priority = reading.top("priority", ROUTE_CHANGING["priority"])
    risk = reading.probs["escalation_risk"].get("true", 0.0)
    return Analysis(
        sentiment=sentiment,  # type: ignore[arg-type]
        priority=priority,  # type: ignore[arg-type]
        escalation_risk=False,
        reason=f"analysis heads: routine ({reading.routine:.3f} > gate; risk {risk:.2f})",
        language=detect_language(text) or "und",
        summary="",
        reliable=True,
        prompt_version=version,
        source="heads",
    )


def raised_by_heads(analysis: Analysis, reading: HeadsReading) -> Analysis:
    """``analysis`` with whatever the heads read as more severe (they can raise, never lower)."""
    out = analysis.model_copy(deep=True)
    changes = []
    sentiment = max_sentiment(out.sentiment, reading.top("sentiment"))  # type: ignore[arg-type]
    if sentiment != out.sentiment:
        changes.append(f"sentiment {out.sentiment}->{sentiment} by the analysis heads")
        out.sentiment = sentiment
    priority = max_priority(out.priority, reading.top("priority"))  # type: ignore[arg-type]
    if priority != out.priority:
        changes.append(f"priority {out.priority}->{priority} by the analysis heads")
        out.priority = priority
    if reading.top("escalation_risk") == "true" and not out.escalation_risk:
        changes.append("escalation_risk raised by the analysis heads")
        out.escalation_risk = True
    out.rule_adjustments = [*out.rule_adjustments, *changes]
    return out


def heads_and_rules(
    text: str, reading: HeadsReading, version: str, signals: Sequence[Signal], injection: Sequence[str]
) -> Analysis:
    """The heads' reading raised by the rules: a rule signal means escalate, whatever an LLM would say."""
    base = Analysis(
        sentiment=reading.top("sentiment"),  # type: ignore[arg-type]
        priority=reading.top("priority"),  # type: ignore[arg-type]
        escalation_risk=reading.top("escalation_risk") == "true",
        reason=f"analysis heads (routine {reading.routine:.2f}); a rule fired, no LLM needed for the route",
        language=detect_language(text) or "und",
        reliable=True,
        prompt_version=version,
        source="heads+rules",
        uncertain=not reading.confident,
    )
    return combine(base, list(signals), extra_signals=[f"prompt_injection:{n}" for n in injection])


def cascade_analyze(
    text: str,
    reading: HeadsReading | None,
    version: str,
    signals: Sequence[Signal],
    injection: Sequence[str],
    llm: Callable[[], Analysis],
    *,
    llm_on_rules: bool = False,
) -> Analysis:
    """Heads when they are sure and nothing fired; otherwise ``llm()`` (rules + LLM), raised by the heads.

    A rule or injection signal already sends the ticket to the escalation team (``combine`` sets the
    risk), so by default no LLM is waited for then (``llm_on_rules`` asks it anyway, e.g. for its
    priority). ``reading=None`` (no heads, or no embedding) is the old path: ``llm()`` alone, not
    marked uncertain. ``llm()`` may raise ``LLMError``: the node turns it into a failure (-> escalate).
    """
    if reading is not None and not signals and not injection and reading.confident:
        return heads_analysis(text, reading, version)
    if reading is not None and (signals or injection) and not llm_on_rules:
        return heads_and_rules(text, reading, version, signals, injection)
    analysis = llm()
    if reading is None:
        return analysis
    out = raised_by_heads(analysis, reading)
    out.uncertain = not reading.confident
    out.source = "heads+llm"
    why = "heads unsure" if not reading.confident else "rules fired"
    out.reason = f"{out.reason}; analysis heads: {why} (routine {reading.routine:.2f})".lstrip("; ")
    return out
