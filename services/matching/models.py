"""Matching tables: its copy of the catalog (from the feed), needs, leads, its own feed."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

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
    """Copy of the catalog's organisations (id is the catalog's)."""

    __tablename__ = "organisation"

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    district: Mapped[str | None] = mapped_column(String(20))
    province: Mapped[str | None] = mapped_column(String(20))
    is_sme: Mapped[bool] = mapped_column(Boolean, default=False)
    feed_pos: Mapped[int] = mapped_column(BigInteger, default=0)


class Patent(Base):
    """Copy of the catalog's patents. `index_pos` = feed id of the last change that
    affects its index entry (patent, listing or an owner's district)."""

    __tablename__ = "patent"

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=False)
    application_number: Mapped[str] = mapped_column(String(16), unique=True)
    patent_type: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(500))
    abstract: Mapped[str] = mapped_column(Text, default="")
    claims: Mapped[str | None] = mapped_column(Text)
    ipc_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    industries: Mapped[list[str]] = mapped_column(JSON, default=list)
    patentees: Mapped[list[str]] = mapped_column(JSON, default=list)
    owner_org_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    legal_status: Mapped[str] = mapped_column(String(20))
    version: Mapped[int] = mapped_column(Integer, default=1)
    index_pos: Mapped[int] = mapped_column(BigInteger, default=0, index=True)


class PatentOwner(Base):
    __tablename__ = "patent_owner"

    patent_id: Mapped[int] = mapped_column(
        ForeignKey("patent.id", ondelete="CASCADE"), primary_key=True
    )
    org_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)

    __table_args__ = (Index("ix_patent_owner_org", "org_id", "patent_id"),)


class Listing(Base):
    __tablename__ = "listing"

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=False)
    patent_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    status: Mapped[str] = mapped_column(String(20))
    modes: Mapped[list[str]] = mapped_column(JSON, default=list)
    price_cny: Mapped[str | None] = mapped_column(String(20))
    negotiable: Mapped[bool] = mapped_column(Boolean, default=True)
    zero_price: Mapped[bool] = mapped_column(Boolean, default=False)
    use_first_pay_later: Mapped[bool] = mapped_column(Boolean, default=False)
    deferred_licence_fee: Mapped[bool] = mapped_column(Boolean, default=False)
    feed_pos: Mapped[int] = mapped_column(BigInteger, default=0)


class Need(Base):
    __tablename__ = "need"

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    org_id: Mapped[int] = mapped_column(BigInteger, index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    industry: Mapped[str] = mapped_column(String(10))
    ipc_hints: Mapped[list[str]] = mapped_column(JSON, default=list)
    modes: Mapped[list[str]] = mapped_column(JSON, default=list)
    budget_min_cny: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    budget_max_cny: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    valid_until: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)
    contact_name: Mapped[str] = mapped_column(String(100), default="")
    contact_phone: Mapped[str] = mapped_column(String(40), default="")
    contact_email: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Lead(Base):
    """An SME's interest in a patent for one of its needs, answered by the owner."""

    __tablename__ = "lead"

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    need_id: Mapped[int] = mapped_column(ForeignKey("need.id"), index=True)
    patent_id: Mapped[int] = mapped_column(ForeignKey("patent.id"), index=True)
    application_number: Mapped[str] = mapped_column(String(16))
    sme_org_id: Mapped[int] = mapped_column(BigInteger, index=True)
    owner_org_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)
    message: Mapped[str] = mapped_column(Text, default="")
    response_note: Mapped[str] = mapped_column(Text, default="")
    score: Mapped[float | None] = mapped_column(Numeric(8, 5, asdecimal=False))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (UniqueConstraint("need_id", "patent_id"),)


class FeedEntry(FeedEntryMixin, Base):
    __tablename__ = "feed_entry"


class FeedCursor(FeedCursorMixin, Base):
    """Where matching is in the catalog feed."""

    __tablename__ = "feed_cursor"


class ParkedFeedEntry(ParkedEntryMixin, Base):
    """Feed entries this service could not apply (shared.feed.FeedConsumer parks them)."""

    __tablename__ = "parked_feed_entry"
