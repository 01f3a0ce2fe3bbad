"""Unit tests for the case fields of every source (SPEC 6): header names and normalize_case.

Settings come from the `small_config` fixture (default VN calendar: office hours 07:00-11:30 and
13:30-17:00, zone Asia/Ho_Chi_Minh, +07:00 all year). Values without a zone are local time; a
date-only due_at, finished_at or returned_at is the close of office hours (17:00) of that day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from watchdog.config import Settings, load_settings
from watchdog.domain import Status
from watchdog.sources.fields import (
    ALIASES,
    FIELDS,
    REQUIRED,
    RowProblems,
    canonical_field,
    is_known_unused,
    normalize_case,
)

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def vn(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=VN)


@pytest.fixture
def settings(small_config: Path) -> Settings:
    return load_settings(small_config)


def base(**overrides: Any) -> dict[str, Any]:
    """A good raw record (canonical keys) received Monday 02/03/2026 08:00 local."""
    raw: dict[str, Any] = {
        "case_code": "000.00.21.H59-260302-0001",
        "procedure_code": "2.000488",
        "unit_code": "STP.HC",
        "received_at": "02/03/2026 08:00",
    }
    raw.update(overrides)
    return raw


def normalize(settings: Settings, **overrides: Any) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    problems = RowProblems()
    out = normalize_case(base(**overrides), settings, problems)
    return out, problems.problems


def good(settings: Settings, **overrides: Any) -> dict[str, Any]:
    out, problems = normalize(settings, **overrides)
    assert problems == [], problems
    return out


def problem_fields(settings: Settings, **overrides: Any) -> list[str]:
    _, problems = normalize(settings, **overrides)
    assert problems, "expected the record to be rejected"
    return [name for name, _ in problems]


def assert_instant(got: datetime | None, expected: datetime) -> None:
    assert got is not None
    assert got.tzinfo is not None, f"{got!r} is naive"
    assert got == expected, f"got {got.isoformat()}, expected {expected.isoformat()}"


# ----- header names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "canonical"),
    [
        # Vietnamese headers, as the one-stop software exports them
        ("Mã hồ sơ", "case_code"),
        ("Số hồ sơ", "case_code"),
        ("Mã TTHC", "procedure_code"),
        ("Mã thủ tục", "procedure_code"),
        ("Đơn vị", "unit_code"),
        ("Đơn vị xử lý", "unit_code"),
        ("Ngày tiếp nhận", "received_at"),
        ("Ngày hẹn trả", "due_at"),
        ("Trạng thái", "status"),
        ("Trạng thái hồ sơ", "status"),
        ("Ngày kết thúc xử lý", "finished_at"),
        ("Ngày trả", "returned_at"),
        ("Ngày trả kết quả", "returned_at"),
        ("Cán bộ thụ lý", "assignee"),
        ("Chủ hồ sơ", "applicant_name"),
        ("Số điện thoại", "applicant_phone"),
        ("Kênh thực hiện", "submission_channel"),
        ("Bước hiện tại", "current_step"),
        ("Ngày bắt đầu bước", "step_started_at"),
        ("Người xử lý bước", "step_handler"),
        ("Ngày cập nhật", "updated_at"),
        # the same without accents, in other cases and spacing
        ("Ma ho so", "case_code"),
        ("Ma TTHC", "procedure_code"),
        ("Don vi", "unit_code"),
        ("Ngay tiep nhan", "received_at"),
        ("ngay hen tra", "due_at"),
        ("TRANG THAI", "status"),
        ("Ngay ket thuc xu ly", "finished_at"),
        ("Ngay tra", "returned_at"),
        ("Can bo thu ly", "assignee"),
        ("NGÀY TIẾP NHẬN", "received_at"),
        ("  Ngày hẹn trả  ", "due_at"),
        ("Ngày hẹn trả:", "due_at"),
        ("ĐƠN VỊ", "unit_code"),
        # national-portal field names
        ("MaHoSo", "case_code"),
        ("MaTTHC", "procedure_code"),
        ("DonViXuLy", "unit_code"),
        ("NgayTiepNhan", "received_at"),
        ("NgayHenTra", "due_at"),
        ("TrangThaiHoSo", "status"),
        ("NgayKetThucXuLy", "finished_at"),
        ("NgayTra", "returned_at"),
        ("mahoso", "case_code"),
        ("NGAYTIEPNHAN", "received_at"),
        # canonical names
        *((name, name) for name in ALIASES),
        ("CASE_CODE", "case_code"),
        ("Received At", "received_at"),
    ],
)
def test_canonical_field(header: str, canonical: str) -> None:
    assert canonical_field(header) == canonical


def test_header_folding_accepts_decomposed_unicode() -> None:
    """Files saved on macOS or by some exporters hold NFD text: same letters, other code points."""
    import unicodedata

    for header in ("Mã hồ sơ", "Ngày tiếp nhận", "Đơn vị", "Ngày hẹn trả"):
        decomposed = unicodedata.normalize("NFD", header)
        assert decomposed != header
        assert canonical_field(decomposed) == canonical_field(header) is not None


@pytest.mark.parametrize(
    "header", ["", None, "   ", "Ghi chú", "Tên TTHC", "STT", "MaLinhVuc", "x"]
)
def test_canonical_field_none_for_columns_we_do_not_keep(header: object) -> None:
    assert canonical_field(header) is None


def test_known_unused_portal_columns_are_recognised() -> None:
    assert is_known_unused("TenTTHC")
    assert is_known_unused("Tên thủ tục")
    assert is_known_unused("Ten thu tuc")
    assert is_known_unused("STT")
    assert not is_known_unused("Ghi chú")
    assert not is_known_unused("Mã hồ sơ")


def test_every_alias_names_exactly_one_field() -> None:
    for name in FIELDS:
        for alias in ALIASES[name]:
            assert canonical_field(alias) == name, alias
    assert set(REQUIRED) <= set(FIELDS)


# ----- a good record -----------------------------------------------------------------------------


def test_minimal_record(settings: Settings) -> None:
    out = good(settings)
    assert out["case_code"] == "000.00.21.H59-260302-0001"
    assert out["procedure_code"] == "2.000488"
    assert out["unit_code"] == "STP.HC"
    assert_instant(out["received_at"], vn(2026, 3, 2, 8, 0))
    for name in (
        "due_at",
        "finished_at",
        "returned_at",
        "step_started_at",
        "updated_at",
        "assignee",
        "applicant_name",
        "applicant_phone",
        "submission_channel",
        "current_step",
        "step_handler",
    ):
        assert out[name] is None, name
    assert out["status"] == Status.RECEIVED == 2
    assert type(out["status"]) is int


def test_full_record(settings: Settings) -> None:
    out = good(
        settings,
        due_at="16/03/2026 17:00",
        status="4",
        assignee=" chuyenvien ",
        applicant_name="Nguyễn Văn An",
        applicant_phone="0901234567",
        submission_channel="2",
        current_step="B2",
        step_started_at="03/03/2026 09:15",
        step_handler="truongphong",
        updated_at="03/03/2026 09:15:30",
    )
    assert_instant(out["due_at"], vn(2026, 3, 16, 17, 0))
    assert out["status"] == Status.IN_PROGRESS
    assert out["assignee"] == "chuyenvien"  # stripped
    assert out["applicant_name"] == "Nguyễn Văn An"
    assert out["applicant_phone"] == "0901234567"
    assert out["submission_channel"] == "online"
    assert out["current_step"] == "B2"
    assert_instant(out["step_started_at"], vn(2026, 3, 3, 9, 15))
    assert out["step_handler"] == "truongphong"
    assert_instant(out["updated_at"], vn(2026, 3, 3, 9, 15, 30))


def test_text_values_are_stripped_and_spreadsheet_numbers_lose_their_dot_zero(
    settings: Settings,
) -> None:
    out = good(settings, case_code="  HS-1  ", procedure_code=" 2.000488 ", unit_code=" STP ")
    assert (out["case_code"], out["procedure_code"], out["unit_code"]) == (
        "HS-1",
        "2.000488",
        "STP",
    )
    out = good(settings, case_code=260302001.0, assignee=12345)
    assert out["case_code"] == "260302001"
    assert out["assignee"] == "12345"


# ----- dates ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # ISO 8601 without a zone: local time
        ("2026-03-02T08:30:00", vn(2026, 3, 2, 8, 30)),
        ("2026-03-02T08:30", vn(2026, 3, 2, 8, 30)),
        ("2026-03-02 08:30:15", vn(2026, 3, 2, 8, 30, 15)),
        # ISO 8601 with an offset or Z: that instant
        ("2026-03-02T08:30:00+07:00", vn(2026, 3, 2, 8, 30)),
        ("2026-03-02T01:30:00Z", vn(2026, 3, 2, 8, 30)),
        ("2026-03-02T01:30:00+00:00", vn(2026, 3, 2, 8, 30)),
        ("2026-03-02T10:30:00+09:00", vn(2026, 3, 2, 8, 30)),
        ("2026-03-01T20:30:00-05:00", vn(2026, 3, 2, 8, 30)),
        # dd/mm/yyyy HH:MM and HH:MM:SS (the day comes first: 02/03 is 2 March)
        ("02/03/2026 08:30", vn(2026, 3, 2, 8, 30)),
        ("02/03/2026 08:30:15", vn(2026, 3, 2, 8, 30, 15)),
        ("2/3/2026 8:30", vn(2026, 3, 2, 8, 30)),
        ("13/03/2026 14:05:59", vn(2026, 3, 13, 14, 5, 59)),
        # yyyyMMddHHmmss, as the national portal sends it
        ("20260302083015", vn(2026, 3, 2, 8, 30, 15)),
        (20260302083015, vn(2026, 3, 2, 8, 30, 15)),
        # surrounding spaces do not matter
        ("  02/03/2026 08:30  ", vn(2026, 3, 2, 8, 30)),
        # Python datetimes, as openpyxl yields date cells: naive means local time
        (datetime(2026, 3, 2, 8, 30), vn(2026, 3, 2, 8, 30)),
        (
            datetime(2026, 3, 2, 8, 30, 15, 500000),
            vn(2026, 3, 2, 8, 30, 15) + timedelta(microseconds=500000),
        ),
        (datetime(2026, 3, 2, 1, 30, tzinfo=UTC), vn(2026, 3, 2, 8, 30)),
        (datetime(2026, 3, 2, 8, 30, tzinfo=timezone(timedelta(hours=7))), vn(2026, 3, 2, 8, 30)),
    ],
)
@pytest.mark.parametrize("name", ["received_at", "due_at", "step_started_at", "updated_at"])
def test_instant_formats(settings: Settings, name: str, value: object, expected: datetime) -> None:
    overrides = {"received_at": "01/03/2026 00:00", name: value}
    out = good(settings, **overrides)
    assert_instant(out[name], expected)


@pytest.mark.parametrize(
    "value",
    ["02/03/2026 08:30", "2026-03-02T08:30:00", "20260302083000", datetime(2026, 3, 2, 8, 30)],
)
def test_instant_without_zone_is_local_time_not_utc(settings: Settings, value: object) -> None:
    out = good(settings, received_at=value)
    assert out["received_at"] == datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
    assert out["received_at"].utcoffset() == timedelta(hours=7)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("finished_at", "04/03/2026 10:00"),
        ("returned_at", "04/03/2026 10:00"),
    ],
)
def test_finished_and_returned_instants(settings: Settings, name: str, value: str) -> None:
    out = good(settings, **{name: value})
    assert_instant(out[name], vn(2026, 3, 4, 10, 0))


@pytest.mark.parametrize(
    "value", ["16/03/2026", "2026-03-16", "16/3/2026", "20260316", date(2026, 3, 16)]
)
def test_date_only_due_at_is_close_of_office_hours(settings: Settings, value: object) -> None:
    out = good(settings, due_at=value)
    assert_instant(out["due_at"], vn(2026, 3, 16, 17, 0))


def test_date_only_due_at_on_the_received_day_is_not_before_received(settings: Settings) -> None:
    """Same-day procedures: received 08:00, due 'today' = 17:00 today, a good record."""
    out = good(settings, received_at="02/03/2026 08:00", due_at="02/03/2026")
    assert_instant(out["due_at"], vn(2026, 3, 2, 17, 0))


def test_date_only_due_at_on_a_non_working_day_is_still_that_day(settings: Settings) -> None:
    """The appointment the source gives is authoritative: Saturday 07/03/2026 stays Saturday."""
    out = good(settings, due_at="07/03/2026")
    assert_instant(out["due_at"], vn(2026, 3, 7, 17, 0))


@pytest.mark.parametrize("name", ["finished_at", "returned_at"])
def test_date_only_finish_and_return_are_judged_by_their_date(
    settings: Settings, name: str
) -> None:
    """SPEC 4: a date-only finish is judged by its date. Kept as the start of that date, it
    is on time against any due later that date (dues lie in office hours) and late against
    any due of an earlier date, by plain comparison."""
    out = good(settings, **{name: "04/03/2026"})
    assert_instant(out[name], vn(2026, 3, 4, 0, 0))
    assert out[name] <= vn(2026, 3, 4, 8, 0)  # due 04/03 08:00: on time
    assert out[name] > vn(2026, 3, 3, 17, 0)  # due 03/03 17:00: late


@pytest.mark.parametrize("value", ["02/03/2026", "2026-03-02", "20260302", date(2026, 3, 2)])
def test_date_only_received_at_is_start_of_the_day(settings: Settings, value: object) -> None:
    out = good(settings, received_at=value)
    assert_instant(out["received_at"], vn(2026, 3, 2, 0, 0))


def test_date_only_due_follows_the_units_calendar_close(tmp_path: Path) -> None:
    """A unit with its own office hours closes at its own time."""
    config = tmp_path / "config.yaml"
    config.write_text(
        'calendars:\n  default: {}\n  late: {office_hours: "08:00-12:00, 13:00-18:30"}\n'
        "units:\n  - {code: T, name: Tỉnh}\n  - {code: X, name: Xã, parent: T, calendar: late}\n"
        "  - {code: X.1, name: Tổ, parent: X}\n",
        encoding="utf-8",
    )
    settings = load_settings(config)
    for unit, close in (("T", (17, 0)), ("X", (18, 30)), ("X.1", (18, 30))):
        out = good(settings, unit_code=unit, due_at="16/03/2026")
        assert_instant(out["due_at"], vn(2026, 3, 16, *close))


@pytest.mark.parametrize(
    "value",
    [
        "hôm qua",
        "31/02/2026",  # no such day
        "02/13/2026",  # month 13: US order is not accepted
        "02/03/26",  # two-digit year
        "2026-02-30",
        "2026-03-02T25:00",
        "02/03/2026 24:10",
        "20261302083015",
        "2026030208301",  # 13 digits
        "1772440200",  # a Unix timestamp is not a date we accept
        "02.03.2026",
        "x02/03/2026",
    ],
)
def test_bad_dates_are_problems_of_their_field(settings: Settings, value: str) -> None:
    _, problems = normalize(settings, due_at=value)
    assert [name for name, _ in problems] == ["due_at"]
    reason = problems[0][1]
    assert value.strip() in reason, reason


def test_bad_date_reason_names_the_accepted_formats(settings: Settings) -> None:
    _, problems = normalize(settings, received_at="hôm qua")
    assert problems == [
        (
            "received_at",
            "expected a date as ISO 8601, dd/mm/yyyy, dd/mm/yyyy HH:MM[:SS], yyyyMMddHHmmss, "
            "got 'hôm qua'",
        )
    ]


def test_every_bad_field_is_reported_at_once(settings: Settings) -> None:
    _, problems = normalize(
        settings, received_at="x", due_at="y", status="99", submission_channel="fax"
    )
    assert sorted(name for name, _ in problems) == [
        "due_at",
        "received_at",
        "status",
        "submission_channel",
    ]


# ----- status ------------------------------------------------------------------------------------


FINISHED_AT = "05/03/2026 10:00"


@pytest.mark.parametrize("code", range(1, 11))
@pytest.mark.parametrize("form", [str, int, float, lambda c: f" {c} "])
def test_status_codes_1_to_10(settings: Settings, code: int, form) -> None:
    out = good(settings, status=form(code), finished_at=FINISHED_AT)
    assert out["status"] == code


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Mới đăng ký", Status.REGISTERED),
        ("Được tiếp nhận", Status.RECEIVED),
        ("Không được tiếp nhận", Status.NOT_ACCEPTED),
        ("Đang xử lý", Status.IN_PROGRESS),
        ("Yêu cầu bổ sung giấy tờ", Status.SUPPLEMENT),
        ("Yêu cầu thực hiện nghĩa vụ tài chính", Status.FINANCIAL),
        ("Công dân yêu cầu rút hồ sơ", Status.WITHDRAWN),
        ("Dừng xử lý", Status.STOPPED),
        ("Đã xử lý xong", Status.FINISHED),
        ("Đã trả kết quả", Status.RETURNED),
        # without accents, other case
        ("Dang xu ly", Status.IN_PROGRESS),
        ("Da xu ly xong", Status.FINISHED),
        ("DA TRA KET QUA", Status.RETURNED),
        ("đang  xử  lý", Status.IN_PROGRESS),
        # the code as text
        ("10", Status.RETURNED),
        ("04", Status.IN_PROGRESS),
        # the English names of the codes
        ("in_progress", Status.IN_PROGRESS),
        ("FINISHED", Status.FINISHED),
    ],
)
def test_status_names(settings: Settings, value: str, expected: Status) -> None:
    out = good(settings, status=value, finished_at=FINISHED_AT)
    assert out["status"] == expected


@pytest.mark.parametrize("value", ["0", "11", "-1", "4.5", "xong", "Đã hủy", True])
def test_bad_status(settings: Settings, value: object) -> None:
    _, problems = normalize(settings, status=value)
    assert [name for name, _ in problems] == ["status"]
    assert "1-10" in problems[0][1]


@pytest.mark.parametrize("status", ["9", "Đã xử lý xong", "10"])
def test_finished_status_without_finished_at_is_rejected(settings: Settings, status: str) -> None:
    _, problems = normalize(settings, status=status)
    # status 10 (returned) asks for the return date, from which finished_at is taken
    expected = "returned_at" if status == "10" else "finished_at"
    assert [name for name, _ in problems] == [expected]
    assert f"required when the status is {int(status) if status.isdigit() else 9}" in problems[0][1]


def test_status_9_message(settings: Settings) -> None:
    _, problems = normalize(settings, status="9")
    assert problems == [("finished_at", "required when the status is 9 (Đã xử lý xong)")]


def test_status_10_with_returned_at_only_takes_finished_at_from_it(settings: Settings) -> None:
    out = good(settings, status="10", returned_at="05/03/2026 10:00")
    assert_instant(out["finished_at"], vn(2026, 3, 5, 10, 0))
    assert_instant(out["returned_at"], vn(2026, 3, 5, 10, 0))


@pytest.mark.parametrize(
    ("dates", "expected"),
    [
        ({}, Status.RECEIVED),
        ({"assignee": "chuyenvien"}, Status.IN_PROGRESS),
        ({"finished_at": "05/03/2026 10:00"}, Status.FINISHED),
        ({"finished_at": "05/03/2026 10:00", "assignee": "chuyenvien"}, Status.FINISHED),
        ({"returned_at": "06/03/2026 09:00"}, Status.RETURNED),
        (
            {"finished_at": "05/03/2026 10:00", "returned_at": "06/03/2026 09:00"},
            Status.RETURNED,
        ),
        ({"due_at": "16/03/2026"}, Status.RECEIVED),
    ],
)
def test_status_defaults_from_the_dates(
    settings: Settings, dates: dict[str, str], expected: Status
) -> None:
    out = good(settings, **dates)
    assert out["status"] == expected


def test_returned_without_status_keeps_both_instants(settings: Settings) -> None:
    out = good(settings, finished_at="05/03/2026 10:00", returned_at="06/03/2026 09:00")
    assert_instant(out["finished_at"], vn(2026, 3, 5, 10, 0))
    assert_instant(out["returned_at"], vn(2026, 3, 6, 9, 0))


def test_given_status_wins_over_the_dates(settings: Settings) -> None:
    """An open status with a finish date is what the source says: kept as given."""
    out = good(settings, status="4", finished_at="05/03/2026 10:00")
    assert out["status"] == Status.IN_PROGRESS


# ----- channel -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", "direct"),
        ("2", "online"),
        ("3", "postal"),
        (1, "direct"),
        (2.0, "online"),
        ("Trực tiếp", "direct"),
        ("Truc tiep", "direct"),
        ("Trực tuyến", "online"),
        ("Dịch vụ công trực tuyến", "online"),
        ("Bưu chính", "postal"),
        ("Bưu chính công ích", "postal"),
        ("BUU CHINH", "postal"),
        ("direct", "direct"),
        ("online", "online"),
        ("postal", "postal"),
    ],
)
def test_channel(settings: Settings, value: object, expected: str) -> None:
    assert good(settings, submission_channel=value)["submission_channel"] == expected


@pytest.mark.parametrize("value", ["0", "4", "fax", "email"])
def test_bad_channel(settings: Settings, value: str) -> None:
    _, problems = normalize(settings, submission_channel=value)
    assert [name for name, _ in problems] == ["submission_channel"]
    assert repr(value) in problems[0][1]


# ----- required values and order -----------------------------------------------------------------


@pytest.mark.parametrize("name", REQUIRED)
@pytest.mark.parametrize("blank", [None, "", "   ", "\t"])
def test_missing_required_value(settings: Settings, name: str, blank: object) -> None:
    _, problems = normalize(settings, **{name: blank})
    assert problems == [(name, "required value is missing")]


def test_absent_required_key(settings: Settings) -> None:
    raw = base()
    del raw["unit_code"]
    problems = RowProblems()
    normalize_case(raw, settings, problems)
    assert problems.problems == [("unit_code", "required value is missing")]


def test_every_missing_required_value_is_reported(settings: Settings) -> None:
    problems = RowProblems()
    normalize_case({}, settings, problems)
    assert problems.problems == [(name, "required value is missing") for name in REQUIRED]


@pytest.mark.parametrize("blank", [None, "", "  "])
def test_blank_optional_values_are_none(settings: Settings, blank: object) -> None:
    out = good(
        settings,
        due_at=blank,
        status=blank,
        finished_at=blank,
        assignee=blank,
        submission_channel=blank,
        applicant_name=blank,
    )
    assert out["due_at"] is None
    assert out["finished_at"] is None
    assert out["assignee"] is None
    assert out["submission_channel"] is None
    assert out["applicant_name"] is None
    assert out["status"] == Status.RECEIVED


@pytest.mark.parametrize("name", ["finished_at", "returned_at", "step_started_at", "due_at"])
def test_instant_before_received_is_rejected(settings: Settings, name: str) -> None:
    _, problems = normalize(settings, **{name: "01/03/2026 10:00"})
    # A returned_at without finished_at also stands for finished_at (status 10), so that field
    # may be named as well; the field given must be.
    assert name in [n for n, _ in problems]
    assert {reason for _, reason in problems} == {"is before received_at (02/03/2026 08:00)"}


def test_finished_before_received_across_zones(settings: Settings) -> None:
    """07:59 local is 00:59Z: one minute before received, whatever the notation."""
    _, problems = normalize(settings, finished_at="2026-03-02T00:59:00Z")
    assert [n for n, _ in problems] == ["finished_at"]
    out = good(settings, finished_at="2026-03-02T01:00:00Z")
    assert_instant(out["finished_at"], vn(2026, 3, 2, 8, 0))


def test_finished_at_the_received_instant_is_fine(settings: Settings) -> None:
    out = good(settings, finished_at="02/03/2026 08:00")
    assert out["status"] == Status.FINISHED


def test_date_only_finished_on_the_received_day_is_not_before_received(
    settings: Settings,
) -> None:
    out = good(settings, finished_at="02/03/2026")  # received 02/03 08:00, finished that day
    assert_instant(out["finished_at"], vn(2026, 3, 2, 0, 0))


def test_unknown_unit_uses_the_default_calendar(settings: Settings) -> None:
    out = good(settings, unit_code="KHONG.CO", due_at="16/03/2026")
    assert_instant(out["due_at"], vn(2026, 3, 16, 17, 0))


def test_years_outside_the_calendar_are_rejected(settings: Settings) -> None:
    # a typo for 2026 must not reach the engine, whose calendar covers 1900-2200
    _, problems = normalize(settings, received_at="02/03/0226 09:00")
    assert problems == [("received_at", "year 226 is outside 1900-2200: '02/03/0226 09:00'")]


# ----- values a database refuses, and dues the calendar cannot compute (issue 10, 5-6) ---------

NUL_REASON = "contains a NUL character (\\x00), which a database cannot store"


@pytest.mark.parametrize(
    "name",
    ["case_code", "procedure_code", "applicant_name", "assignee", "received_at", "due_at"],
)
def test_nul_character_is_a_problem_of_its_field(settings: Settings, name: str) -> None:
    """PostgreSQL refuses NUL in text; the field is named once (not also "missing")."""
    value = str(base().get(name, "Nguyễn Văn An" if name != "due_at" else "16/03/2026"))
    _, problems = normalize(settings, **{name: value[:3] + "\x00" + value[3:]})
    assert problems == [(name, NUL_REASON)]


def test_value_longer_than_any_field_allows(settings: Settings) -> None:
    """applicant_name has no length in the database; MAX_FIELD_CHARS caps it all the same."""
    from watchdog.sources.fields import MAX_FIELD_CHARS

    assert MAX_FIELD_CHARS == 4000
    assert good(settings, applicant_name="x" * 4000)["applicant_name"] == "x" * 4000
    _, problems = normalize(settings, applicant_name="x" * 4001)
    assert problems == [("applicant_name", "is 4,001 characters long, at most 4,000 are accepted")]


def test_a_huge_date_cell_is_named_not_echoed(settings: Settings) -> None:
    _, problems = normalize(settings, received_at="02/03/2026 " * 50_000)
    assert problems == [("received_at", "is 550,000 characters long, at most 4,000 are accepted")]


def test_text_longer_than_its_column(settings: Settings) -> None:
    """The store's TEXT_LIMITS bound each text column (applicant_phone holds 32)."""
    from watchdog.store.cases import TEXT_LIMITS

    phone = "0901234567; 0912345678; 0987654321"
    assert len(phone) > TEXT_LIMITS["applicant_phone"] == 32
    _, problems = normalize(settings, applicant_phone=phone)
    assert problems == [("applicant_phone", "is 34 characters long, at most 32 are kept")]


