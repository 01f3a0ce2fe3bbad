"""Firings become outbox items in the engine's own batch transaction (the `on_firings` hook).

Each delivery of a firing (one recipient on one channel) is released when the recipient's desk
opens (quiet hours, unless the stage is urgent: `grouping.release_at`) and joins the message of
that recipient and channel whose group window holds that instant (`grouping.joins`), the rule
`simulate` groups by too.
"""

from __future__ import annotations

from datetime import datetime

from watchdog.config import Settings
from watchdog.engine.evaluate import Firing
from watchdog.engine.runner import OnFirings
from watchdog.outbox.grouping import Item, joins, opens, release_at
from watchdog.store import Store
from watchdog.store.outbox import NewItem, enqueue_alerts


def alerts_hook(store: Store, settings: Settings, now: datetime) -> OnFirings:
    """The `on_firings` callback of a tick or a plan at `now`."""
    window = settings.config.delivery.group_window

    def on_firings(conn, written: list[tuple[int, Firing]]) -> None:
        items = []
        for firing_id, f in written:
            assert f.case_id is not None
            for d in f.deliveries:
                item = Item(
                    d.recipient,
                    d.channel,
                    d.address,
                    f.case_code,
                    f.key.stage,
                    f.due,
                    f.urgent,
                    now,
                )
                items.append(
                    NewItem(
                        firing_id=firing_id,
                        case_id=f.case_id,
                        case_code=f.case_code,
                        stage=f.key.stage,
                        recipient=d.recipient,
                        channel=d.channel,
                        address=d.address or d.recipient,
                        urgent=f.urgent,
                        ready_at=now,
                        release_at=release_at(item, settings),
                    )
                )
        enqueue_alerts(store, conn, items, now, joins, lambda r: opens(r, window))

    return on_firings
