"""Property tests for WorkingCalendar arithmetic, and a cross-check of the lunar holidays.

Instants are drawn from 2000-2060 (local wall time, whole seconds, sometimes given in UTC);
amounts are working seconds up to 60 working days, biased towards whole days, half hours and
single seconds so that period ends, lunch breaks and year ends are hit often.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from vnlunar import convert_lunar_to_solar

from watchdog.calendar import WorkingCalendar

VN = ZoneInfo("Asia/Ho_Chi_Minh")
DAY = 8 * 3600
MAX_AMOUNT = 60 * DAY

DEFAULT = WorkingCalendar()
DESK = WorkingCalendar(  # Saturday mornings plus local overrides
    name="desk",
    saturday_morning=True,
    extra_holidays=frozenset({date(2026, 3, 10), date(2031, 12, 30)}),
    extra_workdays=frozenset({date(2026, 3, 15), date(2040, 1, 1)}),
)
PROVINCE = WorkingCalendar(  # other hours and cutoff
    name="province",
    office_hours=((time(7, 30), time(11, 30)), (time(13), time(16, 30))),
    cutoff=time(16),
)
CALS = {c.name: c for c in (DEFAULT, DESK, PROVINCE)}
CALENDAR_NAMES = st.sampled_from(sorted(CALS))  # names keep failure reports short

# Times of day around the interesting boundaries of all three calendars.
_EDGE_MINUTES = (0, 360, 420, 450, 690, 720, 780, 810, 900, 960, 990, 1020, 1439)
_EDGES = [time(m // 60, m % 60) for m in _EDGE_MINUTES]  # 00:00 06:00 07:00 07:30 ... 23:59


@st.composite
def local_instants(draw: st.DrawFn) -> datetime:
    d = draw(st.dates(min_value=date(2000, 1, 2), max_value=date(2060, 12, 30)))
    if draw(st.booleans()):
        edge = draw(st.sampled_from(_EDGES))
        delta = draw(st.sampled_from([-1, 0, 0, 0, 1]))
        t = datetime.combine(d, edge, tzinfo=VN) + timedelta(seconds=delta)
    else:
        t = datetime.combine(d, draw(st.times()).replace(microsecond=0), tzinfo=VN)
    if draw(st.booleans()):
        t = t.astimezone(UTC)  # same instant, other zone
    return t


INSTANTS = local_instants()
POSITIVE = st.one_of(
    st.integers(1, MAX_AMOUNT),
    st.integers(1, 60).map(lambda n: n * DAY),
    st.integers(1, 60 * 16).map(lambda n: n * 1800),
    st.integers(1, 120),
)
NON_NEGATIVE = st.one_of(st.just(0), POSITIVE)

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def in_calendar_zone(cal: WorkingCalendar, r: datetime) -> bool:
    return r.tzinfo is not None and r.utcoffset() == r.astimezone(cal.tz).utcoffset()


def inside_some_period(cal: WorkingCalendar, r: datetime) -> bool:
    """start < r <= end for one office period of r's (local) date."""
    lr = r.astimezone(cal.tz)
    return any(s < lr <= e for s, e in cal.periods_of(lr.date()))


def is_period_opening(cal: WorkingCalendar, r: datetime) -> bool:
    lr = r.astimezone(cal.tz)
    return any(s == lr for s, _ in cal.periods_of(lr.date()))


# ----- add_working ---------------------------------------------------------------------------


@SETTINGS
@given(name=CALENDAR_NAMES, t=INSTANTS, a=POSITIVE, b=POSITIVE)
def test_add_is_additive(name, t, a, b):
    cal = CALS[name]
    assert cal.add_working(cal.add_working(t, a), b) == cal.add_working(t, a + b)


@SETTINGS
@given(name=CALENDAR_NAMES, t=INSTANTS, a=POSITIVE)
def test_add_positive_lands_inside_office_hours(name, t, a):
    cal = CALS[name]
    r = cal.add_working(t, a)
    assert r > t
    assert in_calendar_zone(cal, r)
    assert cal.is_working_day(r.astimezone(cal.tz).date())
    assert inside_some_period(cal, r), r.isoformat()


