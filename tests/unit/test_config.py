"""Configuration loading: typed values, env expansion, and errors that point at file:line:path."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import pytest

from watchdog.config import ConfigError, load_settings
from watchdog.durations import Duration, Unit, compute_due

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        load_settings(path, env=env or {})
    return exc.value.problems


def test_example_config_is_accepted() -> None:
    settings = load_settings(ROOT / "config.example.yaml", env={})
    assert len(settings.config.procedures) >= 10
    assert settings.units and settings.officials
    # every unit reaches the root through known parents, in tree order: once each, a parent
    # before its children, one level deeper than it (a flat list of the units passed before)
    tree = [(depth, u.code, u.parent) for depth, u in settings.unit_tree()]
    order = [code for _, code, _ in tree]
    assert sorted(order) == sorted(settings.units)
    depth_of = {}
    for depth, code, parent in tree:
        assert depth == (0 if parent is None else depth_of[parent] + 1), code
        depth_of[code] = depth
    assert max(depth_of.values()) >= 1  # the example has a tree, not only roots


def test_typed_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
calendars:
  default: {office_hours: "07:30-11:30, 13:00-17:00", cutoff: "16:00", saturday_morning: true,
            extra_holidays: [2026-12-31], extra_workdays: [2026-12-27]}
units: [{code: U, name: Unit}]
procedures:
  - code: "1.1"
    name: P
    limit: 15 working_days
    steps: [{code: B1, name: Tiếp nhận, allot: 4 working_hours}]
""",
    )
    s = load_settings(path, env={})
    cal = s.config.calendars["default"]
    assert cal.office_hours == ((time(7, 30), time(11, 30)), (time(13, 0), time(17, 0)))
    assert cal.cutoff == time(16, 0)
    assert cal.extra_holidays == (date(2026, 12, 31),)
    assert cal.saturday_morning is True
    p = s.procedures["1.1"]
    assert p.limit == Duration(15, Unit.WORKING_DAYS)
    assert p.steps[0].allot == Duration(4, Unit.WORKING_HOURS)
    assert s.calendar_for("U").day_seconds == 8 * 3600
    assert not s.calendar_for("U").is_working_day(date(2026, 12, 31))
    assert s.calendar_for("U").is_working_day(date(2026, 12, 27))
    assert s.calendar_for("U").cutoff == time(16, 0)
    assert s.calendar_for("U").is_reception_day(date(2026, 12, 26))  # a Saturday morning


