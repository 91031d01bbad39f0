"""Service settings, read from ``BANDIT_FUSION_*`` environment variables and an optional ``.env``.

Nothing here touches the database: :func:`service.app.create_app` builds the engine from a
:class:`Settings` instance, so tests and the CLI can pass their own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_FILE = "bandit_fusion.db"


class Settings(BaseSettings):
    """Configuration of the allocation service.

    Every field maps to an environment variable with the ``BANDIT_FUSION_`` prefix, e.g.
    ``BANDIT_FUSION_DATABASE_URL=postgresql+psycopg://user@db:5432/bandits``.
    """

    model_config = SettingsConfigDict(
        env_prefix="BANDIT_FUSION_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    environment: Literal["local", "production"] = Field(
        default="local",
        description="'production' refuses the implicit SQLite file, asks for an API key "
        "to read the API docs, and keeps the database's kind out of /v1/health.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL. Unset: a local SQLite file (sqlite_path), WAL mode. "
        "PostgreSQL: postgresql+psycopg://user:password@host:5432/dbname",
    )
    database_schema: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$",
        description="PostgreSQL schema holding the tables (search_path); ignored on SQLite.",
    )
    sqlite_path: Path = Field(
        default=Path(DEFAULT_SQLITE_FILE), description="File used when no URL."
    )
    sqlite_busy_timeout_ms: int = Field(default=10_000, ge=0)
    pool_size: int = Field(default=10, ge=1, le=200)
    max_overflow: int = Field(default=10, ge=0, le=200)
    pool_ping_idle_s: float = Field(
        default=5.0,
        ge=0.0,
        description="PostgreSQL: a pooled connection idle for longer than this is checked "
        "(one round trip) when it is taken from the pool, and replaced if the server dropped "
        "it; busier connections are used without the check. 0 checks at every checkout.",
    )
    decision_group_commit: bool | None = Field(
        default=None,
        description="Store concurrent decisions in groups: a writer thread reads the "
        "experiments of the decisions queued meanwhile once, stores them with one INSERT and "
        "one commit, and answers each request after that commit (same durability). "
        "Unset: on for PostgreSQL, off for SQLite (there a commit is local and cheap).",
    )
    decision_group_max_rows: int = Field(
        default=200, ge=1, le=2000, description="Most decisions stored by one group commit."
    )
    decision_group_threads: int = Field(
        default=2,
        ge=1,
        le=16,
        description="Groups of decisions in flight at once per worker process (each one "
        "thread and one connection).",
    )
    decision_group_wait_ms: float = Field(
        default=0.0,
        ge=0.0,
        le=100.0,
        description="After the first decision of a group, milliseconds to wait for more before "
        "writing. 0: write at once; a group is then what queued while the previous one was "
        "being written.",
    )
    reward_group_commit: bool | None = Field(
        default=None,
        description="Record concurrent single rewards in groups: a writer thread takes the "
        "rewards queued meanwhile and records each experiment's as one batch (one lock, one "
        "policy update, one commit), and answers each request after that commit (same "
        "durability; a group that fails is recorded again one reward at a time). Unset: on "
        "for PostgreSQL, off for SQLite (there rewards do not queue for a row lock; measured "
        "no gain).",
    )
    reward_group_max_items: int = Field(
        default=200, ge=1, le=2000, description="Most single rewards recorded by one group."
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "warning"

    auth_cache_ttl_s: float = Field(
        default=2.0, ge=0.0, description="Seconds a verified API key is trusted without a query."
    )
    settle_interval_s: float = Field(
        default=30.0,
        ge=0.0,
        description="Seconds between background passes that learn a zero reward for decisions "
        "whose reward window closed without a reward; 0 disables the background pass.",
    )
    max_batch_size: int = Field(
        default=10_000, ge=1, description="Most rewards in one batch request (else 413)."
    )
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        description="Largest request body in bytes; a larger one is refused with 413 as soon "
        "as its Content-Length announces it or its streamed bytes pass the limit.",
    )
    max_context_bytes: int = Field(
        default=16 * 1024,
        ge=2,
        description="Largest decision context in bytes, encoded as compact UTF-8 JSON (413).",
    )

    models_dir: Path | None = Field(
        default=None,
        description="Folder written by 'bandit-fusion arms train': its arms are loaded at "
        "start-up and can back an experiment's arms (decisions then return items).",
    )
    max_k: int = Field(
        default=100, ge=1, le=10_000, description="Longest list a decision may ask for (k)."
    )
    default_k: int = Field(default=10, ge=1, le=10_000, description="k when a decision omits it.")
    models_device: str | None = Field(
        default=None,
        pattern=r"^(cpu|cuda(:[0-9]+)?)$",
        description="Where the loaded arms score: 'cpu', 'cuda' or 'cuda:N'. Unset: CUDA when "
        "available, else the CPU.",
    )
    torch_threads: int | None = Field(
        default=1,
        ge=1,
        le=256,
        description="torch's intra-op threads in each worker process, set at start-up when "
        "models are loaded. A decision's scoring is too small to gain from them, and idle "
        "OpenMP threads spin on the cores the other requests need; the service already "
        "runs requests (and workers) in parallel. Unset: torch's default (every core).",
    )
    decision_batching: bool = Field(
        default=True,
        description="Score the items of concurrent decisions together (one batched call per "
        "recommender); off: each decision is scored alone, at once.",
    )
    decision_batch_window_ms: float = Field(
        default=1.5,
        ge=0.0,
        le=50.0,
        description="Longest wait of a decision for others to score with; a batch closes "
        "earlier when full or when no other decision is on its way.",
    )
    decision_batch_max: int = Field(
        default=64, ge=1, le=4096, description="Most decisions scored in one batch."
    )
    candidate_cache_depth: int = Field(
        default=64,
        ge=0,
        le=4096,
        description="Precompute, when the models are loaded, each recommender's lists for "
        "every known user and the cold start, at each top_k depth a request can need up to "
        "this one (16, 32, 64, ...; a decision asks for k + len(exclude) items rounded up to "
        "such a depth). Full-catalogue decisions within it are answered from memory with "
        "the same lists; deeper ones and those with candidates are scored live. 0: off.",
    )
    candidate_cache_users: int = Field(
        default=100_000,
        ge=0,
        description="Most known users whose lists are precomputed per recommender (the first "
        "by id); the others are scored live. Memory: about 8 bytes x users x (16 + 32 + "
        "... + depth) per recommender (depth 64: 90 MB per 100,000 users).",
    )
    dashboard_secret: SecretStr | None = Field(
        default=None,
        description="Key that signs dashboard session cookies (at least 32 characters). Unset: "
        "a random one per process, so sessions end when the service restarts and need a "
        "single worker.",
    )
    reports_dir: Path | None = Field(
        default=None,
        description="Folder whose sub-folders (outputs of 'bandit-fusion simulate' or 'replay', "
        "each with a summary.json) the dashboard shows under /dashboard/reports.",
    )
    dashboard_session_s: int = Field(
        default=8 * 3600, ge=60, le=7 * 86400, description="Lifetime of a dashboard session."
    )

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Settings:
        if self.environment == "production":
            if self.database_url is None:
                raise ValueError(
                    "environment is 'production' but BANDIT_FUSION_DATABASE_URL is unset: "
                    "set it explicitly (SQLite file or PostgreSQL URL) instead of relying on "
                    f"the implicit local file {DEFAULT_SQLITE_FILE!r}."
                )
            if self.auth_cache_ttl_s > 60:
                raise ValueError("auth_cache_ttl_s above 60 s delays key revocation too long.")
        secret = self.dashboard_secret
        if secret is not None and len(secret.get_secret_value()) < 32:
            raise ValueError("dashboard_secret must be at least 32 characters.")
        if self.database_url is not None and "changethis" in self.database_url:
            raise ValueError("database_url still contains the placeholder password 'changethis'.")
        return self

    @property
    def url(self) -> str:
        """The effective SQLAlchemy URL (the SQLite file when none is configured)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.sqlite_path}"

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @property
    def group_decisions(self) -> bool:
        """Whether decisions are committed in groups (``decision_group_commit``)."""
        return self._grouped(self.decision_group_commit)

    @property
    def group_rewards(self) -> bool:
        """Whether single rewards are recorded in groups (``reward_group_commit``)."""
        return self._grouped(self.reward_group_commit)

    def _grouped(self, setting: bool | None) -> bool:
        """A group-commit setting, else the backend's default: PostgreSQL yes, SQLite no."""
        return setting if setting is not None else not self.is_sqlite
