"""``TRIAGE_SERVICE_FACTORY=tests.api.fake_service:build``: the real graph and checkpointer with fake
models (scripted classifier, in-memory knowledge base, FakeProvider), for API/worker processes in tests.

``TRIAGE_TEST_CLASSIFIER_DELAY_S`` slows the classifier down (to kill a worker mid-ticket) and
``TRIAGE_TEST_PROBABILITY`` sets the classifier's probability (0.97 auto-resolves, 0.75 suggests).
"""

from __future__ import annotations

import os

from src.audit.store import open_audit_store
from src.config import Settings
from src.graph.checkpoint import make_checkpointer
from src.graph.service import TriageService
from tests.graph.fakes_graph import FakeClassifier, make_deps


def build(settings: Settings) -> TriageService:
    delay = float(os.environ.get("TRIAGE_TEST_CLASSIFIER_DELAY_S", "0"))
    probability = float(os.environ.get("TRIAGE_TEST_PROBABILITY", "0.97"))
    deps = make_deps(settings.data_dir, classifier=FakeClassifier(probability=probability, delay_s=delay))
    deps.settings = settings
    deps.audit = open_audit_store(settings)  # the configured store (SQLite file or Postgres schema)
    if not settings.service_llm:
        deps.provider = None
    return TriageService(deps, make_checkpointer(settings))
