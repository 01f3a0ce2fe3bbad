"""The fields of a case as sources send them, and their conversion into a canonical record.

One definition serves file import, HTTP push and SQL polling: the canonical names, the
Vietnamese and national-portal aliases, and the rules that turn raw values into typed ones.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from watchdog.calendar import WorkingCalendar
from watchdog.config import Settings
from watchdog.domain import Status, fold, parse_channel, parse_status, procedure_code
from watchdog.durations import Duration, Unit, compute_due
from watchdog.i18n import _, integer
from watchdog.store.cases import TEXT_LIMITS
from watchdog.timefmt import FORMATS_HELP, MAX_YEAR, MIN_YEAR, parse_when, show

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
    """Problems of one incoming record, by field: the record is rejected when any exist.

    Warnings are kept apart: the record is still taken (e.g. an assignee name shared by two
    officials, kept as given).
    """

    problems: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)

    def add(self, name: str, reason: str) -> None:
        self.problems.append((name, reason))

    def warn(self, name: str, reason: str) -> None:
        self.warnings.append((name, reason))

    def __bool__(self) -> bool:
        return bool(self.problems)


def _blank(value: Any) -> bool:
    return value is None or (value.__class__ is str and not value.strip())


def _clean(value: Any) -> str | None:
    """A cell as text, stripped; None when blank. A spreadsheet's whole number loses its ".0"."""
    if value is None:
        return None
    if value.__class__ is not str:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        value = str(value)
    return value.strip() or None


# ----- labels of local one-stop software --------------------------------------------------------

# Status labels the common one-stop software (and its staff) write, beyond the portal's own names
# (domain.STATUS_LABELS); compared folded. `import.status_map` comes first and may override them.
STATUS_LABELS_BUILT_IN: dict[str, Status] = {
    "Chờ tiếp nhận": Status.REGISTERED,
    "Mới tiếp nhận": Status.RECEIVED,
    "Đã tiếp nhận": Status.RECEIVED,
    "Tiếp nhận": Status.RECEIVED,
    "Chờ xử lý": Status.RECEIVED,
    "Chờ phân công": Status.RECEIVED,
    "Trả lại/Không tiếp nhận": Status.NOT_ACCEPTED,
    "Không tiếp nhận": Status.NOT_ACCEPTED,
    "Từ chối tiếp nhận": Status.NOT_ACCEPTED,
    "Từ chối": Status.NOT_ACCEPTED,
    "Đang giải quyết": Status.IN_PROGRESS,
    "Đang xử lý": Status.IN_PROGRESS,
    "Đang thụ lý": Status.IN_PROGRESS,
    "Chờ bổ sung": Status.SUPPLEMENT,
    "Chờ bổ sung hồ sơ": Status.SUPPLEMENT,
    "Yêu cầu bổ sung": Status.SUPPLEMENT,
    "Yêu cầu bổ sung hồ sơ": Status.SUPPLEMENT,
    "Bổ sung hồ sơ": Status.SUPPLEMENT,
    "Chờ thực hiện nghĩa vụ tài chính": Status.FINANCIAL,
    "Chờ nghĩa vụ tài chính": Status.FINANCIAL,
    "Chờ nộp phí": Status.FINANCIAL,
    "Chờ nộp lệ phí": Status.FINANCIAL,
    "Rút hồ sơ": Status.WITHDRAWN,
    "Đã rút hồ sơ": Status.WITHDRAWN,
    "Công dân rút hồ sơ": Status.WITHDRAWN,
    "Dừng xử lý": Status.STOPPED,
    "Dừng giải quyết": Status.STOPPED,
    "Đã dừng xử lý": Status.STOPPED,
    "Đã hoàn thành": Status.FINISHED,
    "Hoàn thành": Status.FINISHED,
    "Đã giải quyết": Status.FINISHED,
    "Đã xử lý": Status.FINISHED,
    "Đã có kết quả": Status.FINISHED,
    "Chờ trả kết quả": Status.FINISHED,
    "Đã trả kết quả": Status.RETURNED,
    "Đã trả": Status.RETURNED,
    "Trả kết quả": Status.RETURNED,
}
# Channel labels beyond domain.parse_channel's names (direct, online, postal).
CHANNEL_LABELS_BUILT_IN: dict[str, str] = {
    "Dịch vụ công trực tuyến toàn trình": "online",
    "Dịch vụ công trực tuyến một phần": "online",
    "Trực tuyến toàn trình": "online",
    "Trực tuyến một phần": "online",
    "Toàn trình": "online",
    "Một phần": "online",
    "Nộp trực tuyến": "online",
    "Qua mạng": "online",
    "Cổng dịch vụ công": "online",
    "Trực tiếp": "direct",
    "Nộp trực tiếp": "direct",
    "Tại bộ phận một cửa": "direct",
    "Một cửa": "direct",
    "Qua bưu chính": "postal",
    "Bưu chính": "postal",
    "Bưu chính công ích": "postal",
    "Qua dịch vụ bưu chính công ích": "postal",
    "Nộp qua bưu chính": "postal",
}


