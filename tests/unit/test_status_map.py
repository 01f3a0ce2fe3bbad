"""`import.status_map`, `import.channel_map` and `import.encoding` (SPEC 3, 6; issue 11 item 4),
and procedure codes YAML reads as numbers (`check`).

Labels are compared folded: no case, accents, spaces or punctuation ("Đang thụ lý", "DANG THU
LY" and "dang-thu-ly" are one label). Order: the configured map, then the built-in labels of
common one-stop software, then the portal's codes 1-10 and names (domain.parse_status).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SMALL_CONFIG
from watchdog.config import ConfigError, Settings, load_settings
from watchdog.domain import Status
from watchdog.sources.fields import RowProblems, normalize_case


def settings_with(tmp_path: Path, extra: str = "") -> Settings:
    path = tmp_path / "config.yaml"
    path.write_text(SMALL_CONFIG + extra, encoding="utf-8")
    return load_settings(path)


def normalize(settings: Settings, **values: Any) -> tuple[dict[str, Any], RowProblems]:
    raw = {
        "case_code": "HS-1",
        "procedure_code": "2.000488",
        "unit_code": "STP",
        "received_at": "02/03/2026 08:00",
        "finished_at": "03/03/2026 10:00",  # so that 9 and 10 need nothing more
    } | values
    problems = RowProblems()
    return normalize_case(raw, settings, problems), problems


@pytest.mark.parametrize(
    ("label", "code"),
    [
        ("Chờ bổ sung", 5),
        ("CHO BO SUNG", 5),  # folded: no accents, any case
        ("Đang giải quyết", 4),
        ("Đang xử lý", 4),
        ("Đã hoàn thành", 9),
        ("Hoàn thành", 9),
        ("Đã trả kết quả", 10),
        ("Rút hồ sơ", 7),
        ("Dừng xử lý", 8),
        ("Chờ thực hiện nghĩa vụ tài chính", 6),
        ("Mới tiếp nhận", 2),
        ("Trả lại/Không tiếp nhận", 3),
        ("Không tiếp nhận", 3),
        # the portal's own names and codes still work
        ("Yêu cầu bổ sung giấy tờ", 5),
        ("4", 4),
        (4.0, 4),  # a spreadsheet's number
    ],
)
def test_built_in_status_labels(tmp_path: Path, label: object, code: int) -> None:
    out, problems = normalize(settings_with(tmp_path), status=label)
    assert problems.problems == []
    assert out["status"] == code


@pytest.mark.parametrize(
    ("label", "channel"),
    [
        ("Dịch vụ công trực tuyến toàn trình", "online"),
        ("Trực tuyến toàn trình", "online"),
        ("Trực tuyến một phần", "online"),
        ("Trực tiếp", "direct"),
        ("Qua bưu chính", "postal"),
        ("Bưu chính công ích", "postal"),
        ("qua buu chinh", "postal"),
        (2.0, "online"),
    ],
)
def test_built_in_channel_labels(tmp_path: Path, label: object, channel: str) -> None:
    out, problems = normalize(settings_with(tmp_path), submission_channel=label)
    assert problems.problems == []
    assert out["submission_channel"] == channel


def test_configured_labels_come_first(tmp_path: Path) -> None:
    """The configured map adds labels ("Đang thụ lý" -> 4, "Nộp tại quầy" -> 1 = direct) and
    overrides built-in ones: this office's "Hoàn thành" means returned (10), not 9."""
    settings = settings_with(
        tmp_path,
        'import:\n  status_map: {"Đang thụ lý": 4, "Hoàn thành": 10}\n'
        '  channel_map: {"Nộp tại quầy": 1, "Zalo": online}\n',
    )
    assert settings.config.import_.status_map == {"Đang thụ lý": 4, "Hoàn thành": 10}
    assert settings.config.import_.channel_map == {"Nộp tại quầy": "direct", "Zalo": "online"}
    assert normalize(settings, status="dang thu ly")[0]["status"] == Status.IN_PROGRESS
    assert normalize(settings, status="Hoàn thành", returned_at="04/03/2026")[0]["status"] == 10
    assert normalize(settings, submission_channel="NỘP TẠI QUẦY")[0]["submission_channel"] == (
        "direct"
    )
    assert normalize(settings, submission_channel="zalo")[0]["submission_channel"] == "online"


