"""The in-memory keyword index gives exactly the plain substring scan's results, on SQLite
and PostgreSQL: random keywords (one, two, three characters, absent ones, two terms,
full-width and upper case) against a brute-force scan of the uploaded texts."""

from __future__ import annotations

import asyncio
import random
import threading
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from services.catalog.domain import search
from services.catalog.domain.keywords import Base, KeywordIndex
from services.catalog.domain.search import (
    Filters,
    build_query,
    encode_cursor,
    keyword_candidates,
    search_rows,
    sort_value,
)
from services.catalog.domain.textnorm import normalize_query, search_text
from services.catalog.models import PatentSearch
from shared.db import Database
from tests.conftest import CatalogHandle, read_statements
from tests.factories import patent
from tests.hostile import run_sql

OWNER = "天津关键词大学"
ALPHABET = "电池正极材料制备方法锂离子高效低温催化剂装置系统abcＡＢ1２"
ABSENT = "鑫"  # never in the first upload


GRANT_DATES = [date(2020, 1, 1) + timedelta(days=91 * i) for i in range(8)]  # ties on purpose


def random_dates(rng: random.Random) -> dict[str, Any]:
    """Dates that vary (and tie) so every date sort has an order to get right; one patent
    in five is pending, without a grant date (it sorts as SQL's NULL stand-in)."""
    applied = date(2019, 1, 1) + timedelta(days=rng.randrange(0, 360, 30))
    if rng.random() < 0.2:
        return {"application_date": applied.isoformat(), "grant_date": None,
                "legal_status": "pending"}  # fmt: skip
    return {"application_date": applied.isoformat(),
            "grant_date": rng.choice(GRANT_DATES).isoformat()}  # fmt: skip


def random_text(rng: random.Random, lo: int, hi: int) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(lo, hi)))


def brute(texts: dict[int, str], q: str) -> set[int]:
    terms = normalize_query(q).split()
    return {pid for pid, text in texts.items() if all(t in text for t in terms)}


def queries(rng: random.Random, texts: dict[int, str]) -> list[str]:
    out = list(ALPHABET) + [ABSENT, "ａ", "Ｃ", "2"]
    out += ["".join(rng.sample(ALPHABET, 2)) for _ in range(60)]
    out += [ABSENT + "电", "电" + ABSENT]
    some = list(texts.values())
    for _ in range(40):  # substrings that occur, and random triples that mostly don't
        t = rng.choice(some)
        i = rng.randrange(max(1, len(t) - 3))
        out.append(t[i : i + rng.randint(3, 5)].replace("\n", ""))
        out.append("".join(rng.sample(ALPHABET, 3)))
    out += [f"{rng.choice(ALPHABET)} {''.join(rng.sample(ALPHABET, 2))}" for _ in range(20)]
    return [q for q in out if q.strip()]


@pytest.fixture(scope="module")
def corpus(catalog: CatalogHandle) -> dict[str, Any]:
    _, key = catalog.org(OWNER)
    rng = random.Random(11)
    texts: dict[int, str] = {}
    bodies: dict[int, dict[str, Any]] = {}
    with catalog.client(key) as c:
        for _ in range(120):
            text = {"title": random_text(rng, 4, 12), "abstract": random_text(rng, 10, 40)}
            body = patent(OWNER, **text, **random_dates(rng))
            r = c.post("/v1/patents", json=body)
            assert r.status_code == 201, r.text
            texts[r.json()["id"]] = search_text(body["title"], body["abstract"])
            bodies[r.json()["id"]] = r.json()  # as stored: expiry_date is the catalog's
    return {"key": key, "texts": texts, "bodies": bodies, "queries": queries(rng, texts)}


async def index_results(url: str, qs: list[str]) -> dict[str, tuple[set[int], set[int]]]:
    """q -> (the index's candidates, the ids the narrowed SQL query returns)."""
    db = Database(url)
    try:
        index = KeywordIndex(db.read_sessionmaker)
        await index.build()
        assert index.stats()["patents"] >= 120
        out = {}
        async with db.read_sessionmaker() as session:
            for q in qs:
                candidates = await keyword_candidates(index, q)
                assert candidates is not None  # the index answered, no scan
                rows = (await session.execute(build_query(Filters(q=q), candidates))).all()
                out[q] = (set(candidates.ids.tolist()), {p.id for p, _ in rows})
        return out
    finally:
        await db.dispose()


