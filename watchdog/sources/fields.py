"""The fields of a case as sources send them, and their conversion into a canonical record.

One definition serves file import, HTTP push and SQL polling: the canonical names, the
Vietnamese and national-portal aliases, and the rules that turn raw values into typed ones.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from watchdog.calendar import WorkingCalendar
from watchdog.config import Settings
from watchdog.domain import Status, fold, parse_channel, parse_status
from watchdog.durations import Duration, Unit, compute_due
from watchdog.store.cases import TEXT_LIMITS
from watchdog.timefmt import MAX_YEAR, MIN_YEAR, parse_instant, parse_when

REQUIRED = ("case_code", "procedure_code", "unit_code", "received_at")
INSTANTS = ("received_at", "due_at", "finished_at", "returned_at", "step_started_at", "updated_at")
TEXTS = (
    "assignee",
    "applicant_name",
    "applicant_phone",
    "current_step",
    "step_handler",
)

# Canonical name -> the other names sources use (Vietnamese headers, national portal fields).
ALIASES: dict[str, tuple[str, ...]] = {
    "case_code": ("Mã hồ sơ", "Số hồ sơ", "MaHoSo", "SoHoSo"),
    "procedure_code": ("Mã TTHC", "Mã thủ tục", "Mã thủ tục hành chính", "MaTTHC", "MaThuTuc"),
    "unit_code": ("Đơn vị", "Mã đơn vị", "Đơn vị xử lý", "DonViXuLy", "MaDonVi", "PhongBanXuLy"),
    "received_at": ("Ngày tiếp nhận", "NgayTiepNhan"),
    "due_at": ("Ngày hẹn trả", "Ngày hẹn trả kết quả", "NgayHenTra"),
    "status": ("Trạng thái", "Trạng thái hồ sơ", "TrangThaiHoSo", "TrangThai"),
    "finished_at": ("Ngày kết thúc xử lý", "Ngày hoàn thành", "NgayKetThucXuLy"),
    "returned_at": ("Ngày trả", "Ngày trả kết quả", "NgayTra", "NgayTraKetQua"),
    "assignee": ("Cán bộ thụ lý", "Cán bộ xử lý", "Người xử lý", "NguoiXuLy", "CanBoXuLy"),
    "applicant_name": ("Chủ hồ sơ", "Người nộp", "Tên người nộp", "ChuHoSo", "TenNguoiNop"),
    "applicant_phone": ("Số điện thoại", "Điện thoại", "SoDienThoai"),
    "submission_channel": (
        "channel",
        "Kênh",
        "Kênh thực hiện",
        "Kênh nộp",
        "Hình thức nộp",
        "KenhThucHien",
    ),
    "current_step": ("Bước hiện tại", "Bước xử lý", "BuocHienTai", "MaBuoc"),
    "step_started_at": ("Ngày bắt đầu bước", "Ngày bắt đầu", "NgayBatDau"),
    "step_handler": ("Người xử lý bước", "Cán bộ xử lý bước", "NguoiXuLyBuoc"),
    "updated_at": ("Ngày cập nhật", "Thời điểm xử lý", "NgayCapNhat", "ThoiDiemXuLy"),
}
FIELDS = tuple(ALIASES)
# Portal columns we know but do not keep: recognised so they do not raise "unknown column".
KNOWN_UNUSED = (
    "TenTTHC",
    "Tên TTHC",
    "Tên thủ tục",
    "MaLinhVuc",
    "Lĩnh vực",
    "Email",
    "NgayNopHoSo",
    "Ngày nộp",
    "ChucDanh",
    "NgayKetThucTheoQuyDinh",
    "STT",
)

_BY_FOLDED: dict[str, str] = {}
for _name, _aliases in ALIASES.items():
    for _alias in (_name, *_aliases):
        _BY_FOLDED[fold(_alias)] = _name
_UNUSED_FOLDED = {fold(a) for a in KNOWN_UNUSED}


def canonical_field(header: object) -> str | None:
    """The canonical field a header names, None when it names none we keep."""
    return _BY_FOLDED.get(fold(str(header or "")))


def is_known_unused(header: object) -> bool:
    return fold(str(header or "")) in _UNUSED_FOLDED


@dataclass
class RowProblems:
    """Problems of one incoming record, by field: the record is rejected when any exist."""

    problems: list[tuple[str, str]] = field(default_factory=list)

    def add(self, name: str, reason: str) -> None:
        self.problems.append((name, reason))

    def __bool__(self) -> bool:
        return bool(self.problems)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def normalize_case(raw: Mapping[str, Any], settings: Settings, problems: RowProblems) -> dict:
    """Turn one record with canonical keys into typed values; problems are collected, not raised.

    A date-only `due_at` means the close of office hours on that day (SPEC 6); a date-only
    `finished_at` or `returned_at` is judged by its date (SPEC 4), so it is kept as the start
    of that day: finished on the due's date is then on time by plain comparison, and a later
    date is late. A date-only `received_at` means the start of the day (the clock then starts
    at opening).

    Values no database would store are problems of their field, found here so that one bad
    row never costs a batch: a NUL character, a text longer than its column (TEXT_LIMITS) or
    any value longer than MAX_FIELD_CHARS. A row whose clock start or computed due falls
    outside the calendar's years is rejected too, so the engine never meets a case it cannot
    compute.
    """
    if unstorable := _unstorable(raw, problems):
        raw = {k: v for k, v in raw.items() if k not in unstorable}
    out: dict[str, Any] = {}
    for name in REQUIRED:
        if name not in unstorable and _blank(raw.get(name)):
            problems.add(name, "required value is missing")
    for name in ("case_code", "procedure_code", "unit_code"):
        out[name] = None if _blank(raw.get(name)) else _text(raw[name])
    calendar = settings.calendar_for(out["unit_code"])
    for name in INSTANTS:
        value = raw.get(name)
        out[name] = None
        if _blank(value):
            continue
        try:
            when = parse_when(value, calendar.tz)
        except ValueError as e:
            problems.add(name, str(e))
            continue
        if isinstance(when, date) and not isinstance(when, datetime):
            when = (
                calendar.standard_close(when)
                if name == "due_at"
                else parse_instant(when, calendar.tz)
            )
        elif when.year in (MIN_YEAR, MAX_YEAR) and not (
            MIN_YEAR <= calendar.local(when).year <= MAX_YEAR
        ):  # e.g. 31/12/2200 23:00 -05:00 is already 2201 on the calendar's clock
            problems.add(name, f"falls outside the calendar's supported years {_YEARS}: {value!r}")
            continue
        out[name] = when
    for name in TEXTS:
        value = raw.get(name)
        out[name] = None if _blank(value) else _text(value)
    out["submission_channel"] = None
    if not _blank(raw.get("submission_channel")):
        try:
            out["submission_channel"] = parse_channel(raw["submission_channel"])
        except ValueError as e:
            problems.add("submission_channel", str(e))
    for name, limit in _MAX_LENGTH.items():
        value = out.get(name)
        if value is not None and len(value) > limit:
            problems.add(name, f"is {len(value):,} characters long, at most {limit:,} are kept")
    status = None
    if not _blank(raw.get("status")):
        try:
            status = parse_status(raw["status"])
        except ValueError as e:
            problems.add("status", str(e))
            return out
    out["status"] = int(_settle_status(status, out, problems))
    if out["received_at"] is not None:
        _check_order(out, problems)
        _check_computable(out, settings, calendar, problems)
    return out


# Longest value accepted in any field, whatever its column (applicant_name is unbounded text in
# the database): a bigger cell is a bad row, not megabytes in every later query.
MAX_FIELD_CHARS = 4000
# Text columns are bounded in the database; a longer value is a bad row, not a refused batch.
_MAX_LENGTH = {
    name: min(TEXT_LIMITS.get(name, MAX_FIELD_CHARS), MAX_FIELD_CHARS)
    for name in ("case_code", "procedure_code", "unit_code", *TEXTS)
}
_YEARS = f"{MIN_YEAR}-{MAX_YEAR}"


def _unstorable(raw: Mapping[str, Any], problems: RowProblems) -> set[str]:
    """Fields whose raw value no database would take, each reported once; empty when none.

    PostgreSQL refuses a NUL character in text (SQLite would store it); the length is checked
    on the raw value, before any parsing, so a huge cell is named, never echoed.
    """
    bad: set[str] = set()
    try:  # a CSV row: all text, usually short, so one look at all of it clears it
        joined = "".join(raw.values())
        if len(joined) <= MAX_FIELD_CHARS and "\x00" not in joined:
            return bad
    except TypeError:  # a spreadsheet row holds numbers, dates and None too
        pass
    for name, value in raw.items():
        if not isinstance(value, str):
            continue
        if "\x00" in value:
            problems.add(name, "contains a NUL character (\\x00), which a database cannot store")
            bad.add(name)
        elif len(value) > MAX_FIELD_CHARS:
            problems.add(
                name, f"is {len(value):,} characters long, at most {MAX_FIELD_CHARS:,} are accepted"
            )
            bad.add(name)
    return bad


def _check_computable(
    out: dict, settings: Settings, calendar: WorkingCalendar, problems: RowProblems
) -> None:
    """The engine can compute this case: its clock start, the due under its procedure's limit
    and the due of its current step all lie within the calendar's years."""
    received = out["received_at"]
    procedure = settings.procedures.get(out["procedure_code"])
    limit = procedure.limit if procedure is not None else None
    if not _whole_year_computable(calendar, limit, received.year):
        try:
            start = calendar.clock_start(received)
            if limit is not None:
                compute_due(calendar, received, limit, start)
        except (ValueError, OverflowError) as e:
            what = (
                f"the due under procedure {procedure.code} ({limit})"
                if procedure is not None
                else "the start of the clock"
            )
            problems.add("received_at", f"{what} falls outside the calendar's years {_YEARS}: {e}")
            return
    step, started = out.get("current_step"), out.get("step_started_at")
    if procedure is None or not step or started is None or not procedure.steps:
        return
    allot = next((s.allot for s in procedure.steps if s.code == step), None)
    if allot is None or allot.unit is Unit.CALENDAR_DAYS:
        return
    if _whole_year_computable(calendar, allot, started.year):
        return
    try:
        calendar.add_working(started, allot.working_seconds(calendar))
    except (ValueError, OverflowError) as e:
        problems.add(
            "step_started_at",
            f"the due of step {step} ({allot}) falls outside the calendar's years {_YEARS}: {e}",
        )


