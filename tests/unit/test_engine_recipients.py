"""Recipients and channels of a firing (docs/engine.md "Recipients", SPEC 5).

Unit tree: T (heads chutich) > STP (heads giamdoc, phogiamdoc) > STP.HC (heads truongphong) >
STP.HC.MC (no heads); STP > STP.VP (heads chanhvp); T > SXD (no heads).
truongphong is absent 09-10/03/2026 (deputy phophong), phophong is absent 10/03/2026 (deputy
chanhvp). x1 > x2 > x3 > x4 > x5 are all absent on 12/03/2026.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from watchdog.config import Settings, load_settings
from watchdog.domain import Status
from watchdog.engine.deadline import CaseRecord
from watchdog.engine.evaluate import Firing, evaluate
from watchdog.engine.recipients import resolve_recipients, stand_in
from watchdog.engine.rules import load_rules

VN = ZoneInfo("Asia/Ho_Chi_Minh")

DIRECTORY = """\
timezone: Asia/Ho_Chi_Minh
calendars:
  default: {}
units:
  - {code: T, name: UBND tỉnh, heads: [chutich]}
  - {code: STP, name: Sở Tư pháp, parent: T, heads: [giamdoc, phogiamdoc]}
  - {code: STP.HC, name: Phòng Hành chính tư pháp, parent: STP, heads: [truongphong]}
  - {code: STP.HC.MC, name: Bộ phận một cửa, parent: STP.HC}
  - {code: STP.VP, name: Văn phòng Sở, parent: STP, heads: [chanhvp]}
  - {code: SXD, name: Sở Xây dựng, parent: T}
officials:
  - {id: chutich, name: Chủ tịch, unit: T, email: ct@tinh.vn}
  - {id: giamdoc, name: Giám đốc, unit: STP, email: gd@stp.vn, telegram: 1001}
  - {id: phogiamdoc, name: Phó giám đốc, unit: STP, email: pgd@stp.vn}
  - id: truongphong
    name: Trưởng phòng
    unit: STP.HC
    email: tp@stp.vn
    telegram: 1002
    deputy: phophong
    absent: ["2026-03-09..2026-03-10"]
  - id: phophong
    name: Phó phòng
    unit: STP.HC
    email: pp@stp.vn
    deputy: chanhvp
    absent: [{from: 2026-03-10, to: 2026-03-10}]
  - {id: chanhvp, name: Chánh văn phòng, unit: STP.VP, email: cvp@stp.vn}
  - {id: cv1, name: Chuyên viên 1, unit: STP.HC.MC, email: cv1@stp.vn, telegram: 2001}
  - {id: cv2, name: Chuyên viên 2, unit: STP.HC.MC, email: cv2@stp.vn}
  - {id: cv3, name: Chuyên viên 3, unit: STP.VP}
  - {id: cv4, name: Chuyên viên 4, unit: STP.VP, telegram: 4004}
  - {id: x1, name: X1, unit: SXD, deputy: x2, absent: ["2026-03-12..2026-03-12"]}
  - {id: x2, name: X2, unit: SXD, deputy: x3, absent: ["2026-03-12..2026-03-12"]}
  - {id: x3, name: X3, unit: SXD, deputy: x4, absent: ["2026-03-12..2026-03-12"]}
  - {id: x4, name: X4, unit: SXD, deputy: x5, absent: ["2026-03-12..2026-03-12"]}
  - {id: x5, name: X5, unit: SXD}
supervisors: [thanhtra@tinh.vn, chutich]
procedures:
  - {code: "1.001000", name: Mười ngày, limit: 10 working_days}
"""

ALL_CHANNELS = """\
channels:
  file: {dir: out}
  email: {host: localhost, from: a@b.vn}
  telegram: {token: "123:abc"}
"""

NO_TELEGRAM = """\
channels:
  file: {dir: out}
  email: {host: localhost, from: a@b.vn}
