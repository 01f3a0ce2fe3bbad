"""`watchdog simulate`: what the daemon would send between two instants, writing nothing.

The same `evaluate` the daemon uses runs over an in-memory copy of the open cases and of what
was already fired, tick by tick, and the firings go through the same grouping as the outbox.
Cases do not change during a simulation: no imports, events or acknowledgements arrive.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from datetime import datetime, timedelta

from watchdog.config import Settings
from watchdog.engine.evaluate import Fired, evaluate
from watchdog.engine.rules import RuleSet
from watchdog.outbox.grouping import Item, Message, group
from watchdog.store import Store
from watchdog.store.cases import open_cases
from watchdog.store.firings import fired_so_far


def simulate(
    store: Store,
    settings: Settings,
    rules: RuleSet,
    start: datetime,
    end: datetime,
    step: timedelta,
) -> list[Message]:
    facts = list(open_cases(store))
    fired = fired_so_far(store, [r.id for r, _ in facts])
    messages = group(_items(facts, fired, settings, rules, start, end, step), settings)
    # what is held past T2 (quiet hours, an open group) is not sent between T1 and T2
    return [m for m in messages if m.at <= end]


def ticks(start: datetime, end: datetime, step: timedelta) -> Iterator[datetime]:
    t = start
    while t <= end:
        yield t
        t += step


def _items(facts, fired, settings: Settings, rules: RuleSet, start, end, step) -> Iterator[Item]:
    queue = [(start, i) for i in range(len(facts))]
    heapq.heapify(queue)
    for t in ticks(start, end, step):
        while queue and queue[0][0] <= t:
            _, i = heapq.heappop(queue)
            record, events = facts[i]
            stages = rules.stages_for(
                settings, record.procedure_code, record.unit_code, record.submission_channel
            )
            known = fired.setdefault(record.id, {})
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
            if ev.next_check_at is not None and ev.next_check_at <= end:
                # the daemon notices at the first tick at or after the instant
                heapq.heappush(queue, (max(ev.next_check_at, t + timedelta(microseconds=1)), i))
