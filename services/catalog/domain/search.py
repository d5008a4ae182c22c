"""Browse and keyword search over the pool.

Keyword search is substring search on `patent_search.text` (title + abstract, NFKC,
lower case), so a two-character keyword such as 电池 finds every patent containing it —
no segmentation to miss it. Relevance ranking is the matching service's job. The
in-memory character index (`domain/keywords.py`) narrows the rows the substring test runs
on to its candidates, when it is current.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    ColumnElement,
    Select,
    String,
    TypeDecorator,
    and_,
    bindparam,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import coercions, roles
from sqlalchemy.sql.visitors import InternalTraversal

from services.catalog import schemas
from services.catalog.domain.ingest import owners_of
from services.catalog.domain.keywords import ID_BITS, NULL_DATE, KeywordIndex
from services.catalog.domain.textnorm import normalize_query
from services.catalog.models import Listing, Organisation, Patent, PatentOwner, PatentSearch
from services.catalog.schemas import POOLED
from shared.errors import Unprocessable

ID_MASK = (1 << ID_BITS) - 1


class ContainsText(ColumnElement[bool]):
    """`haystack` contains `needle`, compiled to the engine's fastest plain substring test.

    strpos (PostgreSQL) / instr (SQLite) beat LIKE '%x%' on CJK text by about 20 %
    and need no escaping of % and _. Its parts are declared for SQLAlchemy's statement
    cache (the needle is a bound value): without them no search statement was cached, and
    compiling each one cost more CPU than running it.
    """

    inherit_cache = True
    type = Boolean()
    _traverse_internals = [
        ("haystack", InternalTraversal.dp_clauseelement),
        ("needle", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, haystack: ColumnElement[str] | Any, needle: str) -> None:
        self.haystack = coercions.expect(roles.ExpressionElementRole, haystack)
        self.needle = bindparam(None, needle, type_=String(), unique=True)


@compiles(ContainsText)
def _contains_default(el: ContainsText, compiler: Any, **kw: Any) -> str:
    return f"instr({compiler.process(el.haystack, **kw)}, {compiler.process(el.needle, **kw)}) > 0"


@compiles(ContainsText, "postgresql")
def _contains_pg(el: ContainsText, compiler: Any, **kw: Any) -> str:
    return f"strpos({compiler.process(el.haystack, **kw)}, {compiler.process(el.needle, **kw)}) > 0"


class IdList(TypeDecorator[list[int]]):
    """A list of ids as one bound value: a BIGINT[] on PostgreSQL, JSON text elsewhere."""

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(ARRAY(BigInteger()))
        return dialect.type_descriptor(String())

    def process_bind_param(self, value: list[int] | None, dialect: Any) -> Any:
        if value is None or dialect.name == "postgresql":
            return value
        return json.dumps(value)


class IdIn(ColumnElement[bool]):
    """`column` is one of `ids` (any number of them, one bound parameter, so one cached
    statement serves every list)."""

    inherit_cache = True
    type = Boolean()
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("ids", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: ColumnElement[int] | Any, ids: Sequence[int] | np.ndarray) -> None:
        self.column = coercions.expect(roles.ExpressionElementRole, column)
        values = ids.tolist() if isinstance(ids, np.ndarray) else [int(i) for i in ids]
        self.ids = bindparam(None, values, type_=IdList(), unique=True)


@compiles(IdIn)
def _id_in_default(el: IdIn, compiler: Any, **kw: Any) -> str:
    ids = compiler.process(el.ids, **kw)
    return f"{compiler.process(el.column, **kw)} IN (SELECT value FROM json_each({ids}))"


@compiles(IdIn, "postgresql")
def _id_in_pg(el: IdIn, compiler: Any, **kw: Any) -> str:
    return f"{compiler.process(el.column, **kw)} = ANY({compiler.process(el.ids, **kw)})"


SORTS = {
    "-id": (Patent.id, True),
    "id": (Patent.id, False),
    "application_date": (Patent.application_date, False),
    "-application_date": (Patent.application_date, True),
    "grant_date": (Patent.grant_date, False),
    "-grant_date": (Patent.grant_date, True),
    "expiry_date": (Patent.expiry_date, False),
}


@dataclass
class Filters:
    q: str | None = None
    ipc: str | None = None
    industry: str | None = None
    owner: int | None = None
    owner_kind: str | None = None
    district: str | None = None
    mode: str | None = None
    zero_price: bool | None = None
    use_first_pay_later: bool | None = None
    patent_type: str | None = None
    legal_status: str | None = None
    pool_status: str | None = None  # a listing status, or "pooled" / "unlisted"


def keyword_terms(q: str | None) -> list[str]:
    return normalize_query(q).split() if q else []


@dataclass
class Candidates:
    """Patents the keyword index found; `exact`: they are the answer (every term has one
    or two characters), else a superset the substring test narrows. `keys`: their sort
    keys, ascending (`KeywordIndex.ordered`), by `field` (a date) or by id (None)."""

    keys: np.ndarray
    exact: bool
    field: str | None = None

    @property
    def ids(self) -> np.ndarray:
        return ids_of(self.keys, self.field)


def ids_of(keys: np.ndarray, field: str | None) -> np.ndarray:
    """Patent ids of sort keys (`KeywordIndex.ordered`): a date's key carries the id low."""
    return keys & ID_MASK if field else keys