BEYOND = "falls outside the calendar's years 1900-2200: year 2201 is outside the supported range"


@pytest.mark.parametrize(
    ("procedure", "received", "what"),
    [
        ("2.000488", "25/12/2200 08:00", "the due under procedure 2.000488 (10 working_days)"),
        ("1.000001", "31/12/2200 16:00", "the due under procedure 1.000001 (4 working_hours)"),
        ("1.000002", "15/12/2200", "the due under procedure 1.000002 (30 calendar_days)"),
        ("9.999999", "31/12/2200 18:00", "the start of the clock"),  # unknown: clock start only
    ],
)
def test_due_past_the_calendar_is_a_problem_of_received_at(
    settings: Settings, procedure: str, received: str, what: str
) -> None:
    _, problems = normalize(settings, procedure_code=procedure, received_at=received)
    assert problems == [("received_at", f"{what} {BEYOND} 1900-2200")]


@pytest.mark.parametrize(
    ("procedure", "received"),
    [
        ("2.000488", "01/12/2200 08:00"),  # due mid-December 2200
        ("1.000001", "31/12/2200 08:00"),  # due 31/12/2200 13:30
        ("9.999999", "31/12/2200 10:00"),  # unknown procedure: no due computed
        ("2.000488", "01/01/1900 00:00"),
    ],
)
def test_due_within_the_calendar_is_fine(settings: Settings, procedure: str, received: str) -> None:
    good(settings, procedure_code=procedure, received_at=received)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("received_at", "1900-01-01T00:30:00+08:00"),  # 31/12/1899 on the calendar's clock
        ("due_at", "2200-12-31T23:00:00-05:00"),  # 01/01/2201 on the calendar's clock
        ("finished_at", "2200-12-31T20:00:00Z"),
    ],
)
def test_instant_in_a_year_the_calendar_lacks_once_in_its_zone(
    settings: Settings, name: str, value: str
) -> None:
    _, problems = normalize(settings, **{name: value})
    assert (name, f"falls outside the calendar's supported years 1900-2200: {value!r}") in problems


