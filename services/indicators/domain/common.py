"""Small shared helpers: Tianjin dates, application numbers, number formatting."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, overload

from shared.appno import InvalidNumber, normalize_application_number

# China has one time zone and no daylight saving: dates in contracts are Beijing dates.
CST = timezone(timedelta(hours=8), "CST")

PLATFORM_ROLES_THAT_WRITE_DEALS = ("city_bureau", "district_bureau", "admin", "supplier")


def today() -> date:
    """Today's date in Tianjin."""
    return datetime.now(CST).date()


def day_end_utc(d: date) -> datetime:
    """The first instant after date `d` ends in Tianjin, in UTC (an exclusive bound)."""
    return datetime.combine(d + timedelta(days=1), time(0), tzinfo=CST).astimezone(UTC)


def year_end(year: int) -> date:
    return date(year, 12, 31)


@overload
def aware(dt: datetime) -> datetime: ...
@overload
def aware(dt: None) -> None: ...
def aware(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored datetime is UTC."""
    if dt is None:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def parse_dt(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return aware(value)
    s = str(value).replace("Z", "+00:00")
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        try:
            return datetime.combine(date.fromisoformat(s[:10]), time(0), tzinfo=CST)
        except ValueError:
            return None
    return aware(dt)


def normalise_appno(raw: str) -> str | None:
    """`CN202110123456.7`, `ZL 2021101234567`, full-width digits → `202110123456.7`;
    None when it is not an application number or its check character is wrong."""
    try:
        return normalize_application_number(raw or "")
    except InvalidNumber:
        return None


def num(v: Decimal | float | int | None, places: int = 2) -> float | None:
    if v is None:
        return None
    f = round(float(v), places)
    return int(f) if f == int(f) and abs(f) < 1e15 else f
