"""Portal settings (env prefix PORTAL_). The portal has no database: it reads and writes
through the three services' HTTP APIs with the signed-in person's token."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class PortalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PORTAL_", env_file=".env", extra="ignore")

    catalog_url: str = "http://127.0.0.1:8101"
    matching_url: str = "http://127.0.0.1:8102"
    indicators_url: str = "http://127.0.0.1:8103"
    # Signs the session cookie. Empty: a random key per process (sessions end on restart);
    # set it in production so several portal processes share sessions.
    secret_key: str = ""
    session_max_age: int = 8 * 3600
    api_timeout: float = 15.0
    default_locale: str = "zh_CN"
    city_plan: str = "city-001"
    # Uploaded files are kept here (per upload id) so the rejected rows can be handed back.
    upload_dir: str = "var/portal-uploads"
    max_upload_bytes: int = 100 * 1024 * 1024
    log_level: str = "INFO"
