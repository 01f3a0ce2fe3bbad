"""`import watchdog` must be this project, not the unrelated PyPI package of the same name."""

from pathlib import Path

import watchdog

ROOT = Path(__file__).resolve().parents[2]


def test_import_resolves_to_this_repository() -> None:
    assert Path(watchdog.__file__).resolve().parent == ROOT / "watchdog"


def test_it_is_the_deadline_watchdog() -> None:
    from watchdog.calendar import WorkingCalendar
    from watchdog.cli import main

    assert callable(main)
    assert WorkingCalendar().day_seconds == 8 * 3600
