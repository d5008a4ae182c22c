"""A live matching service wired to the live catalog of tests/conftest.py."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.matching.main import MIGRATIONS, create_app
from services.matching.settings import MatchingSettings
from shared.appno import make_application_number
from shared.db import upgrade
from shared.testing import LiveServer, fresh_database
from tests.conftest import CatalogHandle

_serial = itertools.count(1)


def new_patent(owner: str, title: str, abstract: str, ipc: list[str], **extra: Any) -> dict:
    body = {
        "application_number": make_application_number(2019, "1", 700_000 + next(_serial)),
        "title": title,
        "abstract": abstract,
        "ipc_codes": ipc,
        "patentees": [owner],
        "legal_status": "granted",
        "application_date": "2019-03-01",
        "grant_date": "2021-05-01",
    }
    body.update(extra)
    return body


@dataclass
class MatchingHandle:
    catalog: CatalogHandle
    database_url: str
    index_dir: Path
    server: LiveServer | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    def start(self) -> MatchingHandle:
        settings = MatchingSettings(
            database_url=self.database_url,
            catalog_url=self.catalog.url,
            index_dir=str(self.index_dir),
            feed_idle_interval=0.05,
            snapshot_interval=3600,
            **self.extra,
        )
        self.server = LiveServer(create_app(settings)).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def client(self, key: str | None = None) -> httpx.Client:
        # the tests read the API's English messages (the default is Chinese: tests/test_i18n.py)
        headers = {"Accept-Language": "en"} | ({"Authorization": f"Bearer {key}"} if key else {})
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def catalog_head(self) -> int:
        with self.catalog.client() as c:
            after = 0
            while True:
                page = c.get("/v1/feed", params={"after": after, "limit": 5000}).json()
                after = page["next_after"]
                if not page["has_more"]:
                    return after

    def wait_synced(self, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until the index reflects everything on the catalog feed right now."""
        head = self.catalog_head()
        deadline = time.monotonic() + timeout
        with self.client() as c:
            while True:
                status = c.get("/v1/index").json()
                if status["patents"]["position"] >= head:
                    return status
                if time.monotonic() > deadline:
                    raise TimeoutError(f"index at {status} never reached catalog feed {head}")
                time.sleep(0.05)


@pytest.fixture(scope="module")
def matching(
    catalog: CatalogHandle, engine: str, db_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MatchingHandle]:
    with fresh_database(engine, db_dir, "matching") as url:
        upgrade(MIGRATIONS, url)
        handle = MatchingHandle(catalog, url, tmp_path_factory.mktemp("index")).start()
        try:
            yield handle
        finally:
            handle.stop()