@SETTINGS
@given(name=CALENDAR_NAMES, t=INSTANTS, a=NON_NEGATIVE, b=NON_NEGATIVE)
def test_add_is_monotonic_in_the_amount(name, t, a, b):
    cal = CALS[name]
    lo, hi = sorted((a, b))
    r_lo, r_hi = cal.add_working(t, lo), cal.add_working(t, hi)
    if lo < hi:
        assert r_lo < r_hi
    else:
        assert r_lo == r_hi


@SETTINGS
@given(name=CALENDAR_NAMES, t=INSTANTS, a=NON_NEGATIVE)
def test_working_seconds_between_inverts_add(name, t, a):
    cal = CALS[name]
    r = cal.add_working(t, a)
    assert cal.working_seconds_between(t, r) == a
    assert cal.working_seconds_between(r, t) == -a


@SETTINGS
@given(name=CALENDAR_NAMES, t=INSTANTS, a=POSITIVE)
def test_add_negative_goes_back_exactly(name, t, a):
    cal = CALS[name]
    r = cal.add_working(t, -a)
    assert r < t
    assert in_calendar_zone(cal, r)
    assert cal.working_seconds_between(r, t) == a
    # Going forward again returns to t when t lies in (start, end] of an office period.
    forward = cal.add_working(r, a)
    if inside_some_period(cal, t):
        assert forward == t
    else:  # t is off hours or an opening: forward lands on the end of the previous period
        assert cal.working_seconds_between(forward, t) == 0


@SETTINGS
@given(name=CALENDAR_NAMES, t=INSTANTS, a=POSITIVE)
def test_add_then_subtract_returns_to_a_working_instant(name, t, a):
    cal = CALS[name]
    if not inside_some_period(cal, t):
        t = cal.add_working(t, 1)  # move into working time
    assert cal.add_working(cal.add_working(t, a), -a) == t


@st.composite
def period_ends_near(draw: st.DrawFn, cal: WorkingCalendar, t: datetime) -> datetime:
    """The end of an office period within ~3 months of t, often the last close of a year."""
    lt = t.astimezone(cal.tz)
    d = draw(
        st.one_of(
            st.integers(-90, 90).map(lambda k: lt.date() + timedelta(days=k)),
            st.sampled_from([date(lt.year - 1, 12, 31), date(lt.year, 12, 31)]),
        )
    )
    day = list(cal.working_days_in(d - timedelta(days=20), d))[-1]
    periods = cal.periods_of(day)
    return periods[draw(st.integers(0, len(periods) - 1))][1]


@SETTINGS
@given(name=CALENDAR_NAMES, t=INSTANTS, data=st.data())
def test_add_landing_on_a_period_end_forward_gives_that_end(name, t, data):
    cal = CALS[name]
    end = data.draw(period_ends_near(cal, t))
    n = cal.working_seconds_between(t, end)
    assume(n > 0)
    # The earliest instant with that much working time elapsed is the end itself (11:30,
    # 17:00, 31/12 17:00), never the next opening.
    assert cal.add_working(t, n) == end


@SETTINGS
@given(name=CALENDAR_NAMES, t=INSTANTS, data=st.data())
def test_add_landing_on_a_period_end_backward_gives_that_end(name, t, data):
    cal = CALS[name]
    end = data.draw(period_ends_near(cal, t))
    n = cal.working_seconds_between(t, end)
    assume(n < 0)
    # Same "earliest instant" rule going back (docstring of add_working).
    assert cal.add_working(t, n) == end


# ----- clock_start ---------------------------------------------------------------------------


@SETTINGS
@given(name=CALENDAR_NAMES, t=INSTANTS)
def test_clock_start(name, t):
    cal = CALS[name]
    s = cal.clock_start(t)
    lt = t.astimezone(cal.tz)
    assert s >= t
    assert in_calendar_zone(cal, s)
    assert cal.is_working_instant(s), s.isoformat()
    assert s == t or is_period_opening(cal, s)
    if cal.is_working_day(lt.date()) and lt.time() >= cal.cutoff:
        # After the cutoff: opening of the first working day after the received date.
        assert s.date() > lt.date()
        assert cal.working_days_between(lt.date() + timedelta(days=1), s.date()) == 0
        assert s == cal.periods_of(s.date())[0][0]
    else:
        # Otherwise t itself when working, else the next opening with nothing worked between.
        assert (s == t) == cal.is_working_instant(t)
        assert cal.working_seconds_between(t, s) == 0