@dataclass(frozen=True)
class Lookups:
    """What normalize_case looks names up in, built once per Settings: the configured status and
    channel labels (then the built-in ones), and officials by folded full name."""

    statuses: dict[str, Status]
    channels: dict[str, str]
    official_ids: frozenset[str]
    officials_by_name: dict[str, tuple[str, ...]]
    settings: Settings
    # value as given -> what it means: a file repeats a handful of labels and codes on every row
    _seen_statuses: dict[str, Status] = field(default_factory=dict)
    _seen_channels: dict[str, str] = field(default_factory=dict)
    _seen_officials: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _seen_codes: dict[str, str] = field(default_factory=dict)
    _calendars: dict[str | None, WorkingCalendar] = field(default_factory=dict)
    # (calendar, duration, year) -> _whole_year_computable, without its weak-keyed look-up
    computable: dict[tuple[WorkingCalendar, Duration | None, int], bool] = field(
        default_factory=dict
    )

    @classmethod
    def of(cls, settings: Settings) -> Lookups:
        global _LAST
        last_settings, found = _LAST
        if last_settings() is settings:  # one import, one Settings: every row after the first
            return found
        found = _LOOKUPS.get(settings)
        if found is None:
            found = _LOOKUPS[settings] = cls._build(settings)
        _LAST = weakref.ref(settings), found
        return found

    @classmethod
    def _build(cls, settings: Settings) -> Lookups:
        conf = settings.config.import_
        statuses = {fold(k): v for k, v in STATUS_LABELS_BUILT_IN.items()}
        statuses |= {fold(k): Status(v) for k, v in conf.status_map.items()}
        channels = {fold(k): v for k, v in CHANNEL_LABELS_BUILT_IN.items()}
        channels |= {fold(k): v for k, v in conf.channel_map.items()}
        by_name: dict[str, list[str]] = {}
        for official in settings.config.officials:
            by_name.setdefault(fold(official.name), []).append(official.id)
        return cls(
            statuses,
            channels,
            frozenset(settings.officials),
            {k: tuple(v) for k, v in by_name.items()},
            settings,
        )

    def calendar(self, unit_code: str | None) -> WorkingCalendar:
        found = self._calendars.get(unit_code)
        if found is None:
            found = self.settings.calendar_for(unit_code)
            if len(self._calendars) < _MEMO:
                self._calendars[unit_code] = found
        return found

    def procedure_code(self, value: Any) -> str:
        """domain.procedure_code, remembered for the texts a file repeats."""
        if value.__class__ is not str:
            return procedure_code(value)
        found = self._seen_codes.get(value)
        if found is None:
            found = procedure_code(value)
            if len(self._seen_codes) < _MEMO:
                self._seen_codes[value] = found
        return found

    def status(self, value: Any) -> Status:
        """A status label: the configured map, the built-in labels, then codes 1-10 and the
        portal's names (domain.parse_status, whose error names the value)."""
        if not isinstance(value, str):
            return parse_status(value)  # a spreadsheet's number: 4.0
        found = self._seen_statuses.get(value)
        if found is None:
            found = self.statuses.get(fold(value)) or parse_status(value)
            if len(self._seen_statuses) < _MEMO:
                self._seen_statuses[value] = found
        return found

    def channel(self, value: Any) -> str:
        """A channel label: the configured map, the built-in labels, then domain.parse_channel."""
        if not isinstance(value, str):
            return parse_channel(value)
        found = self._seen_channels.get(value)
        if found is None:
            found = self.channels.get(fold(value)) or parse_channel(value)
            if len(self._seen_channels) < _MEMO:
                self._seen_channels[value] = found
        return found

    def official(self, name: str, value: str, problems: RowProblems) -> str:
        """An official's id for an assignee or step handler given by id or by full name.

        A full name is resolved when exactly one official has it (compared folded); a name
        several officials share is kept as given, with a warning, and an unknown value is kept
        too: the engine's `unknown_official` finding names it either way.
        """
        if value in self.official_ids:
            return value
        ids = self._seen_officials.get(value)
        if ids is None:
            ids = self.officials_by_name.get(fold(value), ())
            if len(self._seen_officials) < _MEMO:
                self._seen_officials[value] = ids
        if len(ids) == 1:
            return ids[0]
        if ids:
            problems.warn(
                name,
                _(
                    "{value} is the name of {n} officials ({ids}); kept as given: write the "
                    "official's id"
                ).format(value=repr(value), n=len(ids), ids=", ".join(ids)),
            )
        return value


