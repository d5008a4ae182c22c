"""Catalog tables. Portable types only (SQLite and PostgreSQL share one migration)."""

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
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import service_metadata
from shared.feed import FeedCursorMixin, FeedEntryMixin, ParkedEntryMixin, utcnow


class Base(DeclarativeBase):
    metadata = service_metadata()


PK = BigInteger().with_variant(Integer, "sqlite")


class Organisation(Base):
    __tablename__ = "organisation"

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    aliases: Mapped[list[str]] = mapped_column(JSON, default=list)
    uscc: Mapped[str | None] = mapped_column(String(18), unique=True)
    district: Mapped[str | None] = mapped_column(String(20), index=True)
    province: Mapped[str | None] = mapped_column(String(20))
    is_sme: Mapped[bool] = mapped_column(Boolean, default=False)
    sme_basis: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @property
    def in_tianjin(self) -> bool:
        return self.district is not None


class OrganisationChange(Base):
    """One dated change of an organisation (or its first state, `effective_from` null).

    The organisation's state on a day is its first state with every change effective on
    or before that day laid over it in (effective_from, id) order; the organisation row
    holds the state today. Rows are never edited: a correction is a newer row, so who
    recorded what, when and why stays visible.
    """

    __tablename__ = "organisation_change"

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    effective_from: Mapped[date | None] = mapped_column(Date)
    values: Mapped[dict[str, Any]] = mapped_column(JSON)  # field -> value from that day on
    previous: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reason: Mapped[str] = mapped_column(String(300), default="")
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    recorded_by_org_id: Mapped[int | None] = mapped_column(BigInteger)
    recorded_by_role: Mapped[str | None] = mapped_column(String(20))
    recorded_by_key: Mapped[str | None] = mapped_column(String(24))
    recorded_by_person_id: Mapped[int | None] = mapped_column(BigInteger)


class Person(Base):
    """Someone of an organisation who signs in with a password (the portal's users)."""

    __tablename__ = "people"

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    # Lower-cased; phone is 11 digits. At least one of the two is set.
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    phone: Mapped[str | None] = mapped_column(String(11), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    org_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiKey(Base):
    """API keys and, with `person_id` and `expires_at` set, sign-in session tokens: one
    format and one verification path for both."""

    __tablename__ = "api_key"

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(String(100), default="")
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# A patent's dates, in the order every date-wise structure (feed payload, COPY row,
# keyword index, upload worker) lists them.
PATENT_DATES = ("application_date", "grant_date", "expiry_date")


class Patent(Base):
    __tablename__ = "patent"

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    application_number: Mapped[str] = mapped_column(String(16), unique=True)
    publication_number: Mapped[str | None] = mapped_column(String(20))
    patent_type: Mapped[str] = mapped_column(String(20), index=True)
    title: Mapped[str] = mapped_column(String(500))
    abstract: Mapped[str] = mapped_column(Text, default="")
    claims: Mapped[str | None] = mapped_column(Text)
    ipc_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    main_ipc: Mapped[str | None] = mapped_column(String(20), index=True)
    # " H01M10/0525 H01M4/13 " and " 1.2 5.2 ": prefix filters by LIKE on one row.
    ipc_text: Mapped[str] = mapped_column(Text, default="")
    industries: Mapped[list[str]] = mapped_column(JSON, default=list)
    industry_text: Mapped[str] = mapped_column(String(300), default="")
    patentees: Mapped[list[str]] = mapped_column(JSON, default=list)
    inventors: Mapped[list[str]] = mapped_column(JSON, default=list)
    application_date: Mapped[date | None] = mapped_column(Date)
    grant_date: Mapped[date | None] = mapped_column(Date)
    expiry_date: Mapped[date | None] = mapped_column(Date)
    legal_status: Mapped[str] = mapped_column(String(20), index=True)
    content_hash: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PatentSearch(Base):
    """Normalised title + abstract in a narrow table of its own: keyword search scans
    only this (about 1 KB a row, never compressed), not the wide patent rows."""

    __tablename__ = "patent_search"

    patent_id: Mapped[int] = mapped_column(
        ForeignKey("patent.id", ondelete="CASCADE"), primary_key=True
    )
    text: Mapped[str] = mapped_column(Text)


class PatentOwner(Base):
    __tablename__ = "patent_owner"

    patent_id: Mapped[int] = mapped_column(
        ForeignKey("patent.id", ondelete="CASCADE"), primary_key=True
    )
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_patent_owner_org", "org_id", "patent_id"),)


class Listing(Base):
    """A patent's place in the pool with its offer terms (one listing per patent)."""

    __tablename__ = "listing"

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    patent_id: Mapped[int] = mapped_column(ForeignKey("patent.id"), unique=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    modes: Mapped[list[str]] = mapped_column(JSON, default=list)
    mode_text: Mapped[str] = mapped_column(String(200), default="")
    price_cny: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    negotiable: Mapped[bool] = mapped_column(Boolean, default=True)
    zero_price: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    use_first_pay_later: Mapped[bool] = mapped_column(Boolean, default=False)
    deferred_licence_fee: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(Text, default="")
    status_reason: Mapped[str] = mapped_column(String(300), default="")
    listed_by_org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    first_listed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # When the current status took effect (back-dated for migrated pools); null: updated_at.
    status_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)


class ListingEvent(Base):
    """History of listing states; pool statistics by month read from here."""

    __tablename__ = "listing_event"

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("listing.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(300), default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Audit of back-dated (migrated) events: when and by whom `at` was recorded.
    recorded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=utcnow)
    recorded_by: Mapped[str | None] = mapped_column(String(100))


class Bundle(Base):
    __tablename__ = "bundle"

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    price_cny: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    status: Mapped[str] = mapped_column(String(20), default="active")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (UniqueConstraint("org_id", "name"),)


class BundleItem(Base):
    __tablename__ = "bundle_item"

    bundle_id: Mapped[int] = mapped_column(
        ForeignKey("bundle.id", ondelete="CASCADE"), primary_key=True
    )
    listing_id: Mapped[int] = mapped_column(ForeignKey("listing.id"), primary_key=True)


class IdempotencyRecord(Base):
    """Replays the first response to a retried write with the same Idempotency-Key."""

    __tablename__ = "idempotency_record"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)  # "<org_id>:<key>"
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class UploadJob(Base):
    __tablename__ = "upload_job"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    status: Mapped[str] = mapped_column(String(20))  # queued | running | done | failed
    format: Mapped[str] = mapped_column(String(10))
    total: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    report: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class FeedEntry(FeedEntryMixin, Base):
    __tablename__ = "feed_entry"


class FeedCursor(FeedCursorMixin, Base):
    """Where the catalog is in the indicators feed (deals mark listings converted)."""

    __tablename__ = "feed_cursor"


class ConvertedPatent(Base):
    """Deals from the indicators feed that keep a patent out of the pool."""

    __tablename__ = "converted_patent"

    patent_id: Mapped[int] = mapped_column(ForeignKey("patent.id"), primary_key=True)
    deal_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ParkedFeedEntry(ParkedEntryMixin, Base):
    """Feed entries this service could not apply (shared.feed.FeedConsumer parks them)."""

    __tablename__ = "parked_feed_entry"
