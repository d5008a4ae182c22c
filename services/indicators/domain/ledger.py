"""The conversion ledger: recording deals, freezing their parties, keeping lines right."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.indicators import schemas
from services.indicators.domain import in_force
from services.indicators.domain.common import day_end_utc
from services.indicators.domain.rules import Party, academic_to_sme, deal_qualifies, lead_supplier
from services.indicators.models import (
    Deal,
    DealPatent,
    DealSupplier,
    FeedEntry,
    Org,
    OrgVersion,
    Patent,
    Payment,
)
from shared import feed
from shared.auth import Principal, Role
from shared.errors import Conflict, Forbidden, NotFound, Unprocessable, is_unique_violation
from shared.feed import utcnow

if TYPE_CHECKING:  # the replica applies organisation changes through this module
    from services.indicators.domain.replica import RequestLookup


async def party_at(session: AsyncSession, org_id: int, on: date) -> Party:
    """The organisation as it was at the end of day `on` (Tianjin time).

    Versions come from the catalog feed with the time the catalog changed them. When the
    organisation entered the catalog after `on`, its first known state is used.
    """
    return (await parties_at(session, [org_id], on))[org_id]


def evidence_key(ev: schemas.Evidence, recipient_org_id: int) -> str:
    number = "".join(ev.number.split()).upper()
    key = f"{ev.type.value}:{number}"
    if ev.type is schemas.EvidenceType.OPEN_LICENCE_NOTICE:
        key += f":{recipient_org_id}"
    return key


def can_write_deal(principal: Principal, parties: Sequence[Org]) -> None:
    """city_bureau/admin: any deal; district_bureau: a party in its district;
    supplier: deals where its organisation is a supplier; SMEs: none."""
    role = principal.role
    if role in (Role.ADMIN, Role.CITY_BUREAU):
        return
    if role is Role.DISTRICT_BUREAU:
        if principal.district and any(o.district == principal.district for o in parties):
            return
        raise Forbidden("a district bureau records deals with a party in its own district")
    raise Forbidden(f"role {role.value} cannot record deals in the ledger")


def _as_party(version: OrgVersion) -> Party:
    return Party(
        org_id=version.org_id,
        name=version.name,
        kind=version.kind,
        district=version.district,
        in_tianjin=version.in_tianjin,
        is_sme=version.is_sme,
    )


async def parties_at(session: AsyncSession, org_ids: Sequence[int], on: date) -> dict[int, Party]:
    """`party_at` for several organisations in one query (a deal's parties: a round trip
    each was most of a deal's time under load, where every round trip waits for a core)."""
    bound = day_end_utc(on)
    wanted = set(org_ids)
    versions: dict[int, list[OrgVersion]] = {oid: [] for oid in wanted}
    for v in await session.scalars(select(OrgVersion).where(OrgVersion.org_id.in_(wanted))):
        versions[v.org_id].append(v)
    out: dict[int, Party] = {}
    for oid, known in versions.items():
        if not known:
            raise NotFound(f"organisation {oid} is unknown")
        before = [v for v in known if v.valid_from < bound]
        if before:  # the state at the end of day `on`
            chosen = max(before, key=lambda v: (v.valid_from, v.id))
        else:  # it entered the catalog later: its first known state
            chosen = min(known, key=lambda v: (v.valid_from, v.id))
        out[oid] = _as_party(chosen)
    return out


async def _freeze(
    session: AsyncSession, deal: Deal, supplier_ids: list[int], on: date
) -> tuple[list[Party], Party]:
    parties = await parties_at(session, [*supplier_ids, deal.recipient_org_id], on)
    suppliers = [parties[oid] for oid in supplier_ids]
    recipient = parties[deal.recipient_org_id]
    deal.recipient_name = recipient.name
    deal.recipient_kind = recipient.kind
    deal.recipient_district = recipient.district
    deal.recipient_in_tianjin = recipient.in_tianjin
    deal.recipient_is_sme = recipient.is_sme
    deal.qualifies = deal_qualifies(suppliers, recipient)
    deal.academic_to_sme = academic_to_sme(suppliers, recipient)
    deal.lead_supplier_org_id = lead_supplier(suppliers).org_id
    return suppliers, recipient


async def _write_suppliers(
    session: AsyncSession, deal: Deal, suppliers: list[Party], *, new: bool = False
) -> list[DealSupplier]:
    """The deal's supplier rows, frozen as `suppliers` (`new`: the deal has none yet)."""
    rows: Sequence[DealSupplier] = ()
    if not new:
        rows = (
            await session.scalars(select(DealSupplier).where(DealSupplier.deal_id == deal.id))
        ).all()
    by_org = {r.org_id: r for r in rows}
    out = []
    for pos, s in enumerate(suppliers):
        row = by_org.get(s.org_id) or DealSupplier(deal_id=deal.id, org_id=s.org_id)
        row.position = pos
        row.name, row.kind, row.district = s.name, s.kind, s.district
        row.in_tianjin, row.is_sme = s.in_tianjin, s.is_sme
        session.add(row)
        out.append(row)
    return out


async def refresh_lines(session: AsyncSession, deal: Deal) -> None:
    """Bring the deal's lines in line with its state (status, dates, frozen parties).

    A line is `active` when the deal is effective. It `counts` (toward 1000) when active,
    the parties qualify, and it is not a repeat: the same patent already counted in the
    deal it was converted from (licence → equity to the same SME), unless that earlier
    deal was cancelled.
    """
    repeat_of = await _repeats(session, deal)
    lines = (await session.scalars(select(DealPatent).where(DealPatent.deal_id == deal.id))).all()
    for line in lines:
        _set_line(deal, line, repeat_of)
    await session.flush()
    await session.execute(
        update(Payment)
        .where(Payment.deal_id == deal.id)
        .values(counts=_active(deal) and deal.qualifies, recipient_district=deal.recipient_district)
    )


def _active(deal: Deal) -> bool:
    return deal.status == "effective" and not deal.excluded  # overridden: never counted


async def _repeats(session: AsyncSession, deal: Deal) -> set[int]:
    """Patents the deal this one converts already counted (unless that one was cancelled)."""
    if deal.converted_from_deal_id is None:
        return set()
    prev = await session.get(Deal, deal.converted_from_deal_id)
    if prev is None or prev.status == "cancelled":
        return set()
    rows = await session.scalars(select(DealPatent.patent_id).where(DealPatent.deal_id == prev.id))
    return set(rows.all())


def _set_line(deal: Deal, line: DealPatent, repeat_of: set[int]) -> None:
    active = _active(deal)
    line.kind = deal.kind
    line.year = deal.year
    line.effective_date = deal.effective_date
    line.recipient_org_id = deal.recipient_org_id
    line.recipient_district = deal.recipient_district
    line.lead_supplier_org_id = deal.lead_supplier_org_id
    line.active = active
    line.repeat_of_deal_id = deal.converted_from_deal_id if line.patent_id in repeat_of else None
    line.counts = active and deal.qualifies and line.repeat_of_deal_id is None


async def refreeze_deals_of(session: AsyncSession, org_id: int, since: date) -> int:
    """Judge again, with the versions now known, every deal of the organisation dated
    `since` or later (a back-dated change reached us). Snapshots are not touched."""
    day = func.coalesce(Deal.effective_date, Deal.contract_date)
    as_supplier = select(DealSupplier.deal_id).where(DealSupplier.org_id == org_id)
    deals = (
        await session.scalars(
            select(Deal)
            .where(
                (Deal.recipient_org_id == org_id) | Deal.id.in_(as_supplier),
                day >= since,
            )
            .order_by(Deal.id)
        )
    ).all()
    for deal in deals:
        _, supplier_ids = await deal_parts(session, deal.id)
        suppliers, _ = await _freeze(
            session, deal, supplier_ids, deal.effective_date or deal.contract_date
        )
        await _write_suppliers(session, deal, suppliers)
        await session.flush()
        await refresh_lines(session, deal)
    return len(deals)


def deal_payload(deal: Deal, appnos: list[str], supplier_ids: list[int]) -> dict[str, Any]:
    """The `deal` entry of this service's feed (docs/contracts.md)."""
    return {
        "id": deal.id,
        "kind": deal.kind,
        "licence_type": deal.licence_type,
        "status": deal.status,
        "application_numbers": appnos,
        "supplier_org_ids": supplier_ids,
        "recipient_org_id": deal.recipient_org_id,
        "contract_date": deal.contract_date.isoformat(),
        "effective_date": deal.effective_date.isoformat() if deal.effective_date else None,
        "cancelled_reason": deal.cancelled_reason,
    }


async def deal_parts(session: AsyncSession, deal_id: int) -> tuple[list[str], list[int]]:
    appnos = (
        await session.scalars(
            select(DealPatent.application_number)
            .where(DealPatent.deal_id == deal_id)
            .order_by(DealPatent.id)
        )
    ).all()
    suppliers = (
        await session.scalars(
            select(DealSupplier.org_id)
            .where(DealSupplier.deal_id == deal_id)
            .order_by(DealSupplier.position)
        )
    ).all()
    return list(appnos), list(suppliers)


async def publish(
    session: AsyncSession, deal: Deal, parts: tuple[list[str], list[int]] | None = None
) -> None:
    """Append the deal's feed entry; `parts` (numbers, suppliers) when the caller knows them."""
    appnos, suppliers = parts or await deal_parts(session, deal.id)
    await feed.append(
        session,
        FeedEntry,
        [("deal", str(deal.id), "upsert", deal_payload(deal, appnos, suppliers))],
    )


@dataclass
class Written:
    """A deal just recorded, with the rows written for it (its answer needs no read-back)."""

    deal: Deal
    suppliers: list[DealSupplier]
    lines: list[DealPatent]
    payments: list[Payment]


async def create_deal(
    session: AsyncSession,
    body: schemas.DealCreate,
    principal: Principal,
    lookup: RequestLookup,
    *,
    publish_now: bool = True,
) -> Deal:
    return (await record_deal(session, body, principal, lookup, publish_now=publish_now)).deal


async def record_deal(
    session: AsyncSession,
    body: schemas.DealCreate,
    principal: Principal,
    lookup: RequestLookup,
    *,
    publish_now: bool = True,
) -> Written:
    """Record a deal. `publish_now=False` leaves the feed entry to the caller, who then
    calls `publish` as the transaction's last statement: appending takes the feed's lock
    until COMMIT, and every other deal waits for it meanwhile."""
    errors: list[dict[str, str]] = []
    orgs: list[Org] = []
    # One query for the parties and one for the patents: under load every round trip
    # waits for a core, so their number, not their size, sets a deal's latency.
    org_by_id = await lookup.orgs_by_id(session, [*body.supplier_org_ids, body.recipient_org_id])
    patent_by_number = await lookup.patents_by_number(session, body.application_numbers)
    for i, oid in enumerate(body.supplier_org_ids):
        org = org_by_id.get(oid)
        if org is None:
            errors.append(
                {"field": f"supplier_org_ids[{i}]", "reason": f"organisation {oid} is unknown"}
            )
        else:
            orgs.append(org)
    recipient = org_by_id.get(body.recipient_org_id)
    if recipient is None:
        errors.append(
            {
                "field": "recipient_org_id",
                "reason": f"organisation {body.recipient_org_id} is unknown",
            }
        )
    patents: list[Patent] = []
    for i, appno in enumerate(body.application_numbers):
        patent = patent_by_number.get(appno)
        if patent is None:
            errors.append(
                {"field": f"application_numbers[{i}]", "reason": f"patent {appno} is unknown"}
            )
        else:
            patents.append(patent)
    if errors:
        detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors[:5])
        raise Unprocessable(detail, errors=errors)
    assert recipient is not None
    if principal.role is Role.SUPPLIER:
        if principal.org_id not in body.supplier_org_ids:
            raise Forbidden("a supplier records only deals in which it is a supplier")
    else:
        can_write_deal(principal, [*orgs, recipient])

    key = evidence_key(body.evidence, body.recipient_org_id)
    clash = await session.scalar(select(Deal.id).where(Deal.evidence_key == key))
    if clash is not None:
        raise Conflict(
            f"evidence number {body.evidence.number} is already recorded on deal {clash}",
            errors=[{"field": "evidence.number", "reason": f"already on deal {clash}"}],
        )
    if body.converted_from_deal_id is not None:
        prev = await session.get(Deal, body.converted_from_deal_id)
        if prev is None:
            raise Unprocessable.field(
                "converted_from_deal_id", f"deal {body.converted_from_deal_id} does not exist"
            )
        if prev.recipient_org_id != body.recipient_org_id:
            raise Unprocessable.field(
                "converted_from_deal_id", "the earlier deal has a different recipient"
            )
        if (
            prev.effective_date
            and body.effective_date
            and body.effective_date < prev.effective_date
        ):
            raise Unprocessable.field(
                "effective_date", "is before the effective date of the deal it converts"
            )

    on = body.effective_date or body.contract_date
    ev = body.evidence
    deal = Deal(
        kind=body.kind.value,
        licence_type=body.licence_type.value if body.licence_type else None,
        status=body.status.value,
        contract_date=body.contract_date,
        effective_date=body.effective_date,
        year=body.effective_date.year if body.effective_date else None,
        evidence_type=ev.type.value,
        evidence_number=ev.number.strip(),
        evidence_date=ev.date,
        evidence_key=key,
        contract_amount=cents(body.contract_amount),
        amount_received=cents(sum((p.amount for p in body.payments), Decimal(0))),
        zero_price=body.zero_price,
        use_first_pay_later=body.use_first_pay_later,
        recipient_org_id=body.recipient_org_id,
        converted_from_deal_id=body.converted_from_deal_id,
        lead_id=body.lead_id,
        note=body.note,
        created_by_org_id=principal.org_id,
        created_by_role=principal.role.value,
    )
    in_force.check_in_force(deal, patents, on, principal,
                            override=body.override_not_in_force,
                            override_reason=body.override_reason)  # fmt: skip
    suppliers, _ = await _freeze(session, deal, body.supplier_org_ids, on)
    session.add(deal)
    try:
        await session.flush()
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        raise Conflict(f"evidence number {ev.number} is already recorded") from exc
    supplier_rows = await _write_suppliers(session, deal, suppliers, new=True)
    # Lines and payments are written in their final state (what `refresh_lines` would make
    # of them), so the deal needs no read-back.
    repeat_of = await _repeats(session, deal)
    lines = []
    for patent in patents:
        line = DealPatent(
            deal_id=deal.id,
            patent_id=patent.id,
            application_number=patent.application_number,
            industry=patent.main_industry or "",
        )
        _set_line(deal, line, repeat_of)
        lines.append(line)
    payments = [_payment(deal, p) for p in body.payments]
    session.add_all([*lines, *payments])
    await session.flush()
    if publish_now:
        await publish(session, deal)
    return Written(deal, supplier_rows, lines, payments)


