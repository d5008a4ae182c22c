"""Ranking: patents for a problem statement or a stored need; needs for a patent."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select

from services.catalog.domain.appno import InvalidNumber, normalize_application_number
from services.matching import schemas
from services.matching.api.deps import SessionDep
from services.matching.api.needs import load_need
from services.matching.domain.codes import (
    industries_match,
    industry_mask,
    industry_name,
    ipc_matches,
    mode_mask,
    patent_type_mask,
)
from services.matching.domain.explain import snippet
from services.matching.domain.index import Filters, Hit, display_term
from services.matching.domain.needs import is_open, need_view, sees_contact
from services.matching.domain.sync import district_mask
from services.matching.domain.text import IPC_PREFIX, analyse_query
from services.matching.models import Listing, Need, Organisation, Patent
from shared.auth import OptionalPrincipalDep, PrincipalDep, Role
from shared.errors import Forbidden, NotFound, Unprocessable

router = APIRouter(prefix="/v1", tags=["matching"])


def to_filters(f: schemas.MatchFilters) -> Filters:
    return Filters(
        pooled_only=f.pooled_only,
        zero_price=f.zero_price,
        patent_types=patent_type_mask(f.patent_types),
        modes=mode_mask([m.value for m in f.modes]),
        industries=industry_mask(f.industries),
        districts=district_mask(f.owner_districts),
    )


def explanation_terms(hit: Hit) -> list[schemas.TermWeight]:
    merged: dict[str, float] = {}
    for term, w in hit.terms:
        if term.startswith(IPC_PREFIX):
            continue
        merged[display_term(term)] = merged.get(display_term(term), 0.0) + w
    top = sorted(merged.items(), key=lambda kv: -kv[1])[:6]
    return [schemas.TermWeight(term=t, weight=round(w, 4)) for t, w in top]


async def patent_hits(
    session: SessionDep,
    hits: list[Hit],
    ipc_hints: list[str],
    industries: list[str],
) -> list[schemas.PatentHit]:
    ids = [h.key for h in hits]
    pats = {p.id: p for p in await session.scalars(select(Patent).where(Patent.id.in_(ids)))}
    listings = {
        li.patent_id: li
        for li in await session.scalars(select(Listing).where(Listing.patent_id.in_(ids)))
    }
    owner_ids = {o for p in pats.values() for o in p.owner_org_ids}
    orgs = {
        o.id: o
        for o in await session.scalars(select(Organisation).where(Organisation.id.in_(owner_ids)))
    }
    out = []
    for h in hits:
        p = pats.get(h.key)
        if p is None:  # indexed but deleted meanwhile
            continue
        terms = explanation_terms(h)
        matched_ipc = sorted({c for hint in ipc_hints for c in ipc_matches(hint, p.ipc_codes)})
        matched_ipc += [
            display_term(t)
            for t, _ in h.terms
            if t.startswith(IPC_PREFIX) and display_term(t) not in matched_ipc
        ]
        matched_ind = [
            {"code": code, "name": industry_name(code) or code}
            for code in p.industries
            if any(industries_match([code], want) for want in industries)
        ]
        li = listings.get(p.id)
        out.append(
            schemas.PatentHit(
                rank=len(out) + 1,
                score=round(h.score, 4),
                application_number=p.application_number,
                title=p.title,
                patent_type=p.patent_type,
                ipc_codes=p.ipc_codes,
                industries=p.industries,
                owners=[
                    schemas.OwnerSummary(id=o.id, name=o.name, kind=o.kind, district=o.district)
                    for o in (orgs.get(i) for i in p.owner_org_ids)
                    if o is not None
                ],
                offer=schemas.OfferSummary(
                    listing_id=li.id,
                    status=li.status,
                    modes=li.modes,
                    price_cny=li.price_cny,
                    negotiable=li.negotiable,
                    zero_price=li.zero_price,
                    use_first_pay_later=li.use_first_pay_later,
                    deferred_licence_fee=li.deferred_licence_fee,
                )
                if li
                else None,
                explanation=schemas.Explanation(
                    terms=terms,
                    matched_ipc=matched_ipc,
                    matched_industries=matched_ind,
                    snippet=snippet(p.abstract, [t.term for t in terms]),
                ),
            )
        )
    return out


async def rank(
    request: Request,
    session: SessionDep,
    *,
    text: str,
    title: str,
    ipc_hints: list[str],
    industries: list[str],
    filters: schemas.MatchFilters,
    k: int,
    need_statement: bool = True,
) -> schemas.MatchResult:
    indexer = request.app.state.indexer
    bag = await asyncio.to_thread(analyse_query, text, title, ipc_hints, None, need_statement)
    query_terms = [display_term(t) for t in bag if not t.startswith("~")]
    note = None
    if not bag:
        note = "the query has no searchable words (only punctuation, symbols or stop words)"
        hits: list[Hit] = []
    else:
        hits = await asyncio.to_thread(indexer.index.search, bag, k, to_filters(filters), 12)
        if not hits:
            note = "no patent shares a searchable word with the query under these filters"
    return schemas.MatchResult(
        query_terms=query_terms,
        hits=await patent_hits(session, hits, ipc_hints, industries),
        note=note,
        index_position=indexer.index.position,
    )


@router.post("/match", response_model=schemas.MatchResult)
async def match_text(
    body: schemas.MatchQuery, session: SessionDep, request: Request
) -> schemas.MatchResult:
    """Rank pooled patents for a problem stated in plain words, with explanations."""
    return await rank(
        request,
        session,
        text=body.text,
        title=body.title,
        ipc_hints=body.ipc_hints,
        industries=body.industries,
        filters=body,
        k=body.k,
    )


def filters_query(
    pooled_only: bool = True,
    industries: list[str] = Query([]),
    modes: list[str] = Query([]),
    zero_price: bool | None = None,
    patent_types: list[str] = Query([]),
    owner_districts: list[str] = Query([]),
) -> schemas.MatchFilters:
    try:
        return schemas.MatchFilters.model_validate(
            {
                "pooled_only": pooled_only,
                "industries": industries,
                "modes": modes,
                "zero_price": zero_price,
                "patent_types": patent_types,
                "owner_districts": owner_districts,
            }
        )
    except Exception as exc:
        errors: list[dict[str, Any]] = [
            {"field": ".".join(str(x) for x in e["loc"]) or "query", "reason": e["msg"]}
            for e in getattr(exc, "errors", lambda: [])()
        ]
        raise Unprocessable("invalid filters", errors=errors) from None


@router.get("/needs/{need_id}/matches", response_model=schemas.MatchResult)
async def match_need(
    need_id: int,
    session: SessionDep,
    request: Request,
    principal: OptionalPrincipalDep,
    filters: schemas.MatchFilters = Depends(filters_query),
    k: int = Query(10, ge=1, le=100),
    use_need_terms: bool = Query(True, description="also filter by the need's industry/modes"),
) -> schemas.MatchResult:
    """Rank patents for a stored need (its IPC hints count as features)."""
    need = await load_need(session, need_id)
    if not is_open(need) and not sees_contact(need, principal):
        raise NotFound(f"need {need_id} does not exist or is closed")
    industries = filters.industries or []
    if use_need_terms and not filters.modes and need.modes:
        filters.modes = [schemas.Mode(m) for m in need.modes]
    return await rank(
        request,
        session,
        text=need.description,
        title=need.title,
        ipc_hints=need.ipc_hints,
        industries=industries or [need.industry],
        filters=filters,
        k=k,
    )


@router.get("/patents/{number}/needs", response_model=schemas.NeedMatchResult)
async def needs_for_patent(
    number: str,
    session: SessionDep,
    request: Request,
    principal: PrincipalDep,
    k: int = Query(10, ge=1, le=100),
) -> schemas.NeedMatchResult:
    """The open needs a patent fits best: for its owner, and the bureaus' targeted
    recommendation (city bureau, district bureau, admin)."""
    try:
        appno = normalize_application_number(number)
    except InvalidNumber as exc:
        raise Unprocessable.field("number", str(exc)) from None
    patent = await session.scalar(select(Patent).where(Patent.application_number == appno))
    if patent is None:
        raise NotFound(f"patent {appno} is not known to matching (yet)")
    bureau = principal.role in (Role.ADMIN, Role.CITY_BUREAU, Role.DISTRICT_BUREAU)
    if not bureau and principal.org_id not in patent.owner_org_ids:
        raise Forbidden("only the patent's owners and the IP bureaus may see its matching needs")
    bag = await asyncio.to_thread(
        analyse_query, patent.abstract, patent.title, patent.ipc_codes, None, False
    )
    index = request.app.state.needs.index
    hits = await asyncio.to_thread(index.search, bag, k, Filters(pooled_only=True), 12)
    needs = {
        n.id: n
        for n in await session.scalars(select(Need).where(Need.id.in_([h.key for h in hits])))
    }
    orgs = {
        o.id: o
        for o in await session.scalars(
            select(Organisation).where(Organisation.id.in_({n.org_id for n in needs.values()}))
        )
    }
    out = []
    for h in hits:
        need = needs.get(h.key)
        if need is None or not is_open(need):
            continue
        terms = explanation_terms(h)
        out.append(
            schemas.NeedHit(
                rank=len(out) + 1,
                score=round(h.score, 4),
                need=need_view(need, orgs.get(need.org_id), sees_contact(need, principal)),
                explanation=schemas.Explanation(
                    terms=terms,
                    matched_ipc=sorted(
                        {c for hint in need.ipc_hints for c in ipc_matches(hint, patent.ipc_codes)}
                    ),
                    matched_industries=[
                        {"code": c, "name": industry_name(c) or c}
                        for c in patent.industries
                        if industries_match([c], need.industry)
                    ],
                    snippet=snippet(need.description, [t.term for t in terms]),
                ),
            )
        )
    return schemas.NeedMatchResult(application_number=appno, hits=out)