def test_step_due_past_the_calendar_is_a_problem_of_step_started_at(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "procedures:\n"
        "  - code: P\n"
        "    name: Thủ tục có bước\n"
        "    limit: 0 working_days\n"
        "    steps:\n"
        "      - {code: TD, name: Thẩm định, allot: 5 working_days}\n"
        "      - {code: KY, name: Ký, allot: 10 calendar_days}\n",
        encoding="utf-8",
    )
    settings = load_settings(config)
    fields = {"procedure_code": "P", "received_at": "01/12/2200 08:00"}
    good(settings, **fields, current_step="TD", step_started_at="01/12/2200 08:00")
    good(settings, **fields, current_step="KY", step_started_at="31/12/2200 08:00")
    _, problems = normalize(
        settings, **fields, current_step="TD", step_started_at="29/12/2200 08:00"
    )
    assert problems == [
        ("step_started_at", f"the due of step TD (5 working_days) {BEYOND} 1900-2200")
    ]


def test_a_long_limit_reaches_past_the_calendar_decades_ahead(tmp_path: Path) -> None:
    """2,500 working days (the largest limit a config may give) is about ten years: a case
    received in 2195 is due after 2200; one received in 2026 is fine."""
    config = tmp_path / "config.yaml"
    config.write_text(
        "procedures:\n  - {code: L, name: Dài, limit: 2500 working_days}\n", encoding="utf-8"
    )
    settings = load_settings(config)
    good(settings, procedure_code="L", received_at="02/03/2026 08:00")
    good(settings, procedure_code="L", received_at="02/03/2188 08:00")
    _, problems = normalize(settings, procedure_code="L", received_at="02/03/2195 08:00")
    assert [(n, r.split(": year")[0]) for n, r in problems] == [
        (
            "received_at",
            "the due under procedure L (2500 working_days) falls outside the calendar's years "
            "1900-2200",
        )
    ]


