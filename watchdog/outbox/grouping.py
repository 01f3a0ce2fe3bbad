"""Grouping firings into messages (SPEC 7), pure so `simulate` and the daemon agree.

Outside office hours a non-urgent item waits for the recipient's next working instant. The first
item for a (recipient, channel) opens a group; every item released until `window` later joins
it, and the group goes out as one message at the window's end, its cases most urgent first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from watchdog.config import Settings


@dataclass(frozen=True, slots=True)
class Item:
    """One case of one stage for one recipient on one channel."""

    recipient: str
    channel: str
    address: str | None
    case_code: str
    stage: str
    due: datetime | None
    urgent: bool
    ready_at: datetime


@dataclass
class Message:
    at: datetime
    recipient: str
    channel: str
    address: str | None
    items: list[Item] = field(default_factory=list)

    @property
    def case_codes(self) -> list[str]:
        seen: list[str] = []
        for item in self.items:
            if item.case_code not in seen:
                seen.append(item.case_code)
        return seen

    @property
    def stages(self) -> list[str]:
        return list(dict.fromkeys(i.stage for i in self.items))


def release_at(item: Item, settings: Settings) -> datetime:
    """When an item may go out: at once if urgent or quiet hours are off, else when the
    recipient's desk is open (office hours, and Saturday mornings where the desk opens)."""
    if item.urgent or not settings.config.delivery.quiet_hours:
        return item.ready_at
    official = settings.officials.get(item.recipient)
    calendar = settings.calendar_for(official.unit if official else None)
    return calendar.next_desk_instant(item.ready_at)


def urgency(item: Item) -> tuple:
    return urgency_key(item.urgent, item.due, item.case_code)


def urgency_key(urgent: bool, due: datetime | None, case_code: str) -> tuple:
    """Most urgent first: urgent stages, then the earliest due, then no due at all."""
    return (not urgent, due is None, due or datetime.min, case_code)


def opens(release: datetime, window: timedelta) -> tuple[datetime, datetime]:
    """A message opened by an item released at `release`: (opened, goes out at)."""
    return release, release + window


def joins(release: datetime, opened: datetime, until: datetime) -> bool:
    """Whether an item released at `release` joins a message open from `opened` to `until`."""
    return opened <= release <= until


def group(
    items: Iterable[Item], settings: Settings, window: timedelta | None = None
) -> list[Message]:
    window = settings.config.delivery.group_window if window is None else window
    released = sorted(((release_at(i, settings), i) for i in items), key=lambda p: p[0])
    open_groups: dict[tuple[str, str], Message] = {}
    messages: list[Message] = []
    for at, item in released:
        key = (item.recipient, item.channel)
        msg = open_groups.get(key)
        if msg is None or not joins(at, msg.at - window, msg.at):
            msg = Message(opens(at, window)[1], item.recipient, item.channel, item.address)
            open_groups[key] = msg
            messages.append(msg)
        msg.items.append(item)
    for msg in messages:
        msg.items.sort(key=urgency)
    messages.sort(key=lambda m: (m.at, m.recipient, m.channel))
    return messages
