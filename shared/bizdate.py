"""Business dates: Tianjin's calendar (Asia/Shanghai, UTC+8, no daylight saving since 1991).

The host may run on UTC; before 08:00 Tianjin time its date is a day behind, so every
"today" that decides a business question comes from here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
# The earliest day a migrated record may carry: China's Patent Law took effect in 1985.
EARLIEST = date(1985, 1, 1)


def today() -> date:
    """Today's date in Tianjin."""
    return datetime.now(SHANGHAI).date()


def day_start_utc(d: date) -> datetime:
    """The first instant of date `d` in Tianjin, as a UTC datetime."""
    return datetime.combine(d, time(0), tzinfo=SHANGHAI).astimezone(UTC)


def business_date(dt: datetime) -> date:
    """The Tianjin date of an instant (naive datetimes are UTC, as stored)."""
    aware = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    return aware.astimezone(SHANGHAI).date()