# ----- real exports: numeric TTHC codes, Excel serials, names (issue 11, item 4) ---------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (2.000488, "2.000488"),  # a number with all six decimals
        (1.01279, "1.012790"),  # 1.012790 typed into Excel: the trailing 0 is gone
        ("1.01279", "1.012790"),  # the same number saved as text by a CSV export
        (1.1, "1.100000"),
        (12345.0, "12345"),  # a whole number: a local code, kept
        ("2.000488", "2.000488"),
    ],
)
def test_numeric_procedure_codes_are_restored(
    settings: Settings, value: object, expected: str
) -> None:
    assert good(settings, procedure_code=value)["procedure_code"] == expected


@pytest.mark.parametrize("value", [1.0127901, 2.0004881, 12.5])
def test_a_number_no_national_code_gives_is_refused(settings: Settings, value: float) -> None:
    """Seven decimals, or two digits before the point: no d.dddddd code is that number, and
    truncating would invent one."""
    _, problems = normalize(settings, procedure_code=value)
    assert problems == [
        (
            "procedure_code",
            f"the number {value!r} is no national TTHC code (d.dddddd, such as 1.012790): "
            "write the code as text",
        )
    ]


def spreadsheet(settings: Settings, **overrides: Any) -> tuple[dict, list[tuple[str, str]]]:
    problems = RowProblems()
    out = normalize_case(base(**overrides), settings, problems, spreadsheet=True)
    return out, problems.problems


