"""A one-line progress counter on stderr for long imports and re-plans.

Shown only when stderr is a terminal (an admin watching), never in cron or under a service
manager; refreshed at most twice a second: done, rate and, when the total is known, the time
left.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from watchdog.i18n import _, integer


class Progress:
    def __init__(
        self,
        label: str,
        *,
        total: int | None = None,
        unit: str = "rows",
        stream: TextIO | None = None,
        enabled: bool | None = None,
        clock=time.monotonic,
    ):
        self.stream = stream or sys.stderr
        self.enabled = _is_tty(self.stream) if enabled is None else enabled
        self.label, self.total, self.unit, self.clock = label, total, unit, clock
        self.start = clock()
        self.last = 0.0
        self.shown = False
        self._erase = enabled is None  # a real terminal: clear what a longer line left

    def update(self, done: int, *, final: bool = False) -> None:
        now = self.clock()
        if not self.enabled or (not final and now - self.last < 0.5):
            return
        if not self.shown and (final or now - self.start < 2.0):
            return  # quick work stays quiet: only what takes more than a moment shows
        self.last, self.shown = now, True
        self.stream.write("\r" + self.line(done, now) + ("\n" if final else ""))
        self.stream.flush()

    def line(self, done: int, now: float) -> str:
        elapsed = max(now - self.start, 1e-9)
        rate = done / elapsed
        count = integer(done) + (f"/{integer(self.total)}" if self.total else "")
        speed = _("{rate}/s").format(rate=integer(rate))
        if self.total and rate > 0 and done < self.total:
            left = _("{duration} left").format(duration=_duration((self.total - done) / rate))
            speed = f"{speed}, {left}"
        return (
            f"{self.label}: {count} {self.unit} ({speed})\x1b[K"
            if self._erase
            else (f"{self.label}: {count} {self.unit} ({speed})")
        )


def _duration(seconds: float) -> str:
    s = int(seconds + 0.5)
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
