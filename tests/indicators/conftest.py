"""A live indicators service wired to the live catalog of tests/conftest.py.

The catalog does not yet publish patents and listings itself, so `seed_patent` and
`seed_listing` write `patent` / `listing` entries (docs/contracts.md payloads) straight
into the catalog's feed table; the indicators service reads them over HTTP from the
catalog's `/v1/feed` like any other entry.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from services.catalog.models import FeedEntry as CatalogFeedEntry
from services.indicators.main import create_app
from services.indicators.settings import IndicatorsSettings
from shared import feed
from shared.appno import check_char
from shared.db import Database
from shared.testing import LiveServer, fresh_database
from tests import factories
from tests.conftest import CatalogHandle

_ids = itertools.count(900_001)
_serial = itertools.count(1)


def new_appno(year: int = 2018, kind: str = "1") -> str:
    digits = f"{year}{kind}{next(_serial) + 5_000_000:07d}"
    return f"{digits}.{check_char(digits)}"


async def _append(database_url: str, entries: list[tuple[str, str, str, dict[str, Any]]]) -> int:
    db = Database(database_url)
    try:
        async with db.sessionmaker() as session, session.begin():
            await feed.append(session, CatalogFeedEntry, entries)
        async with db.sessionmaker() as session:
            return int(await session.scalar(select(func.max(CatalogFeedEntry.id))) or 0)
    finally:
        await db.dispose()


@dataclass
class IndicatorsHandle:
    url: str
    database_url: str
    catalog: CatalogHandle
    keys: dict[str, tuple[int, str]] = field(default_factory=dict)

    def client(self, key: str | None = None) -> httpx.Client:
        # the tests read the API's English messages (the default is Chinese: tests/test_i18n.py)
        headers = {"Accept-Language": "en"} | ({"Authorization": f"Bearer {key}"} if key else {})
        return httpx.Client(base_url=self.url, headers=headers, timeout=120)

    # --- catalog-side data -----------------------------------------------------------

    def catalog_feed_head(self) -> int:
        with self.catalog.client() as c:
            after, last = 0, 0
            while True:
                page = c.get("/v1/feed", params={"after": after, "limit": 5000}).json()
                last = page["next_after"]
                if not page["has_more"]:
                    return last
                after = last

    def wait_synced(self, head: int | None = None, timeout: float = 30) -> None:
        head = self.catalog_feed_head() if head is None else head
        deadline = time.monotonic() + timeout
        with self.client() as c:
            while True:
                ready = c.get("/readyz").json()
                at = ready.get("catalog_feed", "")
                if at.startswith("ok at ") and int(at.split()[-1]) >= head:
                    return
                assert time.monotonic() < deadline, f"indicators did not catch up: {ready}"
                time.sleep(0.05)

    def org(self, name: str, kind: str = "university", role: str | None = "supplier",
            **extra: Any) -> tuple[int, str]:  # fmt: skip
        return self.catalog.org(name, kind, role, **extra)

    def seed_patent(self, owners: list[int], industries: list[str] | None = None,
                    appno: str | None = None, **fields: Any) -> dict[str, Any]:  # fmt: skip
        appno = appno or new_appno()
        pid = next(_ids)
        payload = {
            "id": pid, "application_number": appno, "publication_number": None,
            "patent_type": "invention", "title": f"专利 {appno}", "abstract": "", "claims": None,
            "ipc_codes": [], "main_ipc": None, "industries": industries or ["1.2"],
            "patentees": [], "inventors": [], "owner_org_ids": owners,
            "application_date": "2019-03-01", "grant_date": "2020-06-01",
            "expiry_date": "2039-03-01", "legal_status": "granted", "version": 1,
        }  # fmt: skip
        payload.update(fields)
        asyncio.run(_append(self.catalog.database_url, [("patent", str(pid), "upsert", payload)]))
        return payload

    def seed_listing(self, patent: dict[str, Any], status: str = "listed",
                     first_listed_at: str = "2021-03-01T02:00:00+00:00",
                     updated_at: str | None = None, listing_id: int | None = None) -> int:  # fmt: skip
        lid = listing_id or next(_ids)
        payload = {
            "id": lid, "patent_id": patent["id"],
            "application_number": patent["application_number"], "status": status,
            "modes": ["assignment"], "price_cny": "10000.00", "negotiable": True,
            "zero_price": False, "use_first_pay_later": False, "deferred_licence_fee": False,
            "owner_org_ids": patent["owner_org_ids"], "first_listed_at": first_listed_at,
            "updated_at": updated_at or first_listed_at,
        }  # fmt: skip
        asyncio.run(_append(self.catalog.database_url, [("listing", str(lid), "upsert", payload)]))
        return lid

    def patent(self, key: str, owner: str, *, listed: bool = False, **extra: Any) -> str:
        """Upload a patent through the catalog's API (and pool it); return its number."""
        body = factories.patent(owner, **extra)
        with self.catalog.client(key) as c:
            r = c.post("/v1/patents", json=body)
            assert r.status_code in (200, 201), r.text
            if listed:
                r = c.post(
                    "/v1/listings",
                    json={"application_number": body["application_number"], **factories.offer()},
                )
                assert r.status_code == 201, r.text
        return str(body["application_number"])

    # --- indicators-side helpers -----------------------------------------------------

    def deal(self, key: str, *, expect: int = 201, **body: Any) -> dict[str, Any]:
        with self.client(key) as c:
            r = c.post("/v1/deals", json=deal_body(**body))
        assert r.status_code == expect, r.text
        return r.json()  # type: ignore[no-any-return]

    def progress(self, plan: str, year: int, **params: Any) -> dict[str, Any]:
        with self.client() as c:
            r = c.get(f"/v1/plans/{plan}/progress", params={"year": year, **params})
        assert r.status_code == 200, r.text
        return {row["code"]: row for row in r.json()["indicators"]}


