"""``TRIAGE_SERVICE_FACTORY=tests.lifecycle.lifecycle_service:build``: the real graph, checkpointer,
audit store and classifier bundle (``TRIAGE_MODEL_DIR``, plus the shadow candidate of
``TRIAGE_SHADOW_MODEL_DIR``), with the fake knowledge base and LLM of the graph tests (fast, offline)."""

from __future__ import annotations

from src.audit.store import open_audit_store
from src.classifier.inference import IntentClassifier
from src.config import Settings
from src.graph.checkpoint import make_checkpointer
from src.graph.service import TriageService
from src.graph.shadow import load_shadow
from tests.graph.fakes_graph import make_deps


def build(settings: Settings) -> TriageService:
    classifier = IntentClassifier.load(settings.model_dir, threads=1)
    deps = make_deps(settings.data_dir, classifier=classifier)  # type: ignore[arg-type]
    deps.settings = settings
    deps.audit = open_audit_store(settings)
    deps.shadow = load_shadow(settings, deps.audit, deps.startup_notes)
    return TriageService(deps, make_checkpointer(settings))
