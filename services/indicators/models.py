"""Indicators tables. Portable types only (SQLite and PostgreSQL share one migration).

Three groups:

- replicas of upstream data, kept from the feeds: organisations with their history
  (`org`, `org_version`), patents, pool listings with their state history
  (`listing`, `pool_event`), matchmaking needs and leads;
- the ledger: `deal` with its suppliers (`deal_supplier`), one `deal_patent` line per
  patent (the counting unit; party attributes frozen at the effective date are copied
  onto it so every count is one scan of one table), `payment`; and the other countable
  events, each in its own table: `pledge`, `product_filing`, `securitisation`;
- reporting: `reported_figure` (append-only with history) and `snapshot` (frozen).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import service_metadata
from shared.feed import FeedCursorMixin, FeedEntryMixin, ParkedEntryMixin, utcnow


class Base(DeclarativeBase):
    metadata = service_metadata()


PK = BigInteger().with_variant(Integer, "sqlite")
MONEY = Numeric(16, 2)


# --- replicas -------------------------------------------------------------------------


class Org(Base):
    """Current state of a catalog organisation (from the catalog feed)."""

    __tablename__ = "org"

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    district: Mapped[str | None] = mapped_column(String(20))
    province: Mapped[str | None] = mapped_column(String(20))
    in_tianjin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_sme: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OrgVersion(Base):
    """Every state an organisation has had; deals freeze the one valid at their date."""

    __tablename__ = "org_version"

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    org_id: Mapped[int] = mapped_column(BigInteger, index=True)
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    district: Mapped[str | None] = mapped_column(String(20))
    in_tianjin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_sme: Mapped[bool] = mapped_column(Boolean, default=False)
    source_feed_id: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_org_version_org_from", "org_id", "valid_from"),)


class Patent(Base):
    __tablename__ = "patent"

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=False)
    application_number: Mapped[str] = mapped_column(String(16), unique=True)
    patent_type: Mapped[str | None] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(500), default="")
    industries: Mapped[list[str]] = mapped_column(JSON, default=list)
    main_industry: Mapped[str] = mapped_column(String(20), default="")
    owner_org_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    legal_status: Mapped[str | None] = mapped_column(String(20))
    # from the catalog feed: a deal is refused on a patent not in force at its date
    application_date: Mapped[date | None] = mapped_column(Date)
    grant_date: Mapped[date | None] = mapped_column(Date)
    expiry_date: Mapped[date | None] = mapped_column(Date)


class Listing(Base):
    """A patent's place in the catalog's pool (one per patent)."""

    __tablename__ = "listing"

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=False)
    patent_id: Mapped[int] = mapped_column(BigInteger, index=True)
    application_number: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    owner_org_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    owner_district: Mapped[str | None] = mapped_column(String(20))
    first_listed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PoolEvent(Base):
    """Each state a listing has been seen in, with the time it took effect."""

    __tablename__ = "pool_event"

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    listing_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # when the listing left this state (the next event's time); null while it still holds
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    owner_district: Mapped[str | None] = mapped_column(String(20))

    __table_args__ = (Index("ix_pool_event_listing_at", "listing_id", "at"),)


class Need(Base):
    __tablename__ = "need"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    org_id: Mapped[int | None] = mapped_column(BigInteger)
    title: Mapped[str] = mapped_column(String(500), default="")
    industry: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="open")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Lead(Base):
    __tablename__ = "lead"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    need_id: Mapped[str | None] = mapped_column(String(64))
    patent_id: Mapped[int | None] = mapped_column(BigInteger)
    application_number: Mapped[str | None] = mapped_column(String(16), index=True)
    sme_org_id: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20), default="open")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# --- the ledger -----------------------------------------------------------------------


class Deal(Base):
    __tablename__ = "deal"

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20))  # assignment | licence | equity
    licence_type: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), index=True)
    contract_date: Mapped[date] = mapped_column(Date)
    effective_date: Mapped[date | None] = mapped_column(Date)
    year: Mapped[int | None] = mapped_column(Integer)  # of the effective date
    evidence_type: Mapped[str] = mapped_column(String(30))
    evidence_number: Mapped[str] = mapped_column(String(80))
    evidence_date: Mapped[date] = mapped_column(Date)
    # transfer registration / licence filing numbers are unique; an open-licence notice is
    # shared by every taker, so its key includes the recipient.
    evidence_key: Mapped[str] = mapped_column(String(160), unique=True)
    contract_amount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    amount_received: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    zero_price: Mapped[bool] = mapped_column(Boolean, default=False)
    use_first_pay_later: Mapped[bool] = mapped_column(Boolean, default=False)
    recipient_org_id: Mapped[int] = mapped_column(BigInteger, index=True)
    # the recipient as it was at the effective date (frozen)
    recipient_name: Mapped[str] = mapped_column(String(200), default="")
    recipient_kind: Mapped[str] = mapped_column(String(20))
    recipient_district: Mapped[str | None] = mapped_column(String(20))
    recipient_in_tianjin: Mapped[bool] = mapped_column(Boolean)
    recipient_is_sme: Mapped[bool] = mapped_column(Boolean)
    # derived from the frozen parties (see domain/rules.py)
    qualifies: Mapped[bool] = mapped_column(Boolean, default=False)  # the 1000-target parties
    academic_to_sme: Mapped[bool] = mapped_column(Boolean, default=False)  # BH04 parties
    lead_supplier_org_id: Mapped[int] = mapped_column(BigInteger, index=True)
    converted_from_deal_id: Mapped[int | None] = mapped_column(ForeignKey("deal.id"))
    lead_id: Mapped[str | None] = mapped_column(String(64))
    cancelled_reason: Mapped[str | None] = mapped_column(String(500))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # recorded by a bureau on a patent not in force (override): kept, never counted
    excluded: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    not_in_force_reason: Mapped[str | None] = mapped_column(Text)
    override_reason: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str] = mapped_column(Text, default="")
    created_by_org_id: Mapped[int] = mapped_column(BigInteger)
    created_by_role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (
        Index(
            "ix_deal_effective",
            "year", "effective_date", "recipient_district", "contract_amount",
            postgresql_where=text("status = 'effective'"),
            sqlite_where=text("status = 'effective'"),
        ),
        Index(
            "ix_deal_qualifying",
            "year", "effective_date", "recipient_district", "recipient_org_id", "contract_amount",
            postgresql_where=text("status = 'effective' AND qualifies"),
            sqlite_where=text("status = 'effective' AND qualifies"),
        ),
        Index(
            "ix_deal_academic",
            "recipient_org_id", "year", "effective_date", "recipient_district",
            postgresql_where=text("status = 'effective' AND academic_to_sme"),
            sqlite_where=text("status = 'effective' AND academic_to_sme"),
        ),
    )  # fmt: skip


class DealSupplier(Base):
    __tablename__ = "deal_supplier"

    deal_id: Mapped[int] = mapped_column(
        ForeignKey("deal.id", ondelete="CASCADE"), primary_key=True
    )
    org_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(20))
    district: Mapped[str | None] = mapped_column(String(20))
    in_tianjin: Mapped[bool] = mapped_column(Boolean)
    is_sme: Mapped[bool] = mapped_column(Boolean)

    __table_args__ = (Index("ix_deal_supplier_org", "org_id"),)


class DealPatent(Base):
    """One line per (deal, patent): the unit the 1000 target counts."""

    __tablename__ = "deal_patent"

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deal.id", ondelete="CASCADE"), index=True)
    patent_id: Mapped[int] = mapped_column(BigInteger, index=True)
    application_number: Mapped[str] = mapped_column(String(16), index=True)
    industry: Mapped[str] = mapped_column(String(20), default="")
    kind: Mapped[str] = mapped_column(String(20))
    year: Mapped[int | None] = mapped_column(Integer)
    effective_date: Mapped[date | None] = mapped_column(Date)
    recipient_org_id: Mapped[int] = mapped_column(BigInteger)
    recipient_district: Mapped[str | None] = mapped_column(String(20))
    lead_supplier_org_id: Mapped[int] = mapped_column(BigInteger)
    # status is effective (not registered, not cancelled)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    # active, the parties qualify, and not a repeat of a converted-from deal's line
    counts: Mapped[bool] = mapped_column(Boolean, default=False)
    repeat_of_deal_id: Mapped[int | None] = mapped_column(BigInteger)

    # Partial covering indexes: each counting rule is an index-only scan (see rules.py).
    __table_args__ = (
        Index(
            "ix_deal_patent_counted",
            "year", "effective_date", "recipient_district",
            postgresql_where=text("counts"), sqlite_where=text("counts"),
        ),
        Index(
            "ix_deal_patent_counted_patent",
            "patent_id", "year", "effective_date", "recipient_district",
            postgresql_where=text("counts"), sqlite_where=text("counts"),
        ),
        Index(
            "ix_deal_patent_active",
            "year", "effective_date", "recipient_district", "kind",
            postgresql_where=text("active"), sqlite_where=text("active"),
        ),
    )  # fmt: skip


class Payment(Base):
    __tablename__ = "payment"

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deal.id", ondelete="CASCADE"), index=True)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    received_on: Mapped[date] = mapped_column(Date)
    year: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # copied from the deal: it is effective and qualifies (kept by ledger.refresh_lines)
    counts: Mapped[bool] = mapped_column(Boolean, default=False)
    recipient_district: Mapped[str | None] = mapped_column(String(20))

    __table_args__ = (
        Index(
            "ix_payment_counted",
            "year", "received_on", "recipient_district", "amount",
            postgresql_where=text("counts"), sqlite_where=text("counts"),
        ),
    )  # fmt: skip


class Pledge(Base):
    """Pledge financing (质押融资): one registered pledge = one project."""

    __tablename__ = "pledge"

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    registration_number: Mapped[str] = mapped_column(String(80), unique=True)
    pledgor_org_id: Mapped[int] = mapped_column(BigInteger, index=True)
    pledgor_name: Mapped[str] = mapped_column(String(200), default="")
    pledgor_kind: Mapped[str] = mapped_column(String(20))
    pledgor_district: Mapped[str | None] = mapped_column(String(20))
    pledgor_is_sme: Mapped[bool] = mapped_column(Boolean)
    lender: Mapped[str] = mapped_column(String(200))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    registered_on: Mapped[date] = mapped_column(Date)
    year: Mapped[int] = mapped_column(Integer, index=True)
    asset_kind: Mapped[str] = mapped_column(String(20))  # patent | trademark | mixed
    application_numbers: Mapped[list[str]] = mapped_column(JSON, default=list)
    trademark_numbers: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default="active")  # active | cancelled
    cancelled_reason: Mapped[str | None] = mapped_column(String(500))
    note: Mapped[str] = mapped_column(Text, default="")
    created_by_org_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ProductFiling(Base):
    """An SME's patent-product filing (专利产品备案)."""

    __tablename__ = "product_filing"

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    filing_number: Mapped[str] = mapped_column(String(80), unique=True)
    org_id: Mapped[int] = mapped_column(BigInteger, index=True)
    org_name: Mapped[str] = mapped_column(String(200), default="")
    org_district: Mapped[str | None] = mapped_column(String(20))
    org_is_sme: Mapped[bool] = mapped_column(Boolean)
    product_name: Mapped[str] = mapped_column(String(300))
    filed_on: Mapped[date] = mapped_column(Date)
    year: Mapped[int] = mapped_column(Integer, index=True)
    application_numbers: Mapped[list[str]] = mapped_column(JSON, default=list)
    note: Mapped[str] = mapped_column(Text, default="")
    created_by_org_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Securitisation(Base):
    """An IP securitisation product (知识产权证券化产品)."""

    __tablename__ = "securitisation"

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    issuer: Mapped[str] = mapped_column(String(200))
    district: Mapped[str | None] = mapped_column(String(20))
    issued_on: Mapped[date] = mapped_column(Date)
    year: Mapped[int] = mapped_column(Integer, index=True)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    originator_org_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    application_numbers: Mapped[list[str]] = mapped_column(JSON, default=list)
    note: Mapped[str] = mapped_column(Text, default="")
    created_by_org_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# --- reporting ------------------------------------------------------------------------