async def keyword_candidates(
    index: KeywordIndex | None,
    q: str | None,
    field: str | None = None,
    session: AsyncSession | None = None,
) -> Candidates | None:
    """The keyword index's candidates for `q`, or None when it cannot answer yet
    (`session`: the search's, for the index's check that it is current)."""
    terms = keyword_terms(q)
    if not terms or index is None or not await index.current(session):
        return None
    keys = index.ordered(terms, field)
    return Candidates(keys, exact=all(len(t) <= 2 for t in terms), field=field)


def build_query(f: Filters, candidates: Candidates | None = None) -> Select[*tuple[Any, ...]]:
    """`candidates`: what the keyword index found for `f.q` (None: scan every text)."""
    stmt = select(Patent, Listing).outerjoin(Listing, Listing.patent_id == Patent.id)
    conds: list[ColumnElement[bool]] = []
    terms = keyword_terms(f.q)
    if terms:
        matching: list[ColumnElement[bool]] = [ContainsText(PatentSearch.text, t) for t in terms]
        if candidates is not None:
            matching.append(IdIn(PatentSearch.patent_id, candidates.ids))
            conds.append(IdIn(Patent.id, candidates.ids))
        if candidates is None or not candidates.exact:
            conds.append(Patent.id.in_(select(PatentSearch.patent_id).where(*matching)))
    if f.ipc:
        prefix = f.ipc.upper().replace(" ", "")
        conds.append(Patent.ipc_text.contains(" " + prefix, autoescape=True))
    if f.industry:
        # "1.2" is a branch; "1" means every branch of industry 1.
        token = f" {f.industry} " if "." in f.industry else f" {f.industry}."
        conds.append(Patent.industry_text.contains(token, autoescape=True))
    if f.patent_type:
        conds.append(Patent.patent_type == f.patent_type)
    if f.legal_status:
        conds.append(Patent.legal_status == f.legal_status)
    owner_conds = []
    if f.owner is not None:
        owner_conds.append(PatentOwner.org_id == f.owner)
    if f.owner_kind or f.district:
        org_conds = [Organisation.id == PatentOwner.org_id]
        if f.owner_kind:
            org_conds.append(Organisation.kind == f.owner_kind)
        if f.district:
            org_conds.append(Organisation.district == f.district)
        owner_conds.append(exists().where(*org_conds))
    if owner_conds:
        conds.append(exists().where(PatentOwner.patent_id == Patent.id, *owner_conds))
    if f.pool_status == "pooled":
        conds.append(Listing.status.in_(POOLED))
    elif f.pool_status == "unlisted":
        conds.append(Listing.id.is_(None))
    elif f.pool_status:
        conds.append(Listing.status == f.pool_status)
    if f.mode:
        conds.append(Listing.mode_text.contains(f" {f.mode} ", autoescape=True))
    if f.zero_price is not None:
        conds.append(Listing.zero_price.is_(f.zero_price))
    if f.use_first_pay_later is not None:
        conds.append(Listing.use_first_pay_later.is_(f.use_first_pay_later))
    return stmt.where(and_(*conds)) if conds else stmt