@pytest.mark.parametrize(
    ("name", "serial", "expected"),
    [
        # 46084 days after 30/12/1899 is Tue 03/03/2026; .375 of a day is 09:00
        ("received_at", 46084.375, vn(2026, 3, 3, 9, 0)),
        ("received_at", 46084.5, vn(2026, 3, 3, 12, 0)),
        # a whole serial is a date without a time: received at the start of that day, due at the
        # close of office hours (17:00), finished judged by its date (its 00:00)
        ("received_at", 46084.0, vn(2026, 3, 3, 0, 0)),
        ("due_at", 46097, vn(2026, 3, 16, 17, 0)),  # 46084 + 13 days = 16/03/2026
        ("finished_at", 46085, vn(2026, 3, 4, 0, 0)),
        # 14 and 8 digit numbers are yyyyMMddHHmmss / yyyyMMdd typed as numbers
        ("received_at", 20260303091500.0, vn(2026, 3, 3, 9, 15)),
        ("due_at", 20260316.0, vn(2026, 3, 16, 17, 0)),
        # 09:00:00.4 stored as a float: rounded to the second
        ("received_at", 46084.375 + 0.4 / 86400, vn(2026, 3, 3, 9, 0)),
    ],
)
def test_excel_serials_in_spreadsheet_date_columns(
    settings: Settings, name: str, serial: float, expected: datetime
) -> None:
    overrides: dict[str, Any] = {name: serial}
    if name != "received_at":
        overrides["received_at"] = "02/03/2026 08:00"
    out, problems = spreadsheet(settings, **overrides)
    assert problems == []
    assert_instant(out[name], expected)