def test_env_expansion_with_default_and_missing(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
database: {url: "${DB_URL:-sqlite:///var/x.db}"}
channels:
  telegram: {token: "${BOT_TOKEN}"}
""",
    )
    s = load_settings(path, env={"BOT_TOKEN": "123:abc"})
    assert s.config.channels.telegram.token == "123:abc"
    assert s.database_url == f"sqlite:///{tmp_path / 'var/x.db'}"
    # a variable that is set wins over the default
    s = load_settings(path, env={"BOT_TOKEN": "1:x", "DB_URL": "postgresql://h/wd"})
    assert s.database_url == "postgresql://h/wd"
    [problem] = problems_of(path, env={})
    assert problem == (
        f"{path}:4: channels.telegram.token: environment variable BOT_TOKEN is not set "
        "(use ${BOT_TOKEN:-default} for a default)"
    )


def test_bad_duration_names_file_line_and_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """units: []
procedures:
  - code: "1.1"
    name: P
    limit: 15 working_days
  - code: "1.2"
    name: Q
    limit: 1 dy
""",
    )
    [problem] = problems_of(path)
    assert problem == (
        f'{path}:8: procedures[1].limit: expected a duration such as "15 working_days", '
        '"4 working_hours", "30 calendar_days" or "0 working_days", got \'1 dy\''
    )


def test_unknown_and_missing_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """units:
  - code: U
    name: Unit
    colour: red
officials:
  - id: a
    unit: U
timezon: Asia/Ho_Chi_Minh
""",
    )
    problems = problems_of(path)
    assert f"{path}:4: units[0].colour: unknown key" in problems
    assert f"{path}:6: officials[0].name: required key is missing" in problems
    assert f"{path}:8: timezon: unknown key" in problems


def test_broken_references(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """units:
  - {code: A, name: A, parent: NOPE, heads: [ghost], calendar: weekend}
  - {code: B, name: B, parent: C}
  - {code: C, name: C, parent: B}
officials:
  - {id: x, name: X, unit: Z, deputy: y}
supervisors: [not-an-address]
""",
    )
    problems = problems_of(path)
    assert f"{path}:2: units[0].parent: unknown unit 'NOPE'" in problems
    assert f"{path}:2: units[0].heads[0]: unknown official 'ghost'" in problems
    assert any(
        p.startswith(f"{path}:2: units[0].calendar: unknown calendar 'weekend'") for p in problems
    )
    assert f"{path}:3: units[1].parent: unit 'B' is its own ancestor" in problems
    assert f"{path}:6: officials[0].unit: unknown unit 'Z'" in problems
    assert f"{path}:6: officials[0].deputy: unknown official 'y'" in problems
    assert any(p.startswith(f"{path}:7: supervisors[0]: expected an official id") for p in problems)


def test_bad_times_and_overlapping_hours(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """calendars:
  default:
    cutoff: "25:00"
  other:
    office_hours: "07:00-12:00, 11:00-17:00"
""",
    )
    problems = problems_of(path)
    assert any(
        p.startswith(f"{path}:3: calendars.default.cutoff: expected a time of day")
        for p in problems
    )
    assert any(
        p.startswith(f"{path}:5: calendars.other.office_hours: office periods overlap")
        for p in problems
    )


def test_procedures_file_errors_name_that_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        "procedures:\n"
        "  - {code: '1', name: P, limit: 3 working_days}\n"
        "  - {code: '2', name: Q, limit: soon}\n",
        "procs.yaml",
    )
    path = write(tmp_path, "procedures_file: procs.yaml\n")
    [problem] = problems_of(path)
    assert problem.startswith(
        f"{(tmp_path / 'procs.yaml').resolve()}:3: [1].limit: expected a duration"
    )


def test_invalid_yaml_and_duplicate_keys(tmp_path: Path) -> None:
    path = write(tmp_path, "units: [\n  {code: A, name: A\n")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}:") and "invalid YAML" in problem
    path = write(tmp_path, "timezone: Asia/Ho_Chi_Minh\ntimezone: UTC\n", "dup.yaml")
    assert problems_of(path) == [f"{path}:2: timezone: duplicate key"]


def test_times_are_not_read_as_base_60_numbers(tmp_path: Path) -> None:
    # YAML 1.1 reads an unquoted 13:30 as 810; we must read the time the admin wrote.
    path = write(tmp_path, "calendars:\n  default: {cutoff: 13:30}\n")
    assert load_settings(path, env={}).config.calendars["default"].cutoff == time(13, 30)


def test_without_channels_the_file_channel_is_the_embedded_default(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, "units: []\n"), env={})
    assert s.channels.file is not None and s.channels.file.dir == "var/outbox"
    assert s.channels.email is None and s.channels.telegram is None
    s = load_settings(write(tmp_path, "channels: {email: {from: a@b.vn}}\n", "e.yaml"), env={})
    assert s.channels.file is None and s.channels.email is not None


# ----- bounds: durations the working calendar (years 1900-2200) can reach ---------------------


def test_limits_and_allotments_beyond_ten_years_are_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """procedures:
  - code: "1.1"
    name: P
    limit: 25000 working_days
    steps: [{code: B1, name: Tiếp nhận, allot: 20001 working_hours}]
  - {code: "1.2", name: Q, limit: 3651 calendar_days}
  - code: "1.3"
    name: R
    limit: 1200001 working_minutes
""",
    )
    problems = problems_of(path)
    bound = "(about ten years; the working calendar covers the years 1900-2200)"
    assert problems == [
        f"{path}:4: procedures[0].limit: expected at most 2,500 working_days {bound}, "
        "got '25000 working_days'",
        f"{path}:5: procedures[0].steps[0].allot: expected at most 20,000 working_hours "
        f"{bound}, got '20001 working_hours'",
        f"{path}:6: procedures[1].limit: expected at most 3,650 calendar_days {bound}, "
        "got '3651 calendar_days'",
        f"{path}:9: procedures[2].limit: expected at most 1,200,000 working_minutes {bound}, "
        "got '1200001 working_minutes'",
    ]


def test_limits_at_the_bounds_are_accepted(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """procedures:
  - code: "1.1"
    name: P
    limit: 2500 working_days
    steps: [{code: B1, name: Tiếp nhận, allot: 20000 working_hours}]
  - {code: "1.2", name: Q, limit: 3650 calendar_days}
  - {code: "1.3", name: R, limit: 0 working_days}
""",
    )
    s = load_settings(path, env={})
    assert s.procedures["1.1"].limit == Duration(2500, Unit.WORKING_DAYS)
    assert s.procedures["1.2"].limit == Duration(3650, Unit.CALENDAR_DAYS)
    # The largest limits still land well inside the calendar for a case received now.
    received = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=7)))
    cal = s.default_calendar
    assert compute_due(cal, received, s.procedures["1.1"].limit).year < 2050
    assert compute_due(cal, received, s.procedures["1.2"].limit).year == 2036


def test_bounds_in_a_procedures_file_name_that_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        "procedures:\n  - {code: '1', name: P, limit: 30000 working_days}\n",
        "procs.yaml",
    )
    path = write(tmp_path, "procedures_file: procs.yaml\n")
    [problem] = problems_of(path)
    assert problem.startswith(
        f"{(tmp_path / 'procs.yaml').resolve()}:2: [0].limit: expected at most 2,500 working_days"
    )
    assert problem.endswith("got '30000 working_days'")
