"""A feed page is assembled from the stored payload text instead of decoding every payload
and encoding it again; the document must be the one the `FeedPage` model describes.

Checked two ways: rows of awkward values against pydantic's own rendering of the same
page, and a round trip through a real catalog on both engines (entries written by the
catalog, read back through `GET /v1/feed`, compared with the rows in the database)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson
from sqlalchemy import select

from services.catalog.models import FeedEntry
from shared.db import Database
from shared.feed import FeedItem, FeedPage, feed_page_json
from tests.conftest import CatalogHandle
from tests.factories import patent

AWKWARD = [
    (1, "patent", "12", "upsert", {"title": "一种\"引号\"与\\反斜杠\n换行", "n": 1.5, "l": [None, True]},
     datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=UTC)),
    (7, "listing", "id with \"quote\"", "delete", {}, datetime(2026, 1, 2)),  # naive: UTC
    (2**40, "organisation", "☃", "upsert", {"nested": {"a": [{"b": "𝔘"}]}, "e": "\u2028"},
     datetime(2026, 11, 27, 23, 59, 59, tzinfo=UTC)),
]  # fmt: skip


def pydantic_page(rows: list[tuple], after: int, has_more: bool) -> dict:
    items = [
        FeedItem(id=i, entity=e, entity_id=eid, op=op, payload=p,
                 created_at=at if at.tzinfo else at.replace(tzinfo=UTC))
        for i, e, eid, op, p, at in rows
    ]  # fmt: skip
    page = FeedPage(items=items, next_after=rows[-1][0] if rows else after, has_more=has_more)
    return orjson.loads(page.model_dump_json())


def test_the_page_is_the_document_pydantic_writes() -> None:
    for payload_text in (orjson.dumps, lambda p: orjson.dumps(p).decode()):
        for has_more in (True, False):
            stored = [(i, e, eid, op, payload_text(p), at) for i, e, eid, op, p, at in AWKWARD]
            stored = [(*r[:4], r[4] if isinstance(r[4], str) else r[4].decode(), r[5])
                      for r in stored]  # fmt: skip
            got = orjson.loads(feed_page_json(stored, 0, has_more))
            assert got == pydantic_page(AWKWARD, 0, has_more)
    assert orjson.loads(feed_page_json([], 42, False)) == pydantic_page([], 42, False)


def test_a_page_read_through_the_api_equals_the_stored_entries(catalog: CatalogHandle) -> None:
    _, key = catalog.org("天津饲料测试大学")
    with catalog.client(key) as c:
        for i in range(3):
            body = patent("天津饲料测试大学", title=f"饲料“配方”\\{i}", abstract="含\n换行。")
            assert c.post("/v1/patents", json=body).status_code == 201
        page = c.get("/v1/feed", params={"after": 0, "limit": 5000}).json()

    async def stored() -> list[dict]:
        db = Database(catalog.database_url)
        try:
            async with db.sessionmaker() as session:
                rows = (await session.scalars(select(FeedEntry).order_by(FeedEntry.id))).all()
                return [
                    FeedItem(id=r.id, entity=r.entity, entity_id=r.entity_id, op=r.op,
                             payload=r.payload, created_at=r.created_at).model_dump(mode="json")
                    for r in rows
                ]  # fmt: skip
        finally:
            await db.dispose()

    want = asyncio.run(stored())
    assert page["items"] == want[: len(page["items"])]
    assert any("饲料“配方”\\" in str(i["payload"].get("title")) for i in page["items"])
    assert page["next_after"] == page["items"][-1]["id"]
