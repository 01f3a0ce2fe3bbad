"""Working-time calendar: which instants count as working time, and arithmetic on them.

Pure (no I/O). Each calendar year is precomputed once into arrays of working days and the
cumulative working seconds at the start of each day, so adding or measuring working time is a
binary search plus a short walk over a day's office periods, never a day-by-day loop.

Instants given to and returned by the public methods are timezone-aware datetimes; results are
in the calendar's zone. Working time is counted in whole seconds.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
DEFAULT_OFFICE_HOURS: tuple[tuple[time, time], ...] = (
    (time(7, 0), time(11, 30)),
    (time(13, 30), time(17, 0)),
)
DEFAULT_CUTOFF = time(15, 0)
NOON = time(12, 0)


def country_holidays(country: str, **kwargs) -> holidays.HolidayBase:
    """`holidays.country_holidays`, loading only that country's module.

    The library's own lookup imports all of its ~250 country modules (about 55 ms), which
    `watchdog due` would pay on every call; the one module needed takes a few. Any surprise
    in the library's layout falls back to its own lookup.
    """
    try:
        return _single_country(country)(**kwargs)
    except Exception:
        return holidays.country_holidays(country, **kwargs)


@functools.lru_cache(maxsize=8)
def _single_country(country: str):
    import importlib.util
    import sys
    from pathlib import Path

    from holidays import registry

    for module, names in registry.COUNTRIES.items():
        if country in names[1:]:
            # under its own name, so that pickled holidays (worker processes) load anywhere
            name = f"holidays.countries.{module}"
            if name not in sys.modules:
                path = Path(holidays.__file__).with_name("countries") / f"{module}.py"
                spec = importlib.util.spec_from_file_location(name, path)
                loaded = importlib.util.module_from_spec(spec)
                sys.modules[name] = loaded
                spec.loader.exec_module(loaded)
            return getattr(sys.modules[name], names[0])
    raise LookupError(country)


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


@dataclass(frozen=True)
class _Year:
    """One calendar year, precomputed."""

    ordinals: list[int]  # date ordinals of the working days, ascending
    periods: list[tuple[tuple[int, int], ...]]  # office periods of each working day, in seconds
    start_cum: list[int]  # working seconds of the year before each working day
    end_cum: list[int]  # working seconds of the year up to the close of each working day
    index: dict[int, int]  # date ordinal -> position in the lists above
    midnights: list[datetime]  # local midnight of each working day (wall-clock base)

    @property
    def total(self) -> int:
        return self.end_cum[-1] if self.end_cum else 0


@dataclass(frozen=True, eq=False)
class WorkingCalendar:
    """A named working-time calendar (SPEC 4)."""

    name: str = "default"
    timezone: str = DEFAULT_TIMEZONE
    office_hours: Sequence[tuple[time, time]] = DEFAULT_OFFICE_HOURS
    cutoff: time = DEFAULT_CUTOFF
    country: str = "VN"
    extra_holidays: frozenset[date] = frozenset()
    extra_workdays: frozenset[date] = frozenset()
    saturday_morning: bool = False
    _years: dict[int, _Year] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        periods = tuple(sorted((_seconds(a), _seconds(b)) for a, b in self.office_hours))
        if not periods:
            raise ValueError("office_hours must hold at least one period")
        for (a, b), nxt in zip(periods, (*periods[1:], None), strict=True):
            if b <= a:
                raise ValueError("each office period must end after it starts")
            if nxt is not None and nxt[0] < b:
                raise ValueError("office periods must not overlap")
        object.__setattr__(self, "_periods", periods)
        object.__setattr__(
            self, "_morning", tuple(p for p in periods if p[1] <= _seconds(NOON)) or periods[:1]
        )
        object.__setattr__(self, "_tz", ZoneInfo(self.timezone))
        object.__setattr__(self, "_day_seconds", sum(b - a for a, b in periods))

    # ----- days ---------------------------------------------------------------------------

    @property
    def tz(self) -> ZoneInfo:
        return self._tz  # type: ignore[attr-defined]

    @property
    def day_seconds(self) -> int:
        """Working seconds of a full (weekday) working day: the unit of `N working_days`."""
        return self._day_seconds  # type: ignore[attr-defined]

    @functools.cached_property
    def _public_holidays(self) -> holidays.HolidayBase:
        return country_holidays(self.country)

    def _periods_on(self, d: date) -> tuple[tuple[int, int], ...]:
        """Office periods of a date, from the precomputed year (the fast path)."""
        y = self._year(d.year)
        i = y.index.get(d.toordinal())
        return () if i is None else y.periods[i]

    def _day_periods(self, d: date) -> tuple[tuple[int, int], ...]:
        """Office periods of a date, empty when it is not a working day (from the rules)."""
        if d in self.extra_workdays:
            return self._periods  # type: ignore[attr-defined]
        if d in self.extra_holidays or d in self._public_holidays:
            return ()
        if d.weekday() < 5 or d in self._weekend_workdays(d.year):
            return self._periods  # type: ignore[attr-defined]
        return ()

    def _is_day_off(self, d: date) -> bool:
        """A public or local holiday (not a weekend as such)."""
        if d in self.extra_workdays:
            return False
        return d in self.extra_holidays or d in self._public_holidays

    def is_reception_day(self, d: date) -> bool:
        """Whether the desk receives (and messages are delivered) on this date: every working
        day, plus, with `saturday_morning`, the Saturdays outside a holiday break (the Saturday
        itself, the Friday before or the Monday after is a holiday)."""
        if self.is_working_day(d):
            return True
        return (
            self.saturday_morning
            and d.weekday() == 5
            and not any(self._is_day_off(d + timedelta(days=k)) for k in (-1, 0, 2))
        )

    def desk_periods_on(self, d: date) -> tuple[tuple[int, int], ...]:
        """The desk's open periods of a date (seconds of the day): office hours on a working
        day, the morning periods on a reception Saturday. No limit counts this time."""
        periods = self._periods_on(d)
        if periods or not self.is_reception_day(d):
            return periods
        return self._morning  # type: ignore[attr-defined]

    def is_desk_instant(self, t: datetime) -> bool:
        lt = self.local(t)
        sec = lt.hour * 3600 + lt.minute * 60 + lt.second
        return any(a <= sec < b for a, b in self.desk_periods_on(lt.date()))

    def next_desk_instant(self, t: datetime) -> datetime:
        """t itself when the desk is open, else the next opening of the desk (messages wait
        for it in quiet hours): office hours, and Saturday mornings on a desk that opens."""
        lt = self.local(t)
        d = lt.date()
        sec = lt.hour * 3600 + lt.minute * 60 + lt.second
        for _ in range(400):
            for a, b in self.desk_periods_on(d):
                if sec < b:
                    return lt if sec >= a else self._at(d.toordinal(), a)
            d, sec = d + timedelta(days=1), -1
            lt = self._at(d.toordinal(), 0)
        return self.opening(d)  # a year without an open desk: fall back to working days

    @functools.lru_cache(maxsize=256)  # noqa: B019 - calendars live as long as the process
    def _weekend_workdays(self, year: int) -> frozenset[date]:
        hb = country_holidays(self.country, years=year)
        return frozenset(d for d in getattr(hb, "weekend_workdays", ()) if d.year == year)

    def is_working_day(self, d: date) -> bool:
        return bool(self._periods_on(d))

    def _year(self, year: int) -> _Year:
        y = self._years.get(year)
        if y is None:
            if not 1900 <= year <= 2200:
                raise ValueError(f"year {year} is outside the supported range 1900-2200")
            ordinals: list[int] = []
            periods: list[tuple[tuple[int, int], ...]] = []
            start_cum: list[int] = []
            end_cum: list[int] = []
            cum = 0
            first = date(year, 1, 1).toordinal()
            last = date(year, 12, 31).toordinal()
            for o in range(first, last + 1):
                ps = self._day_periods(date.fromordinal(o))
                if ps:
                    ordinals.append(o)
                    periods.append(ps)
                    start_cum.append(cum)
                    cum += sum(b - a for a, b in ps)
                    end_cum.append(cum)
            y = _Year(
                ordinals,
                periods,
                start_cum,
                end_cum,
                {o: i for i, o in enumerate(ordinals)},
                [self._at(o, 0) for o in ordinals],
            )
            self._years[year] = y
        return y

    def next_working_day(self, d: date, *, include: bool = False) -> date:
        """The first working day after `d` (or `d` itself when `include` and it works)."""
        o = d.toordinal() + (0 if include else 1)
        year = date.fromordinal(o).year
        while True:
            y = self._year(year)
            i = bisect.bisect_left(y.ordinals, o)
            if i < len(y.ordinals):
                return date.fromordinal(y.ordinals[i])
            year += 1
            o = date(year, 1, 1).toordinal()

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in [start, end)."""
        if end < start:
            return -self.working_days_between(end, start)
        count = 0
        for year in range(start.year, end.year + 1):
            y = self._year(year)
            lo = bisect.bisect_left(y.ordinals, start.toordinal())
            hi = bisect.bisect_left(y.ordinals, end.toordinal())
            count += hi - lo
        return count

    # ----- instants ------------------------------------------------------------------------

    def local(self, t: datetime) -> datetime:
        if t.tzinfo is None:
            raise ValueError("instants must be timezone-aware")
        return t.astimezone(self._tz)  # type: ignore[attr-defined]

    def _at(self, ordinal: int, second: int) -> datetime:
        d = date.fromordinal(ordinal)
        return datetime(d.year, d.month, d.day, tzinfo=self.tz) + timedelta(seconds=second)

    def opening(self, d: date) -> datetime:
        """Start of office hours of a working day (or of the next one)."""
        d = self.next_working_day(d, include=True)
        return self._at(d.toordinal(), self._periods_on(d)[0][0])

    def close(self, d: date) -> datetime:
        """End of office hours of a working day (or of the next one)."""
        d = self.next_working_day(d, include=True)
        return self._at(d.toordinal(), self._periods_on(d)[-1][1])

    def standard_close(self, d: date) -> datetime:
        """The usual close of office hours on a date, whether or not it is a working day."""
        return self._at(d.toordinal(), self._periods[-1][1])  # type: ignore[attr-defined]

    def _locate(self, t: datetime) -> tuple[int, int]:
        """(year, working seconds of that year elapsed at t)."""
        if t.tzinfo is None:
            raise ValueError("instants must be timezone-aware")
        lt = t.astimezone(self._tz)  # type: ignore[attr-defined]  (`local`, inlined: hot)
        y = self._years.get(lt.year) or self._year(lt.year)
        o = lt.toordinal()
        i = y.index.get(o)
        if i is None:  # a day off: as much as at the next working day's opening
            i = bisect.bisect_left(y.ordinals, o)
            return lt.year, y.total if i == len(y.ordinals) else y.start_cum[i]
        sec = lt.hour * 3600 + lt.minute * 60 + lt.second
        worked = 0
        for a, b in y.periods[i]:
            if sec <= a:
                break
            worked += min(sec, b) - a
            if sec < b:
                break
        return lt.year, y.start_cum[i] + worked

    def _instant(self, year: int, w: int) -> datetime:
        """Earliest instant of `year` at which `w` working seconds of the year have elapsed."""
        return self._instant_in(self._year(year), year, w)

    def _instant_in(self, y: _Year, year: int, w: int) -> datetime:
        if not y.ordinals:
            raise ValueError(f"{self.name}: year {year} has no working day")
        i = bisect.bisect_left(y.end_cum, w)
        offset = w - y.start_cum[i]
        for a, b in y.periods[i]:
            if offset <= b - a:
                return y.midnights[i] + timedelta(seconds=a + offset)
            offset -= b - a
        raise AssertionError("unreachable: offset beyond the day's periods")

    def add_working(self, t: datetime, seconds: int) -> datetime:
        """The earliest instant at which `seconds` of working time have passed since `t`.

        Negative `seconds` go back in working time. Landing exactly on the end of a period
        gives that end (11:30, 17:00), not the next opening.
        """
        if seconds == 0:
            return self.next_working_instant(t)
        year, w = self._locate(t)
        target = w + int(seconds)
        y = self._years[year]  # `_locate` built it
        if 0 < target <= y.total:  # within the year: nearly always
            return self._instant_in(y, year, target)
        while target > self._year(year).total:
            target -= self._year(year).total
            year += 1
        while target <= 0:  # going back: the earliest instant is the previous year's close
            year -= 1
            target += self._year(year).total
        return self._instant(year, target)

    def working_seconds_between(self, a: datetime, b: datetime) -> int:
        """Working seconds from a to b; negative when b is before a."""
        ya, wa = self._locate(a)
        yb, wb = self._locate(b)
        if ya == yb:
            return wb - wa
        sign = 1
        if yb < ya:
            ya, wa, yb, wb, sign = yb, wb, ya, wa, -1
        total = self._year(ya).total - wa + wb
        for year in range(ya + 1, yb):
            total += self._year(year).total
        return sign * total

    def is_working_instant(self, t: datetime) -> bool:
        lt = self.local(t)
        sec = lt.hour * 3600 + lt.minute * 60 + lt.second
        return any(a <= sec < b for a, b in self._periods_on(lt.date()))

    def next_working_instant(self, t: datetime) -> datetime:
        """t itself when it is working time, else the next opening of an office period."""
        lt = self.local(t)
        sec = lt.hour * 3600 + lt.minute * 60 + lt.second
        for a, b in self._periods_on(lt.date()):
            if sec < b:
                return lt if sec >= a else self._at(lt.toordinal(), a)
        return self.opening(self.next_working_day(lt.date()))

    def clock_start(self, received: datetime) -> datetime:
        """Start of the clock S (SPEC 4): cutoff first, then the next working instant.

        The cutoff applies on every reception day; a case received on a Saturday (reception
        time, never limit time) or any other day off counts from the next working day."""
        lt = self.local(received)
        d = lt.date()
        periods = self._periods_on(d)
        # a working day before the cutoff: the next working instant of that day, if any
        # (after the cutoff of a reception day, or on a day off: the next working day)
        if periods and lt.time() < self.cutoff:
            sec = lt.hour * 3600 + lt.minute * 60 + lt.second
            for a, b in periods:
                if sec < b:
                    return lt if sec >= a else self._at(d.toordinal(), a)
        return self.opening(self.next_working_day(d))

    def day_close_of(self, t: datetime) -> datetime:
        """Close of the working day that contains t (t must be a working instant or opening)."""
        return self.close(self.local(t).date())

    def periods_of(self, d: date) -> list[tuple[datetime, datetime]]:
        """Office periods of a date as aware datetimes; empty on days off."""
        o = d.toordinal()
        return [(self._at(o, a), self._at(o, b)) for a, b in self._periods_on(d)]

    def working_days_in(self, start: date, end: date) -> Iterable[date]:
        """Working days in [start, end], ascending."""
        for year in range(start.year, end.year + 1):
            y = self._year(year)
            lo = bisect.bisect_left(y.ordinals, start.toordinal())
            hi = bisect.bisect_right(y.ordinals, end.toordinal())
            for o in y.ordinals[lo:hi]:
                yield date.fromordinal(o)