def test_index_matches_a_brute_force_scan(catalog: CatalogHandle, corpus: dict[str, Any]) -> None:
    texts = corpus["texts"]
    results = asyncio.run(index_results(catalog.database_url, corpus["queries"]))
    hit_some = 0
    for q, (candidates, found) in results.items():
        expected = brute(texts, q)
        assert found == expected, q
        terms = normalize_query(q).split()
        if all(len(t) <= 2 for t in terms):
            assert candidates == expected, q  # unigram and bigram postings are exact
        else:
            assert candidates >= expected, q
        hit_some += bool(expected)
    assert hit_some > 50  # the keywords are not all absent
    assert not brute(texts, ABSENT) and results[ABSENT] == (set(), set())


def test_api_search_matches_a_brute_force_scan(
    catalog: CatalogHandle, corpus: dict[str, Any]
) -> None:
    texts = corpus["texts"]
    oid = catalog.orgs[OWNER][0]
    with catalog.client() as c:
        for q in corpus["queries"][::3]:
            found: set[int] = set()
            cursor = None
            while True:
                params: dict[str, Any] = {"q": q, "owner": oid, "limit": 50}
                if cursor:
                    params["cursor"] = cursor
                page = c.get("/v1/patents", params=params).json()
                found |= {p["id"] for p in page["items"]}
                cursor = page["next_cursor"]
                if not cursor:
                    break
            assert found == brute(texts, q), q


async def pages(url: str, qs: list[str], sort: str) -> dict[str, list[int]]:
    """Every page of 3 rows, through `search_rows` with the index, for each keyword."""
    db = Database(url)
    try:
        index = KeywordIndex(db.read_sessionmaker)
        await index.build()
        out: dict[str, list[int]] = {}
        async with db.read_sessionmaker() as session:
            for q in qs:
                got: list[int] = []
                cursor = None
                while True:
                    rows = (await search_rows(session, Filters(q=q), sort, cursor, 4, index)).rows
                    got += [row.id for row in rows[:3]]
                    if len(rows) < 4:
                        break
                    last = rows[2]
                    cursor = encode_cursor(sort, sort_value(last, sort), last.id)
                out[q] = got
        return out
    finally:
        await db.dispose()


def sql_order(bodies: dict[int, dict[str, Any]], ids: set[int], sort: str) -> list[int]:
    """The order SQL gives: the date (a missing one as 1900-01-01), then the id."""
    field = sort.lstrip("-")
    if field == "id":
        return sorted(ids, reverse=sort.startswith("-"))
    key = {i: (bodies[i][field] or "1900-01-01", i) for i in ids}
    return sorted(ids, key=key.__getitem__, reverse=sort.startswith("-"))


SORTS = ["-id", "id", "-grant_date", "grant_date", "application_date", "-application_date",
         "expiry_date"]  # fmt: skip


