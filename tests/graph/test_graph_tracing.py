"""LangSmith tracing against a local recording HTTP endpoint: on -> per-node runs arrive; off -> nothing."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fakes_graph import make_deps

from src.graph.service import TicketIn, TriageService

TEXT = "I want to cancel my order please, it has not shipped yet"


class Recorder(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        encoding = (self.headers.get("Content-Encoding") or "").lower()
        if encoding == "zstd":
            import zstandard

            body = zstandard.ZstdDecompressor().decompressobj().decompress(body)
        elif encoding == "gzip":
            body = gzip.decompress(body)
        self.received.append((self.command, self.path, body))
        payload = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_PUT = _record

    def log_message(self, *args) -> None:  # keep test output clean
        pass


@pytest.fixture()
def endpoint() -> Iterator[tuple[str, list]]:
    Recorder.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", Recorder.received
    server.shutdown()


def test_tracing_on_sends_per_node_runs_with_trace_id(tmp_path: Path, endpoint) -> None:
    url, received = endpoint
    deps = make_deps(tmp_path, langsmith_tracing=True, langsmith_endpoint=url, langsmith_api_key="test-key",
                     langsmith_project="triage-test")
    out = TriageService(deps).run(TicketIn(id="TR1", text=TEXT))
    posted = b"".join(body for method, path, body in received if method in ("POST", "PATCH"))
    assert posted, f"nothing arrived: {[(m, p) for m, p, _ in received]}"
    for node in (b"preprocess", b"classify", b"analyze", b"retrieve", b"draft", b"score", b"audit"):
        assert node in posted, node
    assert out["trace_id"].encode() in posted  # the audited trace id is the root run's id
    assert b"triage_ticket" in posted
    assert b"fake-bundle-1" in posted and b"langgraph_node" in posted  # run metadata reaches every node
    assert deps.audit.get_decision("TR1")["trace_id"] == out["trace_id"]


def test_tracing_off_sends_nothing_even_with_env_set(tmp_path: Path, endpoint, monkeypatch) -> None:
    url, received = endpoint
    monkeypatch.setenv("LANGSMITH_ENDPOINT", url)
    monkeypatch.setenv("LANGSMITH_API_KEY", "test-key")
    monkeypatch.setenv("LANGSMITH_TRACING", "true")
    deps = make_deps(tmp_path, langsmith_tracing=False, langsmith_endpoint=url)
    out = TriageService(deps).run(TicketIn(id="TR2", text=TEXT))
    assert out["route"] == "auto_resolve"
    assert received == []
