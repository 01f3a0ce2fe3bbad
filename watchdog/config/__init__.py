"""Loading and checking the configuration: YAML -> typed models -> cross-references -> Settings."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import BaseModel, ValidationError

from watchdog.calendar import WorkingCalendar
from watchdog.config.models import (
    MAX_DURATION,
    CalendarConfig,
    ChannelsConfig,
    Config,
    FileChannelConfig,
    OfficialConfig,
    ProcedureConfig,
    UnitConfig,
    check_duration_bounds,
)
from watchdog.config.yamlsrc import ConfigError, Located, format_path, load_yaml

__all__ = [
    "MAX_DURATION",
    "Config",
    "ConfigError",
    "Settings",
    "check_duration_bounds",
    "default_config_path",
    "format_path",
    "load_settings",
    "validate_model",
]

DEFAULT_CALENDAR = "default"


def default_config_path() -> Path:
    return Path(os.environ.get("WATCHDOG_CONFIG") or "config.yaml")


@dataclass(frozen=True, eq=False)
class Settings:
    """The validated configuration plus the lookups every component needs."""

    config: Config
    base_dir: Path
    file: Path | None = None

    @cached_property
    def calendars(self) -> dict[str, WorkingCalendar]:
        cals = {
            name: _calendar(name, c, self.config.timezone)
            for name, c in self.config.calendars.items()
        }
        if not cals:
            cals[DEFAULT_CALENDAR] = _calendar(
                DEFAULT_CALENDAR, CalendarConfig(), self.config.timezone
            )
        return cals

    @property
    def default_calendar(self) -> WorkingCalendar:
        return self.calendars.get(DEFAULT_CALENDAR) or next(iter(self.calendars.values()))

    @cached_property
    def units(self) -> dict[str, UnitConfig]:
        return {u.code: u for u in self.config.units}

    @cached_property
    def officials(self) -> dict[str, OfficialConfig]:
        return {o.id: o for o in self.config.officials}

    @cached_property
    def procedures(self) -> dict[str, ProcedureConfig]:
        return {p.code: p for p in self.config.procedures}

    @cached_property
    def children(self) -> dict[str | None, list[str]]:
        kids: dict[str | None, list[str]] = {}
        for u in self.config.units:
            kids.setdefault(u.parent, []).append(u.code)
        return kids

    def unit_tree(self) -> Iterator[tuple[int, UnitConfig]]:
        """(depth, unit) in tree order: parents before children, siblings in file order."""

        def walk(code: str | None, depth: int) -> Iterator[tuple[int, UnitConfig]]:
            for child in self.children.get(code, []):
                yield depth, self.units[child]
                yield from walk(child, depth + 1)

        yield from walk(None, 0)

    def subtree(self, code: str) -> set[str]:
        out, stack = set(), [code]
        while stack:
            c = stack.pop()
            out.add(c)
            stack.extend(self.children.get(c, []))
        return out

    def calendar_for(self, unit_code: str | None) -> WorkingCalendar:
        """A unit's calendar, inherited from its parents, else the default calendar."""
        seen = set()
        while unit_code is not None and unit_code in self.units and unit_code not in seen:
            seen.add(unit_code)
            unit = self.units[unit_code]
            if unit.calendar:
                return self.calendars[unit.calendar]
            unit_code = unit.parent
        return self.default_calendar

    @cached_property
    def channels(self) -> ChannelsConfig:
        """The configured channels; with none at all, the embedded `file` channel (var/outbox)."""
        c = self.config.channels
        if c.email is None and c.telegram is None and c.file is None:
            return ChannelsConfig(file=FileChannelConfig())
        return c

    def resolve(self, path: str | Path) -> Path:
        p = Path(path)
        return p if p.is_absolute() else self.base_dir / p

    @property
    def database_url(self) -> str:
        """The database URL with a relative SQLite path resolved against the config folder."""
        url = self.config.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            return prefix + str(self.resolve(url[len(prefix) :]))
        return url


def _calendar(name: str, c: CalendarConfig, timezone: str) -> WorkingCalendar:
    return WorkingCalendar(
        name=name,
        timezone=timezone,
        office_hours=c.office_hours,
        cutoff=c.cutoff,
        country=c.country,
        extra_holidays=frozenset(c.extra_holidays),
        extra_workdays=frozenset(c.extra_workdays),
        saturday_morning=c.saturday_morning,
    )


def empty_settings() -> Settings:
    """Settings with every default: the VN calendar, no units. `due` works with this."""
    return Settings(Config(), Path.cwd())


def load_settings(path: str | Path, env: dict[str, str] | None = None) -> Settings:
    """Load, validate and cross-check a configuration file; raises ConfigError."""
    file = Path(path)
    located = load_yaml(file, env)
    if not isinstance(located.data, dict):
        raise ConfigError([f"{file}:1: expected a mapping of configuration keys"])
    data = dict(located.data)
    problems: list[str] = []
    procedures_from: Located | None = None
    if data.get("procedures_file"):
        pfile = (file.parent / str(data["procedures_file"])).resolve()
        procedures_from = load_yaml(pfile, env)
        pdata = procedures_from.data
        if isinstance(pdata, dict) and "procedures" in pdata:
            pdata = pdata["procedures"]
            procedures_from.lines = {
                k[1:]: v for k, v in procedures_from.lines.items() if k[:1] == ("procedures",)
            }
        if not isinstance(pdata, list):
            raise ConfigError([f"{pfile}:1: expected a list of procedures"])
        if data.get("procedures"):
            problems.append(
                located.error(("procedures",), "give procedures or procedures_file, not both")
            )
        data["procedures"] = pdata
    config = validate_model(Config, data, located, problems, procedures_from)
    if config is None:
        raise ConfigError(problems)
    settings = Settings(config, file.parent.resolve(), file)
    problems.extend(check_references(settings, located, procedures_from))
    if problems:
        raise ConfigError(problems)
    return settings