# Per calendar, (duration, year) -> whether a case received at the very last second of `year`
# (local time) still has a computable due under `duration` (None: its clock start only).
_LAST_SECOND_COMPUTABLE: weakref.WeakKeyDictionary[
    WorkingCalendar, dict[tuple[Duration | None, int], bool]
] = weakref.WeakKeyDictionary()


def _whole_year_computable(calendar: WorkingCalendar, duration: Duration | None, year: int) -> bool:
    """True when every instant of `year` (in any zone) has a computable due under `duration`.

    A due only moves later with the instant it starts from (and a step's due, which has no
    cutoff, is never later than compute_due's), so one probe at the last second of the next
    year, cached, clears a whole year: the exact computation (a few microseconds) is left to
    rows near the calendar's last years.
    """
    if year + 1 > MAX_YEAR:
        return False
    known = _LAST_SECOND_COMPUTABLE.setdefault(calendar, {})
    key = (duration, year + 1)
    ok = known.get(key)
    if ok is None:
        last = datetime(year + 1, 12, 31, 23, 59, 59, tzinfo=calendar.tz)
        try:
            start = calendar.clock_start(last)
            if duration is not None:
                compute_due(calendar, last, duration, start)
            ok = True
        except (ValueError, OverflowError):
            ok = False
        known[key] = ok
    return ok


