"""Deterministic demo cases (hồ sơ) for a configured province.

`make run` and `watchdog run --demo` must show a living province with no one-stop database
attached: cases on track, due tomorrow, overdue, waiting for documents, finished early and late.
The generator reads only the Settings and the `now` it is given (never the wall clock) and draws
from one seeded `random.Random`, so the same inputs always give the same rows — demos, tests and
screenshots stay reproducible.

Rows use the canonical import columns (SPEC 6), so they can be fed to the importer directly or
written out with `write_csv` and loaded with `watchdog import`.
"""

from __future__ import annotations

import csv
import random
import zlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from watchdog.calendar import WorkingCalendar
from watchdog.config import Settings
from watchdog.config.models import OfficialConfig, ProcedureConfig
from watchdog.durations import Duration, Unit, compute_due
from watchdog.sources.fields import FIELDS
from watchdog.sources.ingest import IngestResult

__all__ = ["DEFAULT_UNIT_HINTS", "FIELDS", "generate_cases", "load_demo", "write_csv"]

# Which unit handles which procedure in config.example.yaml. Procedures not listed here (or
# whose units are not configured) go to one leaf unit picked from the procedure code, so any
# configuration gets demo cases.
DEFAULT_UNIT_HINTS: Mapping[str, tuple[str, ...]] = {
    # UBND phường: Văn phòng HĐND và UBND (tư pháp - hộ tịch, chứng thực)
    "1.001193": ("000.01.61.H99",),
    "1.000894": ("000.01.61.H99",),
    "1.000656": ("000.01.61.H99",),
    "1.004873": ("000.01.61.H99",),
    "2.000635": ("000.01.61.H99",),
    "2.000815": ("000.01.61.H99",),
    "2.000884": ("000.01.61.H99",),
    # UBND phường: Phòng Kinh tế, Hạ tầng và Đô thị
    "1.001612": ("000.02.61.H99",),
    "1.013225": ("000.02.61.H99",),
    "1.012753": ("000.02.61.H99",),
    # Sở Tư pháp, Sở Nông nghiệp và Môi trường
    "2.000488": ("000.01.18.H99",),
    "1.012790": ("000.01.23.H99",),
    "1.010727": ("000.02.23.H99",),
}

RECEIVED, PROCESSING, SUPPLEMENT, WITHDRAWN, STOPPED, FINISHED, RETURNED = 2, 4, 5, 7, 8, 9, 10

# Target state of each generated case at `now`, with its share of the mix. Finished cases are
# 80% on time, 20% late. The first case of each state is forced so every state occurs.
_STATES: tuple[tuple[str, int], ...] = (
    ("on_track", 27),
    ("due_soon", 8),
    ("overdue", 10),
    ("waiting", 7),
    ("finished_on_time", 36),
    ("finished_late", 9),
    ("closed", 3),
)
_ATTEMPTS = 400

_FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi",
           "Đỗ", "Hồ", "Ngô", "Dương", "Lý", "Đinh", "Trịnh", "Mai", "Cao")  # fmt: skip
_FAMILY_WEIGHTS = (38, 11, 9, 7, 5, 4, 4, 4, 3, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1)
_MIDDLE = {
    "m": ("Văn", "Đức", "Minh", "Quốc", "Hữu", "Thành", "Công", "Xuân", "Quang", "Tiến"),
    "f": ("Thị", "Thị", "Thu", "Ngọc", "Thanh", "Minh", "Phương", "Bích", "Hồng", "Kim"),
}
_GIVEN = {
    "m": ("An", "Bình", "Cường", "Dũng", "Hải", "Hùng", "Khánh", "Long", "Nam", "Phong",
          "Quân", "Sơn", "Tuấn", "Việt", "Hiếu", "Thắng", "Trung", "Lộc", "Đạt", "Kiên"),
    "f": ("Anh", "Chi", "Dung", "Hà", "Hạnh", "Hoa", "Lan", "Linh", "Mai", "Nga", "Ngân",
          "Phương", "Thảo", "Trang", "Vy", "Yến", "Hương", "Giang", "Nhung", "Huyền"),
}  # fmt: skip
_MOBILE = ("032", "033", "034", "035", "036", "037", "038", "039", "070", "076", "077", "078",
           "079", "081", "082", "083", "084", "085", "086", "088", "089", "090", "091", "093",
           "094", "096", "097", "098")  # fmt: skip
_CHANNELS = (("direct", 50), ("online", 45), ("postal", 5))


