"""`watchdog simulate`: what the daemon would send between two instants, writing nothing.

The same `evaluate` the daemon uses runs over the cases, tick by tick, against what was already
fired, and the firings go through the same grouping as the outbox. Cases do not change during a
simulation: no imports, events or acknowledgements arrive, so each case is simulated on its
own, one page of cases at a time, and only its messages stay in memory.

When the daemon has planned the cases under the current rules, a case is first looked at on the
first tick at or after its stored next check, and a case whose next check is after T2 is not read
at all: nothing can fire for it before then (that is what the next check means). Otherwise
(rules changed since the last plan) every open case is evaluated from T1, as the daemon will
re-plan them all.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from watchdog.config import Settings
from watchdog.engine.evaluate import Fired, evaluate
from watchdog.engine.rules import RuleSet
from watchdog.engine.runner import RULES_HASH_KEY
from watchdog.outbox.grouping import Item, Message, group
from watchdog.store import Store
from watchdog.store.cases import open_cases
from watchdog.store.firings import fired_so_far
from watchdog.store.plans import get_state
from watchdog.store.reads import checked_by


def simulate(
    store: Store,
    settings: Settings,
    rules: RuleSet,
    start: datetime,
    end: datetime,
    step: timedelta,
) -> list[Message]:
    items: list[tuple[datetime, int, Item]] = []
    for page in _pages(store, rules, end):
        fired = fired_so_far(store, [record.id for record, _, _ in page])
        for record, events, next_check in page:
            first = start if next_check is None else _first_tick(start, step, next_check)
            known = fired.get(record.id, {})
            for item in _case_items(record, events, known, settings, rules, first, end, step):
                items.append((item.ready_at, record.id, item))
    items.sort(key=lambda x: (x[0], x[1]))
    messages = group((item for _, _, item in items), settings)
    # what is held past T2 (quiet hours, an open group) is not sent between T1 and T2
    return [m for m in messages if m.at <= end]


def _pages(store: Store, rules: RuleSet, end: datetime) -> Iterable[list]:
    if get_state(store, RULES_HASH_KEY) == rules.hash:
        yield from checked_by(store, end)
        return
    page: list = []
    for record, events in open_cases(store):
        page.append((record, events, None))
        if len(page) == 5000:
            yield page
            page = []
    if page:
        yield page


def _first_tick(start: datetime, step: timedelta, at: datetime) -> datetime:
    """The first tick (start + k x step) at or after `at`."""
    if at <= start:
        return start
    k = -((start - at) // step)  # ceil((at - start) / step)
    return start + k * step


def ticks(start: datetime, end: datetime, step: timedelta) -> Iterator[datetime]:
    t = start
    while t <= end:
        yield t
        t += step


def _case_items(
    record, events, known: dict, settings: Settings, rules: RuleSet, t: datetime, end, step
) -> Iterator[Item]:
    """One case through the ticks from `t`: evaluated at a tick, looked at again on the first
    tick at or after its next check (the daemon notices then)."""
    stages = rules.stages_for(
        settings, record.procedure_code, record.unit_code, record.submission_channel
    )
    while t <= end:
        ev = evaluate(record, events, stages, settings, known, t)
        for f in ev.firings:
            k = (f.key.stage, f.key.step, f.key.version)
            acked = known[k].acknowledged if k in known else False
            known[k] = Fired(f.key.repeat_no, acked, f.fire_at)
            for d in f.deliveries:
                yield Item(
                    d.recipient,
                    d.channel,
                    d.address,
                    f.case_code,
                    f.key.stage,
                    f.due,
                    f.urgent,
                    t,
                )
        if ev.next_check_at is None or ev.next_check_at > end:
            return
        t = (
            _first_tick(start=t + step, step=step, at=ev.next_check_at)
            if (ev.next_check_at > t)
            else t + step
        )