def test_serials_before_and_at_lotus_leap_day(settings: Settings) -> None:
    """Serial 59 is 28/02/1900 (counted from 31/12/1899: 1 is 01/01/1900), 61 is 01/03/1900
    (counted from 30/12/1899); 60 is the 29/02/1900 that never was: refused."""
    out, problems = spreadsheet(settings, received_at=59.5)
    assert problems == [] and out["received_at"] == vn(1900, 2, 28, 12, 0)
    out, problems = spreadsheet(settings, received_at=61)
    assert problems == [] and out["received_at"] == vn(1900, 3, 1, 0, 0)
    _, problems = spreadsheet(settings, received_at=60)
    assert [name for name, _ in problems] == ["received_at"]


@pytest.mark.parametrize("value", [0, -3.5, 2958466.5, 60.25])
def test_numbers_that_are_no_date(settings: Settings, value: float) -> None:
    _, problems = spreadsheet(settings, received_at=value)
    assert problems == [
        (
            "received_at",
            f"the number {value!r} is no date: a date column takes a date cell, a day number of "
            "Excel (such as 46084.375 for 03/03/2026 09:00) or a text as "
            "ISO 8601, dd/mm/yyyy, dd/mm/yyyy HH:MM[:SS], yyyyMMddHHmmss",
        )
    ]