_evidence = itertools.count(1)


def deal_body(
    *,
    patents: list[str],
    suppliers: list[int],
    recipient: int,
    kind: str = "licence",
    licence_type: str | None = "non_exclusive",
    effective: str = "2022-05-10",
    contract: str = "2022-05-01",
    amount: str = "50000",
    status: str = "effective",
    evidence_number: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    ev_type = {
        "assignment": "transfer_registration",
        "equity": "transfer_registration",
    }.get(kind, "open_licence_notice" if licence_type == "open" else "licence_filing")
    body = {
        "kind": kind,
        "licence_type": licence_type if kind == "licence" else None,
        "status": status,
        "application_numbers": patents,
        "supplier_org_ids": suppliers,
        "recipient_org_id": recipient,
        "contract_date": contract,
        "effective_date": effective,
        "evidence": {
            "type": ev_type,
            "number": evidence_number or f"EV{next(_evidence):08d}",
            "date": effective or contract,
        },
        "contract_amount": amount,
    }
    body.update(extra)
    return body


def start_indicators(
    catalog: CatalogHandle, database_url: str, **settings: Any
) -> tuple[LiveServer, IndicatorsHandle]:
    app = create_app(
        IndicatorsSettings(
            database_url=database_url,
            catalog_url=catalog.url,
            feed_idle_interval=0.05,
            **settings,
        )
    )
    server = LiveServer(app).start()
    return server, IndicatorsHandle(server.url, database_url, catalog)


@pytest.fixture(scope="module")
def indicators(catalog: CatalogHandle, engine: str, db_dir: Path) -> Iterator[IndicatorsHandle]:
    with fresh_database(engine, db_dir, "indicators") as url:
        server, handle = start_indicators(catalog, url)
        try:
            yield handle
        finally:
            server.stop()


@pytest.fixture(scope="module")
def bureau(indicators: IndicatorsHandle) -> str:
    _, key = indicators.org("天津市知识产权局", "other", "city_bureau", district="hexi")
    return key