"""


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    path = tmp_path_factory.mktemp("recipients") / "config.yaml"
    path.write_text(DIRECTORY + ALL_CHANNELS, encoding="utf-8")
    return load_settings(path, env={})


def vn(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=VN)


def who(settings: Settings, names, unit="STP.HC.MC", assignee="cv1", handler=None, on=None):
    return resolve_recipients(
        names,
        settings,
        unit_code=unit,
        assignee=assignee,
        step_handler=handler,
        on=on or date(2026, 3, 3),
    )


# ----- keywords ------------------------------------------------------------------------------


def test_assignee_and_step_handler(settings) -> None:
    assert who(settings, ["assignee"]) == ["cv1"]
    assert who(settings, ["assignee"], assignee=None) == []
    assert who(settings, ["step_handler"], handler="cv2") == ["cv2"]
    assert who(settings, ["step_handler"]) == []


@pytest.mark.parametrize(
    ("unit", "unit_head", "agency_head"),
    [
        ("STP.HC.MC", ["truongphong"], ["giamdoc", "phogiamdoc"]),  # own unit has no heads
        ("STP.HC", ["truongphong"], ["giamdoc", "phogiamdoc"]),
        ("STP.VP", ["chanhvp"], ["giamdoc", "phogiamdoc"]),
        ("STP", ["giamdoc", "phogiamdoc"], ["chutich"]),
        ("SXD", ["chutich"], []),  # nearest with heads is T, nothing above T
        ("T", ["chutich"], []),
    ],
)
def test_unit_head_and_agency_head(settings, unit, unit_head, agency_head) -> None:
    assert who(settings, ["unit_head"], unit=unit) == unit_head
    assert who(settings, ["agency_head"], unit=unit) == agency_head


def test_supervisors_explicit_ids_and_addresses(settings) -> None:
    assert who(settings, ["supervisors"]) == ["thanhtra@tinh.vn", "chutich"]
    assert who(settings, ["cv3", "so.tp@tinh.vn"]) == ["cv3", "so.tp@tinh.vn"]


def test_duplicates_removed_in_order(settings) -> None:
    names = ["assignee", "unit_head", "truongphong", "supervisors", "chutich"]
    got = who(settings, names, assignee="truongphong")
    assert got == ["truongphong", "thanhtra@tinh.vn", "chutich"]


# ----- absences ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 3, 6), "truongphong"),
        (date(2026, 3, 9), "phophong"),  # truongphong absent, deputy present
        (date(2026, 3, 10), "chanhvp"),  # both absent: the deputy's deputy
        (date(2026, 3, 11), "truongphong"),
    ],
)
def test_absent_official_replaced_on_absent_days_only(settings, day, expected) -> None:
    assert stand_in(settings, "truongphong", day) == expected
    assert who(settings, ["unit_head"], on=day) == [expected]


def test_deputies_up_to_three_hops(settings) -> None:
    # x1, x2, x3, x4 are all absent on 12/03: three hops from x1 end at x4
    assert stand_in(settings, "x1", date(2026, 3, 12)) == "x4"
    assert stand_in(settings, "x3", date(2026, 3, 12)) == "x5"
    assert stand_in(settings, "x1", date(2026, 3, 13)) == "x1"


def test_stand_in_and_duplicates(settings) -> None:
    # On 09/03 the unit head's deputy is phophong, who is also named explicitly: once.
    assert who(settings, ["unit_head", "phophong"], on=date(2026, 3, 9)) == ["phophong"]
    assert who(settings, ["unit_head", "phophong"], on=date(2026, 3, 11)) == [
        "truongphong",
        "phophong",
    ]


# ----- through evaluate: deliveries and channels ---------------------------------------------


def fire(tmp_path: Path, stage: dict, *, now: datetime, channels: str = ALL_CHANNELS, **case_kw):
    """Load one stage (policy p) from a rules file and evaluate one overdue case at `now`.

    The case: procedure 1.001000 (10 working days) received Mon 23/02/2026 08:00 -> due the 10th
    working day after at 08:00: 24, 25, 26, 27/02, 02, 03, 04, 05, 06, 09/03 -> Mon 09/03
    08:00. The stage's condition `overdue: 0` opens at 09/03 08:00:01.
    """
    (tmp_path / "rules.yaml").write_text(
        yaml.safe_dump({"policies": [{"name": "p", "stages": [stage]}]}), encoding="utf-8"
    )
    (tmp_path / "config.yaml").write_text(
        DIRECTORY + channels + "rules: [rules.yaml]\n", encoding="utf-8"
    )
    s = load_settings(tmp_path / "config.yaml", env={})
    stages = load_rules(s, env={}).stages_for(s, "1.001000", "STP.HC.MC", None)
    base = dict(
        case_code="HS-R",
        procedure_code="1.001000",
        unit_code="STP.HC.MC",
        received_at=vn(2026, 2, 23, 8),
        status=Status.IN_PROGRESS,
        assignee="cv1",
    )
    base.update(case_kw)
    e = evaluate(CaseRecord(**base), [], stages, s, {}, now)
    assert len(e.firings) == 1
    return e.firings[0]


def routes(f: Firing) -> list[tuple[str, str, str | None]]:
    return [(d.recipient, d.channel, d.address) for d in f.deliveries]


def overdue_stage(**kw) -> dict:
    return {"id": "od", "when": {"overdue": "0 working_days"}, **kw}


def test_first_reachable_channel(tmp_path) -> None:
    notify = ["assignee", "cv2", "cv3", "cv4", "so.tp@tinh.vn"]
    f = fire(tmp_path, overdue_stage(notify=notify), now=vn(2026, 3, 11, 9))
    assert routes(f) == [
        ("cv1", "telegram", "2001"),  # has a chat id: telegram first
        ("cv2", "email", "cv2@stp.vn"),  # no chat id: email
        ("cv3", "file", "cv3"),  # neither: file always works
        ("cv4", "telegram", "4004"),
        ("so.tp@tinh.vn", "email", "so.tp@tinh.vn"),
    ]


def test_stage_channels_limit_the_choice(tmp_path) -> None:
    notify = ["assignee", "cv3", "cv4"]
    f = fire(
        tmp_path, overdue_stage(notify=notify, channels=["email", "file"]), now=vn(2026, 3, 11, 9)
    )
    assert routes(f) == [
        ("cv1", "email", "cv1@stp.vn"),
        ("cv3", "file", "cv3"),
        ("cv4", "file", "cv4"),
    ]


def test_recipient_unreachable_on_the_stage_channels(tmp_path) -> None:
    f = fire(
        tmp_path,
        overdue_stage(notify=["cv2", "cv1"], channels=["telegram"]),
        now=vn(2026, 3, 11, 9),
    )
    assert routes(f) == [("cv1", "telegram", "2001")]


def test_all_channels(tmp_path) -> None:
    notify = ["assignee", "cv3", "so.tp@tinh.vn"]
    f = fire(tmp_path, overdue_stage(notify=notify, all_channels=True), now=vn(2026, 3, 11, 9))
    assert routes(f) == [
        ("cv1", "telegram", "2001"),
        ("cv1", "email", "cv1@stp.vn"),
        ("cv1", "file", "cv1"),
        ("cv3", "file", "cv3"),
        ("so.tp@tinh.vn", "email", "so.tp@tinh.vn"),
        ("so.tp@tinh.vn", "file", "so.tp@tinh.vn"),
    ]


def test_unconfigured_channels_are_skipped(tmp_path) -> None:
    # telegram is not configured: cv1's chat id is not used
    f = fire(
        tmp_path, overdue_stage(notify=["assignee"]), now=vn(2026, 3, 11, 9), channels=NO_TELEGRAM
    )
    assert routes(f) == [("cv1", "email", "cv1@stp.vn")]
    f = fire(
        tmp_path,
        overdue_stage(notify=["assignee"], all_channels=True),
        now=vn(2026, 3, 11, 9),
        channels=NO_TELEGRAM,
    )
    assert routes(f) == [("cv1", "email", "cv1@stp.vn"), ("cv1", "file", "cv1")]


@pytest.mark.parametrize(
    ("now", "head"),
    [
        (vn(2026, 3, 9, 9), "phophong"),
        (vn(2026, 3, 10, 9), "chanhvp"),
        (vn(2026, 3, 11, 9), "truongphong"),
    ],
)
def test_deputy_on_the_day_of_the_firing(tmp_path, now, head) -> None:
    f = fire(tmp_path, overdue_stage(notify=["unit_head"], channels=["email"]), now=now)
    assert [d.recipient for d in f.deliveries] == [head]


def test_agency_and_supervisors_through_evaluate(tmp_path) -> None:
    stage = overdue_stage(notify=["agency_head", "supervisors"], channels=["email"])
    f = fire(tmp_path, stage, now=vn(2026, 3, 11, 9))
    assert routes(f) == [
        ("giamdoc", "email", "gd@stp.vn"),
        ("phogiamdoc", "email", "pgd@stp.vn"),
        ("thanhtra@tinh.vn", "email", "thanhtra@tinh.vn"),
        ("chutich", "email", "ct@tinh.vn"),
    ]
