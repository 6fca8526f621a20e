"""When digests are due: cadences, local hours and time zones, as pure functions of a clock.

A reader's digest settings name a cadence (as soon as published, daily, weekly), a local
hour (and weekday) and a time zone. The scheduled instants are computed with zoneinfo, so
daylight-saving changes move them with the local clock: a daily digest at 08:00 in
Asia/Gaza comes at 08:00 local time on both sides of the change. A local time that does not
exist (skipped by a spring-forward change) fires at the first instant after the gap; one
that happens twice fires on its first occurrence.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

INSTANT, DAILY, WEEKLY = "instant", "daily", "weekly"
CADENCES = (INSTANT, DAILY, WEEKLY)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_OFFSET = re.compile(r"^(?:utc|gmt)?\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)


class TimezoneError(ValueError):
    """A time zone the reader typed that we cannot use; the message says what works."""


@dataclass(frozen=True, slots=True)
class Schedule:
    """One reader's digest settings."""

    cadence: str = DAILY
    hour: int = 8
    weekday: int = 0  # Monday; only for weekly digests
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if self.cadence not in CADENCES:
            raise ValueError(f"cadence must be one of {', '.join(CADENCES)}")
        if not 0 <= self.hour <= 23:
            raise ValueError("hour must be 0-23")
        if not 0 <= self.weekday <= 6:
            raise ValueError("weekday must be 0 (Monday) to 6 (Sunday)")
        zone_of(self.timezone)

    @property
    def slot(self) -> str:
        """The cadence slot: readers with the same slot are served by one scheduled job."""
        if self.cadence == INSTANT:
            return INSTANT
        if self.cadence == DAILY:
            return f"{DAILY}:{self.hour:02d}:{self.timezone}"
        return f"{WEEKLY}:{WEEKDAYS[self.weekday]}:{self.hour:02d}:{self.timezone}"


def schedule_of_slot(slot: str) -> Schedule:
    """The settings a slot stands for (the inverse of ``Schedule.slot``)."""
    kind, _, rest = slot.partition(":")
    if kind == INSTANT and not rest:
        return Schedule(INSTANT)
    if kind == DAILY:
        hour, _, zone = rest.partition(":")
        return Schedule(DAILY, int(hour), 0, zone)
    if kind == WEEKLY:
        day, hour, zone = rest.split(":", 2)
        return Schedule(WEEKLY, int(hour), WEEKDAYS.index(day), zone)
    raise ValueError(f"not a digest slot: {slot!r}")


@cache
def zone_of(name: str) -> tzinfo:
    """A stored time zone name: an IANA key ("Asia/Gaza") or a fixed offset ("UTC+03:30")."""
    if name == "UTC":
        return UTC
    match = _OFFSET.match(name)
    if match:
        sign, hours, minutes = match.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes or 0))
        if delta > timedelta(hours=14):
            raise TimezoneError(f"{name}: offsets go from UTC-14:00 to UTC+14:00")
        return timezone(-delta if sign == "-" else delta)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise TimezoneError(f"unknown time zone {name!r}") from exc


@cache
def _zones_by_city() -> dict[str, str]:
    """'gaza' -> 'Asia/Gaza', 'new york' -> 'America/New_York' (canonical IANA keys only)."""
    by_city: dict[str, str] = {}
    for key in sorted(available_timezones()):
        if "/" not in key or key.startswith(("Etc/", "SystemV/", "US/")):
            continue
        city = key.rsplit("/", 1)[1].replace("_", " ").lower()
        by_city.setdefault(city, key)
    return by_city


def parse_timezone(text: str) -> str:
    """What a reader typed ("Asia/Gaza", "gaza", "New York", "UTC+3", "+05:30") as the
    name we store; TimezoneError with a hint otherwise."""
    value = " ".join(text.split())
    if not value:
        raise TimezoneError("name a time zone, e.g. Asia/Gaza, a city like Cairo, or UTC+2")
    if value.upper() in ("UTC", "GMT", "Z"):
        return "UTC"
    match = _OFFSET.match(value)
    if match:
        sign, hours, minutes = match.groups()
        name = f"UTC{sign}{int(hours):02d}:{int(minutes or 0):02d}"
        zone_of(name)
        return name
    for key in available_timezones():
        if key.lower() == value.lower():
            return key
    city = _zones_by_city().get(value.lower().replace("_", " "))
    if city:
        return city
    raise TimezoneError(
        f"I do not know the time zone {value!r}. Try a name like Asia/Gaza, "
        "a city like Cairo, or an offset like UTC+2"
    )


def local_instant(day: date, hour: int, zone: tzinfo) -> datetime:
    """``hour``:00 local time on ``day`` as an aware UTC datetime.

    With ``fold=0`` (PEP 495) a repeated local time is its first occurrence, and a skipped
    one is read with the offset from before the change, which lands on the end of the gap
    for the whole hours digests use (00:00 skipped to 01:00 gives 01:00).
    """
    return datetime(day.year, day.month, day.day, hour, tzinfo=zone).astimezone(UTC)


def _instants(schedule: Schedule, now: datetime, step: int) -> Iterator[datetime]:
    """Scheduled instants of the days from ``now``'s local date, going ``step`` days at a
    time (a week and a day covers every weekday and a change of offset)."""
    zone = zone_of(schedule.timezone)
    today = now.astimezone(zone).date()
    for n in range(9):
        day = today + timedelta(days=n * step)
        if schedule.cadence != WEEKLY or day.weekday() == schedule.weekday:
            yield local_instant(day, schedule.hour, zone)


def last_due(schedule: Schedule, now: datetime) -> datetime | None:
    """The latest scheduled instant at or before ``now`` (None for instant digests)."""
    if schedule.cadence == INSTANT:
        return None
    return next(at for at in _instants(schedule, now, -1) if at <= now)


def next_due(schedule: Schedule, now: datetime) -> datetime | None:
    """The first scheduled instant after ``now`` (None for instant digests)."""
    if schedule.cadence == INSTANT:
        return None
    return next(at for at in _instants(schedule, now, 1) if at > now)


def is_due(schedule: Schedule, last_digest_at: datetime, now: datetime) -> bool:
    """Whether a reader whose last digest was planned at ``last_digest_at`` is due at ``now``.

    Instant digests are always due (they carry whatever arrived). Daily and weekly ones are
    due once per scheduled instant, also when the bot was down at that instant and only
    now runs again.
    """
    due = last_due(schedule, now)
    return due is None or last_digest_at < due