CENT = Decimal("0.01")


def cents(amount: Decimal) -> Decimal:
    """Money as the column stores it (two places), so an answer built from the objects in
    hand reads like one read back: 50000 → 50000.00. Inputs have at most two places."""
    return amount.quantize(CENT)


def _payment(deal: Deal, p: schemas.PaymentIn) -> Payment:
    return Payment(
        deal_id=deal.id,
        counts=_active(deal) and deal.qualifies,
        recipient_district=deal.recipient_district,
        amount=cents(p.amount),
        received_on=p.received_on,
        year=p.received_on.year,
        note=p.note,
    )


async def load_deal(session: AsyncSession, deal_id: int, *, lock: bool = False) -> Deal:
    stmt = select(Deal).where(Deal.id == deal_id)
    if lock:
        stmt = stmt.with_for_update()
    deal = await session.scalar(stmt)
    if deal is None:
        raise NotFound(f"deal {deal_id} does not exist")
    return deal


async def check_deal_writer(session: AsyncSession, deal: Deal, principal: Principal) -> None:
    _, supplier_ids = await deal_parts(session, deal.id)
    orgs = [
        o for o in [await session.get(Org, i) for i in [*supplier_ids, deal.recipient_org_id]] if o
    ]
    if principal.role is Role.SUPPLIER:
        if principal.org_id in supplier_ids and deal.created_by_org_id == principal.org_id:
            return
        raise Forbidden("a supplier changes only deals it recorded itself")
    can_write_deal(principal, orgs)


