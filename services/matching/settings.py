from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class MatchingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MATCHING_", env_file=".env", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///var/matching.db"
    catalog_url: str = "http://127.0.0.1:8101"
    # Index snapshots (`patents.npz`) with the feed position they reflect.
    index_dir: str = "var/matching-index"
    # Follow the catalog feed (off only in tests that drive the consumer by hand).
    consume_feed: bool = True
    feed_idle_interval: float = 0.2
    # Write a snapshot at most this often while the index changes, and on shutdown.
    snapshot_interval: float = 60.0
    max_k: int = 100
    # Worker processes `python -m services.matching` starts (uvicorn --workers). Each holds
    # its own index (memory per worker: README performance section); one of them, the
    # leader, follows the feed and writes snapshots (domain/replicas.py). Above 1 the app
    # also runs the follower loop, which is what makes a worker safe beside others.
    workers: int = 2
    # Where `python -m services.matching` listens.
    host: str = "127.0.0.1"
    port: int = 8102
