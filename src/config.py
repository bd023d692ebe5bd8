"""The one place configuration is read.

Every knob is an environment variable with the ``TRIAGE_`` prefix (or a line in ``.env``);
a few standard third-party variables (``ANTHROPIC_API_KEY``, ``OPENAI_API_KEY``,
``LANGSMITH_TRACING``, ``HF_TOKEN``) are accepted as aliases so users don't have to set
things twice. Code asks :func:`get_settings` instead of reading ``os.environ``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"

# USD per 1M tokens (input, output). Local models cost nothing per token.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "claude-sonnet-4-5": (3.0, 15.0),
    "claude-haiku-4-5": (1.0, 5.0),
    "claude-opus-4-1": (15.0, 75.0),
    "gpt-4o": (2.5, 10.0),
    "gpt-4o-mini": (0.15, 0.6),
    "gpt-4.1-mini": (0.4, 1.6),
}


SHIPPED_BUNDLE = PROJECT_ROOT / "bundles" / "intent-bitext"


def default_model_dir() -> Path:
    """``models/intent`` when a bundle was trained there, else the Bitext bundle committed in the repo."""
    local = Path("models/intent")
    return local if (local / "bundle.json").is_file() else SHIPPED_BUNDLE


class Settings(BaseSettings):
    """Typed, env-driven settings. Paths are relative to the working directory unless absolute."""

    model_config = SettingsConfigDict(
        env_prefix="TRIAGE_", env_file=".env", extra="ignore", populate_by_name=True
    )

    # --- storage roots -------------------------------------------------------------------
    data_dir: Path = Path("data")
    shared_data_dir: Path = SHARED_DATA

    # --- classifier ----------------------------------------------------------------------
    # models/intent once you trained one, else the bundle shipped in the repository (bundles/)
    model_dir: Path = Field(default_factory=lambda: default_model_dir())
    base_model: str = "minilm"
    # intra-op threads for classifier inference (0 = library default). 1 because on the shared
    # 2-core box, 2 threads measured ~2.7x slower (reports/classifier/bench*.json) and the LLM and
    # embedder compete for the same cores; raise it on a dedicated machine.
    classifier_threads: int = 1
    # shadow mode (docs/lifecycle.md): this candidate bundle scores every ticket too, without acting
    shadow_model_dir: Path | None = None
    hf_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("TRIAGE_HF_TOKEN", "HF_TOKEN")
    )

    # --- retrieval -----------------------------------------------------------------------
    embedding_model: str = "minilm"
    embedding_backend: Literal["auto", "onnx", "torch"] = "auto"  # auto: ONNX Runtime if exportable
    qdrant_url: str | None = None
    qdrant_api_key: SecretStr | None = None
    qdrant_path: Path = Path("data/qdrant")
    qdrant_collection: str = "resolved_tickets"
    recency_half_life_days: float = 365.0
    recency_weight: float = 0.02
    retrieval_k: int = 5
    retrieval_min_filtered_hits: int = 3
    qdrant_timeout_s: int = 5  # server mode: seconds before a call counts as 'unavailable'
    retrieval_dedupe_cosine: float = 0.98  # ingest: near-duplicate cutoff; >= 1 disables
    qdrant_shard_number: int | None = None  # server/cluster only: shards of a new collection
    qdrant_replication_factor: int | None = None  # server/cluster only: copies of each shard
    # embedded engine without a URL: Qdrant Edge (HNSW, in-process) or qdrant-client's local mode
    # (brute force; the same client code path as a server, kept for the congruence test)
    qdrant_embedded: Literal["edge", "local"] = "edge"
    qdrant_hnsw_m: int = 16  # fixed at collection creation (docs/retrieval.md)
    qdrant_hnsw_ef_construct: int = 100
    qdrant_hnsw_ef: int = 128  # search-time candidate list
    qdrant_quantization: Literal["int8", "none"] = "int8"  # int8 copy in RAM, rescored with originals
    qdrant_optimize_every: int = 200_000  # ingest: build the HNSW index every N new points (Edge)
    retrieval_hybrid: bool = False  # dense + BM25 fused with RRF (reports/retrieval/hybrid.md)
    retrieval_rrf_k: int = 60
    retrieval_bm25_avg_len: float = 5.0  # indexed tokens per ticket (Bitext mean 4.4)

    # --- LLM -----------------------------------------------------------------------------
    llm_provider: Literal["auto", "local", "anthropic", "openai"] = "auto"
    llm_model: str | None = None
    local_model_path: Path | None = None
    local_model: Literal["smollm2", "qwen2.5-0.5b", "qwen2.5-1.5b"] = "smollm2"
    models_cache_dir: Path = Path("models/llm")
    # 1: on the shared 2-core box 2 llama.cpp threads measured ~3x slower per call (scripts/llm_profile.py,
    # docs/llm.md); raise it on a dedicated machine
    llm_threads: int = 1
    llm_context: int = 4096
    llm_prompt_cache_mb: int = 1536  # local: RAM for cached prompt prefixes, logits included (0 = off)
    anthropic_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("TRIAGE_ANTHROPIC_API_KEY", "ANTHROPIC_API_KEY")
    )
    anthropic_base_url: str | None = None
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("TRIAGE_OPENAI_API_KEY", "OPENAI_API_KEY")
    )
    openai_base_url: str | None = None
    llm_timeout_s: float = 60.0
    llm_max_retries: int = 2
    llm_prices: dict[str, tuple[float, float]] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    mask_pii_external: bool = True
    mask_pii_local: bool = False
    llm_max_input_chars: int = 6000  # ticket text beyond this is cut before it reaches an LLM prompt
    draft_evidence_k: int = 1  # retrieved resolutions shown to the drafter (the checks see all of them)
    draft_evidence_chars: int = 700  # each resolution is cut to this many characters in the prompt
    draft_max_tokens: int = 240  # reply budget (the reply's maxLength is twice this in characters)
    # Company constants a draft may contain even if only one resolution (or none) shows them: support
    # phone, help-centre URLs (a URL also covers the pages under it). JSON list in the env var.
    draft_allowed_values: list[str] = Field(default_factory=list)
    draft_min_agreement: float = 0.25  # a cited resolution must share this much of the reply's terms
    # fast path (#12, docs/llm.md): cheap analysis heads before the LLM, template drafts before LLM drafts
    analysis_heads_path: Path | None = PROJECT_ROOT / "bundles" / "analysis-heads" / "heads.json"  # None: off
    template_drafts: bool = True  # a close same-intent resolution (placeholders filled) is the draft
    template_min_similarity: float = 0.70  # how similar that resolved ticket must be
    draft_placeholder_values: dict[str, str] = Field(default_factory=dict)  # {"Website Name": "..."}
    draft_suggest: Literal["after_decision", "off"] = "after_decision"  # suggest's LLM draft, after audit
    analysis_llm_on_rules: bool = False  # a rule fired = escalate anyway: ask the LLM too (it can only raise)

    # --- graph / routing -----------------------------------------------------------------
    auto_threshold: float = 0.85
    suggest_threshold: float = 0.60
    auto_min_similarity: float = 0.60  # auto-resolve needs a resolved ticket at least this similar
    routing_config: Path | None = None
    max_ticket_chars: int = 20_000
    supported_languages: list[str] = Field(default_factory=lambda: ["en"])
    node_timeout_s: float = 180.0  # a graph step slower than this fails closed (-> escalate)
    calibration_target_precision: float = 0.99  # auto-resolve precision floor (Clopper-Pearson lower bound)
    calibration_min_support: int = 30  # fewer held-out auto-resolved examples -> never auto-resolve

    # --- audit + checkpoints -------------------------------------------------------------
    database_url: str | None = None  # postgresql://... switches audit + checkpoints to Postgres
    database_schema: str = "public"  # Postgres schema for the audit tables + LangGraph checkpoints
    sqlite_path: Path = Path("data/triage.db")
    checkpoint_sqlite_path: Path = Path("data/checkpoints.db")
    outbox_dir: Path = Path("data/outbox")
    database_pool_size: int = 10  # Postgres connections per pool (audit, checkpoints, ticket locks)
    retention_days: int = 90  # raw ticket text + PII maps of finished tickets are purged after this
    # SQLite audit/intake file: "full" = a commit is on disk (fsync, shared by concurrent commits) before
    # it returns; "normal" = no fsync (survives a killed process, not a power loss). docs/reliability.md
    sqlite_synchronous: Literal["full", "normal"] = "full"
    # graph checkpoints: "sync" = before every step, "exit" = when the run pauses or ends, "auto" = sync
    # with an LLM (a crash does not pay for its calls twice), exit without one. docs/reliability.md
    graph_durability: Literal["auto", "sync", "exit"] = "auto"

    # --- tracing -------------------------------------------------------------------------
    langsmith_tracing: bool = Field(
        default=False, validation_alias=AliasChoices("TRIAGE_LANGSMITH_TRACING", "LANGSMITH_TRACING")
    )
    langsmith_endpoint: str | None = Field(
        default=None, validation_alias=AliasChoices("TRIAGE_LANGSMITH_ENDPOINT", "LANGSMITH_ENDPOINT")
    )
    langsmith_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("TRIAGE_LANGSMITH_API_KEY", "LANGSMITH_API_KEY")
    )
    langsmith_project: str = Field(
        default="triage", validation_alias=AliasChoices("TRIAGE_LANGSMITH_PROJECT", "LANGSMITH_PROJECT")
    )

    # --- service (src/api; docs/service.md) ----------------------------------------------
    broker_url: str | None = None  # redis://... or amqp://...: queue to `python -m src.api.worker`
    queue_name: str = "triage"  # broker queue (and Redis key/event namespace); one per deployment
    events_redis_url: str | None = None  # SSE across processes; defaults to broker_url when it is redis://
    service_workers: int = 2  # embedded mode: in-process worker threads
    worker_threads: int = 1  # per `python -m src.api.worker` process
    worker_heartbeat_s: float = 60.0  # Redis broker: a silent worker's tickets are redelivered after this
    requeue_after_s: float = 120.0  # sweep: re-enqueue tickets accepted this long ago and still undecided
    service_llm: bool = True  # False: no LLM call (heads + templates decide; the rest waits for a human)
    service_factory: str | None = None  # "module:function" returning a TriageService (tests, custom wiring)
    max_request_bytes: int = 1_000_000  # larger bodies get 413
    max_wait_s: float = 30.0  # cap for POST /v1/tickets?wait=S
    api_key_pepper: SecretStr | None = None  # server secret mixed into API key hashes (else a data-dir file)
    api_key_cache_s: float = 10.0  # a verified key is trusted this long without a lookup (revocation delay)
    api_key_stale_s: float = 3600.0  # database down: keys verified this recently keep working for intake
    zendesk_webhook_secret: SecretStr | None = None
    freshdesk_webhook_secret: SecretStr | None = None
    intercom_client_secret: SecretStr | None = None
    webhook_tolerance_s: int = 300  # Zendesk signatures older/newer than this are rejected
    zendesk_url: str | None = None  # https://SUBDOMAIN.zendesk.com (write-back off when unset)
    zendesk_email: str | None = None
    zendesk_api_token: SecretStr | None = None
    freshdesk_url: str | None = None  # https://DOMAIN.freshdesk.com
    freshdesk_api_key: SecretStr | None = None
    intercom_url: str = "https://api.intercom.io"
    intercom_access_token: SecretStr | None = None
    intercom_admin_id: str | None = None  # the admin the notes are written as
    auto_send_channels: list[str] = Field(default_factory=list)  # auto_resolve drafts sent to the customer
    helpdesk_groups: dict[str, dict[str, str]] = Field(default_factory=dict)  # {helpdesk: {team: group id}}
    writeback_timeout_s: float = 10.0
    writeback_retries: int = 3

    def resolved_llm_provider(self) -> Literal["local", "anthropic", "openai"]:
        """``auto`` never makes a silent network call: external only when a key is configured."""
        if self.llm_provider != "auto":
            return self.llm_provider
        if self.anthropic_api_key is not None:
            return "anthropic"
        if self.openai_api_key is not None or self.openai_base_url:
            return "openai"
        return "local"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings (cached). Tests build ``Settings(...)`` directly instead."""
    return Settings()