def test_serials_are_spreadsheet_only(settings: Settings) -> None:
    """The number 46084.375 is 03/03/2026 09:00 in a spreadsheet's date column; a CSV (or any
    text source) gives "46084.375" as text, which no date format reads."""
    out, problems = spreadsheet(settings, received_at=46084.375)
    assert problems == [] and out["received_at"] == vn(2026, 3, 3, 9, 0)
    _, problems = normalize(settings, received_at="46084.375")
    assert [name for name, _ in problems] == ["received_at"]
    _, problems = normalize(settings, received_at=46084.375)  # HTTP JSON number: not a serial
    assert [name for name, _ in problems] == ["received_at"]


def test_spreadsheet_date_cell_at_midnight_is_a_date(settings: Settings) -> None:
    """A date cell without a time comes as midnight: a date-only due means 17:00 that day."""
    out, problems = spreadsheet(
        settings, received_at=datetime(2026, 3, 2, 8, 15), due_at=datetime(2026, 3, 16)
    )
    assert problems == []
    assert_instant(out["received_at"], vn(2026, 3, 2, 8, 15))
    assert_instant(out["due_at"], vn(2026, 3, 16, 17, 0))


@pytest.mark.parametrize(
    "value", ["31/02/2026", "2026-02-30", "02/03/2026 24:10", "20261302083015", "hôm qua"]
)
def test_every_bad_date_lists_the_accepted_formats(settings: Settings, value: str) -> None:
    """31/02 matches dd/mm/yyyy but is no day: the reason says why and still lists the forms."""
    _, problems = normalize(settings, due_at=value)
    (name, reason), *_ = problems
    assert name == "due_at"
    assert "ISO 8601, dd/mm/yyyy, dd/mm/yyyy HH:MM[:SS], yyyyMMddHHmmss" in reason
    assert repr(value) in reason