def generate_cases(
    settings: Settings,
    now: datetime,
    count: int = 300,
    seed: int = 7,
    *,
    days: int = 40,
    units: Mapping[str, Sequence[str]] | None = None,
) -> list[dict[str, Any]]:
    """`count` demo cases received during the `days` before `now`, in received order.

    Every row has exactly the keys of FIELDS (None where a value does not apply); instants are
    aware, in the default calendar's zone. `units` maps procedure codes to the unit codes that
    handle them (default: DEFAULT_UNIT_HINTS). Same settings, now, count and seed → same rows.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    rng = random.Random(seed)
    tz = settings.default_calendar.tz
    now = now.astimezone(tz)
    plan = _plan(settings, DEFAULT_UNIT_HINTS if units is None else units)
    if not plan or count <= 0:
        return []
    names = [name for name, _ in _STATES]
    weights = [w for _, w in _STATES]
    targets = names[:count] + rng.choices(names, weights, k=max(0, count - len(names)))
    gen = _Generator(settings, rng, plan, now, days)
    drafts = [gen.case(target) for target in targets]
    # Running numbers per agency and received day, in received order (stable for ties).
    drafts.sort(key=lambda d: d["received_at"])
    counters: dict[str, int] = {}
    for d in drafts:
        prefix = f"{_agency(settings, d['unit_code'])}-{d['received_at']:%y%m%d}"
        counters[prefix] = counters.get(prefix, 0) + 1
        d["case_code"] = f"{prefix}-{counters[prefix]:04d}"
    return [{key: d.get(key) for key in FIELDS} for d in drafts]


def write_csv(rows: Iterable[Mapping[str, Any]], path: str | Path) -> Path:
    """Write rows as a UTF-8 CSV with the canonical header, ready for `watchdog import`.

    Instants are ISO 8601 with their offset, so the file means the same in any time zone.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(FIELDS)
        for row in rows:
            writer.writerow([_cell(row.get(key)) for key in FIELDS])
    return path


# ----- internals ----------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


def _agency(settings: Settings, unit_code: str) -> str:
    """The unit's ancestor just below the root (Sở, UBND xã, Trung tâm): the case-code prefix."""
    chain = [unit_code]
    while (parent := settings.units[chain[-1]].parent) is not None and parent not in chain:
        chain.append(parent)
    return chain[-2] if len(chain) >= 2 else chain[-1]


def _plan(
    settings: Settings, hints: Mapping[str, Sequence[str]]
) -> list[tuple[ProcedureConfig, list[str], int]]:
    """(procedure, candidate units, weight) for every procedure; short procedures are frequent."""
    staffed = {o.unit for o in settings.config.officials}
    leaves = [code for code in settings.units if not settings.children.get(code)]
    fallback = [code for code in leaves if code in staffed] or leaves
    plan = []
    for proc in settings.config.procedures:
        candidates = [u for u in hints.get(proc.code, ()) if u in settings.units]
        if not candidates and fallback:
            candidates = [fallback[zlib.crc32(proc.code.encode()) % len(fallback)]]
        if candidates:
            plan.append((proc, candidates, _frequency(proc.limit)))
    return plan


def _frequency(limit: Duration) -> int:
    if limit.unit in (Unit.WORKING_HOURS, Unit.WORKING_MINUTES) or limit.amount == 0:
        return 3
    if limit.unit is Unit.WORKING_DAYS and limit.amount <= 5:
        return 2
    return 1


def _span_days(limit: Duration) -> int:
    """Calendar days that comfortably contain the limit (weekends, Tết), to aim received dates."""
    if limit.unit is Unit.CALENDAR_DAYS:
        return int(limit.amount) + 3
    if limit.unit is Unit.WORKING_DAYS:
        return int(limit.amount * 7 / 5) + 4
    return 4


def _step_seconds(limit: Duration, cal: WorkingCalendar) -> int:
    if limit.unit is Unit.CALENDAR_DAYS:
        return round(limit.amount * cal.day_seconds * 5 / 7)
    return limit.working_seconds(cal)


