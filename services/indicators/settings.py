from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class IndicatorsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INDICATORS_", env_file=".env", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///var/indicators.db"
    # The catalog: API keys (introspection), organisations/patents/listings (its feed).
    catalog_url: str = "http://127.0.0.1:8101"
    # The matching service's feed (needs, leads); empty disables the consumer.
    matching_url: str = ""
    # Follow the catalog feed in the background (tests may turn it off and catch up by hand).
    follow_feeds: bool = True
    feed_idle_interval: float = 0.5
    # Seconds a deal naming a patent or organisation the local copies lack may wait for the
    # catalog feed to bring it, while that feed is busy (0: ask the catalog at once).
    # Just-uploaded patents then mostly arrive by the feed instead of a catalog call.
    lookup_feed_wait: float = 0.5
    # After this long of that wait the catalog is asked too, and the first answer is used
    # (a hedged request: the feed's slowest arrivals no longer set the deal's tail).
    lookup_hedge_after: float = 0.15
    # Ledger exports larger than this many deals are refused as XLSX (Excel's row limit).
    xlsx_max_rows: int = 1_048_000