_LOOKUPS: weakref.WeakKeyDictionary[Settings, Lookups] = weakref.WeakKeyDictionary()
_LAST: tuple[Callable[[], Settings | None], Any] = (lambda: None, None)
_MEMO = 20_000  # distinct values remembered per Settings and kind (labels, codes, names)


# ----- Excel date serials ------------------------------------------------------------------------

# Excel's 1900 date system: serial 1 is 01/01/1900, and serial 60 is the 29/02/1900 that never
# was (kept from Lotus 1-2-3), so from serial 61 (01/03/1900) days count from 30/12/1899.
_EXCEL_EPOCH = datetime(1899, 12, 30)
_EXCEL_LAST = 2_958_466  # serial of 01/01/10000: the first one Python's dates cannot hold


def excel_serial(value: float | int) -> datetime | date | str:
    """A number in a date column of a spreadsheet, as parse_when takes it.

    A number in a General cell is Excel's date serial (days since 1900, the fraction is the
    time of day): 46084.375 is 03/03/2026 09:00, a whole 46084 the date 03/03/2026 (date-only,
    like a date cell without a time). Read in the 1900 date system, the one every Windows Excel
    and LibreOffice file uses by default: the reader gives no workbook's epoch. A whole number
    of 8 or 14 digits is the compact yyyyMMdd[HHmmss] form typed as a number. Raises
    ValueError for any other number.
    """
    if isinstance(value, int) or value.is_integer():
        whole = int(value)
        if whole >= _EXCEL_LAST:
            return str(whole)  # 20260302 or 20260302080000: parse_when reads or refuses it
    if not 0 < value < _EXCEL_LAST or 60 <= value < 61:
        raise ValueError(
            _(
                "the number {value} is no date: a date column takes a date cell, a day number "
                "of Excel (such as 46084.375 for 03/03/2026 09:00) or a text as {formats}"
            ).format(value=repr(value), formats=FORMATS_HELP)
        )
    seconds = round(value * 86400)
    if value < 60:  # 01/01/1900 - 28/02/1900, before Lotus's phantom leap day
        seconds += 86400
    when = _EXCEL_EPOCH + timedelta(seconds=seconds)
    return when.date() if float(value).is_integer() else when


def spreadsheet_instant(value: Any) -> Any:
    """A spreadsheet cell of a date column as parse_when takes it: a date cell without a time
    (read as midnight) is a date-only value; a number is an Excel serial (excel_serial)."""
    if isinstance(value, datetime):
        if value.tzinfo is None and value.time() == time(0):
            return value.date()
        return value
    if isinstance(value, float | int) and not isinstance(value, bool):
        return excel_serial(value)
    return value


