from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class CatalogSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CATALOG_", env_file=".env", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///var/catalog.db"
    # Where the indicators feed lives; empty disables the consumer (deals -> converted).
    indicators_url: str = ""
    max_upload_bytes: int = 100 * 1024 * 1024
    max_bulk_listing_bytes: int = 16 * 1024 * 1024
    max_upload_records: int = 50_000
    # Uploads above this many records run as a background job the client polls.
    sync_upload_limit: int = 2_000
    # Sign-in tokens (POST /v1/sessions) live this long.
    session_ttl_seconds: float = 8 * 3600
    # Failed sign-ins tolerated per login / per client address within the window.
    login_max_failures: int = 5
    login_max_failures_per_client: int = 20
    login_failure_window_seconds: float = 15 * 60
    # Records per transaction of an upload job (progress is saved after each).
    upload_chunk_records: int = 2_000
    # 1: upload jobs validate their chunks in a worker process beside the service, so the
    # validation overlaps the writing instead of sharing its interpreter lock. It costs
    # ~80 µs more CPU a patent (start-up, pickling) and only pays on a host with a core to
    # spare; on the shared 2-core bench machine it did not (notes: bench/bulk_profile.py).
    upload_workers: int = 0
    # Upload jobs running at once (each holds its parsed file in memory); more → 503.
    max_concurrent_jobs: int = 2
    # Keyword search through the in-memory character index (domain/keywords.py); off:
    # every keyword search scans patent_search.
    keyword_index: bool = True
