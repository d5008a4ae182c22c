"""Feed payloads: full snapshots, so consumers apply them idempotently."""

from __future__ import annotations

from typing import Any

import orjson

from services.catalog.models import PATENT_DATES, Bundle, Listing, Patent


def _iso(v: Any) -> str | None:
    return v.isoformat() if v is not None else None


PATENT_FIELDS = (
    "application_number", "publication_number", "patent_type", "title", "abstract", "claims",
    "ipc_codes", "main_ipc", "industries", "patentees", "inventors", "legal_status",
)  # fmt: skip


def patent_payload(p: Patent, owner_org_ids: list[int]) -> dict[str, Any]:
    values = {k: getattr(p, k) for k in PATENT_FIELDS + PATENT_DATES}
    return patent_payload_from(values, p.id, p.version, owner_org_ids)


def patent_payload_from(
    values: dict[str, Any], patent_id: int, version: int, owner_org_ids: list[int]
) -> dict[str, Any]:
    """The same payload, built from the values just written (no ORM object needed)."""
    payload: dict[str, Any] = {"id": patent_id}
    payload.update({k: values.get(k) for k in PATENT_FIELDS})
    payload["owner_org_ids"] = sorted(owner_org_ids)
    for k in PATENT_DATES:
        payload[k] = _iso(values.get(k))
    payload["version"] = version
    return payload


def patent_payload_parts(values: dict[str, Any]) -> tuple[str, str]:
    """The parts of `patent_payload_from`'s JSON that do not depend on the stored row (its
    id, version, owners): the text fields and the dates, each as JSON object members."""
    fields = orjson.dumps({k: values.get(k) for k in PATENT_FIELDS}).decode()
    # An ISO date needs no JSON escaping: the members are written directly.
    dates = ",".join(
        f'"{k}":"{d.isoformat()}"' if (d := values.get(k)) is not None else f'"{k}":null'
        for k in PATENT_DATES
    )
    return fields[1:-1], dates


def patent_payload_json(
    parts: tuple[str, str], patent_id: int, version: int, owner_org_ids: list[int]
) -> str:
    """`orjson.dumps(patent_payload_from(...))`, character for character, from the parts:
    orjson writes compact JSON in the dict's order, so the members can be joined."""
    owners = orjson.dumps(sorted(owner_org_ids)).decode()
    return (
        f'{{"id":{int(patent_id)},{parts[0]},"owner_org_ids":{owners},{parts[1]},'
        f'"version":{int(version)}}}'
    )


LISTING_FIELDS = (
    "id", "patent_id", "status", "modes", "price_cny", "negotiable", "zero_price",
    "use_first_pay_later", "deferred_licence_fee", "first_listed_at", "updated_at",
    "status_since",
)  # fmt: skip


def listing_payload(
    listing: Listing, application_number: str, owner_org_ids: list[int]
) -> dict[str, Any]:
    values = {k: getattr(listing, k) for k in LISTING_FIELDS}
    return listing_payload_from(values, application_number, owner_org_ids)


def listing_payload_from(
    values: dict[str, Any], application_number: str, owner_org_ids: list[int]
) -> dict[str, Any]:
    """`status_since`: when the current status took effect (a migrated pool's real date)."""
    price = values.get("price_cny")
    return {
        "id": values["id"],
        "patent_id": values["patent_id"],
        "application_number": application_number,
        "status": values["status"],
        "modes": values["modes"],
        "price_cny": str(price) if price is not None else None,
        "negotiable": values["negotiable"],
        "zero_price": values["zero_price"],
        "use_first_pay_later": values["use_first_pay_later"],
        "deferred_licence_fee": values["deferred_licence_fee"],
        "owner_org_ids": sorted(owner_org_ids),
        "first_listed_at": _iso(values.get("first_listed_at")),
        "updated_at": _iso(values.get("updated_at")),
        "status_since": _iso(values.get("status_since") or values.get("updated_at")),
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
