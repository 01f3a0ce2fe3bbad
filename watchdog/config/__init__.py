"""Loading and checking the configuration: YAML -> typed models -> cross-references -> Settings.

The models (pydantic) and the YAML reader are imported when a file is loaded, not when this
package is: `watchdog due` without a configuration file needs only `default_calendar()`, and
start-up time counts there (tests/unit/test_startup.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from watchdog.calendar import WorkingCalendar
from watchdog.i18n import N_, _

if TYPE_CHECKING:
    from pydantic import BaseModel

    from watchdog.config.models import (
        CalendarConfig,
        ChannelsConfig,
        Config,
        OfficialConfig,
        ProcedureConfig,
        UnitConfig,
    )
    from watchdog.config.yamlsrc import Located

__all__ = [
    "MAX_DURATION",
    "Config",
    "ConfigError",
    "Settings",
    "check_duration_bounds",
    "default_calendar",
    "default_config_path",
    "format_path",
    "load_settings",
    "validate_model",
]

DEFAULT_CALENDAR = "default"

# Names this package offers from its modules, imported on first use (PEP 562).
_LAZY = {
    "MAX_DURATION": "watchdog.config.models",
    "Config": "watchdog.config.models",
    "check_duration_bounds": "watchdog.config.models",
    "ConfigError": "watchdog.config.yamlsrc",
    "format_path": "watchdog.config.yamlsrc",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
        from watchdog.config.models import CalendarConfig

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
        """A unit's calendar, inherited from its parents, else the default calendar (looked
        up once per unit: an evaluation asks for it several times per case)."""
        try:
            return self._unit_calendars[unit_code]
        except KeyError:
            found = self._unit_calendars[unit_code] = self._find_calendar(unit_code)
            return found

    @cached_property
    def _unit_calendars(self) -> dict[str | None, WorkingCalendar]:
        return {}

    def official_name(self, who: str | None) -> str | None:
        """An official's name as people read it; an id the configuration does not know, as
        given."""
        if who is None:
            return None
        official = self.officials.get(who)
        return official.name if official else who

    def _find_calendar(self, unit_code: str | None) -> WorkingCalendar:
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
        from watchdog.config.models import ChannelsConfig, FileChannelConfig

        c = self.config.channels
        if c.email is None and c.telegram is None and c.webhook is None and c.file is None:
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
    """Settings with every default: the VN calendar, no units."""
    from watchdog.config.models import Config

    return Settings(Config(), Path.cwd())


def default_calendar() -> WorkingCalendar:
    """The calendar of a configuration that defines none (the VN default), without loading the
    models: `watchdog due` with no configuration file uses it. Equal to
    `empty_settings().default_calendar` (tests/unit/test_startup.py checks it)."""
    return WorkingCalendar(name=DEFAULT_CALENDAR)


def load_settings(path: str | Path, env: dict[str, str] | None = None) -> Settings:
    """Load, validate and cross-check a configuration file; raises ConfigError."""
    from watchdog.config.models import Config
    from watchdog.config.yamlsrc import ConfigError, load_yaml

    file = Path(path)
    located = load_yaml(file, env)
    if not isinstance(located.data, dict):
        raise ConfigError(
            [_("{file}:1: expected a mapping of configuration keys").format(file=file)]
        )
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
            raise ConfigError([_("{file}:1: expected a list of procedures").format(file=pfile)])
        if data.get("procedures"):
            problems.append(
                located.error(("procedures",), _("give procedures or procedures_file, not both"))
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
    from pydantic import ValidationError

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


# What pydantic's error types mean to an admin; the others keep pydantic's own (English) text.
_PYDANTIC = {
    "string_type": N_("expected text"),
    "int_type": N_("expected a whole number"),
    "int_parsing": N_("expected a whole number"),
    "int_from_float": N_("expected a whole number"),
    "float_type": N_("expected a number"),
    "float_parsing": N_("expected a number"),
    "bool_type": N_("expected true or false"),
    "bool_parsing": N_("expected true or false"),
    "list_type": N_("expected a list"),
    "tuple_type": N_("expected a list"),
    "dict_type": N_("expected a mapping (key: value)"),
    "model_type": N_("expected a mapping (key: value)"),
    "model_attributes_type": N_("expected a mapping (key: value)"),
    "date_type": N_("expected a date such as 2026-01-02"),
    "date_parsing": N_("expected a date such as 2026-01-02"),
    "date_from_datetime_parsing": N_("expected a date such as 2026-01-02"),
    "date_from_datetime_inexact": N_("expected a date such as 2026-01-02"),
    "literal_error": N_("expected {expected}"),
    "enum": N_("expected {expected}"),
    "greater_than": N_("expected a number greater than {gt}"),
    "greater_than_equal": N_("expected a number greater than or equal to {ge}"),
    "less_than": N_("expected a number less than {lt}"),
    "less_than_equal": N_("expected a number less than or equal to {le}"),
}


def describe(err: Mapping[str, Any]) -> str:
    """A pydantic error as an admin reads it: what was expected, what was found."""
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        return _("unknown key")
    if kind == "missing":
        return _("required key is missing")
    if kind in _PYDANTIC:
        with contextlib.suppress(KeyError, IndexError):  # a context we did not expect
            msg = _(_PYDANTIC[kind]).format(**err.get("ctx", {}))
    msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    value = err.get("input")
    said = "got" in msg or _("got") in msg  # the value is named already
    if not said and not isinstance(value, dict | list):
        msg = _("{problem}, got {value}").format(problem=msg, value=repr(value))
    return msg


def check_references(
    settings: Settings, located: Located, procedures_from: Located | None
) -> list[str]:
    """Cross-references between sections: units, officials, heads, deputies, calendars."""
    from watchdog.calendar import country_holidays

    c = settings.config
    problems: list[str] = []

    def err(path: tuple[str | int, ...], message: str) -> None:
        problems.append(located.error(path, message))

    try:
        ZoneInfo(c.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        err(
            ("timezone",),
            _('expected an IANA time zone such as "Asia/Ho_Chi_Minh", got {value}').format(
                value=repr(c.timezone)
            ),
        )
    for name, cal in c.calendars.items():
        try:
            country_holidays(cal.country)
        except NotImplementedError:
            err(
                ("calendars", name, "country"),
                _("no public holidays known for country {country}").format(
                    country=repr(cal.country)
                ),
            )
    _duplicates(c.units, "code", ("units",), err)
    _duplicates(c.officials, "id", ("officials",), err)
    units, officials = settings.units, settings.officials
    for i, u in enumerate(c.units):
        if u.parent is not None and u.parent not in units:
            err(("units", i, "parent"), _("unknown unit {code}").format(code=repr(u.parent)))
        if u.calendar is not None and u.calendar not in c.calendars:
            known = ", ".join(c.calendars) or _("none defined")
            err(
                ("units", i, "calendar"),
                _("unknown calendar {name} (known: {known})").format(
                    name=repr(u.calendar), known=known
                ),
            )
        for j, head in enumerate(u.heads):
            if head not in officials:
                err(("units", i, "heads", j), _("unknown official {id}").format(id=repr(head)))
    for code in _cycle(settings):
        i = next(k for k, u in enumerate(c.units) if u.code == code)
        err(("units", i, "parent"), _("unit {code} is its own ancestor").format(code=repr(code)))
    for i, o in enumerate(c.officials):
        if o.unit not in units:
            err(("officials", i, "unit"), _("unknown unit {code}").format(code=repr(o.unit)))
        if o.deputy is not None and o.deputy not in officials:
            err(("officials", i, "deputy"), _("unknown official {id}").format(id=repr(o.deputy)))
        if o.deputy == o.id:
            err(("officials", i, "deputy"), _("an official cannot be their own deputy"))
    pproblems: list[str] = []
    psrc = procedures_from or located
    prefix: tuple[str | int, ...] = () if procedures_from else ("procedures",)
    _duplicates(c.procedures, "code", prefix, lambda p, m: pproblems.append(psrc.error(p, m)))
    for i, p in enumerate(c.procedures):
        seen: set[str] = set()
        for j, s in enumerate(p.steps):
            if s.code in seen:
                pproblems.append(
                    psrc.error(
                        (*prefix, i, "steps", j, "code"),
                        _("duplicate step {code}").format(code=repr(s.code)),
                    )
                )
            seen.add(s.code)
    for i, s in enumerate(c.supervisors):
        if s not in officials and "@" not in s:
            err(
                ("supervisors", i),
                _("expected an official id or an e-mail address, got {value}").format(
                    value=repr(s)
                ),
            )
    names = [s.name for s in c.sources]
    for i, name in enumerate(names):
        if names.index(name) != i:
            err(
                ("sources", i, "name"),
                _("duplicate source name {name}").format(name=repr(name)),
            )
    from watchdog.config.reportsconf import reference_problems

    for path, message in reference_problems(c):
        err(path, message)
    return problems + pproblems


_DUPLICATE = {
    "code": N_("duplicate code {value}"),
    "id": N_("duplicate id {value}"),
}


def _duplicates(items, key: str, prefix, err) -> None:
    seen: set[str] = set()
    for i, item in enumerate(items):
        value = getattr(item, key)
        if value in seen:
            err((*prefix, i, key), _(_DUPLICATE[key]).format(value=repr(value)))
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


def with_telegram_chats(settings: Settings, chats: dict[str, str]) -> Settings:
    """The settings with the Telegram chats officials linked through the bot (`/start CODE`);
    a linked chat wins over the configuration file's `telegram`; "" means the bot cannot
    reach the configured chat (blocked): no Telegram until the official links again."""
    if not chats:
        return settings
    officials = tuple(
        o.model_copy(update={"telegram": chats[o.id] or None}) if o.id in chats else o
        for o in settings.config.officials
    )
    config = settings.config.model_copy(update={"officials": officials})
    return dataclasses.replace(settings, config=config)
