"""Fixtures shared by every service's tests.

Every database test runs twice: on SQLite and on PostgreSQL (`TEST_DATABASE_URL`,
default postgresql://postgres@127.0.0.1:5432/test). Without a reachable PostgreSQL the
PostgreSQL half is skipped locally, and fails under CI=true.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from services.catalog.cli import create_org_with_key
from services.catalog.domain.uscc import make_uscc
from services.catalog.main import MIGRATIONS as CATALOG_MIGRATIONS
from services.catalog.main import create_app as create_catalog_app
from services.catalog.settings import CatalogSettings
from shared.auth import Role
from shared.db import Database, upgrade
from shared.testing import LiveServer, fresh_database, postgres_reachable, postgres_url

FIXTURES = Path(__file__).parent / "fixtures"
# In-process test services are one process each: the matching service's multi-worker
# machinery (domain/replicas.py) is tested with real worker processes in
# tests/matching/test_workers.py.
os.environ.setdefault("MATCHING_WORKERS", "1")
ENGINES = ["sqlite", "postgresql"]


def require_engine(engine: str) -> None:
    if engine == "postgresql" and not postgres_reachable():
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {postgres_url()} is unreachable; CI requires it")
        pytest.skip(f"PostgreSQL at {postgres_url()} is unreachable")


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    require_engine(request.param)
    return str(request.param)


@pytest.fixture(scope="module")
def db_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("db")


_serial = iter(range(10_000_000, 99_999_999))


def next_uscc() -> str:
    # 12 = public institution registry, 1 = type; 120104 = Nankai district.
    return make_uscc(f"121201040{next(_serial):08d}")


@dataclass
class CatalogHandle:
    url: str
    database_url: str
    admin_key: str
    orgs: dict[str, tuple[int, str]] = field(default_factory=dict)

    def client(self, key: str | None = None) -> httpx.Client:
        # the tests read the API's English messages (the default is Chinese: tests/test_i18n.py)
        headers = {"Accept-Language": "en"} | ({"Authorization": f"Bearer {key}"} if key else {})
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def org(
        self, name: str, kind: str = "university", role: str | None = "supplier", **extra: Any
    ) -> tuple[int, str]:
        """Create (once) an organisation with a key; return (org_id, key)."""
        if name in self.orgs:
            return self.orgs[name]
        body: dict[str, Any] = {"kind": kind, "name": name, "uscc": next_uscc()}
        body.setdefault("district", "nankai")
        body.update(extra)
        if kind == "sme":
            body.setdefault("sme_basis", "工信部联企业〔2011〕300号 小型企业")
        with self.client(self.admin_key) as c:
            r = c.post("/v1/organisations", json=body)
            if r.status_code == 409:  # made by an earlier test or the demo loader
                found = c.get("/v1/organisations", params={"q": name}).json()["items"]
                org_id = next(o["id"] for o in found if o["name"] == name)
            else:
                assert r.status_code == 201, r.text
                org_id = r.json()["id"]
            key = ""
            if role:
                r = c.post(f"/v1/organisations/{org_id}/keys", json={"role": role})
                assert r.status_code == 201, r.text
                key = r.json()["key"]
        self.orgs[name] = (org_id, key)
        return org_id, key


def start_catalog(database_url: str, **settings: Any) -> tuple[LiveServer, str]:
    upgrade(CATALOG_MIGRATIONS, database_url)
    _, admin_key = asyncio.run(
        create_org_with_key(
            database_url,
            {"kind": "other", "name": "平台管理员", "district": "heping"},
            Role.ADMIN,
        )
    )
    assert admin_key
    app = create_catalog_app(CatalogSettings(database_url=database_url, **settings))
    return LiveServer(app).start(), admin_key


@pytest.fixture(scope="module")
def catalog(engine: str, db_dir: Path) -> Iterator[CatalogHandle]:
    """A real catalog service over HTTP on a fresh database of the given engine."""
    with fresh_database(engine, db_dir, "catalog") as url:
        server, admin_key = start_catalog(url)
        try:
            yield CatalogHandle(server.url, url, admin_key)
        finally:
            server.stop()


def read_statements(db: Database) -> list[str]:
    """The SQL the database's read engine sends from now on (a list that grows)."""
    statements: list[str] = []
    event.listen(db.read_engine.sync_engine, "before_cursor_execute",
                 lambda _c, _cur, sql, *_: statements.append(sql))  # fmt: skip
    return statements