class _Generator:
    """Builds one case at a time for a target state, by drawing until the state holds at now."""

    def __init__(
        self,
        settings: Settings,
        rng: random.Random,
        plan: list[tuple[ProcedureConfig, list[str], int]],
        now: datetime,
        days: int,
    ) -> None:
        self.settings, self.rng, self.plan, self.now, self.days = settings, rng, plan, now, days
        self.tz = settings.default_calendar.tz
        self.weights = [w for _, _, w in plan]
        self.by_unit: dict[str, list[OfficialConfig]] = {}
        for o in settings.config.officials:
            self.by_unit.setdefault(o.unit, []).append(o)

    # -- drawing -------------------------------------------------------------------------

    def case(self, target: str) -> dict[str, Any]:
        for _ in range(_ATTEMPTS):
            draft = self._attempt(target)
            if draft is not None:
                return draft
        # No draw satisfied the target (odd calendars, tiny windows): keep an open case.
        for _ in range(_ATTEMPTS):
            draft = self._attempt("any_open")
            if draft is not None:
                return draft
        raise ValueError(f"no working time in the {self.days} days before {self.now}")

    def _attempt(self, target: str) -> dict[str, Any] | None:
        rng, now = self.rng, self.now
        proc, candidates, _ = rng.choices(self.plan, self.weights)[0]
        unit = rng.choice(candidates)
        cal = self.settings.calendar_for(unit)
        window = self.days
        if target in ("on_track", "due_soon"):
            window = min(self.days, _span_days(proc.limit))
        received = self._received(cal, window)
        if received is None:
            return None
        due = compute_due(cal, received, proc.limit)
        start = cal.clock_start(received)
        d: dict[str, Any] = {
            "procedure_code": proc.code,
            "unit_code": unit,
            "received_at": received,
            "due_at": due.astimezone(self.tz) if rng.random() < 0.10 else None,
            "assignee": self._assignee(unit),
            "applicant_name": self._name(),
            "applicant_phone": rng.choice(_MOBILE) + f"{rng.randrange(10**7):07d}",
            "submission_channel": rng.choices([c for c, _ in _CHANNELS], [w for _, w in _CHANNELS])[
                0
            ],
        }
        if target == "on_track" and not (
            due > now and cal.working_seconds_between(now, due) > cal.day_seconds
        ):
            return None
        if target == "due_soon" and not (
            due > now and cal.working_seconds_between(now, due) <= cal.day_seconds
        ):
            return None
        if target == "overdue" and due > now:
            return None
        if target in ("on_track", "due_soon", "overdue", "waiting", "any_open"):
            fresh = cal.working_seconds_between(received, now) < 2 * 3600
            d["status"] = SUPPLEMENT if target == "waiting" else RECEIVED if fresh else PROCESSING
            self._steps(d, proc, cal, start)
            base = max(received, d["step_started_at"] or received)
            d["updated_at"] = self._between(cal, base, now)
            return d
        if target == "finished_on_time":
            # Most files are settled in the later part of their time, few in the first quarter.
            least = max(60, cal.working_seconds_between(start, due) // 4)
            most = cal.working_seconds_between(start, min(due, now))
            if most < least:
                return None
            finished = cal.add_working(start, rng.randint(least, most))
        elif target == "finished_late":
            late = cal.working_seconds_between(due, now) if due < now else 0
            if late < 60:
                return None
            finished = cal.add_working(due, rng.randint(60, min(late, 5 * cal.day_seconds)))
        else:  # closed: withdrawn by the applicant or stopped
            d["status"] = rng.choice((WITHDRAWN, STOPPED))
            d["updated_at"] = self._between(cal, received, now)
            return d
        finished = finished.astimezone(self.tz)
        d["finished_at"] = finished
        if rng.random() < 0.7:
            d["status"] = RETURNED
            returned = cal.add_working(finished, rng.randint(0, 2 * 3600)).astimezone(self.tz)
            d["returned_at"] = returned if returned <= now else finished
        else:
            d["status"] = FINISHED
        d["updated_at"] = d.get("returned_at") or finished
        return d

    def _received(self, cal: WorkingCalendar, window: int) -> datetime | None:
        """A random working instant within the last `window` days, before now."""
        rng = self.rng
        for _ in range(20):
            day = self.now.date() - timedelta(days=rng.randint(0, window))
            periods = cal.periods_of(day)
            if not periods:
                continue
            a, b = rng.choice(periods)
            t = a + timedelta(minutes=rng.randrange(int((b - a).total_seconds()) // 60))
            if t < self.now:
                return t.astimezone(self.tz)
        return None

    def _between(self, cal: WorkingCalendar, a: datetime, b: datetime) -> datetime:
        """A random instant between a and b in working time (a when there is none)."""
        span = cal.working_seconds_between(a, b)
        if span <= 0:
            return a.astimezone(self.tz)
        t = cal.add_working(a, self.rng.randint(0, span))
        return min(t, b).astimezone(self.tz)

    # -- people and steps ----------------------------------------------------------------

    def _assignee(self, unit: str) -> str | None:
        staff = self.by_unit.get(unit, [])
        clerks = [o for o in staff if o.role == "chuyen_vien"] or staff
        return self.rng.choice(clerks).id if clerks else None

    def _handler(
        self, unit: str, role: str | None, fallback: str | None, at_desk: bool
    ) -> str | None:
        """Who holds the step: the one-stop desk for receiving and returning, else the unit."""
        agency = _agency(self.settings, unit)
        pools = [self.by_unit.get(unit, []), self._staff(self.settings.subtree(agency))]
        if at_desk:
            pools.insert(0, self._staff(self._desk(agency)))
        for pool in pools:
            fit = [o for o in pool if role is None or o.role == role]
            if fit:
                return self.rng.choice(fit).id
        return fallback

    def _desk(self, agency: str) -> set[str]:
        """Units of the one-stop desk serving an agency: its own centre, else the province's."""
        s = self.settings
        centres = [c for c in s.units if s.units[c].kind == "trung_tam"]
        own = s.subtree(agency)
        desks = [c for c in centres if c in own] or [c for c in centres if _agency(s, c) == c]
        return {m for d in desks for m in s.subtree(d)}

    def _staff(self, members: set[str]) -> list[OfficialConfig]:
        return [o for o in self.settings.config.officials if o.unit in members]

    def _steps(
        self, d: dict[str, Any], proc: ProcedureConfig, cal: WorkingCalendar, start: datetime
    ) -> None:
        """Current step of an open case: where its elapsed time falls in the step allotments."""
        d["current_step"] = d["step_started_at"] = d["step_handler"] = None
        if not proc.steps:
            return
        sizes = [_step_seconds(s.allot, cal) for s in proc.steps]
        bounds = [sum(sizes[:i]) for i in range(len(sizes))]
        elapsed = max(0, cal.working_seconds_between(start, self.now))
        if d["status"] == RECEIVED or elapsed <= 0:
            i = 0
        elif elapsed >= sum(sizes) and len(sizes) > 1:
            i = self.rng.randrange(1, len(sizes) - 1) if len(sizes) > 2 else 1
        else:
            i = max(k for k, b in enumerate(bounds) if b <= elapsed)
        step = proc.steps[i]
        offset = round(bounds[i] * self.rng.uniform(0.7, 1.0))
        began = cal.add_working(start, offset) if offset else d["received_at"]
        d["current_step"] = step.code
        d["step_started_at"] = min(max(began, d["received_at"]), self.now).astimezone(self.tz)
        at_desk = i in (0, len(proc.steps) - 1)
        d["step_handler"] = self._handler(d["unit_code"], step.role, d["assignee"], at_desk)

    def _name(self) -> str:
        rng = self.rng
        sex = rng.choice("mf")
        family = rng.choices(_FAMILY, _FAMILY_WEIGHTS)[0]
        return f"{family} {rng.choice(_MIDDLE[sex])} {rng.choice(_GIVEN[sex])}"


def with_data_problems(settings: Settings, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Two flaws real exports have, so `watchdog findings` has something to show: an open
    case whose appointment (ngày hẹn trả) is three working days later than the law allows,
    and an open case nobody has been assigned to."""
    open_rows = [r for r in rows if r["status"] in (2, 4) and r["due_at"] is None]
    if len(open_rows) >= 2:
        late, unassigned = open_rows[len(open_rows) // 3], open_rows[2 * len(open_rows) // 3]
        calendar = settings.calendar_for(late["unit_code"])
        procedure = settings.procedures[late["procedure_code"]]
        due = compute_due(calendar, late["received_at"], procedure.limit)
        late["due_at"] = calendar.add_working(due, 3 * calendar.day_seconds)
        unassigned["assignee"] = None
    return rows


def load_demo(store: Any, settings: Settings, now: datetime, count: int = 300) -> IngestResult:
    """Load the demo cases once into an empty database, through the same path as an import.

    A database that already holds demo cases is left alone, so the demo province ages with the
    clock like a real one; delete the database file to start afresh.
    """

    from watchdog.sources.fields import RowProblems, normalize_case
    from watchdog.sources.ingest import upsert_cases
    from watchdog.store.cases import has_cases_from

    if has_cases_from(store, "demo"):
        return IngestResult()
    records = []
    for row in with_data_problems(settings, generate_cases(settings, now, count)):
        problems = RowProblems()
        records.append(normalize_case(row, settings, problems))
        if problems:
            raise ValueError(f"demo generator made a bad case {row['case_code']}: {problems}")
    return upsert_cases(store, records, now, source="demo")