def test_an_unknown_label_is_still_refused(tmp_path: Path) -> None:
    settings = settings_with(tmp_path)
    _, problems = normalize(settings, status="Đang chờ ký", submission_channel="fax")
    assert problems.problems == [
        (
            "submission_channel",
            "expected a channel 1 (direct), 2 (online) or 3 (postal) or its name, got 'fax'",
        ),
        ("status", "expected a portal status code 1-10 or its name, got 'Đang chờ ký'"),
    ]


def test_import_defaults(tmp_path: Path) -> None:
    conf = settings_with(tmp_path).config.import_
    assert (conf.status_map, conf.channel_map, conf.encoding) == ({}, {}, "utf-8")


def check_errors(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_settings(path)
    return [p.replace(f"{path}:", "config.yaml:") for p in e.value.problems]


def test_bad_import_section_is_a_located_config_error(tmp_path: Path) -> None:
    """Line 2: a status no portal code has; line 3: a channel that does not exist; line 4: an
    encoding Python does not know; line 5: an unknown key."""
    problems = check_errors(
        tmp_path,
        "import:\n"
        '  status_map: {"Đang thụ lý": 11}\n'
        '  channel_map: {"Zalo": 4}\n'
        "  encoding: tcvn3\n"
        "  delimiter: ';'\n",
    )
    assert problems == [
        "config.yaml:2: import.status_map.Đang thụ lý: expected a portal status code 1-10 or its "
        "name, got 11",
        "config.yaml:3: import.channel_map.Zalo: expected a channel 1 (direct), 2 (online) or 3 "
        "(postal) or its name, got 4",
        "config.yaml:4: import.encoding: unknown encoding 'tcvn3'; use utf-8 (the default), "
        "cp1258 or utf-16, got 'tcvn3'",
        "config.yaml:5: import.delimiter: unknown key",
    ]


def test_one_label_two_codes_is_a_config_error(tmp_path: Path) -> None:
    """ "Đang thụ lý" and "dang thu ly" fold to the same label: two codes for it is ambiguous."""
    problems = check_errors(
        tmp_path, 'import:\n  status_map: {"Đang thụ lý": 4, "dang thu ly": 5}\n'
    )
    assert problems == [
        "config.yaml:2: import.status_map: 'Đang thụ lý' and 'dang thu ly' are the same label "
        "(compared without case, accents or spaces) with different codes"
    ]


# ----- procedure codes YAML reads as numbers ------------------------------------------------------


def test_unquoted_national_codes_are_restored(tmp_path: Path) -> None:
    """YAML reads `code: 1.012790` as the number 1.01279 and `2.000488` as 2.000488: both come
    back in the d.dddddd form; a quoted code and a whole number are taken as written."""
    path = tmp_path / "config.yaml"
    path.write_text(
        "procedures:\n"
        "  - {code: 1.012790, name: A, limit: 5 working_days}\n"
        "  - {code: 2.000488, name: B, limit: 10 working_days}\n"
        '  - {code: "1.1", name: C, limit: 1 working_days}\n'
        "  - {code: 15, name: D, limit: 1 working_days}\n",
        encoding="utf-8",
    )
    assert list(load_settings(path).procedures) == ["1.012790", "2.000488", "1.1", "15"]


def test_a_number_no_national_code_gives_is_refused_where_it_is(tmp_path: Path) -> None:
    """1.0127901 has seven decimals: truncating it would invent a code, so `check` refuses it
    on its line."""
    problems = check_errors(
        tmp_path,
        "procedures:\n"
        "  - {code: 2.000488, name: B, limit: 10 working_days}\n"
        "  - {code: 1.0127901, name: A, limit: 5 working_days}\n",
    )
    assert problems == [
        "config.yaml:3: procedures[1].code: the number 1.0127901 is no national TTHC code "
        "(d.dddddd, such as 1.012790): write the code as text, got 1.0127901"
    ]