def encode_cursor(sort: str, value: Any, pid: int) -> str:
    raw = json.dumps([sort, value.isoformat() if isinstance(value, date) else value, pid])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def check_sort(sort: str) -> None:
    if sort not in SORTS:
        raise Unprocessable.field("sort", f"unknown sort '{sort}'; use one of {sorted(SORTS)}")


def decode_cursor(sort: str, cursor: str) -> tuple[Any, int]:
    """(sort value, patent id) of the last row of the previous page."""
    col, _ = SORTS[sort]
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        c_sort, c_value, c_id = json.loads(base64.urlsafe_b64decode(padded))
        if c_sort != sort:
            raise ValueError("cursor belongs to another sort order")
        if not isinstance(c_id, int) or not 0 <= c_id < 2**63:
            raise ValueError("bad position")
        if col is not Patent.id:
            c_value = date.fromisoformat(c_value) if c_value else NULL_DATE
    except Exception as exc:
        raise Unprocessable.field("cursor", f"invalid cursor ({exc})") from None
    return c_value, c_id


def apply_sort(
    stmt: Select[*tuple[Any, ...]], sort: str, cursor: str | None
) -> Select[*tuple[Any, ...]]:
    check_sort(sort)
    col, desc = SORTS[sort]
    key = col if col is Patent.id else func.coalesce(col, NULL_DATE)
    if cursor:
        c_value, c_id = decode_cursor(sort, cursor)
        if col is Patent.id:
            stmt = stmt.where(Patent.id < c_id if desc else Patent.id > c_id)
        elif desc:
            stmt = stmt.where(or_(key < c_value, and_(key == c_value, Patent.id < c_id)))
        else:
            stmt = stmt.where(or_(key > c_value, and_(key == c_value, Patent.id > c_id)))
    if col is Patent.id:
        return stmt.order_by(Patent.id.desc() if desc else Patent.id)
    return stmt.order_by(key.desc() if desc else key, Patent.id.desc() if desc else Patent.id)


FIRST_WINDOW = 256  # candidates the first query of a page looks at


def page_order(candidates: Candidates, sort: str, cursor: str | None) -> np.ndarray:
    """Candidate ids in the page's order, after the cursor: what SQL would return for the
    keyword alone, so walking them a window at a time finds the page's rows first."""
    _, desc = SORTS[sort]
    keys = candidates.keys
    if cursor:
        c_value, c_id = decode_cursor(sort, cursor)
        at = c_id if candidates.field is None else (c_value.toordinal() << ID_BITS) | c_id
        keys = (
            keys[: np.searchsorted(keys, at)]
            if desc
            else keys[np.searchsorted(keys, at, "right") :]
        )
    ids = ids_of(keys, candidates.field)
    return ids[::-1] if desc else ids


# What a search page shows, read as plain rows, not ORM objects: building, tracking and
# then validating a Patent and a Listing object per row was most of a search's CPU under
# the mixed load. The claims (up to 200 kB a patent) are not on the page.
PAGE_PATENT_COLUMNS = tuple(
    c for c in Patent.__table__.c if c.key in schemas.Patent.model_fields and c.key != "claims"
)
PAGE_LISTING_COLUMNS = tuple(
    c.label(f"listing_{c.key}")
    for c in Listing.__table__.c
    if c.key in schemas.Listing.model_fields
)


# On PostgreSQL a page's owners come with its rows (one statement instead of two): the
# planner evaluates a target-list subquery only for the rows left after ORDER BY ... LIMIT
# (tests/catalog/test_search_page.py reads the plan). SQLite would run it for every row
# it sorts, so there they are read after the page (`owners_of`).
PAGE_OWNERS = func.array(
    select(PatentOwner.org_id).where(PatentOwner.patent_id == Patent.id).scalar_subquery(),
    type_=ARRAY(BigInteger),
).label("owner_ids")


@dataclass
class SearchPage:
    """`search_rows`' answer: the rows (see `page_item`) and each row's owners."""

    rows: list[Any]
    owners: dict[int, set[int]]


