"""What produced a benchmark number: code, models, prompts, thresholds, knowledge base, machine.

Everything that can change a decision goes into the run's configuration, whose hash is the
results log's name: a run never resumes across a changed configuration, and every row is
stamped with the fingerprint, commit and host it was produced with.
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
from pathlib import Path
from typing import Any

from src.config import PROJECT_ROOT, Settings

# Exact model names for reports (the file names alone hide that the Qwen models are the Coder ones).
MODEL_NAMES = {
    "SmolLM2-135M-Instruct.Q4_1.gguf": "SmolLM2-135M-Instruct (GGUF Q4_1)",
    "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf": "Qwen2.5-Coder-0.5B-Instruct (GGUF Q4_K_M)",
    "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf": "Qwen2.5-Coder-1.5B-Instruct (GGUF Q4_K_M)",
}


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_state() -> dict[str, Any]:
    """HEAD commit and whether (and how) the code that makes decisions differs from it."""
    commit = (_git("rev-parse", "HEAD") or "").strip() or "unknown"
    diff = _git("diff", "HEAD", "--", "src", "config", "bundles", "benchmarks") or ""
    untracked = _git("ls-files", "--others", "--exclude-standard", "--", "src", "config", "bundles") or ""
    dirty = bool(diff.strip() or untracked.strip())
    changes = hashlib.sha256((diff + untracked).encode()).hexdigest()[:16] if dirty else None
    return {"commit": commit, "dirty": dirty, "diff_sha256": changes}


def host() -> str:
    return socket.gethostname()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def llm_identity(provider: Any | None) -> dict[str, Any] | None:
    """Provider, model and, for a local model, the exact GGUF (name, size, sha256)."""
    if provider is None:
        return None
    out: dict[str, Any] = {"provider": provider.name, "model": provider.model}
    inner = provider
    while getattr(inner, "model_path", None) is None and getattr(inner, "inner", None) is not None:
        inner = inner.inner  # e.g. the PII-masking wrapper
    path = getattr(inner, "model_path", None)
    if path is not None and Path(path).is_file():
        path = Path(path)
        from src.llm.models import SPLIT_MODELS

        recorded = {m.filename: m.sha256 for m in SPLIT_MODELS.values()}
        # fetch_models.py verified the recorded sha256 when it joined the file; others are hashed here
        sha = recorded.get(path.name) or _file_sha256(path)
        out.update(gguf=path.name, gguf_bytes=path.stat().st_size, gguf_sha256=sha,
                   name=MODEL_NAMES.get(path.name, path.name))  # fmt: skip
    else:
        out["name"] = provider.model
    return out


def llm_label(identity: dict[str, Any] | None) -> str | None:
    """``local:qwen2.5-1.5b = Qwen2.5-Coder-1.5B-Instruct (GGUF Q4_K_M, sha256 cc324af0…)``."""
    if identity is None:
        return None
    label = f"{identity['provider']}:{identity['model']}"
    if identity.get("gguf"):
        return f"{label} = {identity['name']}, sha256 {identity['gguf_sha256'][:12]}…"
    return label


KB_PROBES = ("I want to cancel my order", "where is my refund", "how do I reset my password")


def kb_identity(kb: Any | None) -> dict[str, Any]:
    """Size, location, embedding model and a content probe of the knowledge base (moves with its contents)."""
    if kb is None:
        return {"available": False}
    try:
        out: dict[str, Any] = {"available": True, "count": int(kb.count())}
        out["location"] = str(getattr(kb, "location", ""))
        embedder = getattr(kb, "embedder", None)
        out["embedding_model"] = getattr(embedder, "model_id", None)
        search = getattr(kb, "search", None)
        if search is not None:
            hits = [[(h.id, round(h.similarity, 4)) for h in search(q, k=5)] for q in KB_PROBES]
            out["probe"] = digest(hits)
        return out
    except Exception as exc:  # noqa: BLE001 - an unreachable KB is part of the configuration too
        return {"available": False, "error": f"{type(exc).__name__}: {str(exc)[:200]}"}


def prompt_versions(heads_version: str | None) -> dict[str, Any]:
    from src.eval.zero_shot import PROMPT_VERSION
    from src.llm.prompts import ANALYZE_PROMPT_VERSION, DRAFT_PROMPT_VERSION
    from src.llm.template_draft import TEMPLATE_VERSION

    return {"analyze": ANALYZE_PROMPT_VERSION, "draft": DRAFT_PROMPT_VERSION, "zero_shot": PROMPT_VERSION,
            "template": TEMPLATE_VERSION, "heads": heads_version}  # fmt: skip


def heads_version(settings: Settings) -> str | None:
    path = settings.analysis_heads_path
    if path is None or not Path(path).is_file():
        return None
    try:
        return str(json.loads(Path(path).read_text(encoding="utf-8")).get("version"))
    except (OSError, json.JSONDecodeError):
        return "unreadable"


def run_config(
    *, settings: Settings, classifier: Any | None, llm: dict[str, Any] | None, kb: dict[str, Any],
    args: dict[str, Any], git: dict[str, Any],
) -> dict[str, Any]:
    """Everything that can change a result; its digest names the results log."""
    thresholds = getattr(classifier, "thresholds", None)
    return {
        "git_commit": git["commit"],
        "git_dirty_diff": git.get("diff_sha256"),
        "classifier": getattr(classifier, "version", None),
        "thresholds": {
            "bundle": digest(thresholds) if thresholds is not None else None,
            "source": (thresholds or {}).get("source") if isinstance(thresholds, dict) else None,
            "auto_threshold_floor": settings.auto_threshold,
            "suggest_threshold_floor": settings.suggest_threshold,
        },
        "auto_min_similarity": settings.auto_min_similarity,
        "template_min_similarity": settings.template_min_similarity,
        "template_drafts": settings.template_drafts,
        "draft_suggest": settings.draft_suggest,
        "draft": {"evidence_k": settings.draft_evidence_k, "evidence_chars": settings.draft_evidence_chars,
                  "max_tokens": settings.draft_max_tokens, "min_agreement": settings.draft_min_agreement,
                  "allowed_values": digest(settings.draft_allowed_values)},  # fmt: skip
        "retrieval": {"k": settings.retrieval_k, "hybrid": settings.retrieval_hybrid,
                      "embedding_model": settings.embedding_model},  # fmt: skip
        "supported_languages": list(settings.supported_languages),
        "prompt_versions": prompt_versions(heads_version(settings)),
        "llm": llm,
        "threads": {"llm": settings.llm_threads, "classifier": settings.classifier_threads},
        "knowledge_base": kb,
        **args,
    }