async def activate(session: AsyncSession, deal: Deal, on: date) -> Deal:
    if deal.status != "registered":
        raise Conflict(f"deal {deal.id} is {deal.status}; only a registered deal becomes effective")
    if on < deal.contract_date:
        raise Unprocessable.field("effective_date", "is before the contract date")
    _, supplier_ids = await deal_parts(session, deal.id)
    in_force.check_activation(deal, await _patents(session, deal.id), on)
    deal.status = "effective"
    deal.effective_date = on
    deal.year = on.year
    suppliers, _ = await _freeze(session, deal, supplier_ids, on)  # judged at this date
    await _write_suppliers(session, deal, suppliers)
    deal.updated_at = utcnow()
    deal.version += 1
    await session.flush()
    await refresh_lines(session, deal)
    await publish(session, deal)
    return deal


async def _patents(session: AsyncSession, deal_id: int) -> list[Patent]:
    ids = select(DealPatent.patent_id).where(DealPatent.deal_id == deal_id)
    return list((await session.scalars(select(Patent).where(Patent.id.in_(ids)))).all())


async def cancel(session: AsyncSession, deal: Deal, reason: str) -> Deal:
    if deal.status == "cancelled":
        raise Conflict(f"deal {deal.id} is already cancelled")
    deal.status = "cancelled"
    deal.cancelled_reason = reason
    deal.cancelled_at = utcnow()
    deal.updated_at = deal.cancelled_at
    deal.version += 1
    await session.flush()
    await refresh_lines(session, deal)
    # deals converted from this one now count on their own
    followers = (
        await session.scalars(select(Deal).where(Deal.converted_from_deal_id == deal.id))
    ).all()
    for f in followers:
        await refresh_lines(session, f)
    await publish(session, deal)
    return deal


