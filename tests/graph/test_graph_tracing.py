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
    """A LangSmith stand-in: advertises zstd compression (as the hosted service does) and records every
    request body decoded (zstd/gzip content encoding undone, so multipart parts are plain JSON)."""

    received: list[tuple[str, str, bytes]] = []
    encodings: list[str] = []

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        encoding = (self.headers.get("Content-Encoding") or "").lower()
        self.encodings.append(encoding)
        if encoding == "zstd":
            import zstandard

            body = zstandard.ZstdDecompressor().decompressobj().decompress(body)
        elif encoding == "gzip":
            body = gzip.decompress(body)
        self.received.append((self.command, self.path, body))
        payload = b"{}"
        if self.command == "GET" and self.path.rstrip("/").endswith("/info"):
            payload = b'{"version": "0.11.0", "instance_flags": {"zstd_compression_enabled": true}}'
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
    Recorder.encodings = []
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
    assert deps.audit.get_decision(out["ticket_id"])["trace_id"] == out["trace_id"]


def test_tracing_off_sends_nothing_even_with_env_set(tmp_path: Path, endpoint, monkeypatch) -> None:
    url, received = endpoint
    monkeypatch.setenv("LANGSMITH_ENDPOINT", url)
    monkeypatch.setenv("LANGSMITH_API_KEY", "test-key")
    monkeypatch.setenv("LANGSMITH_TRACING", "true")
    deps = make_deps(tmp_path, langsmith_tracing=False, langsmith_endpoint=url)
    out = TriageService(deps).run(TicketIn(id="TR2", text=TEXT))
    assert out["route"] == "auto_resolve"
    assert received == []


# --- issue #10 item 9: nothing unmasked leaves the box (traces, external LLM requests, audit row) ---------

PII_TICKET = (
    "Hello, my name is Maria Schmidt, born 12.05.1984. I want to cancel my order 88231994, it has not "
    "shipped. Email maria.schmidt@example.org, phone +49 151 2345 6789 or mobile 015198765432, "
    "card 4111 1111 1111 1111, IBAN de89 3704 0044 0532 0130 00, ship to 27 Old Mill Road. "
    "Thanks, Maria Schmidt"
)
SECRETS = [
    "maria", "schmidt", "12.05.1984", "example.org", "+49 151 2345 6789", "2345 6789", "015198765432",
    "4111 1111 1111 1111", "4111111111111111", "de89 3704", "de89370400440532013000", "old mill",
]


def _leaks(blob: bytes | str) -> list[str]:
    low = (blob.decode("utf-8", "replace") if isinstance(blob, bytes) else blob).lower()
    return [s for s in SECRETS if s in low]


class _OpenAICompat(BaseHTTPRequestHandler):
    """A stand-in external LLM: records every request body, answers analysis / draft by schema name."""

    requests: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        import json

        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.requests.append(body)
        name = json.loads(body).get("response_format", {}).get("json_schema", {}).get("name")
        if name == "reply_draft":
            content = {"evidence_ids": ["kb-0"],
                       "reply": "Dear [PERSON_1], here is how to do that: cancel it from the Orders page."}
        else:
            content = {"language": "en", "summary": "[PERSON_1] wants to cancel an order",
                       "sentiment": "neutral", "priority": "P3", "reason": "routine request",
                       "escalation_risk": False,
                       "legal_threat": False, "health_safety": False, "security_account_takeover": False,
                       "churn": False}
        payload = json.dumps({
            "id": "c1", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": json.dumps(content)},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def llm_endpoint() -> Iterator[tuple[str, list[bytes]]]:
    _OpenAICompat.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OpenAICompat)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", _OpenAICompat.requests
    server.shutdown()


def test_pii_ticket_leaves_nothing_unmasked(tmp_path: Path, endpoint, llm_endpoint) -> None:
    """Real graph, real analyze/draft through the OpenAI-compatible adapter (masking on), LangSmith on."""
    import json

    from src.config import Settings
    from src.llm.providers import clear_provider_cache, get_provider

    url, received = endpoint
    llm_url, llm_requests = llm_endpoint
    clear_provider_cache()
    provider = get_provider(Settings(llm_provider="openai", openai_base_url=llm_url, llm_max_retries=0))
    try:
        deps = make_deps(tmp_path, provider=provider, real_llm_funcs=True, langsmith_tracing=True,
                         langsmith_endpoint=url, langsmith_api_key="test-key", langsmith_project="pii")
        out = TriageService(deps).run(TicketIn(id="PII1", text=PII_TICKET))
    finally:
        clear_provider_cache()
    # the run really happened and really went out
    assert out["intent"] == "cancel_order" and out["draft"], out
    assert "Maria Schmidt" in out["draft"]  # the agent-facing draft is restored locally
    posted = b"".join(body for method, _, body in received if method in ("POST", "PATCH"))
    assert b"preprocess" in posted and b"draft" in posted and b"audit" in posted
    assert "zstd" in Recorder.encodings  # compressed multipart batches were decoded before asserting
    assert len(llm_requests) >= 2 and b"[PERSON_1]" in b"".join(llm_requests)
    # ... and nothing personal in any of it
    assert _leaks(posted) == [], "trace payload leaks PII"
    for body in llm_requests:
        assert _leaks(body) == [], "external LLM request leaks PII"
    row = deps.audit.get_decision(out["ticket_id"])
    assert row is not None
    assert _leaks(json.dumps(row, default=str)) == [], "audit row leaks PII"


def test_anonymize_drops_unmasked_keys_and_masks_every_string() -> None:
    from src.graph.tracing import REDACTED, anonymize

    payload = {
        "raw_text": "no pattern would find this secret",
        "pre": {"text": "also unmatchable", "masked_text": "[PERSON_1] here",
                "pii_map": {"[PERSON_1]": "Ann"}},
        "draft_display": "Dear Ann",
        "failures": ["draft: ValueError: bad input from jo@example.com"],
        "hits": [{"ticket": {"text": "call me on 07700900123"}}],
        "n": 3,
        "ok": True,
    }
    out = anonymize(payload)
    assert out["raw_text"] == out["draft_display"] == out["pre"]["text"] == out["pre"]["pii_map"] == REDACTED
    assert out["pre"]["masked_text"] == "[PERSON_1] here"
    assert out["failures"] == ["draft: ValueError: bad input from [EMAIL_1]"]
    assert out["hits"][0]["ticket"]["text"] == "call me on [PHONE_1]"
    assert (out["n"], out["ok"]) == (3, True)
    assert payload["raw_text"].startswith("no pattern")  # the caller's dict is not modified


def test_every_traced_run_goes_through_the_anonymizer(endpoint) -> None:
    """The wiring, independent of what the graph state holds today: any traced payload is anonymized."""
    from langsmith import traceable

    from src.config import Settings
    from src.graph.tracing import tracing_scope

    url, received = endpoint

    @traceable(name="probe_run")
    def probe(raw_text: str, note: str) -> dict:
        return {"draft_display": "Dear Ann Example", "echo": note}

    settings = Settings(langsmith_tracing=True, langsmith_endpoint=url, langsmith_api_key="k")
    with tracing_scope(settings):
        probe("an unmatchable secret", "call me on 07700900123")
    posted = b"".join(body for method, _, body in received if method in ("POST", "PATCH"))
    assert b"probe_run" in posted
    for secret in (b"unmatchable secret", b"07700900123", b"Ann Example"):
        assert secret not in posted, secret
    assert b"[PHONE_1]" in posted and b"[redacted]" in posted