def page_item(row: Any, owners: set[int]) -> dict[str, Any]:
    """A search row (`search_rows`) as the fields of `schemas.Patent`."""
    values = row._mapping
    item = {c.key: values[c.key] for c in PAGE_PATENT_COLUMNS}
    item["owner_org_ids"] = sorted(owners)
    has_listing = values["listing_id"] is not None
    item["listing"] = (
        {c.element.key: values[c.name] for c in PAGE_LISTING_COLUMNS} if has_listing else None
    )
    return item


async def search_rows(
    session: AsyncSession,
    f: Filters,
    sort: str,
    cursor: str | None,
    limit: int,
    index: KeywordIndex | None,
) -> SearchPage:
    """Up to `limit` rows of the page (`limit + 1` tells there is more) and their owners:
    the columns of `PAGE_PATENT_COLUMNS` and `PAGE_LISTING_COLUMNS` (see `page_item`)."""
    check_sort(sort)
    col, _ = SORTS[sort]
    with_owners = owners_inline(session)
    candidates = await keyword_candidates(
        index, f.q, None if col is Patent.id else col.key, session
    )
    rows: list[Any] = []
    if candidates is None:
        stmt = page_columns(apply_sort(build_query(f, None), sort, cursor), with_owners)
        rows = list((await session.execute(stmt.limit(limit))).all())
    else:
        # Walk the candidates in page order, a growing window at a time, so a common
        # keyword costs one small query and a rare one (or a selective filter) a few.
        ids = page_order(candidates, sort, cursor)
        start, size = 0, max(4 * limit, FIRST_WINDOW)
        while start < len(ids) and len(rows) < limit:
            window = Candidates(ids[start : start + size], candidates.exact)  # keys = ids
            # The cursor is already applied: the window holds only candidates after it.
            stmt = page_columns(apply_sort(build_query(f, window), sort, None), with_owners)
            rows += (await session.execute(stmt.limit(limit - len(rows)))).all()
            start, size = start + size, size * 4
    return SearchPage(rows, await row_owners(session, rows, with_owners))


async def patent_item(session: AsyncSession, number: str) -> dict[str, Any] | None:
    """The patent with this (normalised) application number as the fields of
    `schemas.Patent`, claims included; None when it is not in the catalog. Read as a
    search row is: one statement on PostgreSQL instead of three (patent, owners, listing)."""
    with_owners = owners_inline(session)
    stmt = select(Patent).outerjoin(Listing, Listing.patent_id == Patent.id)
    stmt = page_columns(stmt, with_owners).add_columns(Patent.claims)
    row = (await session.execute(stmt.where(Patent.application_number == number))).first()
    if row is None:
        return None
    owners = (await row_owners(session, [row], with_owners))[row.id]
    return {**page_item(row, owners), "claims": row.claims}


def owners_inline(session: AsyncSession) -> bool:
    """Whether a page's owners come in its own statement (`PAGE_OWNERS`): on PostgreSQL."""
    return session.get_bind().dialect.name == "postgresql"


async def row_owners(
    session: AsyncSession, rows: Sequence[Any], inline: bool
) -> dict[int, set[int]]:
    """Each row's owners: read off the rows (`PAGE_OWNERS`, `inline`), else one statement."""
    if inline:
        return {row.id: set(row.owner_ids) for row in rows}
    return await owners_of(session, [row.id for row in rows]) if rows else {}


def page_columns(stmt: Select[*tuple[Any, ...]], with_owners: bool) -> Select[*tuple[Any, ...]]:
    """`build_query`'s statement selecting a page's columns instead of the ORM objects
    (`with_owners`: and `PAGE_OWNERS`)."""
    owners = (PAGE_OWNERS,) if with_owners else ()
    return stmt.with_only_columns(*PAGE_PATENT_COLUMNS, *PAGE_LISTING_COLUMNS, *owners)


def sort_value(patent: Any, sort: str) -> Any:
    """The sort column's value of a patent (an ORM object or a search row)."""
    col, _ = SORTS[sort]
    return getattr(patent, col.key) or (None if col is Patent.id else NULL_DATE)
