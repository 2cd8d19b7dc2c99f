"""Time, injected: UTC wall time for records, a monotonic clock for intervals."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo


class Clock:
    """The real clock. Tests pass their own object with the same two methods."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def monotonic(self) -> float:
        return time.monotonic()


class FixedClock:
    """A clock whose wall time stands still (tests, benchmarks, replays); intervals still run."""

    def __init__(self, now: datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("naive datetime; pass an aware UTC datetime")
        self._now = now

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def monotonic(self) -> float:
        return time.monotonic()


def utc_timestamp(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds, e.g. ``2026-11-22T08:30:00.000000Z``."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime; pass an aware UTC datetime")
    if moment.utcoffset():
        moment = moment.astimezone(timezone.utc)
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def day_bounds(day: str, tz: tzinfo) -> tuple[str, str]:
    """A calendar day in ``tz`` (the venue's, China Standard Time) as the UTC timestamps of its
    first moment and of the next day's, for ``start <= ts < end`` over stored timestamps."""
    first = datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=tz)
    return utc_timestamp(first), utc_timestamp(first + timedelta(days=1))


VENUE_TZ = ZoneInfo("Asia/Shanghai")  # the venues' wall clock: China Standard Time, no DST
