"""CPU cost per request of the service's two halves, independent of how busy the machine is.

    python scripts/service_cost.py --json reports/service/cost.json [--tickets 40] [--requests 300]

- accept: ``POST /v1/tickets`` through the ASGI app (auth, validation, intake row) with the queue
  stubbed out, sequentially: CPU ms per request (``time.process_time``), i.e. what one core can accept.
- decide: ``TriageService.run`` on the configured wiring (Settings/env: bundle, database,
  ``TRIAGE_SERVICE_LLM``): CPU ms per ticket, i.e. what one core can decide.
Wall times are reported too, but on a shared machine only the CPU times are comparable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from src.system_info import cpu_model, git_commit  # noqa: E402


class _NoQueue:
    kind = "none"

    def enqueue(self, ticket_id: str) -> None:
        pass

    def depth(self) -> int:
        return 0

    def close(self) -> bool:
        return True


def accept_cost(requests: int) -> dict[str, float]:
    from fastapi.testclient import TestClient

    from src.api.app import create_app
    from src.api.auth import generate_key, hash_secret
    from src.api.runtime import Runtime
    from src.config import Settings

    tmp = Path(tempfile.mkdtemp(prefix="triage-cost-"))
    rt = Runtime(Settings(data_dir=tmp, sqlite_path=tmp / "t.db", checkpoint_sqlite_path=tmp / "c.db",
                          outbox_dir=tmp / "o"))  # fmt: skip
    rt.started, rt.queue = True, _NoQueue()
    key = generate_key()
    rt.store.add_key(key.key_id, "cost", key.salt, hash_secret(key.secret, key.salt, rt.pepper))
    headers = {"Authorization": f"Bearer {key.full}"}
    body = {"channel": "chat", "text": "Please cancel my order, I placed it by mistake yesterday."}
    with TestClient(create_app(runtime=rt)) as client:
        for i in range(20):
            client.post("/v1/tickets", json={**body, "id": f"warm-{i}"}, headers=headers)
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(requests):
            assert (
                client.post("/v1/tickets", json={**body, "id": f"r-{i}"}, headers=headers).status_code == 202
            )
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rt.db.close()
    return {
        "requests": requests,
        "cpu_ms": round(cpu / requests * 1000, 2),
        "wall_ms": round(wall / requests * 1000, 2),
    }


def decide_cost(tickets: int) -> dict[str, float | str]:
    from src.api.runtime import build_service
    from src.config import get_settings
    from src.graph.service import TicketIn

    settings = get_settings()
    service = build_service(settings)
    text = "I want to cancel my order please, I placed it by mistake"
    for i in range(5):
        service.run(TicketIn(id=f"warm-{i}", channel="chat", text=text))
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(tickets):
        service.run(TicketIn(id=f"t-{i}-{time.time_ns()}", channel="chat", text=f"{text} ({i})"))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "tickets": tickets,
        "cpu_ms": round(cpu / tickets * 1000, 2),
        "wall_ms": round(wall / tickets * 1000, 2),
        "llm": "on" if settings.service_llm else "off",
        "database": "postgres" if settings.database_url else "sqlite",
        "model_dir": str(settings.model_dir),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, required=True, help="report path")
    ap.add_argument("--requests", type=int, default=300, help="accept requests to time")
    ap.add_argument("--tickets", type=int, default=40, help="tickets to decide")
    args = ap.parse_args(argv)
    report = {
        "commit": git_commit(),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "loadavg_before": os.getloadavg()},
        "accept": accept_cost(args.requests),
        "decide": decide_cost(args.tickets),
    }
    report["machine"]["loadavg_after"] = os.getloadavg()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
