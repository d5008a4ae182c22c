"""Ranking: patents for a problem statement or a stored need; needs for a patent."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy import select

from services.matching import schemas
from services.matching.api.deps import SessionDep
from services.matching.api.needs import load_need
from services.matching.domain.cards import CardStore
from services.matching.domain.codes import (
    industries_match,
    industry_mask,
    industry_name,
    ipc_matches,
    mode_mask,
    patent_type_mask,
)
from services.matching.domain.confidence import Band, band, hidden_note
from services.matching.domain.explain import snippet
from services.matching.domain.index import Filters, Hit, MatchIndex, SearchResult, display_term
from services.matching.domain.needs import is_open, need_view, sees_contact
from services.matching.domain.sync import PatentIndexer, district_mask
from services.matching.domain.text import IPC_PREFIX, analyse_query
from services.matching.models import Need, Organisation, Patent
from shared.appno import InvalidNumber, normalize_application_number
from shared.auth import OptionalPrincipalDep, PrincipalDep, Role
from shared.errors import Forbidden, NotFound, Unprocessable
from shared.params import PathId
from shared.responses import FastJSONResponse

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


def explanation_terms(
    hit: Hit, words: frozenset[str] | None = None, shown: dict[str, str | None] | None = None
) -> list[dict[str, Any]]:
    """The query terms that contributed most (IPC features are shown as `matched_ipc`).

    A character bigram is shown under its word when the query has that word (its share is
    added to it); bigrams that straddle two words (极材 from 正极材料) mean nothing to a
    reader and are left out of the list — they still count in the score. `shown`: how each
    term is shown (None: not listed), kept across the hits of one request."""
    if shown is None:
        shown = {}
    merged: dict[str, float] = {}
    for term, w in hit.terms:
        if term in shown:
            label = shown[term]
        else:
            label = shown[term] = _label(term, words)
        if label is not None:
            merged[label] = merged.get(label, 0.0) + w
    top = sorted(merged.items(), key=lambda kv: -kv[1])[:6]
    return [{"term": t, "weight": round(w, 4)} for t, w in top]


def _label(term: str, words: frozenset[str] | None) -> str | None:
    if term.startswith(IPC_PREFIX):
        return None
    label = display_term(term)
    if words is not None and term.startswith("~") and label not in words:
        return None
    return label


def hit_cards(
    cards: CardStore,
    hits: list[Hit],
    ipc_hints: list[str],
    industries: list[str],
    words: frozenset[str] | None = None,
) -> list[dict[str, Any]]:
    """`schemas.PatentHit`s as plain dicts, from the in-memory cards (no database read)."""
    out: list[dict[str, Any]] = []
    shown: dict[str, str | None] = {}
    for h in hits:
        c = cards.get(h.key)
        if c is None:  # indexed but deleted meanwhile
            continue
        terms = explanation_terms(h, words, shown)
        matched_ipc = sorted({x for hint in ipc_hints for x in ipc_matches(hint, c.ipc_codes)})
        matched_ipc += [
            display_term(t)
            for t, _ in h.terms
            if t.startswith(IPC_PREFIX) and display_term(t) not in matched_ipc
        ]
        matched_ind = [
            {"code": code, "name": industry_name(code) or code}
            for code in c.industries
            if any(industries_match([code], want) for want in industries)
        ]
        text = snippet(c.abstract, [t["term"] for t in terms])
        if c.abstract_cut and not text.endswith("…"):
            text += "…"
        out.append(
            {
                "rank": len(out) + 1,
                "score": round(h.score, 4),
                "confidence": band(h.score).value,
                "application_number": c.application_number,
                "title": c.title,
                "patent_type": c.patent_type,
                "ipc_codes": list(c.ipc_codes),
                "industries": list(c.industries),
                "owners": cards.owners(c),
                "offer": cards.offer(c),
                "explanation": {
                    "terms": terms,
                    "matched_ipc": matched_ipc,
                    "matched_industries": matched_ind,
                    "snippet": text.strip(),
                },
            }
        )
    return out


# Work done on the event loop instead of a worker thread: a thread hop costs more than a
# short query, and under load the GIL hand-over between the loop and the thread adds
# milliseconds. Longer texts and queries with many postings still go to a thread.
INLINE_CHARS = 1_500  # query analysis ≈ 2 M characters/s
INLINE_WORK = 50_000  # MatchIndex.work() units (postings + slots/8): ≈0.8 ms at 100k


async def analyse(
    text: str, title: str, ipc_hints: list[str], need_statement: bool
) -> dict[str, float]:
    if len(text) + len(title) <= INLINE_CHARS:
        return analyse_query(text, title, ipc_hints, None, need_statement)
    return await asyncio.to_thread(analyse_query, text, title, ipc_hints, None, need_statement)


async def search(
    index: MatchIndex, bag: dict[str, float], k: int, filters: Filters, explain: int = 12
) -> SearchResult:
    # The query vector is made once: it gives the cost estimate and is then scored.
    prepared = index.prepare(bag)
    if prepared.work <= INLINE_WORK:
        return index.search_report(bag, k, filters, explain, prepared)
    return await asyncio.to_thread(index.search_report, bag, k, filters, explain, prepared)


async def rank(
    request: Request,
    *,
    text: str,
    title: str,
    ipc_hints: list[str],
    industries: list[str],
    filters: schemas.MatchFilters,
    k: int,
    need_statement: bool = True,
    need_modes: bool = False,
) -> Response:
    """Score and render without the database: filters live in the index, hits in the cards.
    The body is built as plain dicts (the shape of `schemas.MatchResult`, checked by the
    tests) and serialised once, without response-model validation."""
    indexer: PatentIndexer = request.app.state.indexer
    index = indexer.index
    position = index.position
    bag = await analyse(text, title, ipc_hints, need_statement)
    query_terms = [display_term(t).strip() for t in bag if not t.startswith("~")]
    note = None
    filtered_out = None
    if not bag:
        note = "the query has no searchable words (only punctuation, symbols or stop words)"
        hits: list[Hit] = []
    else:
        found = await search(index, bag, k, to_filters(filters))
        hits = found.hits
        notes = []
        if found.hidden:
            filtered_out = {"count": found.hidden, "by_filter": found.hidden_by}
            notes.append(hidden_note(found.hidden, found.hidden_by, need_modes))
        if not hits:
            notes.append("no patent shares a searchable word with the query under these filters")
        elif all(band(h.score) is not Band.STRONG for h in hits):
            notes.append(
                "no strong match: the hits below share words with the need more than substance"
            )
        note = "; ".join(notes) or None
    return FastJSONResponse(
        {
            "query_terms": query_terms,
            "hits": hit_cards(
                indexer.cards, hits, ipc_hints, industries, frozenset(t for t in bag if t[0] != "~")
            ),
            "note": note,
            "filtered_out": filtered_out,
            "index_position": position,
        }
    )


@router.post("/match", response_model=schemas.MatchResult)
async def match_text(body: schemas.MatchQuery, request: Request) -> Response:
    """Rank pooled patents for a problem stated in plain words, with explanations."""
    return await rank(
        request,
        text=body.text,
        title=body.title,
        ipc_hints=body.ipc_hints,
        industries=body.industries,
        filters=body,
        k=body.k,
    )


async def filters_query(
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
    need_id: PathId,
    session: SessionDep,
    request: Request,
    principal: OptionalPrincipalDep,
    filters: schemas.MatchFilters = Depends(filters_query),
    k: int = Query(10, ge=1, le=100),
    use_need_terms: bool = Query(True, description="also filter by the need's industry/modes"),
) -> Response:
    """Rank patents for a stored need (its IPC hints count as features)."""
    need = await load_need(session, need_id)
    if not is_open(need) and not sees_contact(need, principal):
        raise NotFound(f"need {need_id} does not exist or is closed")
    industries = filters.industries or []
    need_modes = False
    if use_need_terms and not filters.modes and need.modes:
        filters.modes = [schemas.Mode(m) for m in need.modes]
        need_modes = True
    return await rank(
        request,
        text=need.description,
        title=need.title,
        ipc_hints=need.ipc_hints,
        industries=industries or [need.industry],
        filters=filters,
        k=k,
        need_modes=need_modes,
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
    bag = await analyse(patent.abstract, patent.title, patent.ipc_codes, False)
    hits = (await search(request.app.state.needs.index, bag, k, Filters(pooled_only=True))).hits
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
    words = frozenset(t for t in bag if t[0] != "~")
    out: list[schemas.NeedHit] = []
    for h in hits:
        need = needs.get(h.key)
        if need is None or not is_open(need):
            continue
        terms = explanation_terms(h, words)
        out.append(
            schemas.NeedHit(
                rank=len(out) + 1,
                score=round(h.score, 4),
                need=need_view(need, orgs.get(need.org_id), sees_contact(need, principal)),
                explanation=schemas.Explanation(
                    terms=[schemas.TermWeight(**t) for t in terms],
                    matched_ipc=sorted(
                        {c for hint in need.ipc_hints for c in ipc_matches(hint, patent.ipc_codes)}
                    ),
                    matched_industries=[
                        {"code": c, "name": industry_name(c) or c}
                        for c in patent.industries
                        if industries_match([c], need.industry)
                    ],
                    snippet=snippet(need.description, [t["term"] for t in terms]),
                ),
            )
        )
    return schemas.NeedMatchResult(application_number=appno, hits=out)
