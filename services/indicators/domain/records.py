"""Drill-down (the records behind a figure) and breakdowns of the ledger counts."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.indicators.domain.common import day_end_utc, local_year, money_text
from services.indicators.domain.rules import (
    POOLED,
    Window,
    _deals_where,
    _lines_where,
    _pledge_where,
    pooled_at_stmt,
)
from services.indicators.models import (
    Deal,
    DealPatent,
    DealSupplier,
    Listing,
    Payment,
    Pledge,
    PoolEvent,
    ProductFiling,
    Securitisation,
)
from shared.errors import Unprocessable


def _line_cols() -> list[Any]:
    return [
        DealPatent.id.label("line_id"),
        DealPatent.deal_id,
        DealPatent.application_number,
        DealPatent.industry,
        Deal.kind,
        Deal.licence_type,
        Deal.status,
        Deal.effective_date,
        Deal.evidence_number,
        DealPatent.lead_supplier_org_id.label("supplier_org_id"),
        DealPatent.recipient_org_id,
        Deal.recipient_name,
        DealPatent.recipient_district,
        DealPatent.counts,
        DealPatent.repeat_of_deal_id,
    ]


def _deal_cols() -> list[Any]:
    return [
        Deal.id.label("deal_id"),
        Deal.kind,
        Deal.licence_type,
        Deal.status,
        Deal.effective_date,
        Deal.evidence_number,
        Deal.lead_supplier_org_id.label("supplier_org_id"),
        Deal.recipient_org_id,
        Deal.recipient_name,
        Deal.recipient_district,
        Deal.contract_amount,
        Deal.amount_received,
    ]


def record_query(rule: str, w: Window) -> tuple[Select[*tuple[Any, ...]], Any]:
    """The rows behind a rule's figure over the window; returns (select, id column)."""
    if rule in ("sme_patent_deals", "sme_patents_distinct"):
        q = select(*_line_cols()).join(Deal, Deal.id == DealPatent.deal_id)
        return q.where(_lines_where(w, DealPatent.counts)), DealPatent.id
    if rule == "transfers_licences":
        q = select(*_line_cols()).join(Deal, Deal.id == DealPatent.deal_id)
        cond = _lines_where(w, DealPatent.active, DealPatent.kind.in_(("assignment", "licence")))
        return q.where(cond), DealPatent.id
    if rule == "contract_amount":
        return select(*_deal_cols()).where(_deals_where(w)), Deal.id
    if rule in ("sme_contract_amount", "smes_benefiting"):
        return select(*_deal_cols()).where(_deals_where(w, Deal.qualifies)), Deal.id
    if rule == "smes_converting_academic":
        return select(*_deal_cols()).where(_deals_where(w, Deal.academic_to_sme)), Deal.id
    if rule == "sme_amount_received":
        conds = [
            Deal.status == "effective",
            Deal.qualifies,
            Payment.received_on >= w.start,
            Payment.received_on <= w.as_of,
        ]
        if w.district:
            conds.append(Deal.recipient_district == w.district)
        q = (
            select(
                Payment.id.label("payment_id"),
                Payment.deal_id,
                Payment.amount,
                Payment.received_on,
                Deal.recipient_org_id,
                Deal.recipient_name,
                Deal.recipient_district,
            )
            .join(Deal, Deal.id == Payment.deal_id)
            .where(and_(*conds))
        )
        return q, Payment.id
    if rule in ("pledge_amount", "pledge_count", "mixed_pledges"):
        extra = [Pledge.asset_kind == "mixed"] if rule == "mixed_pledges" else []
        q = select(
            Pledge.id.label("pledge_id"),
            Pledge.registration_number,
            Pledge.pledgor_org_id,
            Pledge.pledgor_name,
            Pledge.pledgor_district,
            Pledge.lender,
            Pledge.amount,
            Pledge.registered_on,
            Pledge.asset_kind,
        ).where(_pledge_where(w, *extra))
        return q, Pledge.id
    if rule == "sme_product_filings":
        conds = [
            ProductFiling.org_is_sme.is_(True),
            ProductFiling.filed_on >= w.start,
            ProductFiling.filed_on <= w.as_of,
        ]
        if w.district:
            conds.append(ProductFiling.org_district == w.district)
        q = select(
            ProductFiling.id.label("filing_id"),
            ProductFiling.filing_number,
            ProductFiling.org_id,
            ProductFiling.org_name,
            ProductFiling.org_district,
            ProductFiling.product_name,
            ProductFiling.filed_on,
        ).where(and_(*conds))
        return q, ProductFiling.id
    if rule == "securitisation_products":
        conds = [Securitisation.issued_on >= w.start, Securitisation.issued_on <= w.as_of]
        if w.district:
            conds.append(Securitisation.district == w.district)
        q = select(
            Securitisation.id.label("securitisation_id"),
            Securitisation.code,
            Securitisation.name,
            Securitisation.issuer,
            Securitisation.district,
            Securitisation.issued_on,
            Securitisation.amount,
        ).where(and_(*conds))
        return q, Securitisation.id
    if rule == "pooled_ever":
        lo = day_end_utc(date.fromordinal(w.start.toordinal() - 1))
        conds = [Listing.first_listed_at >= lo, Listing.first_listed_at < day_end_utc(w.as_of)]
        if w.district:
            conds.append(Listing.owner_district == w.district)
        q = select(
            Listing.id.label("listing_id"),
            Listing.application_number,
            Listing.status,
            Listing.owner_district,
            Listing.first_listed_at,
        ).where(and_(*conds))
        return q, Listing.id
    if rule == "pooled_current":
        inner = pooled_at_stmt(day_end_utc(w.as_of), w.district).with_only_columns(
            PoolEvent.listing_id
        )
        q = select(
            Listing.id.label("listing_id"),
            Listing.application_number,
            Listing.status,
            Listing.owner_district,
            Listing.first_listed_at,
        ).where(Listing.id.in_(inner))
        return q, Listing.id
    raise Unprocessable.field("rule", f"no drill-down for rule {rule}")