async def add_payments(
    session: AsyncSession, deal: Deal, payments: list[schemas.PaymentIn]
) -> Deal:
    if deal.status == "cancelled":
        raise Conflict(f"deal {deal.id} is cancelled")
    existing = (await session.scalars(select(Payment).where(Payment.deal_id == deal.id))).all()
    try:
        schemas.check_amounts(
            deal.contract_amount,
            deal.zero_price,
            [schemas.PaymentIn(amount=p.amount, received_on=p.received_on) for p in existing]
            + payments,
            deal.contract_date,
        )
    except ValueError as exc:
        field, _, reason = str(exc).partition(": ")
        raise Unprocessable.field(field, reason) from exc
    for p in payments:
        session.add(_payment(deal, p))
    deal.amount_received = Decimal(deal.amount_received) + sum(
        (p.amount for p in payments), Decimal(0)
    )
    deal.updated_at = utcnow()
    await session.flush()
    return deal


async def deal_out(session: AsyncSession, deal: Deal) -> schemas.DealOut:
    suppliers = (
        await session.scalars(
            select(DealSupplier)
            .where(DealSupplier.deal_id == deal.id)
            .order_by(DealSupplier.position)
        )
    ).all()
    lines = (
        await session.execute(
            select(DealPatent.application_number, DealPatent.counts)
            .where(DealPatent.deal_id == deal.id)
            .order_by(DealPatent.id)
        )
    ).all()
    payments = (
        await session.scalars(
            select(Payment)
            .where(Payment.deal_id == deal.id)
            .order_by(Payment.received_on, Payment.id)
        )
    ).all()
    return _deal_out(deal, suppliers, [(number, counts) for number, counts in lines], payments)


