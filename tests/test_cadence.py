"""Digest due times across time zones and daylight-saving changes, with given clocks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.digests.cadence import (
    Schedule,
    TimezoneError,
    is_due,
    last_due,
    local_instant,
    next_due,
    parse_timezone,
    schedule_of_slot,
    zone_of,
)

GAZA = ZoneInfo("Asia/Gaza")


def _transitions(zone: ZoneInfo, year: int) -> list[datetime]:
    """UTC instants (to the hour) where the zone's offset changes in ``year``."""
    found = []
    at = datetime(year, 1, 1, tzinfo=UTC)
    while at.year == year:
        nxt = at + timedelta(hours=1)
        if at.astimezone(zone).utcoffset() != nxt.astimezone(zone).utcoffset():
            found.append(nxt)
        at = nxt
    return found


def test_gaza_has_both_changes_in_2026() -> None:
    spring, autumn = _transitions(GAZA, 2026)
    assert spring.astimezone(GAZA).utcoffset() == timedelta(hours=3)
    assert autumn.astimezone(GAZA).utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize("change", [0, 1])
def test_daily_digest_keeps_local_hour_across_dst(change: int) -> None:
    """Every day around both changes the 08:00 digest fires at 08:00 Gaza time, once."""
    schedule = Schedule("daily", 8, 0, "Asia/Gaza")
    moment = _transitions(GAZA, 2026)[change]
    last = moment - timedelta(days=4)
    fired = []
    clock = last
    while clock < moment + timedelta(days=4):  # a clock ticking every 15 minutes
        clock += timedelta(minutes=15)
        if is_due(schedule, last, clock):
            fired.append(clock)
            last = clock
    local = [f.astimezone(GAZA) for f in fired]
    assert len(fired) == 8
    assert all((t.hour, t.minute) == (8, 0) for t in local)
    assert len({t.date() for t in local}) == 8
    offsets = {t.utcoffset() for t in local}
    assert offsets == {timedelta(hours=2), timedelta(hours=3)}


def test_skipped_and_repeated_local_hours() -> None:
    spring, autumn = _transitions(GAZA, 2026)
    # 28 March 2026: Gaza's clocks jump from 02:00 to 03:00; a 02:00 digest goes out at
    # the jump, which is 03:00 local.
    assert spring.astimezone(GAZA).replace(tzinfo=None) == datetime(2026, 3, 28, 3)
    assert local_instant(date(2026, 3, 28), 2, GAZA) == spring
    # 24 October 2026: 01:00-02:00 happens twice; a 01:00 digest fires on the first only.
    first = local_instant(date(2026, 10, 24), 1, GAZA)
    assert first == autumn - timedelta(hours=1) == datetime(2026, 10, 23, 22, tzinfo=UTC)
    schedule = Schedule("daily", 1, 0, "Asia/Gaza")
    assert is_due(schedule, first - timedelta(days=1), first)
    assert not is_due(schedule, first, first + timedelta(hours=1, minutes=30))


def test_weekly_digest_and_catch_up_after_downtime() -> None:
    schedule = Schedule("weekly", 18, 4, "Europe/London")  # Fridays 18:00
    now = datetime(2026, 3, 30, 12, tzinfo=UTC)  # Monday, after the UK moved to BST
    due = last_due(schedule, now)
    assert due == datetime(2026, 3, 27, 18, tzinfo=UTC)  # still GMT that Friday
    assert next_due(schedule, now) == datetime(2026, 4, 3, 17, tzinfo=UTC)  # BST
    # The bot was down on Friday evening: on Monday the digest is still due, once.
    assert is_due(schedule, datetime(2026, 3, 20, 18, tzinfo=UTC), now)
    assert not is_due(schedule, due, now)


def test_instant_is_always_due_and_new_readers_wait_for_their_hour() -> None:
    assert is_due(Schedule("instant"), datetime.now(UTC), datetime.now(UTC))
    schedule = Schedule("daily", 8, 0, "UTC")
    joined = datetime(2026, 5, 4, 9, tzinfo=UTC)
    assert not is_due(schedule, joined, joined + timedelta(hours=3))
    assert is_due(schedule, joined, datetime(2026, 5, 5, 8, tzinfo=UTC))


@given(
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)),
    st.integers(0, 23),
    st.sampled_from(["Asia/Gaza", "America/New_York", "Australia/Lord_Howe", "UTC+05:30"]),
    st.sampled_from(["daily", "weekly"]),
    st.integers(0, 6),
)
def test_due_times_bracket_the_clock(
    naive: datetime, hour: int, zone: str, cadence: str, weekday: int
) -> None:
    schedule = Schedule(cadence, hour, weekday, zone)
    now = naive.replace(tzinfo=UTC)
    before, after = last_due(schedule, now), next_due(schedule, now)
    assert before is not None and after is not None
    assert before <= now < after
    assert timedelta(hours=20) <= after - before <= timedelta(days=7, hours=4)
    assert not is_due(schedule, before, now) and is_due(
        schedule, before - timedelta(seconds=1), now
    )


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("Asia/Gaza", "Asia/Gaza"),
        ("asia/gaza", "Asia/Gaza"),
        ("Gaza", "Asia/Gaza"),
        ("new york", "America/New_York"),
        ("UTC+3", "UTC+03:00"),
        ("+05:30", "UTC+05:30"),
        ("gmt-4", "UTC-04:00"),
        ("utc", "UTC"),
    ],
)
def test_parse_timezone(typed: str, stored: str) -> None:
    assert parse_timezone(typed) == stored
    zone_of(stored)


@pytest.mark.parametrize("typed", ["", "Atlantis", "UTC+15", "<script>", "Asia/"])
def test_parse_timezone_refuses_with_a_hint(typed: str) -> None:
    with pytest.raises(TimezoneError):
        parse_timezone(typed)


def test_slots_round_trip_and_validate() -> None:
    for schedule in (
        Schedule("instant"),
        Schedule("daily", 7, 0, "Asia/Gaza"),
        Schedule("weekly", 18, 4, "UTC+05:30"),
    ):
        assert schedule_of_slot(schedule.slot).slot == schedule.slot
    with pytest.raises(ValueError):
        Schedule("hourly")
    with pytest.raises(ValueError):
        Schedule("daily", 24)
    with pytest.raises(TimezoneError):
        Schedule("daily", 8, 0, "Mars/Olympus")
    assert local_instant(date(2026, 1, 1), 0, UTC) == datetime(2026, 1, 1, tzinfo=UTC)
