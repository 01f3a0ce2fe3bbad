"""Start-up (issue 11, item 7): `watchdog --help` and `watchdog due` answer fast because they
import only what they use. Checked by what a fresh interpreter imports (`python -X importtime`),
never by wall-clock time, which depends on the machine; bench/startup.py measures the times."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("pydantic", "sqlalchemy", "holidays", "yaml", "alembic", "openpyxl", "jinja2")


def imported(*args: str, cwd: Path) -> set[str]:
    """Top-level packages a fresh `python -X importtime ARGS` imports; the command must succeed."""
    env = {k: v for k, v in os.environ.items() if k not in ("WATCHDOG_CONFIG", "WATCHDOG_LANG")}
    r = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    names = set()
    for line in r.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def heavy(names: set[str]) -> set[str]:
    return names & set(HEAVY)


def test_importing_the_cli_imports_no_heavy_library(tmp_path: Path) -> None:
    assert heavy(imported("-c", "import watchdog.cli", cwd=tmp_path)) == set()


@pytest.mark.parametrize("argv", [["--help"], ["due", "--help"], ["--lang", "en", "--help"]])
def test_help_imports_no_heavy_library(argv: list[str], tmp_path: Path) -> None:
    assert heavy(imported("-m", "watchdog", *argv, cwd=tmp_path)) == set()


def test_due_without_a_configuration_needs_the_calendar_only(tmp_path: Path) -> None:
    """No config file: no pydantic models, no YAML, no database; holidays for the calendar."""
    names = imported(
        "-m", "watchdog", "due", "--received", "13/02/2026 09:00", "--working-days", "3",
        cwd=tmp_path,
    )  # fmt: skip
    assert heavy(names) == {"holidays"}


def test_due_with_a_configuration_opens_no_database(tmp_path: Path) -> None:
    names = imported(
        "-m", "watchdog", "--config", str(ROOT / "config.example.yaml"), "due",
        "--received", "20/11/2026 14:00", "--procedure", "2.000488",
        cwd=tmp_path,
    )  # fmt: skip
    assert heavy(names) == {"holidays", "pydantic", "yaml"}


def test_the_calendar_of_due_without_configuration_is_the_configured_default() -> None:
    """`due` without a file skips the models; its calendar must be the one an empty
    configuration gives."""
    from watchdog.config import default_calendar, empty_settings

    fast, full = default_calendar(), empty_settings().default_calendar
    assert tuple(fast.office_hours) == tuple(full.office_hours)
    for attribute in ("name", "timezone", "cutoff", "country", "saturday_morning"):
        assert getattr(fast, attribute) == getattr(full, attribute), attribute
    assert (fast.extra_holidays, fast.extra_workdays) == (full.extra_holidays, full.extra_workdays)