# ----- lunar holidays cross-checked against vnlunar -----------------------------------------

YEARS = range(2000, 2061)
HUNG_KINGS_SINCE = 2007  # holidays.VN (Labour Code amendment 2007): no Hùng Kings day before


LIMITS = st.one_of(
    st.integers(0, 60).map(lambda n: f"{n} working_days"),
    st.integers(1, 80).map(lambda n: f"{n} working_hours"),
    st.integers(0, 90).map(lambda n: f"{n} calendar_days"),
)


@SETTINGS
@given(t=INSTANTS, limit=LIMITS, cutoff=st.sampled_from([time(15), time(11), time(16, 30)]))
def test_saturday_morning_never_changes_a_due_for_a_weekday_receipt(t, limit, cutoff):
    """SPEC 4: Saturday morning is reception time, never limit time. For any receipt on a
    weekday, the desk calendar with `saturday_morning` and the same calendar without it give
    the same due, whatever the limit and the cutoff (a Friday receipt after the cutoff still
    counts from the next working day, not from Saturday)."""
    from watchdog.durations import Duration, compute_due

    assume(t.astimezone(VN).weekday() < 5)
    with_desk = WorkingCalendar(name="desk", saturday_morning=True, cutoff=cutoff)
    without = WorkingCalendar(name="plain", saturday_morning=False, cutoff=cutoff)
    d = Duration.parse(limit)
    assert compute_due(with_desk, t, d) == compute_due(without, t, d)


def _solar(day: int, month: int, year: int) -> date:
    r = convert_lunar_to_solar(day, month, year)
    assert r is not None, (day, month, year)
    d, m, y = r
    return date(y, m, d)


@pytest.fixture(scope="module")
def lunar_dates() -> dict[int, tuple[date, date]]:
    """year -> (solar date of lunar 1/1, solar date of lunar 10/3), from vnlunar."""
    return {y: (_solar(1, 1, y), _solar(10, 3, y)) for y in YEARS}


def test_vnlunar_sanity(lunar_dates):
    # Known dates: Tết 2026 = 17/02/2026, Hùng Kings 2026 = 26/04/2026, Tết 2007 = 17/02/2007
    # (a year where Vietnam's lunar new year is a day before China's).
    assert lunar_dates[2026] == (date(2026, 2, 17), date(2026, 4, 26))
    assert lunar_dates[2007][0] == date(2007, 2, 17)
    for y, (tet, hk) in lunar_dates.items():
        assert tet.year == y and date(y, 1, 21) <= tet <= date(y, 2, 20)
        assert hk.year == y and date(y, 3, 20) <= hk <= date(y, 5, 10)


def test_tet_is_off_every_year(lunar_dates):
    bad = []
    for y, (tet, _) in lunar_dates.items():
        # Lunar new year's eve, days 1, 2 and 3: off under every Labour Code since 1994.
        for k in (-1, 0, 1, 2):
            d = tet + timedelta(days=k)
            if DEFAULT.is_working_day(d) or DESK.is_working_day(d):
                bad.append((y, k, d))
    assert bad == []


def test_hung_kings_day_is_off_since_2007(lunar_dates):
    bad = []
    for y, (_, hk) in lunar_dates.items():
        if y >= HUNG_KINGS_SINCE:
            if DEFAULT.is_working_day(hk) or DESK.is_working_day(hk):
                bad.append((y, hk, "working"))
            if hk.weekday() >= 5:  # on a weekend: compensatory day, the following Monday is off
                monday = hk + timedelta(days=7 - hk.weekday())
                if DEFAULT.is_working_day(monday):
                    bad.append((y, monday, "no compensatory day"))
        elif hk.weekday() < 5 and not DEFAULT.is_working_day(hk):
            # Before 2007 lunar 10/3 was an ordinary day (all of 2000-2006 fall on weekdays).
            bad.append((y, hk, "off before 2007"))
    assert bad == []
