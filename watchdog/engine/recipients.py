"""Who gets a stage's message, and on which channel (pure, from the directory in Settings)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

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


def named_recipients(
    names: Sequence[str],
    settings: Settings,
    *,
    unit_code: str | None,
    assignee: str | None,
    step_handler: str | None,
) -> list[str]:
    """Official ids and addresses a stage's `notify` names for a case, before stand-ins.

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
        out.extend(found)
    return out


def resolve_recipients(
    names: Sequence[str],
    settings: Settings,
    *,
    unit_code: str,
    assignee: str | None,
    step_handler: str | None,
    on: date,
) -> list[str]:
    """Official ids and addresses for a stage's `notify`, deputies in, duplicates out."""
    out: list[str] = []
    named = named_recipients(
        names, settings, unit_code=unit_code, assignee=assignee, step_handler=step_handler
    )
    for who in named:
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


# ----- reach: whom a stage can reach whatever the case (`watchdog check`) ---------------------

CASE_RECIPIENTS = ("assignee", "step_handler")  # known only from the case
UNIT_RECIPIENTS = ("unit_head", "agency_head")  # depend on the case's unit


@dataclass(frozen=True, slots=True)
class Reach:
    """What a stage's case-independent recipients reach for cases at one unit.

    `nobody` says why the stage reaches none of them on some day (None: someone, every day);
    `lost` names, by index in `notify`, those reaching nobody while the others are reached.
    """

    nobody: str | None
    lost: tuple[tuple[int, str], ...]


class StageReach:
    """Resolves stages with the engine's own code (`named_recipients`, `stand_in`,
    `deliveries_for`) for every day on which a stand-in can change, for `watchdog check`.

    Absences that ended before `since` are ignored (None: every absence counts). Answers are
    cached per stage and nearest unit with heads, which is all the unit changes.
    """

    def __init__(self, settings: Settings, *, since: date | None = None) -> None:
        self.settings = settings
        self.since = since
        self._cache: dict[tuple[int, str | None], Reach] = {}
        self._reachable: dict[tuple[str, tuple[str, ...] | None], bool] = {}
        self._channels = [c for c in CHANNEL_ORDER if getattr(settings.channels, c) is not None]

    def of(self, stage: Stage, unit_code: str | None) -> Reach:
        head = _head_unit(self.settings, unit_code)
        key = (id(stage), head)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._reach(stage, unit_code, head)
        return found

    def _reach(self, stage: Stage, unit_code: str | None, head: str | None) -> Reach:
        s = self.settings
        names = [(k, n) for k, n in enumerate(stage.notify) if n not in CASE_RECIPIENTS]
        named = {
            k: list(
                dict.fromkeys(
                    named_recipients([n], s, unit_code=unit_code, assignee=None, step_handler=None)
                )
            )
            for k, n in names
        }
        first = self.since or date.min
        days = {first}
        for ids in named.values():
            for who in ids:
                days.update(self._turning_days(who))
        nobody: str | None = None
        lost: dict[int, str] = {}
        for day in sorted(d for d in days if d >= first):
            reached, failed = False, []
            for k, n in names:
                why = self._why_not(stage, n, named[k], head, day)
                if why is None:
                    reached = True
                elif why:
                    failed.append((k, n, why))
            if not failed:
                continue
            if not reached and nobody is None:
                nobody = "; ".join(_labelled(n, why) for _, n, why in failed)
            if reached:
                for k, _, why in failed:
                    lost.setdefault(k, why)
        return Reach(nobody, tuple(sorted(lost.items())))

    def _why_not(
        self, stage: Stage, name: str, ids: list[str], head: str | None, day: date
    ) -> str | None:
        """None when `name` reaches someone on `day`, "" when it cannot by construction (no
        unit above the top of the tree), else why it reaches nobody."""
        s = self.settings
        if not ids:
            if name == "supervisors":
                return "no supervisors are configured"
            if head is None:
                return "no unit from it upwards has heads"
            if s.units[head].parent is None:
                return ""  # the heads of the top unit have no agency above them
            return f"no unit above {head} has heads"
        whys = []
        for who in ids:
            stand = stand_in(s, who, day) if who in s.officials else who
            if self._can_reach(stand, stage):
                return None
            channels = " or ".join(
                c for c in (stage.channels or CHANNEL_ORDER) if c in self._channels
            )
            if stand == who:
                whys.append(f"{who} cannot be reached on {channels}")
            else:
                whys.append(
                    f"{who} is absent {self._absence(who, day)} and the stand-in {stand} "
                    f"cannot be reached on {channels}"
                )
        return "; ".join(whys)

    def _can_reach(self, who: str, stage: Stage) -> bool:
        key = (who, stage.channels)
        found = self._reachable.get(key)
        if found is None:
            found = self._reachable[key] = bool(deliveries_for(who, stage, self.settings))
        return found

    def _turning_days(self, official_id: str) -> set[date]:
        """Days on which `stand_in` for this official can change: starts of absences along
        the deputy chain, and the days after they end."""
        out: set[date] = set()
        current: str | None = official_id
        for _ in range(MAX_DEPUTY_HOPS):
            o = self.settings.officials.get(current) if current is not None else None
            if o is None:
                break
            for r in o.absent:
                if self.since is not None and r.end < self.since:
                    continue
                out.add(r.start)
                if r.end < date.max:
                    out.add(r.end + timedelta(days=1))
            current = o.deputy
        return out

    def _absence(self, official_id: str, day: date) -> str:
        o = self.settings.officials[official_id]
        r = next(r for r in o.absent if day in r)
        return f"{r.start.isoformat()}..{r.end.isoformat()}"


def _labelled(name: str, why: str) -> str:
    return f"{name}: {why}" if name in UNIT_RECIPIENTS or name == "supervisors" else why
