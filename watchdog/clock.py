"""Time as a dependency: every component asks a Clock for `now`, never the system directly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that stands still until moved: tests, `--now`, `simulate` and the demo."""

    def __init__(self, at: datetime):
        if at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta) -> None:
        self.at += delta

    def set(self, at: datetime) -> None:
        self.at = at


class OffsetClock:
    """Time that started at `start` and runs on at the real pace: `watchdog run --now T`
    (demos and replays: the daemon behaves as if it had been started at T)."""

    def __init__(self, start: datetime):
        import time

        if start.tzinfo is None:
            raise ValueError("OffsetClock needs an aware datetime")
        self._start = start
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        import time

        return self._start + timedelta(seconds=time.monotonic() - self._t0)
