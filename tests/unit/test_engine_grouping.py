"""Grouping firings into messages (docs/engine.md "Simulation", SPEC 7): quiet hours, windows,
most urgent case first. Default VN calendar: 07:00-11:30, 13:30-17:00; 24/11/2026 is a public
holiday (Vietnam Cultural Day), Tết 2026 is 16-20/02.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from watchdog.config import Settings, load_settings
from watchdog.outbox.grouping import Item, group

VN = ZoneInfo("Asia/Ho_Chi_Minh")

CONFIG = """\
timezone: Asia/Ho_Chi_Minh
calendars:
  default: {}
units:
  - {code: STP, name: Sở Tư pháp, heads: [giamdoc]}
officials:
  - {id: giamdoc, name: Giám đốc, unit: STP, email: gd@stp.vn, telegram: 1001}
  - {id: cv1, name: Chuyên viên 1, unit: STP, email: cv1@stp.vn, telegram: 2001}
channels:
  file: {dir: out}
  email: {host: localhost, from: a@b.vn}
  telegram: {token: "123:abc"}
"""


def settings_of(tmp_path, delivery: str = "") -> Settings:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG + delivery, encoding="utf-8")
    return load_settings(path, env={})


@pytest.fixture
def settings(tmp_path) -> Settings:
    return settings_of(tmp_path)  # delivery defaults: quiet_hours on, group_window 5 min


def vn(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=VN)


def item(
    case: str,
    ready: datetime,
    *,
    due: datetime | None = None,
    urgent: bool = False,
    recipient: str = "cv1",
    channel: str = "telegram",
    stage: str = "mac_dinh/due_soon",
) -> Item:
    address = {"telegram": "2001", "email": "cv1@stp.vn"}.get(channel, recipient)
    return Item(recipient, channel, address, case, stage, due, urgent, ready)


def test_items_within_the_window_become_one_message(settings) -> None:
    items = [
        item("HS-1", vn(2026, 3, 3, 9), due=vn(2026, 3, 20, 17)),
        item("HS-2", vn(2026, 3, 3, 9, 2), due=vn(2026, 3, 10, 17), stage="mac_dinh/overdue"),
        item("HS-4", vn(2026, 3, 3, 9, 3)),  # no due: after every case with one
        item("HS-3", vn(2026, 3, 3, 9, 4, 59), due=vn(2026, 3, 25, 17), urgent=True),
    ]
    (msg,) = group(items, settings)
    # the first item opens the group at 09:00; the message goes at 09:00 + 5 min
    assert msg.at == vn(2026, 3, 3, 9, 5)
    assert (msg.recipient, msg.channel, msg.address) == ("cv1", "telegram", "2001")
    # most urgent first: urgent, then the earliest due
    assert msg.case_codes == ["HS-3", "HS-2", "HS-1", "HS-4"]
    assert msg.stages == ["mac_dinh/due_soon", "mac_dinh/overdue"]


def test_input_order_does_not_matter(settings) -> None:
    items = [
        item("HS-2", vn(2026, 3, 3, 9, 3), due=vn(2026, 3, 10, 17)),
        item("HS-1", vn(2026, 3, 3, 9), due=vn(2026, 3, 11, 17)),
    ]
    (msg,) = group(items, settings)
    assert msg.at == vn(2026, 3, 3, 9, 5)
    assert msg.case_codes == ["HS-2", "HS-1"]


def test_separate_groups_per_recipient_channel_and_window(settings) -> None:
    items = [
        item("HS-1", vn(2026, 3, 3, 9)),
        item("HS-2", vn(2026, 3, 3, 9, 6)),  # after 09:05: a new group, sent 09:11
        item("HS-3", vn(2026, 3, 3, 9, 1), channel="email"),
        item("HS-4", vn(2026, 3, 3, 9, 2), recipient="giamdoc", channel="file"),
    ]
    got = [(m.at, m.recipient, m.channel, m.case_codes) for m in group(items, settings)]
    assert got == [
        (vn(2026, 3, 3, 9, 5), "cv1", "telegram", ["HS-1"]),
        (vn(2026, 3, 3, 9, 6), "cv1", "email", ["HS-3"]),
        (vn(2026, 3, 3, 9, 7), "giamdoc", "file", ["HS-4"]),
        (vn(2026, 3, 3, 9, 11), "cv1", "telegram", ["HS-2"]),
    ]


def test_same_case_twice_is_listed_once(settings) -> None:
    items = [
        item("HS-1", vn(2026, 3, 3, 9), stage="mac_dinh/due_soon"),
        item("HS-1", vn(2026, 3, 3, 9, 1), stage="mac_dinh/apology_needed"),
    ]
    (msg,) = group(items, settings)
    assert msg.case_codes == ["HS-1"]
    assert len(msg.items) == 2


@pytest.mark.parametrize(
    ("ready", "sent"),
    [
        # Tue 03/03 20:00 -> Wed 04/03 07:00 opening, + 5 min
        (vn(2026, 3, 3, 20), vn(2026, 3, 4, 7, 5)),
        # lunch break 12:00 -> 13:30
        (vn(2026, 3, 3, 12), vn(2026, 3, 3, 13, 35)),
        # before opening 06:00 -> 07:00 the same day
        (vn(2026, 3, 3, 6), vn(2026, 3, 3, 7, 5)),
        # Fri 06/03 18:00 -> Mon 09/03 07:00
        (vn(2026, 3, 6, 18), vn(2026, 3, 9, 7, 5)),
        # Mon 23/11/2026 18:00 -> Tue 24/11 is a holiday -> Wed 25/11 07:00
        (vn(2026, 11, 23, 18), vn(2026, 11, 25, 7, 5)),
        # Fri 13/02/2026 18:00 -> Tết 16-20/02 -> Mon 23/02 07:00
        (vn(2026, 2, 13, 18), vn(2026, 2, 23, 7, 5)),
        # inside office hours: at once
        (vn(2026, 3, 3, 16, 59), vn(2026, 3, 3, 17, 4)),
    ],
)
def test_non_urgent_items_wait_for_office_hours(settings, ready, sent) -> None:
    (msg,) = group([item("HS-1", ready)], settings)
    assert msg.at == sent
    # urgent items ignore quiet hours
    (msg,) = group([item("HS-1", ready, urgent=True)], settings)
    assert msg.at == ready + timedelta(minutes=5)


def test_quiet_hours_apply_to_address_recipients(settings) -> None:
    (msg,) = group(
        [item("HS-1", vn(2026, 3, 3, 20), recipient="tt@tinh.vn", channel="email")], settings
    )
    assert msg.at == vn(2026, 3, 4, 7, 5)


def test_items_held_overnight_go_together(settings) -> None:
    items = [
        item("HS-1", vn(2026, 3, 3, 19), due=vn(2026, 3, 12, 17)),
        item("HS-2", vn(2026, 3, 3, 22), due=vn(2026, 3, 5, 17)),
        item("HS-3", vn(2026, 3, 3, 22), urgent=True),  # goes at once, alone
    ]
    got = [(m.at, m.case_codes) for m in group(items, settings)]
    assert got == [
        (vn(2026, 3, 3, 22, 5), ["HS-3"]),
        (vn(2026, 3, 4, 7, 5), ["HS-2", "HS-1"]),
    ]


def test_quiet_hours_off_sends_at_once(tmp_path) -> None:
    s = settings_of(tmp_path, "delivery: {quiet_hours: false}\n")
    (msg,) = group([item("HS-1", vn(2026, 3, 3, 20))], s)
    assert msg.at == vn(2026, 3, 3, 20, 5)


def test_group_window_from_config_or_argument(tmp_path) -> None:
    s = settings_of(tmp_path, "delivery: {group_window: 10m}\n")
    items = [item("HS-1", vn(2026, 3, 3, 9)), item("HS-2", vn(2026, 3, 3, 9, 8))]
    (msg,) = group(items, s)
    assert msg.at == vn(2026, 3, 3, 9, 10)
    assert msg.case_codes == ["HS-1", "HS-2"]
    messages = group(items, s, window=timedelta(minutes=2))
    assert [(m.at, m.case_codes) for m in messages] == [
        (vn(2026, 3, 3, 9, 2), ["HS-1"]),
        (vn(2026, 3, 3, 9, 10), ["HS-2"]),
    ]


def test_no_items_no_messages(settings) -> None:
    assert group([], settings) == []
