"""Progress on stderr: shown to a person at a terminal, silent in cron."""

from __future__ import annotations

import io

from watchdog.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_a_long_run_shows_done_rate_and_time_left() -> None:
    out, clock = io.StringIO(), Clock()
    p = Progress("re-planning", total=100_000, unit="cases", stream=out, enabled=True, clock=clock)
    clock.t = 1.0
    p.update(10_000)  # quick so far: nothing yet
    assert out.getvalue() == ""
    clock.t = 4.0
    p.update(40_000)  # 10,000 cases/s, 60,000 left: 6 s
    assert out.getvalue() == "\rre-planning: 40,000/100,000 cases (10,000/s, 6s left)"
    clock.t = 10.0
    p.update(100_000, final=True)
    assert out.getvalue().endswith("\rre-planning: 100,000/100,000 cases (10,000/s)\n")


def test_quiet_when_not_a_terminal() -> None:
    out, clock = io.StringIO(), Clock()  # StringIO is no tty: as under cron
    p = Progress("importing", stream=out, clock=clock)
    clock.t = 30.0
    p.update(5_000)
    p.update(6_000, final=True)
    assert out.getvalue() == ""


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_shown_on_a_terminal_without_being_told() -> None:
    """The other side of "quiet when not a terminal": a person watching sees it. Without this
    test a progress line that never showed (the tty check always false) passed everything."""
    out, clock = Terminal(), Clock()
    p = Progress("importing", stream=out, clock=clock)
    clock.t = 3.0
    p.update(6_000)
    # on a real terminal the rest of a longer earlier line is erased (ESC [K)
    assert out.getvalue() == "\rimporting: 6,000 rows (2,000/s)\x1b[K"


def test_refreshed_at_most_twice_a_second() -> None:
    out, clock = io.StringIO(), Clock()
    p = Progress("re-planning", unit="cases", stream=out, enabled=True, clock=clock)
    clock.t = 2.0
    p.update(2_000)
    clock.t = 2.4  # 0.4 s after the last line: not redrawn
    p.update(2_400)
    assert out.getvalue() == "\rre-planning: 2,000 cases (1,000/s)"
    clock.t = 2.5
    p.update(2_500)
    assert out.getvalue().endswith("\rre-planning: 2,500 cases (1,000/s)")
    assert out.getvalue().count("\r") == 2
