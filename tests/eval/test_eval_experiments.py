"""LangSmith experiments from a benchmark run, against a local endpoint that records what the client sends.

The stand-in implements the few REST calls the langsmith client makes for a dataset, its examples,
an experiment (session) and its runs; everything else answers ``{}``.
"""

from __future__ import annotations

import gzip
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from src.config import Settings
from src.eval.runner import build_parser, run
from src.eval.types import BenchTicket, SystemOutput

NOW = "2026-12-02T00:00:00+00:00"


class LangSmithStandIn(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []
    datasets: dict[str, dict] = {}
    examples: dict[str, dict] = {}

    def _reply(self, obj: object) -> None:
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if (self.headers.get("Content-Encoding") or "").lower() == "gzip":
            raw = gzip.decompress(raw)
        self.received.append((self.command, self.path, raw))
        url = urlparse(self.path)
        q, path = parse_qs(url.query), url.path.rstrip("/")
        if path.endswith("/info"):
            return self._reply({"version": "0.11.0"})
        if path == "/datasets" and self.command == "GET":
            name = (q.get("name") or [None])[0]
            return self._reply([d for d in self.datasets.values() if name in (None, d["name"])])
        if path == "/datasets" and self.command == "POST":
            body = json.loads(raw)
            d = {
                "id": str(uuid.uuid4()),
                "name": body["name"],
                "description": body.get("description"),
                "created_at": NOW,
                "modified_at": NOW,
                "data_type": "kv",
            }
            self.datasets[d["id"]] = d
            return self._reply(d)
        if path == "/examples/bulk" and self.command == "POST":
            out = []
            for e in json.loads(raw):
                e = {**e, "id": e.get("id") or str(uuid.uuid4()), "created_at": NOW, "modified_at": NOW}
                self.examples[e["id"]] = e
                out.append(e)
            return self._reply(out)
        if path == "/examples" and self.command == "GET":
            did, off = (q.get("dataset") or [None])[0], int((q.get("offset") or [0])[0])
            rows = [e for e in self.examples.values() if e.get("dataset_id") == did]
            return self._reply(rows[off : off + int((q.get("limit") or [100])[0])])
        if path == "/sessions" and self.command == "POST":
            body = json.loads(raw)
            return self._reply(
                {
                    "id": body.get("id") or str(uuid.uuid4()),
                    "name": body["name"],
                    "start_time": NOW,
                    "reference_dataset_id": body.get("reference_dataset_id"),
                    "tenant_id": str(uuid.uuid4()),
                }
            )
        return self._reply({})

    do_GET = do_POST = do_PATCH = do_PUT = _handle

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def langsmith_url() -> Iterator[str]:
    LangSmithStandIn.received, LangSmithStandIn.datasets, LangSmithStandIn.examples = [], {}, {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), LangSmithStandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class Echo:
    def __init__(self, name: str) -> None:
        self.name = name

    def run(self, ticket: BenchTicket) -> SystemOutput:
        route = "escalate" if "sue" in ticket.text else "auto_resolve"
        return SystemOutput(pred=ticket.text.split()[0], route=route, reasons=[f"seen {ticket.text[:40]}"])


def test_each_system_becomes_an_experiment_on_one_masked_dataset(tmp_path: Path, langsmith_url: str) -> None:
    data = tmp_path / "data.csv"
    data.write_text("text,label\n" + "".join(f"a write to ann{i}@example.com please,a\n" for i in range(4)))
    slice_path = tmp_path / "slice.jsonl"
    slice_path.write_text(
        json.dumps({"text": "a I will sue you", "label": "a", "should_escalate": True, "why": "legal"}) + "\n"
    )
    argv = [
        "--data",
        str(data),
        "--systems",
        "classifier-only,classifier-rules",
        "--out",
        str(tmp_path / "o"),
        "--escalation-slice",
        str(slice_path),
        "--langsmith",
        "on",
        "--no-progress",
    ]
    args = build_parser().parse_args(argv)
    args.argv = argv
    settings = Settings(langsmith_api_key="test-key", langsmith_endpoint=langsmith_url)
    report = run(
        args, settings=settings, systems_override=[Echo("classifier-only"), Echo("classifier-rules")]
    )

    ls = report["run"]["langsmith"]
    assert "error" not in ls, ls
    assert set(ls["experiments"]) == {"classifier-only", "classifier-rules"}
    got = LangSmithStandIn.received
    sent = b"".join(body for _, _, body in got)
    assert b"example.com" not in sent and b"[EMAIL_1]" in sent  # masked before it left the box
    examples = [json.loads(body) for m, p, body in got if p.startswith("/examples/bulk")]
    assert len(examples) == 1 and len(examples[0]) == 5  # one dataset: 4 data tickets + 1 slice ticket
    assert {e["outputs"]["label"] for e in examples[0]} == {"a"}
    sessions = [json.loads(body) for m, p, body in got if m == "POST" and p.startswith("/sessions")]
    assert len(sessions) == 2
    for s in sessions:
        meta = s["extra"]["metadata"]
        assert meta["fingerprint"] == report["run"]["fingerprint"] and meta["system"] in ls["experiments"]
    runs = b"".join(body for m, p, body in got if p.startswith("/runs"))
    assert b"auto_resolve" in runs and b"escalate" in runs  # each ticket's routed result is a run's output
    assert b"no_wrongful_auto_resolve" in sent and b"intent_correct" in sent  # per-ticket evaluators


def test_no_key_no_upload(tmp_path: Path, langsmith_url: str) -> None:
    data = tmp_path / "data.csv"
    data.write_text("text,label\na one,a\na two,a\n")
    argv = [
        "--data",
        str(data),
        "--systems",
        "classifier-only",
        "--out",
        str(tmp_path / "o"),
        "--escalation-slice",
        "",
        "--no-progress",
    ]
    args = build_parser().parse_args(argv)
    args.argv = argv
    report = run(
        args,
        settings=Settings(langsmith_api_key=None, langsmith_endpoint=langsmith_url),
        systems_override=[Echo("classifier-only")],
    )
    assert "langsmith" not in report["run"] and LangSmithStandIn.received == []