def _jsonable(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row._mapping.items():
        if isinstance(v, date):
            out[k] = v.isoformat()
        elif isinstance(v, Decimal):  # amounts: exact decimal strings, as in the deal API
            out[k] = money_text(v)
        else:
            out[k] = v
    return out


async def records(
    session: AsyncSession, rule: str, w: Window, *, after: int = 0, limit: int = 100
) -> dict[str, Any]:
    q, id_col = record_query(rule, w)
    total = await session.scalar(select(func.count()).select_from(q.subquery()))
    rows = (await session.execute(q.where(id_col > after).order_by(id_col).limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = [_jsonable(r) for r in rows]
    last = rows[-1]._mapping[list(rows[-1]._mapping.keys())[0]] if rows else None
    return {
        "rule": rule,
        "window": {"from": w.start.isoformat(), "to": w.as_of.isoformat(), "district": w.district},
        "total": int(total or 0),
        "items": items,
        "next_cursor": str(last) if more else None,
    }


BREAKDOWN_BY = ("year", "district", "supplier", "industry", "kind")
BREAKDOWN_RULES = ("sme_patent_deals", "transfers_licences", "all_deals")


async def breakdown(session: AsyncSession, rule: str, by: str, w: Window) -> list[dict[str, Any]]:
    """Patent-deal lines of a rule grouped by one dimension (sums equal the total)."""
    if by not in BREAKDOWN_BY:
        raise Unprocessable.field("by", f"one of {', '.join(BREAKDOWN_BY)}")
    if rule == "sme_patent_deals":
        where = _lines_where(w, DealPatent.counts)
    elif rule == "transfers_licences":
        where = _lines_where(w, DealPatent.active, DealPatent.kind.in_(("assignment", "licence")))
    elif rule == "all_deals":
        where = _lines_where(w, DealPatent.active)
    else:
        raise Unprocessable.field("rule", f"one of {', '.join(BREAKDOWN_RULES)}")
    key = {
        "year": DealPatent.year,
        "district": DealPatent.recipient_district,
        "supplier": DealPatent.lead_supplier_org_id,
        "industry": DealPatent.industry,
        "kind": DealPatent.kind,
    }[by]
    stmt = (
        select(
            key.label("key"),
            func.count().label("patent_deals"),
            func.count(func.distinct(DealPatent.patent_id)).label("distinct_patents"),
            func.count(func.distinct(DealPatent.deal_id)).label("deals"),
        )
        .where(where)
        .group_by(key)
        .order_by(key)
    )
    rows = (await session.execute(stmt)).all()
    names: dict[int, tuple[str, str]] = {}
    if by == "supplier" and rows:
        ids = [r.key for r in rows]
        srows = (
            await session.execute(
                select(DealSupplier.org_id, DealSupplier.name, DealSupplier.kind)
                .where(DealSupplier.org_id.in_(ids))
                .distinct()
            )
        ).all()
        names = {oid: (n, k) for oid, n, k in srows}
    out = []
    for r in rows:
        item: dict[str, Any] = {
            by: r.key,
            "patent_deals": r.patent_deals,
            "distinct_patents": r.distinct_patents,
            "deals": r.deals,
        }
        if by == "supplier":
            item["supplier_name"], item["supplier_kind"] = names.get(r.key, ("", ""))
        out.append(item)
    return out


async def pool_breakdown(session: AsyncSession, by: str, as_of: date) -> list[dict[str, Any]]:
    """Ever pooled and currently pooled patents by district or by year first listed."""
    if by not in ("district", "year"):
        raise Unprocessable.field("by", "district or year")
    bound = day_end_utc(as_of)
    if by == "district":
        ever = (
            await session.execute(
                select(Listing.owner_district, func.count())
                .where(Listing.first_listed_at < bound)
                .group_by(Listing.owner_district)
            )
        ).all()
        current = dict(
            (
                await session.execute(
                    pooled_at_stmt(bound, None)
                    .with_only_columns(PoolEvent.owner_district, func.count())
                    .group_by(PoolEvent.owner_district)
                )
            ).all()
        )
        return [
            {"district": d, "ever_pooled": n, "currently_pooled": current.get(d, 0)}
            for d, n in sorted(ever, key=lambda r: r[0] or "")
        ]
    rows = (
        await session.execute(
            select(Listing.first_listed_at, Listing.status).where(Listing.first_listed_at < bound)
        )
    ).all()
    by_year: dict[int, dict[str, int]] = {}
    for at, status in rows:
        y = local_year(at)
        d = by_year.setdefault(y, {"year": y, "ever_pooled": 0, "still_pooled_now": 0})
        d["ever_pooled"] += 1
        d["still_pooled_now"] += 1 if status in POOLED else 0
    return [by_year[y] for y in sorted(by_year)]
