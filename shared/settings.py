"""Settings common to every service; each service subclasses with its own env prefix."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///var/service.db"
    # Run Alembic on startup (the embedded default); production runs it as a prestart step.
    migrate_on_startup: bool = True
    log_level: str = "INFO"
    # Largest request body of an ordinary (JSON) route; upload routes have their own.
    max_body_bytes: int = 1024 * 1024