def validate_model(
    model: type[BaseModel],
    data: Any,
    located: Located,
    problems: list[str],
    procedures_from: Located | None = None,
) -> Any:
    """Validate data into a model; on failure add `file:line: path: why` problems, return None."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        for err in e.errors():
            path = _data_path(data, err["loc"])
            src = located
            if procedures_from is not None and path[:1] == ("procedures",):
                src, path = procedures_from, path[1:]
            problems.append(src.error(path, describe(err)))
        return None


def _data_path(data: Any, loc: tuple[Any, ...]) -> tuple[str | int, ...]:
    """Pydantic's error location, minus the union-tag steps that are not keys of the data."""
    path: list[str | int] = []
    cur = data
    for i, part in enumerate(loc):
        if (isinstance(cur, dict) and part in cur) or (
            isinstance(cur, list) and isinstance(part, int) and part < len(cur)
        ):
            cur = cur[part]
            path.append(part)
        elif i == len(loc) - 1:
            path.append(part)
    return tuple(path)


def describe(err: Mapping[str, Any]) -> str:
    """A pydantic error as an admin reads it: what was expected, what was found."""
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    value = err.get("input")
    if "got" not in msg and not isinstance(value, dict | list):
        msg = f"{msg}, got {value!r}"
    return msg


def check_references(
    settings: Settings, located: Located, procedures_from: Located | None
) -> list[str]:
    """Cross-references between sections: units, officials, heads, deputies, calendars."""
    c = settings.config
    problems: list[str] = []

    def err(path: tuple[str | int, ...], message: str) -> None:
        problems.append(located.error(path, message))

    try:
        ZoneInfo(c.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        err(
            ("timezone",),
            f'expected an IANA time zone such as "Asia/Ho_Chi_Minh", got {c.timezone!r}',
        )
    for name, cal in c.calendars.items():
        try:
            holidays.country_holidays(cal.country)
        except NotImplementedError:
            err(
                ("calendars", name, "country"),
                f"no public holidays known for country {cal.country!r}",
            )
    _duplicates(c.units, "code", ("units",), err)
    _duplicates(c.officials, "id", ("officials",), err)
    units, officials = settings.units, settings.officials
    for i, u in enumerate(c.units):
        if u.parent is not None and u.parent not in units:
            err(("units", i, "parent"), f"unknown unit {u.parent!r}")
        if u.calendar is not None and u.calendar not in c.calendars:
            known = ", ".join(c.calendars) or "none defined"
            err(("units", i, "calendar"), f"unknown calendar {u.calendar!r} (known: {known})")
        for j, head in enumerate(u.heads):
            if head not in officials:
                err(("units", i, "heads", j), f"unknown official {head!r}")
    for code in _cycle(settings):
        i = next(k for k, u in enumerate(c.units) if u.code == code)
        err(("units", i, "parent"), f"unit {code!r} is its own ancestor")
    for i, o in enumerate(c.officials):
        if o.unit not in units:
            err(("officials", i, "unit"), f"unknown unit {o.unit!r}")
        if o.deputy is not None and o.deputy not in officials:
            err(("officials", i, "deputy"), f"unknown official {o.deputy!r}")
        if o.deputy == o.id:
            err(("officials", i, "deputy"), "an official cannot be their own deputy")
    pproblems: list[str] = []
    psrc = procedures_from or located
    prefix: tuple[str | int, ...] = () if procedures_from else ("procedures",)
    _duplicates(c.procedures, "code", prefix, lambda p, m: pproblems.append(psrc.error(p, m)))
    for i, p in enumerate(c.procedures):
        seen: set[str] = set()
        for j, s in enumerate(p.steps):
            if s.code in seen:
                pproblems.append(
                    psrc.error((*prefix, i, "steps", j, "code"), f"duplicate step {s.code!r}")
                )
            seen.add(s.code)
    for i, s in enumerate(c.supervisors):
        if s not in officials and "@" not in s:
            err(("supervisors", i), f"expected an official id or an e-mail address, got {s!r}")
    names = [s.name for s in c.sources]
    for i, name in enumerate(names):
        if names.index(name) != i:
            err(("sources", i, "name"), f"duplicate source name {name!r}")
    return problems + pproblems


def _duplicates(items, key: str, prefix, err) -> None:
    seen: set[str] = set()
    for i, item in enumerate(items):
        value = getattr(item, key)
        if value in seen:
            err((*prefix, i, key), f"duplicate {key} {value!r}")
        seen.add(value)


def _cycle(settings: Settings) -> list[str]:
    return [code for code in settings.units if _in_cycle(settings, code)]


def _in_cycle(settings: Settings, code: str) -> bool:
    cur, steps = settings.units[code].parent, 0
    while cur is not None and cur in settings.units and steps <= len(settings.units):
        if cur == code:
            return True
        cur, steps = settings.units[cur].parent, steps + 1
    return False
