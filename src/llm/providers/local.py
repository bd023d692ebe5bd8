"""Offline provider: llama-cpp-python on a GGUF file, JSON-schema constrained decoding.

Models are loaded once per process (cached by path) and calls are serialised per model, because
a ``Llama`` instance is not thread-safe. Nothing here touches the network.

Prompt prefixes are cached in RAM (``prompt_cache_mb``): analysis and draft calls alternate, and
each starts with a long fixed system prompt; without the cache every call re-reads it (seconds per
call for a 1.5B model on CPU), with it only the ticket and evidence are new.
"""

from __future__ import annotations

import atexit
import json
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from src.llm.deadline import remaining
from src.llm.types import LLMInvalidOutput, LLMTimeout, LLMUnavailable, Usage


@lru_cache(maxsize=4)
def _load(path: str, n_ctx: int, n_threads: int, prompt_cache_mb: int = 0) -> tuple[Any, threading.Lock]:
    try:
        from llama_cpp import Llama, LlamaRAMCache
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise LLMUnavailable(
            "llama-cpp-python is not installed: run scripts/setup.sh (it builds it with "
            'CMAKE_ARGS="-DGGML_NATIVE=OFF")'
        ) from exc
    try:
        llm = Llama(model_path=path, n_ctx=n_ctx, n_threads=n_threads, verbose=False, seed=0)
    except (ValueError, RuntimeError) as exc:
        raise LLMUnavailable(f"cannot load GGUF model {path}: {exc}") from exc
    if prompt_cache_mb > 0:
        llm.set_cache(_sized_cache(LlamaRAMCache, prompt_cache_mb << 20))
    # Free it before interpreter teardown: llama-cpp's own __del__ then fails noisily on exit.
    atexit.register(llm.close)
    return llm, threading.Lock()


def _sized_cache(base: type, capacity_bytes: int) -> Any:
    """llama-cpp's RAM cache, but counting every byte a saved state holds.

    Its own ``cache_size`` counts only the KV state, not the logits copy kept beside it
    (n_batch x vocabulary floats: ~300 MB for Qwen2.5), so the 'capped' cache grew to 20 GB.
    """

    class SizedRAMCache(base):  # type: ignore[misc, valid-type]
        @property
        def cache_size(self) -> int:
            return sum(
                st.llama_state_size + st.scores.nbytes + st.input_ids.nbytes
                for st in self.cache_state.values()
            )

    return SizedRAMCache(capacity_bytes=capacity_bytes)


class LocalProvider:
    """``LLMProvider`` over a local GGUF; greedy decoding so results are reproducible."""

    name = "local"

    def __init__(
        self,
        model_path: Path,
        *,
        model: str | None = None,
        n_ctx: int = 4096,
        n_threads: int = 2,
        prompt_cache_mb: int = 0,
        timeout_s: float | None = None,
    ):
        self.model_path = Path(model_path)
        self.model = model or self.model_path.stem
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.prompt_cache_mb = prompt_cache_mb
        self.timeout_s = timeout_s  # per call; the graph step's deadline (src/llm/deadline.py) also applies

    def _chat(self, system: str, user: str, max_tokens: int, **kwargs: Any) -> tuple[str, Usage]:
        """Generate with the tokens streamed, so a deadline stops the work between two tokens.

        The model lock is waited for only until the deadline, and released when generation stops
        (the stream is closed), so a call that overran frees the model for the next one.
        """
        left = remaining(self.timeout_s)
        deadline = None if left is None else time.monotonic() + left
        llm, lock = _load(str(self.model_path), self.n_ctx, self.n_threads, self.prompt_cache_mb)
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        start = time.perf_counter()
        if not lock.acquire(timeout=-1 if left is None else max(0.0, left)):
            raise LLMTimeout(f"local model busy: no free slot within {left:.1f}s")
        pieces: list[str] = []
        try:
            stream = llm.create_chat_completion(
                messages=messages, max_tokens=max_tokens, temperature=0.0, repeat_penalty=1.1,
                stream=True, **kwargs,
            )
            try:
                for chunk in stream:
                    content = chunk["choices"][0]["delta"].get("content")
                    if content:
                        pieces.append(content)
                    if deadline is not None and time.monotonic() > deadline:
                        raise LLMTimeout(
                            f"local generation stopped at the deadline after {len(pieces)} tokens "
                            f"({time.perf_counter() - start:.1f}s)"
                        )
            finally:
                stream.close()  # stops llama.cpp's generator: no more decoding
            tokens_in = max(0, int(llm.n_tokens) - len(pieces))
        except ValueError as exc:  # e.g. prompt longer than the context window
            raise LLMUnavailable(f"local model rejected the request: {exc}") from exc
        finally:
            lock.release()
        latency = time.perf_counter() - start
        return "".join(pieces), Usage(
            provider=self.name,
            model=self.model,
            tokens_in=tokens_in,  # from the context length: streamed output carries no usage block
            tokens_out=len(pieces),  # one streamed chunk per generated token
            latency_s=round(latency, 4),
            cost_usd=0.0,
        )

    def complete_json(
        self, system: str, user: str, schema: dict, *, max_tokens: int = 512
    ) -> tuple[dict, Usage]:
        text, usage = self._chat(
            system, user, max_tokens, response_format={"type": "json_object", "schema": schema}
        )
        return parse_json_object(text), usage

    def complete_text(self, system: str, user: str, *, max_tokens: int = 512) -> tuple[str, Usage]:
        return self._chat(system, user, max_tokens)


def parse_json_object(text: str) -> dict:
    """Parse a model's JSON object reply (tolerating a ```json fence); else ``LLMInvalidOutput``."""
    s = text.strip()
    if s.startswith("```"):
        s = s.strip("`")
        s = s[4:] if s.lower().startswith("json") else s
    try:
        data = json.loads(s, strict=False)  # small models put raw newlines inside strings
    except json.JSONDecodeError as exc:
        raise LLMInvalidOutput(
            f"model output is not valid JSON ({exc.msg} at {exc.pos}): {text[:200]!r}"
        ) from exc
    if not isinstance(data, dict):
        raise LLMInvalidOutput(f"model output is JSON but not an object: {text[:200]!r}")
    return data
