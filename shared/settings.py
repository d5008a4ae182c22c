"""Settings common to every service; each service subclasses with its own env prefix."""

from __future__ import annotations

from limits import parse_many
from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///var/service.db"
    # Run Alembic on startup (the embedded default); production runs it as a prestart step.
    migrate_on_startup: bool = True
    log_level: str = "INFO"
    # Largest request body of an ordinary (JSON) route; upload routes have their own.
    max_body_bytes: int = 1024 * 1024
    # Per-key rate limits ("600/minute", "20/second;600/minute"); empty means none, the
    # default for local runs and tests. Production sets them (docker-compose.yml).
    rate_limit_writes: str = ""
    rate_limit_matching: str = ""
    # Seconds a feed consumer at the head waits upstream for the next entry (long poll):
    # entries then arrive as they commit. 0 polls every `feed_idle_interval` instead. It is
    # also how long a stopping producer may wait for its last long poll to end.
    feed_long_poll: float = 5.0

    @field_validator("rate_limit_writes", "rate_limit_matching")
    @classmethod
    def _rate(cls, value: str) -> str:
        if value.strip():
            parse_many(value)  # a typo fails at start-up, not at the first request
        return value