@pytest.mark.parametrize("sort", SORTS)
def test_pages_in_order_through_small_windows(
    catalog: CatalogHandle, corpus: dict[str, Any], sort: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tiny windows: a page needs several of them, and cursors land between equal dates.
    monkeypatch.setattr(search, "FIRST_WINDOW", 2)
    texts, bodies = corpus["texts"], corpus["bodies"]
    qs = corpus["queries"][::4]
    got = asyncio.run(pages(catalog.database_url, qs, sort))
    ties = 0
    for q in qs:
        expected = sql_order(bodies, brute(texts, q), sort)
        assert got[q] == expected, q
        if sort != "id" and sort != "-id":
            ties += len(expected) - len({bodies[i][sort.lstrip("-")] for i in expected})
    assert sort in ("id", "-id") or ties > 10  # equal dates really occur, ids break them


def test_index_follows_uploads_and_updates(catalog: CatalogHandle, corpus: dict[str, Any]) -> None:
    key, texts = corpus["key"], corpus["texts"]
    pid = next(iter(texts))

    async def run() -> None:
        db = Database(catalog.database_url)
        try:
            index = KeywordIndex(db.read_sessionmaker)
            await index.build()
            assert set(index.hits(["鑫鑫"]).tolist()) == set()
            old_title_hits = set(index.hits([texts[pid][:2]]).tolist())
            assert pid in old_title_hits
            # Change one patent's text and add a new one, through the API.
            with catalog.client(key) as c:
                stored = corpus["bodies"][pid]
                body = {
                    **patent(OWNER, title="鑫鑫合金", abstract="鑫鑫合金的冶炼。"),
                    "application_number": stored["application_number"],
                    "application_date": "2019-01-01",
                    "grant_date": "2025-06-30",  # a grant date only this patent has
                }
                r = c.post("/v1/patents", json=body)
                assert r.status_code == 200, r.text
                new = patent(OWNER, title="鑫鑫电涂层", abstract="一种涂层。")
                r = c.post("/v1/patents", json=new)
                assert r.status_code == 201, r.text
                new_id = r.json()["id"]
            assert await index.current()  # a small backlog: caught up inline
            assert set(index.hits(["鑫鑫"]).tolist()) == {pid, new_id}
            # Its dates in the index are the new ones too (date-ordered pages use them).
            # A base keyword whose hits now include a changed patent: merged in date order.
            merged = index.ordered(["电"], "grant_date").tolist()
            assert merged == sorted(set(merged))
            now = {**texts, pid: search_text(body["title"], body["abstract"]),
                   new_id: search_text(new["title"], new["abstract"])}  # fmt: skip
            assert {k & 0xFFFFFFFF for k in merged} == brute(now, "电")
            assert (date(2021, 5, 1).toordinal() << 32 | new_id) in merged
            keys = index.ordered(["鑫鑫"], "grant_date").tolist()
            assert [(k >> 32, k & 0xFFFFFFFF) for k in keys] == [
                (date(2021, 5, 1).toordinal(), new_id),
                (date(2025, 6, 30).toordinal(), pid),
            ]
            assert set(index.hits(["鑫"]).tolist()) == {pid, new_id}
            # The old text no longer finds the changed patent (its base postings are stale).
            gone = [t for t in {texts[pid][:2], texts[pid][-2:]} if t not in "鑫鑫合金的冶炼。"]
            for t in gone:
                assert pid not in set(index.hits([t]).tolist()), t
            # A backlog above the inline limit: the index steps aside (searches scan).
            index.inline_catch_up = 0
            with catalog.client(key) as c:
                r = c.post("/v1/patents", json=patent(OWNER, title="鑫鑫第三", abstract="三。"))
                assert r.status_code == 201
            assert await keyword_candidates(index, "鑫鑫") is None
            await index.stop()
        finally:
            await db.dispose()

    asyncio.run(run())


def test_search_statements_are_cached_with_their_values_bound() -> None:
    """SQLAlchemy caches a search's compiled SQL only if every part declares itself; the
    keyword and the id list must then be bound values, not part of the cached text."""
    import numpy as np

    from services.catalog.domain.search import Candidates

    one = build_query(Filters(q="电池 正极", owner_kind="university"),
                      Candidates(np.array([1, 2, 3]), exact=False))  # fmt: skip
    two = build_query(Filters(q="材料 方法", owner_kind="university"),
                      Candidates(np.array([7]), exact=False))  # fmt: skip
    k1, k2 = one._generate_cache_key(), two._generate_cache_key()
    assert k1 is not None and k1 == k2  # one cached statement for both
    assert [p.value for p in k1.bindparams] != [p.value for p in k2.bindparams]
    assert {"电池", "正极", "university"} <= {str(p.value) for p in k1.bindparams}


def test_pooling_patents_does_not_send_searches_to_the_scan(
    catalog: CatalogHandle, corpus: dict[str, Any]
) -> None:
    """Listing entries on the feed change no text: however many there are, the index stays
    current (a bulk listing of 100k once made every search scan until a rebuild)."""
    from tests.factories import offer

    key, bodies = corpus["key"], corpus["bodies"]
    granted = [b["application_number"] for b in bodies.values() if b["legal_status"] == "granted"]

    async def run() -> None:
        db = Database(catalog.database_url)
        try:
            index = KeywordIndex(db.read_sessionmaker)
            await index.build()
            index.inline_catch_up = 1  # any two patent changes would be "too many"
            with catalog.client(key) as c:
                for number in granted[:5]:
                    r = c.post("/v1/listings", json={"application_number": number, **offer()})
                    assert r.status_code in (200, 201), r.text
            async with db.read_sessionmaker() as session:
                head = await index.head(session)
            assert head > index.position
            assert await index.current()  # five listing entries: nothing to re-read
            assert index.position == head and not index.delta
            with catalog.client(key) as c:  # two patent changes are more than 1: it steps aside
                for _ in range(2):
                    r = c.post("/v1/patents", json=patent(OWNER, title="鑫鑫新", abstract="新。"))
                    assert r.status_code == 201
            assert not await index.current()
            await index.stop()
        finally:
            await db.dispose()

    asyncio.run(run())


def test_index_keeps_current_without_searches(
    catalog: CatalogHandle, corpus: dict[str, Any]
) -> None:
    """A large upload's backlog is rebuilt once the feed is quiet, not when the first search
    after it finds the backlog (which then scanned for the whole rebuild: the portal's
    first searches after a 100k upload took the plain scan's half second). A small one is
    caught up as it comes."""
    key = corpus["key"]

    async def run() -> None:
        db = Database(catalog.database_url)
        try:
            index = KeywordIndex(db.read_sessionmaker)
            index.inline_catch_up = 1
            uploading = [False]  # a bulk upload job running: nothing happens meanwhile
            index.start(follow_interval=0.05, busy=lambda: uploading[0])
            for _ in range(200):
                if index.base is not None:
                    break
                await asyncio.sleep(0.05)
            built_at = index.built_at
            assert built_at is not None
            uploading[0] = True
            with catalog.client(key) as c:  # three patent changes: more than inline (1)
                ids = []
                for i in range(3):
                    body = patent(OWNER, title=f"淼淼跟随{i}", abstract="跟随。")
                    r = c.post("/v1/patents", json=body)
                    assert r.status_code == 201
                    ids.append(r.json()["id"])
            await asyncio.sleep(0.5)  # ten intervals of a quiet feed, but a job is running
            assert index.built_at == built_at and not index.delta
            uploading[0] = False
            for _ in range(400):
                if index.built_at != built_at:
                    break
                await asyncio.sleep(0.05)
            assert index.built_at != built_at, "no rebuild without a search"
            assert set(index.hits(["淼淼"]).tolist()) == set(ids)
            assert not index.delta
            built_at = index.built_at
            with catalog.client(key) as c:  # one change: caught up, no rebuild
                r = c.post("/v1/patents", json=patent(OWNER, title="淼淼第四", abstract="四。"))
                assert r.status_code == 201
                fourth = r.json()["id"]
            for _ in range(200):
                if fourth in index.delta:
                    break
                await asyncio.sleep(0.05)
            assert fourth in index.delta and index.built_at == built_at
            assert set(index.hits(["淼淼"]).tolist()) == {*ids, fourth}
            await index.stop()
        finally:
            await db.dispose()

    asyncio.run(run())


def test_a_failing_build_is_retried_after_a_pause_not_by_every_search() -> None:
    """Every search and the follower ask for a build while there is none; a build that
    fails (the database unreachable, too many patents) must not be run again by each."""
    attempts: list[int] = []

    def unreachable() -> Any:
        attempts.append(1)
        raise ConnectionRefusedError("the database is unreachable")

    async def run() -> None:
        index = KeywordIndex(unreachable)  # type: ignore[arg-type]
        index.retry_after_failure = 0.3
        for _ in range(5):  # five searches: each scans, one build was tried
            assert not await index.current()
            await asyncio.sleep(0.01)
        assert len(attempts) == 1
        assert index.describe().startswith("degraded: build failed (ConnectionRefusedError")
        await asyncio.sleep(0.35)
        assert not await index.current()  # the pause is over: one more try
        await asyncio.sleep(0.01)
        assert len(attempts) == 2
        await index.stop()

    asyncio.run(run())


async def stored_texts(db: Database) -> dict[int, str]:
    async with db.read_sessionmaker() as session:
        rows = await session.execute(select(PatentSearch.patent_id, PatentSearch.text))
        return {int(pid): str(text) for pid, text in rows}


def test_changes_are_sealed_merged_and_rebuilt(
    catalog: CatalogHandle, corpus: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Changes past `seal_after` become a segment of their own, built from the texts in
    memory; the newest segments merge as they grow; once the sealed patents pass
    `max_sealed` everything is rebuilt from the database. After every round each kind of
    keyword finds what a brute-force scan of the stored texts finds, including a patent
    changed again while its segment was being sealed and one changed while its segment
    was being merged."""
    key = corpus["key"]
    rng = random.Random(23)
    qs = corpus["queries"][::2]
    # Background builds wait at the gate: the test decides what changes while one runs.
    gate = threading.Event()
    gate.set()
    build = Base.build.__func__  # type: ignore[attr-defined]

    def gated(cls: type[Base], rows: list[Any], chunk: int = 5000) -> Base:
        assert gate.wait(30)
        return build(cls, rows, chunk)

    monkeypatch.setattr(Base, "build", classmethod(gated))

    def post(c: Any, body: dict[str, Any]) -> int:
        r = c.post("/v1/patents", json=body)
        assert r.status_code in (200, 201), r.text
        mine[int(r.json()["id"])] = r.json()["application_number"]
        return int(r.json()["id"])

    def changed(title: str, number: str) -> dict[str, Any]:
        return patent(OWNER, title=title, abstract=title[1] + "。", application_number=number)

    mine: dict[int, str] = {}  # this test's patents: id -> application number

    async def run() -> None:
        db = Database(catalog.database_url)
        try:
            index = KeywordIndex(db.read_sessionmaker, seal_after=3, max_sealed=20)
            await index.build()
            during_merge = 0
            with catalog.client(key) as c:  # changed in every round, twice
                again = post(c, patent(OWNER, title="鑫始", abstract="始。"))
            others: list[str] = []  # application numbers the rounds may change
            for round_ in range(8):
                with catalog.client(key) as c:
                    y = post(c, patent(OWNER, title=f"鑫甲{round_}", abstract="甲。"))
                    for _ in range(4):
                        body = patent(OWNER, title=random_text(rng, 4, 12),
                                      abstract=random_text(rng, 10, 40), **random_dates(rng))  # fmt: skip
                        if others and rng.random() < 0.4:
                            body["application_number"] = rng.choice(others)
                        others.append(mine[post(c, body)])
                    post(c, changed(f"鑫旧{round_}", mine[again]))
                gate.clear()
                assert await index.current()  # caught up; a seal (or rebuild) starts
                await asyncio.sleep(0.05)
                assert index._rebuild is not None and not index._rebuild.done()
                with catalog.client(key) as c:  # changed again while it is built
                    post(c, changed(f"鑫新{round_}", mine[again]))
                assert await index.current()
                merges = index.merges
                gate.set()
                gate.clear()  # this build goes on; the next (a merge) waits
                await asyncio.sleep(0.05)
                y_changed = not index._rebuild.done()
                if y_changed:  # a merge of the segment holding y is being built
                    with catalog.client(key) as c:
                        post(c, changed(f"鑫乙{round_}", mine[y]))
                    assert await index.current()
                gate.set()
                await index._rebuild
                during_merge += y_changed and index.merges > merges
                assert await index.current()
                hits = {t: set(index.hits([t]).tolist())
                        for t in (f"鑫旧{round_}", f"鑫新{round_}", f"鑫甲{round_}", f"鑫乙{round_}")}  # fmt: skip
                assert hits[f"鑫旧{round_}"] == set() and hits[f"鑫新{round_}"] == {again}
                assert hits[f"鑫甲{round_}"] == (set() if y_changed else {y}), round_
                assert hits[f"鑫乙{round_}"] == ({y} if y_changed else set()), round_
                texts = await stored_texts(db)
                for q in qs:
                    terms = normalize_query(q).split()
                    got = set(index.hits(terms).tolist())
                    if all(len(t) <= 2 for t in terms):
                        assert got == brute(texts, q), (round_, q)
                    else:
                        assert got >= brute(texts, q), (round_, q)
                keys = index.ordered(["电"], "grant_date").tolist()
                assert keys == sorted(keys) and len(keys) == len(set(keys))
            assert index.seals >= 4 and index.merges >= 2 and during_merge >= 1
            assert index.rebuilds >= 2  # the first build, then past max_sealed
            await index.stop()
        finally:
            await db.dispose()

    asyncio.run(run())


def test_a_search_asks_for_the_feed_head_after_a_local_commit_or_a_pause(
    catalog: CatalogHandle, corpus: dict[str, Any]
) -> None:
    """A search checks the feed's head (a round trip) only when this process committed a
    feed append since the last check, or that check is `recheck_after` old. A write from
    elsewhere (plain SQL on a connection of its own, which no session of this process
    commits) shows once the pause has passed; a write through this process at once."""
    key = corpus["key"]

    async def run() -> None:
        db = Database(catalog.database_url)
        statements = read_statements(db)
        try:
            index = KeywordIndex(db.read_sessionmaker, recheck_after=0.5)
            await index.build()
            assert await index.current()  # it has just looked
            with catalog.client(key) as c:
                r = c.post("/v1/patents", json=patent(OWNER, title="鑫此处", abstract="此。"))
                assert r.status_code == 201, r.text
                pid = r.json()["id"]
            assert await index.current()  # committed here: it looks at once
            assert set(index.hits(["鑫此处"]).tolist()) == {pid}
            statements.clear()
            assert await index.current()
            assert statements == []  # nothing committed here since, and it looked just now
            await asyncio.to_thread(run_sql, catalog.database_url, [
                f"UPDATE patent_search SET text = '鑫别处' WHERE patent_id = {pid}",
                "INSERT INTO feed_entry (entity, entity_id, op, payload, created_at) "
                f"VALUES ('patent', '{pid}', 'upsert', '{{}}', CURRENT_TIMESTAMP)",
            ])  # fmt: skip
            assert await index.current() and statements == []
            await asyncio.sleep(0.6)
            assert await index.current()  # the pause has passed: it looks
            # the head and what changed in one statement, then the changed texts
            selects = [sql for sql in statements if sql.lstrip().startswith("SELECT")]
            assert len(selects) == 2, statements
            assert set(index.hits(["鑫别处"]).tolist()) == {pid}
            assert set(index.hits(["鑫此处"]).tolist()) == set()
            statements.clear()
            await asyncio.sleep(0.6)
            assert await index.current()
            selects = [sql for sql in statements if sql.lstrip().startswith("SELECT")]
            assert len(selects) == 1, statements  # nothing new: one look
        finally:
            await db.dispose()

    asyncio.run(run())


def test_searches_queued_behind_a_look_at_the_head_share_it(
    catalog: CatalogHandle, corpus: dict[str, Any]
) -> None:
    """Searches arriving together after a commit queue behind one look at the feed's head
    and use it, instead of each looking again in turn: ten at once cost one look. A look
    that began before a later commit does not answer for a search after that commit."""
    key = corpus["key"]

    async def run() -> None:
        db = Database(catalog.database_url)
        heads: list[str] = []
        event.listen(db.read_engine.sync_engine, "before_cursor_execute",
                     lambda _c, _cur, sql, *_: heads.append(sql) if "max(" in sql else None)  # fmt: skip
        try:
            index = KeywordIndex(db.read_sessionmaker, recheck_after=60.0)
            await index.build()

            def upload(title: str) -> int:
                with catalog.client(key) as c:
                    r = c.post("/v1/patents", json=patent(OWNER, title=title, abstract="此。"))
                    assert r.status_code == 201, r.text
                    return int(r.json()["id"])

            first = await asyncio.to_thread(upload, "鑫齐查一")
            heads.clear()
            assert all(await asyncio.gather(*(index.current() for _ in range(10))))
            assert len(heads) == 1
            assert set(index.hits(["鑫齐查"]).tolist()) == {first}

            second = await asyncio.to_thread(upload, "鑫齐查二")
            assert await index.current()  # the last look began before this commit
            assert len(heads) == 2
            assert set(index.hits(["鑫齐查"]).tolist()) == {first, second}
        finally:
            await db.dispose()

    asyncio.run(run())
