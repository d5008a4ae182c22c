"""Matching served by two real worker processes (`python -m services.matching --workers 2`)
against a live catalog, on SQLite and PostgreSQL: one leader follows the feed, every
worker's index and needs stay current, and a follower takes over when the leader dies."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from services.matching.main import MIGRATIONS
from services.matching.models import FeedCursor, FeedEntry
from shared.db import Database, upgrade
from shared.testing import free_port, fresh_database
from tests.conftest import CatalogHandle
from tests.hostile import refusal_rule, run_sql
from tests.matching.conftest import new_patent

UNI = "天津多进程大学"
SME = "天津多进程照明有限公司"
ROOT = Path(__file__).resolve().parents[2]


async def feed_state(url: str) -> tuple[int, int]:
    """(entries on the matching feed, the catalog cursor) straight from the database."""
    db = Database(url)
    try:
        async with db.read_sessionmaker() as session:
            entries = await session.scalar(select(func.count()).select_from(FeedEntry))
            cursor = await session.get(FeedCursor, "catalog")
            return int(entries or 0), cursor.position if cursor else 0
    finally:
        await db.dispose()


class Workers:
    def __init__(self, catalog: CatalogHandle, db_url: str, index_dir: Path) -> None:
        self.catalog, self.db_url, self.port = catalog, db_url, free_port()
        env = {**os.environ, "MATCHING_DATABASE_URL": db_url,
               "MATCHING_CATALOG_URL": catalog.url, "MATCHING_INDEX_DIR": str(index_dir),
               "MATCHING_FEED_IDLE_INTERVAL": "0.05", "MATCHING_WORKERS": "2"}  # fmt: skip
        self.log = (index_dir / "workers.log").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.matching", "--port", str(self.port)],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{self.port}"

    def status(self) -> dict[str, Any]:
        """/v1/index on a new connection: the kernel hands it to either worker."""
        r = httpx.get(f"{self.url}/v1/index", timeout=10)
        r.raise_for_status()
        return dict(r.json())

    def by_worker(
        self, until: Callable[[dict[int, dict[str, Any]]], bool], timeout: float = 60
    ) -> dict[int, dict[str, Any]]:
        """Latest /v1/index per live worker pid, polled until `until` holds for them."""
        seen: dict[int, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        while True:
            try:
                st = self.status()
                seen[st["worker"]["pid"]] = st
            except httpx.HTTPError:
                pass
            seen = {pid: st for pid, st in seen.items() if alive(pid)}
            if len(seen) >= 2 and until(seen):
                return seen
            if time.monotonic() > deadline:
                raise TimeoutError(f"workers never got there: {seen}")
            time.sleep(0.02)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed worker stays a zombie until uvicorn reaps it.
    return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


@pytest.fixture(scope="module")
def workers(
    catalog: CatalogHandle, engine: str, db_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Workers]:
    with fresh_database(engine, db_dir, "matchingw") as url:
        upgrade(MIGRATIONS, url)
        w = Workers(catalog, url, tmp_path_factory.mktemp("windex"))
        try:
            yield w
        finally:
            w.stop()


def upload_listed(catalog: CatalogHandle, key: str, title: str, abstract: str) -> str:
    body = new_patent(UNI, title, abstract, ["H05B45/37"])
    with catalog.client(key) as c:
        r = c.post("/v1/patents", json=body)
        assert r.status_code in (200, 201), r.text
        r = c.post("/v1/listings", json={"application_number": body["application_number"],
                                         "modes": ["assignment"], "price_cny": "1000"})  # fmt: skip
        assert r.status_code == 201, r.text
    return str(body["application_number"])


def leaders(seen: dict[int, dict[str, Any]]) -> list[int]:
    return [pid for pid, st in seen.items() if st["worker"]["role"] == "leader"]


def test_two_workers_one_leader_all_current(workers: Workers, catalog: CatalogHandle) -> None:
    _, uni_key = catalog.org(UNI, district="nankai")
    _, sme_key = catalog.org(SME, kind="sme", role="sme", district="dongli")
    seen = workers.by_worker(lambda s: True)
    assert len(leaders(seen)) == 1, seen
    assert {st["worker"]["role"] for st in seen.values()} == {"leader", "follower"}

    appno = upload_listed(catalog, uni_key, "一种钌铱多进程催化电极",
                          "本发明公开了一种钌铱催化电极，析氯效率高。")  # fmt: skip
    need_ids = []
    for i in range(4):  # new connections: both workers take some of the writes
        r = httpx.post(f"{workers.url}/v1/needs", headers={"Authorization": f"Bearer {sme_key}"},
                       json={"title": f"钌铱催化电极需求{i}", "industry": "1",
                             "description": "电解析氯用的钌铱催化电极，寿命要长。"})  # fmt: skip
        assert r.status_code == 201, r.text
        need_ids.append(r.json()["id"])
    # Every worker indexes the patent (the leader from the feed, the follower from the
    # database) and every need, whichever worker took it.
    seen = workers.by_worker(
        lambda s: all(
            st["patents"]["documents"] >= 1 and st["needs"]["documents"] == 4 for st in s.values()
        )  # fmt: skip
    )
    for _ in range(20):  # new connections: both workers answer some
        r = httpx.post(f"{workers.url}/v1/match", json={"text": "钌铱催化电极"}, timeout=10)
        assert r.json()["hits"][0]["application_number"] == appno
    with httpx.Client(base_url=workers.url, headers={"Authorization": f"Bearer {uni_key}"}) as c:
        hits = c.get(f"/v1/patents/{appno}/needs").json()["hits"]
        assert sorted(h["need"]["id"] for h in hits) == sorted(need_ids)

    # Nothing applied or published twice: one feed entry per need write, the cursor at head.
    entries, position = asyncio.run(feed_state(workers.db_url))
    assert entries == 4
    with catalog.client() as c:
        head = c.get("/v1/feed", params={"after": 0, "limit": 5000}).json()["next_after"]
    assert position == head


def test_a_follower_takes_over_when_the_leader_dies(
    workers: Workers, catalog: CatalogHandle
) -> None:
    _, uni_key = catalog.org(UNI, district="nankai")
    seen = workers.by_worker(lambda s: len(leaders(s)) == 1)
    old_leader = leaders(seen)[0]
    os.kill(old_leader, signal.SIGKILL)
    appno = upload_listed(catalog, uni_key, "一种锇钯多进程接管电极",
                          "本发明公开了一种锇钯电极，用于接管测试。")  # fmt: skip
    # A follower takes the lock and follows the feed; uvicorn starts a replacement worker.
    seen = workers.by_worker(
        lambda s: (
            old_leader not in s
            and len(leaders(s)) == 1
            and all(st["patents"]["documents"] >= 2 for st in s.values())
        ),
        timeout=90,
    )
    assert old_leader not in seen
    r = httpx.post(f"{workers.url}/v1/match", json={"text": "锇钯接管电极"}, timeout=10)
    assert r.json()["hits"][0]["application_number"] == appno


def test_a_replay_on_any_worker_reaches_every_worker(
    workers: Workers, catalog: CatalogHandle
) -> None:
    _, uni_key = catalog.org(UNI, district="nankai")
    add, lift = refusal_rule(workers.db_url, "patent", "title", "POISON")
    run_sql(workers.db_url, add)
    admin = {"Authorization": f"Bearer {catalog.admin_key}"}
    try:
        appno = upload_listed(catalog, uni_key, "POISON 一种铑铂多进程重放电极", "铑铂重放电极。")
        deadline = time.monotonic() + 90
        while not (parked := httpx.get(f"{workers.url}/v1/feed/parked", headers=admin).json()):
            assert time.monotonic() < deadline, "never parked"
            time.sleep(0.2)
    finally:
        run_sql(workers.db_url, lift)
    r = httpx.post(f"{workers.url}/v1/feed/parked/{parked[0]['id']}/replay", headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "replayed", r.text
    # The worker that replayed re-indexed at once; the other notices the resolved entry.
    deadline = time.monotonic() + 30
    in_a_row = 0
    while in_a_row < 20:  # new connections: both workers answer some
        hits = httpx.post(f"{workers.url}/v1/match", json={"text": "铑铂重放电极"}).json()["hits"]
        found = bool(hits) and hits[0]["application_number"] == appno
        in_a_row = in_a_row + 1 if found else 0
        assert time.monotonic() < deadline, "a worker never re-indexed the replayed patent"


def test_workers_that_cannot_start_stop_the_service_with_a_reason() -> None:
    """A taken port kills every worker at start: the supervisor gives up and says why
    instead of restarting them for ever."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        done = subprocess.run(
            [sys.executable, "-m", "services.matching", "--workers", "2", "--port", str(port)],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        taken.close()
    assert done.returncode != 0
    assert f"is port {port} taken?" in done.stderr