def written_out(w: Written) -> schemas.DealOut:
    """`deal_out` of a deal just recorded, from the rows in hand (same order as the query)."""
    return _deal_out(
        w.deal,
        sorted(w.suppliers, key=lambda s: s.position),
        [(line.application_number, line.counts) for line in sorted(w.lines, key=lambda x: x.id)],
        sorted(w.payments, key=lambda p: (p.received_on, p.id)),
    )


def _deal_out(
    deal: Deal,
    suppliers: Sequence[DealSupplier],
    lines: Sequence[tuple[str, bool]],
    payments: Sequence[Payment],
) -> schemas.DealOut:
    return schemas.DealOut(
        id=deal.id,
        kind=deal.kind,
        licence_type=deal.licence_type,
        status=deal.status,
        application_numbers=[a for a, _ in lines],
        suppliers=[
            schemas.PartyOut(
                org_id=s.org_id, name=s.name, kind=s.kind, district=s.district,
                in_tianjin=s.in_tianjin, is_sme=s.is_sme,
            )
            for s in suppliers
        ],
        recipient=schemas.PartyOut(
            org_id=deal.recipient_org_id, name=deal.recipient_name, kind=deal.recipient_kind,
            district=deal.recipient_district, in_tianjin=deal.recipient_in_tianjin,
            is_sme=deal.recipient_is_sme,
        ),
        contract_date=deal.contract_date,
        effective_date=deal.effective_date,
        evidence=schemas.Evidence(
            type=deal.evidence_type, number=deal.evidence_number, date=deal.evidence_date
        ),
        contract_amount=deal.contract_amount,
        amount_received=deal.amount_received,
        payments=[schemas.PaymentOut.model_validate(p) for p in payments],
        zero_price=deal.zero_price,
        use_first_pay_later=deal.use_first_pay_later,
        qualifies=deal.qualifies,
        counted_lines=sum(1 for _, c in lines if c),
        converted_from_deal_id=deal.converted_from_deal_id,
        lead_id=deal.lead_id,
        cancelled_reason=deal.cancelled_reason,
        cancelled_at=deal.cancelled_at,
        excluded=deal.excluded,
        not_in_force_reason=deal.not_in_force_reason,
        override_reason=deal.override_reason,
        note=deal.note,
        created_by_org_id=deal.created_by_org_id,
        created_at=deal.created_at,
        updated_at=deal.updated_at,
    )  # fmt: skip


async def count_deals(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Deal)) or 0)


async def touch_lines_for_patent_industry(session: AsyncSession, patent: Patent) -> None:
    await session.execute(
        update(DealPatent)
        .where(DealPatent.patent_id == patent.id)
        .values(industry=patent.main_industry or "")
    )
