"""Who gets a stage's message, and on which channel (pure, from the directory in Settings)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from watchdog.config import Settings
from watchdog.engine.rules import CHANNEL_ORDER, Stage

MAX_DEPUTY_HOPS = 3


@dataclass(frozen=True, slots=True)
class Delivery:
    """One recipient on one channel: `address` is the e-mail address or chat id to use."""

    recipient: str  # official id or e-mail address
    channel: str
    address: str | None


def _heads_from(settings: Settings, unit_code: str | None, *, above: bool) -> tuple[str, ...]:
    """Heads of the nearest unit with heads, starting at the unit itself or at its parent."""
    seen: set[str] = set()
    cur = unit_code
    if above and cur in settings.units:
        cur = settings.units[cur].parent
    while cur is not None and cur in settings.units and cur not in seen:
        seen.add(cur)
        unit = settings.units[cur]
        if unit.heads:
            return unit.heads
        cur = unit.parent
    return ()


def _head_unit(settings: Settings, unit_code: str | None) -> str | None:
    cur, seen = unit_code, set()
    while cur is not None and cur in settings.units and cur not in seen:
        seen.add(cur)
        if settings.units[cur].heads:
            return cur
        cur = settings.units[cur].parent
    return None


def stand_in(settings: Settings, official_id: str, on: date) -> str:
    """The official, or their deputy (and the deputy's deputy) while they are absent."""
    current = official_id
    for _ in range(MAX_DEPUTY_HOPS):
        o = settings.officials.get(current)
        if o is None or not o.is_absent(on) or o.deputy is None:
            return current
        current = o.deputy
    return current


def resolve_recipients(
    names: Sequence[str],
    settings: Settings,
    *,
    unit_code: str,
    assignee: str | None,
    step_handler: str | None,
    on: date,
) -> list[str]:
    """Official ids and addresses for a stage's `notify`, deputies in, duplicates out.

    unit_head = heads of the nearest unit (the case's own first) that has heads; for a step
    stage the unit is the step handler's. agency_head = heads of the nearest unit above that.
    """
    out: list[str] = []
    head_unit = _head_unit(settings, unit_code)
    for name in names:
        if name == "assignee":
            found: Sequence[str] = (assignee,) if assignee else ()
        elif name == "step_handler":
            found = (step_handler,) if step_handler else ()
        elif name == "unit_head":
            found = settings.units[head_unit].heads if head_unit else ()
        elif name == "agency_head":
            found = _heads_from(settings, head_unit or unit_code, above=True)
        elif name == "supervisors":
            found = settings.config.supervisors
        else:
            found = (name,)
        for who in found:
            who = stand_in(settings, who, on) if who in settings.officials else who
            if who not in out:
                out.append(who)
    return out


def deliveries_for(recipient: str, stage: Stage, settings: Settings) -> list[Delivery]:
    """The first channel the recipient can be reached on, or all of them with all_channels."""
    channels = settings.channels
    wanted = stage.channels or CHANNEL_ORDER
    official = settings.officials.get(recipient)
    out = []
    for channel in wanted:
        if getattr(channels, channel) is None:
            continue
        if channel == "telegram":
            address = official.telegram if official else None
        elif channel == "email":
            address = official.email if official else (recipient if "@" in recipient else None)
        else:
            address = recipient
        if address:
            out.append(Delivery(recipient, channel, str(address)))
            if not stage.all_channels:
                break
    return out
