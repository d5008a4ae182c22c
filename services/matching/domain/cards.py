"""Hit cards: what a ranked hit shows about a patent, kept in memory next to the index.

A ranking request must not read the database: the index already holds the filter
attributes, and this store holds the rest of a hit (application number, title, abstract
head for the snippet, type, IPC codes, industries, owner ids, the offer). Owners are kept
once per organisation. `PatentIndexer` loads the store from the database at start and
updates it in the same `sync()` that updates the index (cards of re-indexed patents are
rebuilt from their rows; organisations changed since the last sync are re-read by their
`feed_pos`), so cards, filters and scores describe the same feed position.

Readers take a card with one dict look-up and never lock; a writer replaces whole
`Card` objects (immutable), so a reader sees the old card or the new one.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

# Chinese abstracts are limited to 300 characters; a longer text keeps this much for the
# snippet (a snippet from a cut abstract ends with "…").
ABSTRACT_HEAD = 600


def _s(value: str | None) -> str:
    # Output models strip whitespace (schemas.Model); cards are served without a model.
    return (value or "").strip()


def _codes(values: list[str] | None) -> tuple[str, ...]:
    return tuple(sys.intern(_s(v)) for v in values or ())


@dataclass(frozen=True, slots=True)
class Card:
    application_number: str
    title: str
    patent_type: str
    ipc_codes: tuple[str, ...]
    industries: tuple[str, ...]
    owner_ids: tuple[int, ...]
    abstract: str  # the head (ABSTRACT_HEAD characters)
    abstract_cut: bool
    offer: tuple[Any, ...] | None  # OFFER_FIELDS


OFFER_FIELDS = (
    "listing_id",
    "status",
    "modes",
    "price_cny",
    "negotiable",
    "zero_price",
    "use_first_pay_later",
    "deferred_licence_fee",
)


def offer_of(listing: Any) -> tuple[Any, ...] | None:
    """The offer of a `Listing` row (ORM object or row with the same attribute names)."""
    if listing is None:
        return None
    return (
        int(listing.id),
        sys.intern(_s(listing.status)),
        _codes(listing.modes),
        _s(listing.price_cny) if listing.price_cny is not None else None,
        bool(listing.negotiable),
        bool(listing.zero_price),
        bool(listing.use_first_pay_later),
        bool(listing.deferred_licence_fee),
    )


def card_of(patent: Any, listing: Any) -> Card:
    """The card of a `Patent` row (ORM object, or a row whose `abstract` may already be
    cut to ABSTRACT_HEAD + 1 characters)."""
    abstract = patent.abstract or ""
    return Card(
        application_number=_s(patent.application_number),
        title=_s(patent.title),
        patent_type=sys.intern(_s(patent.patent_type)),
        ipc_codes=_codes(patent.ipc_codes),
        industries=_codes(patent.industries),
        owner_ids=tuple(int(o) for o in patent.owner_org_ids or ()),
        abstract=abstract[:ABSTRACT_HEAD],
        abstract_cut=len(abstract) > ABSTRACT_HEAD,
        offer=offer_of(listing),
    )


def owner_of(org: Any) -> dict[str, Any]:
    """An owner as the API shows it (`schemas.OwnerSummary`), from an `Organisation` row."""
    return {
        "id": int(org.id),
        "name": _s(org.name),
        "kind": _s(org.kind),
        "district": _s(org.district) if org.district is not None else None,
    }


class CardStore:
    """Cards by patent id and owners by organisation id."""

    def __init__(self) -> None:
        self.patents: dict[int, Card] = {}
        self.orgs: dict[int, dict[str, Any]] = {}
        self.org_position = -1  # organisations with feed_pos <= this are loaded

    def __len__(self) -> int:
        return len(self.patents)

    def get(self, key: int) -> Card | None:
        return self.patents.get(key)

    def owners(self, card: Card) -> list[dict[str, Any]]:
        orgs = self.orgs
        return [orgs[i] for i in card.owner_ids if i in orgs]

    @staticmethod
    def offer(card: Card) -> dict[str, Any] | None:
        if card.offer is None:
            return None
        d = dict(zip(OFFER_FIELDS, card.offer, strict=True))
        d["modes"] = list(d["modes"])
        return d