class ReportedFigure(Base):
    """A value submitted for a reported indicator; a correction is a new row."""

    __tablename__ = "reported_figure"

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    plan_code: Mapped[str] = mapped_column(String(40))
    indicator_code: Mapped[str] = mapped_column(String(20))
    scope: Mapped[str] = mapped_column(String(20))  # "city" or a district key
    year: Mapped[int] = mapped_column(Integer)
    value: Mapped[Decimal] = mapped_column(Numeric(20, 4))
    note: Mapped[str] = mapped_column(Text, default="")
    current: Mapped[bool] = mapped_column(Boolean, default=True)
    supersedes_id: Mapped[int | None] = mapped_column(BigInteger)
    submitted_by_org_id: Mapped[int] = mapped_column(BigInteger)
    submitted_by_role: Mapped[str] = mapped_column(String(20))
    submitted_by_key_id: Mapped[str] = mapped_column(String(24))
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        Index("ix_reported_figure_lookup", "plan_code", "indicator_code", "scope", "year"),
    )


class Snapshot(Base):
    """A plan's figures for a period as reported to the city. Never updated."""

    __tablename__ = "snapshot"

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    plan_code: Mapped[str] = mapped_column(String(40), index=True)
    scope: Mapped[str] = mapped_column(String(20))
    year: Mapped[int] = mapped_column(Integer)
    as_of: Mapped[date] = mapped_column(Date)
    note: Mapped[str] = mapped_column(Text, default="")
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_sha256: Mapped[str] = mapped_column(String(64))
    created_by_org_id: Mapped[int] = mapped_column(BigInteger)
    created_by_role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FeedEntry(FeedEntryMixin, Base):
    __tablename__ = "feed_entry"


class FeedCursor(FeedCursorMixin, Base):
    """Where this service is in the catalog and matching feeds."""

    __tablename__ = "feed_cursor"


class ParkedFeedEntry(ParkedEntryMixin, Base):
    """Feed entries this service could not apply (shared.feed.FeedConsumer parks them)."""

    __tablename__ = "parked_feed_entry"