def normalize_case(
    raw: Mapping[str, Any], settings: Settings, problems: RowProblems, *, spreadsheet: bool = False
) -> dict:
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

    Values as spreadsheets and local software give them: a procedure code that became a number
    (1.01279) is restored to the national form (1.012790) or refused (domain.procedure_code);
    status and channel labels are looked up in `import.status_map` / `channel_map`, then the
    built-in labels, then the portal's codes and names; an assignee or step handler given by
    full name becomes the id of the one official with that name (Lookups.official). With
    `spreadsheet`, a number in a date column is an Excel date serial (excel_serial) and a date
    cell at midnight is a date-only value.
    """
    if unstorable := _unstorable(raw, problems):
        raw = {k: v for k, v in raw.items() if k not in unstorable}
    lookups = Lookups.of(settings)
    get = raw.get
    out: dict[str, Any] = {
        "case_code": _clean(get("case_code")),
        "procedure_code": _clean(get("procedure_code")),
        "unit_code": _clean(get("unit_code")),
    }
    if out["case_code"] is None or out["procedure_code"] is None or out["unit_code"] is None:
        for name in REQUIRED[:3]:
            if name not in unstorable and out[name] is None:
                problems.add(name, _("required value is missing"))
    if "received_at" not in unstorable and _blank(get("received_at")):
        problems.add("received_at", _("required value is missing"))
    if out["procedure_code"] is not None:
        try:
            out["procedure_code"] = lookups.procedure_code(get("procedure_code"))
        except ValueError as e:
            problems.add("procedure_code", str(e))
    calendar = lookups.calendar(out["unit_code"])
    tz = calendar.tz
    for name in INSTANTS:
        value = get(name)
        out[name] = None
        if value is None or (value.__class__ is str and not value.strip()):
            continue
        if value.__class__ is datetime and value.tzinfo is None and value.hour | value.minute:
            when = value.replace(tzinfo=tz)  # a spreadsheet's date cell (parse_when, inlined)
            if not MIN_YEAR <= when.year <= MAX_YEAR:
                problems.add(
                    name,
                    _("year {year} is outside {years}: {value}").format(
                        year=when.year, years=_YEARS, value=repr(value)
                    ),
                )
                continue
        else:
            try:
                if spreadsheet:
                    value = spreadsheet_instant(value)
                when = parse_when(value, tz)
            except ValueError as e:
                problems.add(name, _date_reason(e))
                continue
        if when.__class__ is date:
            when = calendar.standard_close(when) if name == "due_at" else _midnight(when, tz)
        elif when.year in _EDGE_YEARS and not (MIN_YEAR <= calendar.local(when).year <= MAX_YEAR):
            # e.g. 31/12/2200 23:00 -05:00 is already 2201 on the calendar's clock
            problems.add(
                name,
                _("falls outside the calendar's supported years {years}: {value}").format(
                    years=_YEARS, value=repr(value)
                ),
            )
            continue
        out[name] = when
    for name in TEXTS:
        value = get(name)
        if value.__class__ is str:
            out[name] = value.strip() or None
        else:
            out[name] = None if value is None else _clean(value)
    for name in ("assignee", "step_handler"):
        if out[name] is not None:
            out[name] = lookups.official(name, out[name], problems)
    out["submission_channel"] = None
    channel = get("submission_channel")
    if not _blank(channel):
        try:
            out["submission_channel"] = lookups.channel(channel)
        except ValueError as e:
            problems.add("submission_channel", str(e))
    for name, limit in _MAX_LENGTH_ITEMS:
        value = out[name]
        if value is not None and len(value) > limit:
            problems.add(
                name,
                _("is {length} characters long, at most {limit} are kept").format(
                    length=integer(len(value)), limit=integer(limit)
                ),
            )
    status = None
    raw_status = get("status")
    if not _blank(raw_status):
        try:
            status = lookups.status(raw_status)
        except ValueError as e:
            problems.add("status", str(e))
            return out
    out["status"] = int(_settle_status(status, out, problems))
    if out["received_at"] is not None:
        _check_order(out, problems)
        _check_computable(out, settings, calendar, problems, lookups.computable)
    return out


_EDGE_YEARS = (MIN_YEAR, MAX_YEAR)


def _midnight(d: date, tz: Any) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=tz)


def _date_reason(e: ValueError) -> str:
    """A bad date's reason, naming the accepted forms when it does not already."""
    reason = str(e)
    if getattr(e, "complete", False) or FORMATS_HELP in reason:
        return reason
    return _("{reason}; expected a date as {formats}").format(reason=reason, formats=FORMATS_HELP)


