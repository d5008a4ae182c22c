"""Feed payloads: full snapshots, so consumers apply them idempotently."""

from __future__ import annotations

from typing import Any

from services.catalog.models import Bundle, Listing, Organisation, Patent


def _iso(v: Any) -> str | None:
    return v.isoformat() if v is not None else None


def organisation_payload(org: Organisation) -> dict[str, Any]:
    return {
        "id": org.id,
        "kind": org.kind,
        "name": org.name,
        "uscc": org.uscc,
        "district": org.district,
        "province": org.province,
        "in_tianjin": org.in_tianjin,
        "is_sme": org.is_sme,
        "sme_basis": org.sme_basis,
        "updated_at": _iso(org.updated_at),
    }


def patent_payload(p: Patent, owner_org_ids: list[int]) -> dict[str, Any]:
    return {
        "id": p.id,
        "application_number": p.application_number,
        "publication_number": p.publication_number,
        "patent_type": p.patent_type,
        "title": p.title,
        "abstract": p.abstract,
        "claims": p.claims,
        "ipc_codes": p.ipc_codes,
        "main_ipc": p.main_ipc,
        "industries": p.industries,
        "patentees": p.patentees,
        "inventors": p.inventors,
        "owner_org_ids": sorted(owner_org_ids),
        "application_date": _iso(p.application_date),
        "grant_date": _iso(p.grant_date),
        "expiry_date": _iso(p.expiry_date),
        "legal_status": p.legal_status,
        "version": p.version,
    }


def listing_payload(
    listing: Listing, application_number: str, owner_org_ids: list[int]
) -> dict[str, Any]:
    return {
        "id": listing.id,
        "patent_id": listing.patent_id,
        "application_number": application_number,
        "status": listing.status,
        "modes": listing.modes,
        "price_cny": str(listing.price_cny) if listing.price_cny is not None else None,
        "negotiable": listing.negotiable,
        "zero_price": listing.zero_price,
        "use_first_pay_later": listing.use_first_pay_later,
        "deferred_licence_fee": listing.deferred_licence_fee,
        "owner_org_ids": sorted(owner_org_ids),
        "first_listed_at": _iso(listing.first_listed_at),
        "updated_at": _iso(listing.updated_at),
    }


def bundle_payload(bundle: Bundle, listing_ids: list[int]) -> dict[str, Any]:
    return {
        "id": bundle.id,
        "org_id": bundle.org_id,
        "name": bundle.name,
        "description": bundle.description,
        "price_cny": str(bundle.price_cny) if bundle.price_cny is not None else None,
        "status": bundle.status,
        "listing_ids": sorted(listing_ids),
    }