def _settle_status(status: Status | None, out: dict, problems: RowProblems) -> Status:
    """Fill a missing status from the dates, and require the dates a status implies."""
    if status is None:
        if out["returned_at"]:
            status = Status.RETURNED
        elif out["finished_at"]:
            status = Status.FINISHED
        else:
            status = Status.IN_PROGRESS if out["assignee"] else Status.RECEIVED
    if status is Status.RETURNED and out["finished_at"] is None:
        out["finished_at"] = out["returned_at"]
    if status.is_finished and out["finished_at"] is None:
        needs = "returned_at" if status is Status.RETURNED else "finished_at"
        problems.add(needs, f"required when the status is {int(status)} ({status.label})")
    return status


def _check_order(out: dict, problems: RowProblems) -> None:
    received = out["received_at"]
    if out["finished_at"] is not None and out["finished_at"] is out["returned_at"]:
        checked: tuple[str, ...] = ("returned_at", "step_started_at")  # one date, said once
    else:
        checked = ("finished_at", "returned_at", "step_started_at")
    day_received = received.date()
    for name in checked:
        t = out.get(name)
        if t is None or t >= received:
            continue
        if name != "step_started_at" and t.time() == time(0) and t.date() >= day_received:
            continue  # a date-only finish on the day of receipt (kept as its midnight)
        problems.add(name, f"is before received_at ({received.isoformat()})")
    if out["due_at"] is not None and out["due_at"] < received:
        problems.add("due_at", f"is before received_at ({received.isoformat()})")