# Longest value accepted in any field, whatever its column (applicant_name is unbounded text in
# the database): a bigger cell is a bad row, not megabytes in every later query.
MAX_FIELD_CHARS = 4000
# Text columns are bounded in the database; a longer value is a bad row, not a refused batch.
_MAX_LENGTH = {
    name: min(TEXT_LIMITS.get(name, MAX_FIELD_CHARS), MAX_FIELD_CHARS)
    for name in ("case_code", "procedure_code", "unit_code", *TEXTS)
}
_MAX_LENGTH_ITEMS = tuple(_MAX_LENGTH.items())
_YEARS = f"{MIN_YEAR}-{MAX_YEAR}"


def _unstorable(raw: Mapping[str, Any], problems: RowProblems) -> set[str]:
    """Fields whose raw value no database would take, each reported once; empty when none.

    PostgreSQL refuses a NUL character in text (SQLite would store it); the length is checked
    on the raw value, before any parsing, so a huge cell is named, never echoed.
    """
    bad: set[str] = set()
    # one look at all the row's texts clears it: a CSV row is all text, a spreadsheet row holds
    # numbers and dates too
    try:
        joined = "".join(raw.values())
    except TypeError:
        joined = "".join([v for v in raw.values() if v.__class__ is str])
    if len(joined) <= MAX_FIELD_CHARS and "\x00" not in joined:
        return bad
    for name, value in raw.items():
        if not isinstance(value, str):
            continue
        if "\x00" in value:
            problems.add(name, _("contains a NUL character (\\x00), which a database cannot store"))
            bad.add(name)
        elif len(value) > MAX_FIELD_CHARS:
            problems.add(
                name,
                _("is {length} characters long, at most {limit} are accepted").format(
                    length=integer(len(value)), limit=integer(MAX_FIELD_CHARS)
                ),
            )
            bad.add(name)
    return bad


def _check_computable(
    out: dict,
    settings: Settings,
    calendar: WorkingCalendar,
    problems: RowProblems,
    known: dict[tuple[WorkingCalendar, Duration | None, int], bool] | None = None,
) -> None:
    """The engine can compute this case: its clock start, the due under its procedure's limit
    and the due of its current step all lie within the calendar's years. `known` remembers
    _whole_year_computable's answers."""
    received = out["received_at"]
    procedure = settings.procedures.get(out["procedure_code"])
    limit = procedure.limit if procedure is not None else None
    key = (calendar, limit, received.year)
    ok = None if known is None else known.get(key)
    if ok is None:
        ok = _whole_year_computable(calendar, limit, received.year)
        if known is not None:
            known[key] = ok
    if not ok:
        try:
            start = calendar.clock_start(received)
            if limit is not None:
                compute_due(calendar, received, limit, start)
        except (ValueError, OverflowError) as e:
            what = (
                _("the due under procedure {code} ({limit})").format(
                    code=procedure.code, limit=limit
                )
                if procedure is not None
                else _("the start of the clock")
            )
            problems.add(
                "received_at",
                _("{what} falls outside the calendar's years {years}: {why}").format(
                    what=what, years=_YEARS, why=e
                ),
            )
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
            _(
                "the due of step {step} ({allot}) falls outside the calendar's years {years}: {why}"
            ).format(step=step, allot=allot, years=_YEARS, why=e),
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
    if out["finished_at"] is None:
        if status is Status.RETURNED:
            out["finished_at"] = out["returned_at"]
        if (status is Status.FINISHED or status is Status.RETURNED) and out["finished_at"] is None:
            needs = "returned_at" if status is Status.RETURNED else "finished_at"
            problems.add(
                needs,
                _("required when the status is {code} ({label})").format(
                    code=int(status), label=status.label
                ),
            )
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
        problems.add(name, _before_received(received))
    if out["due_at"] is not None and out["due_at"] < received:
        problems.add("due_at", _before_received(received))


def _before_received(received: datetime) -> str:
    return _("is before received_at ({received})").format(received=show(received, received.tzinfo))
