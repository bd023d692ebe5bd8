"""#10 item 14: the Postgres checkpointer heals after its server sessions die (restart, killed backend)."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
from fakes_graph import make_deps

from src.graph.checkpoint import postgres_checkpointer
from src.graph.service import TicketIn, TriageService

TEXT = "I want to cancel my order please, it has not shipped yet"


def test_checkpointer_survives_killed_backends(postgres_url: str, tmp_path: Path) -> None:
    schema = f"ckpt_pool_{uuid.uuid4().hex[:10]}"
    saver = postgres_checkpointer(postgres_url, schema=schema, pool_size=2)
    try:
        svc = TriageService(make_deps(tmp_path), saver)
        first = svc.run(TicketIn(id="P1", text=TEXT))
        assert not any(r.startswith("graph:") for r in first["reasons"])
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            killed = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                (f"triage:{schema}",),
            ).fetchall()
        assert killed  # the pool's sessions are gone, as after a Postgres restart
        second = svc.run(TicketIn(id="P2", text=TEXT))
        assert not any(r.startswith("graph:") for r in second["reasons"]), second["reasons"]
        assert second["route"] == first["route"]
        assert svc.graph.get_state({"configurable": {"thread_id": second["ticket_id"]}}).values
    finally:
        saver.conn.close()
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