def test_bad_day_reason_in_full(settings: Settings) -> None:
    _, problems = normalize(settings, received_at="31/02/2026 08:00")
    assert problems == [
        (
            "received_at",
            "not a valid date: '31/02/2026 08:00' (that month has no such day); expected a "
            "date as ISO 8601, dd/mm/yyyy, dd/mm/yyyy HH:MM[:SS], yyyyMMddHHmmss",
        )
    ]


@pytest.fixture
def namesakes(tmp_path: Path) -> Settings:
    """small_config plus two officials named Trần Văn Hai (hai1 in STP, hai2 in SXD)."""
    from tests.conftest import SMALL_CONFIG

    path = tmp_path / "namesakes.yaml"
    path.write_text(
        SMALL_CONFIG.replace(
            "officials:\n",
            "officials:\n"
            "  - {id: hai1, name: Trần Văn Hai, unit: STP}\n"
            "  - {id: hai2, name: Trần Văn Hai, unit: SXD}\n",
        ),
        encoding="utf-8",
    )
    return load_settings(path)


@pytest.mark.parametrize("name", ["assignee", "step_handler"])
@pytest.mark.parametrize(
    "value", ["Nguyễn Văn Chuyên", "nguyen van chuyen", "  NGUYỄN VĂN CHUYÊN ", "chuyenvien"]
)
def test_an_official_given_by_full_name_is_resolved(
    namesakes: Settings, name: str, value: str
) -> None:
    """Only chuyenvien is named Nguyễn Văn Chuyên: the name (compared folded) is that id."""
    problems = RowProblems()
    out = normalize_case(base(**{name: value}), namesakes, problems)
    assert (problems.problems, problems.warnings) == ([], [])
    assert out[name] == "chuyenvien"


@pytest.mark.parametrize("name", ["assignee", "step_handler"])
def test_a_shared_name_is_kept_with_a_warning(namesakes: Settings, name: str) -> None:
    """Two officials are Trần Văn Hai: the row is taken (not rejected), the value kept as written
    so the engine's unknown_official finding names it, and a warning says why."""
    problems = RowProblems()
    out = normalize_case(base(**{name: "Trần Văn Hai"}), namesakes, problems)
    assert problems.problems == []
    assert not problems  # a warning does not reject the row
    assert problems.warnings == [
        (
            name,
            "'Trần Văn Hai' is the name of 2 officials (hai1, hai2); kept as given: write the "
            "official's id",
        )
    ]
    assert out[name] == "Trần Văn Hai"


def test_an_unknown_official_is_kept_silently(namesakes: Settings) -> None:
    problems = RowProblems()
    out = normalize_case(base(assignee="Lê Thị Mới"), namesakes, problems)
    assert (problems.problems, problems.warnings, out["assignee"]) == ([], [], "Lê Thị Mới")
