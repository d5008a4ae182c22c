"""Small shared helpers: Tianjin dates, application numbers, number formatting."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, overload

from shared import bizdate
from shared.appno import InvalidNumber, normalize_application_number

# Business dates (contracts, effective dates, "today", year boundaries) are Tianjin dates:
# Asia/Shanghai, whatever the host's time zone. Before 08:00 there, UTC is a day behind.
CST = bizdate.SHANGHAI  # one Tianjin calendar for every service (shared/bizdate.py)

PLATFORM_ROLES_THAT_WRITE_DEALS = ("city_bureau", "district_bureau", "admin", "supplier")


def _system_now() -> datetime:
    return datetime.now(UTC)


_clock: Callable[[], datetime] = _system_now


def now() -> datetime:
    """The current instant from the service's clock (aware)."""
    return _clock()


def set_clock(clock: Callable[[], datetime] | None) -> None:
    """Replace the clock (None: the system clock). Tests freeze time with `frozen_clock`."""
    global _clock
    _clock = clock or _system_now


@contextmanager
def frozen_clock(at: datetime) -> Iterator[None]:
    if at.tzinfo is None:
        raise ValueError("a frozen clock needs an aware datetime")
    previous = _clock
    set_clock(lambda: at)
    try:
        yield
    finally:
        set_clock(previous)


def today() -> date:
    """Today's date in Tianjin (Asia/Shanghai), from the service's clock."""
    return bizdate.business_date(now())


def local_year(at: datetime) -> int:
    """The Tianjin year of an instant (stored in UTC): 2023-12-31T17:00Z is in 2024."""
    return bizdate.business_date(aware(at)).year


def day_end_utc(d: date) -> datetime:
    """The first instant after date `d` ends in Tianjin, in UTC (an exclusive bound)."""
    return bizdate.day_start_utc(d + timedelta(days=1))


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


def parse_date(value: Any) -> date | None:
    """An ISO date from a feed payload; None when absent or not a date."""
    if not value:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def normalise_appno(raw: str) -> str | None:
    """`CN202110123456.7`, `ZL 2021101234567`, full-width digits → `202110123456.7`;
    None when it is not an application number or its check character is wrong."""
    try:
        return normalize_application_number(raw or "")
    except InvalidNumber:
        return None


CENT = Decimal("0.01")


def money_text(v: Decimal | float | None) -> str | None:
    """An amount as an exact decimal string with two places; None stays None."""
    if v is None:
        return None
    d = v if isinstance(v, Decimal) else Decimal(str(round(v, 2)))
    return str(d.quantize(CENT))


def num(v: Decimal | float | int | None, places: int = 2) -> float | None:
    if v is None:
        return None
    f = round(float(v), places)
    return int(f) if f == int(f) and abs(f) < 1e15 else f
