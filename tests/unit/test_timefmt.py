"""One parser for period ends (SPEC 9): a bare date means the end of that day, everywhere."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from watchdog.timefmt import parse_instant, parse_period_end

VN = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.mark.parametrize("text", ["30/11/2026", "2026-11-30", "20261130"])
def test_a_date_only_period_end_is_the_end_of_that_day(text: str) -> None:
    # "--to 30/11/2026" includes all of 30/11: the period ends at 01/12 00:00 (exclusive).
    assert parse_period_end(text, VN) == datetime(2026, 12, 1, 0, 0, tzinfo=VN)
    # ...while a start (or --now) given as a date is that day's first instant
    assert parse_instant(text, VN) == datetime(2026, 11, 30, 0, 0, tzinfo=VN)


def test_a_period_end_with_a_time_is_that_instant() -> None:
    assert parse_period_end("30/11/2026 10:15", VN) == datetime(2026, 11, 30, 10, 15, tzinfo=VN)
