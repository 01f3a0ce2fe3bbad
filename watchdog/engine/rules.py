"""Rules (SPEC 5): policies that say which stages fire for which cases, loaded from YAML.

A rule file holds `policies:` and optionally `digests:`. Policies are tried in file order; the
first whose `match` fits a case applies, and matching goes on past it only when it says
`continue: true`. Every error names `file:line: key.path`, like the configuration.

`load_rules` (also at daemon start) checks what a rule names exists: procedures, fields, units,
channels, officials. `check_rules` (for `watchdog check` only) resolves every stage's
recipients unit by unit to find those that reach nobody: see docs/rules.md.
"""

from __future__ import annotations

import difflib
import glob
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PrivateAttr, field_validator, model_validator

from watchdog.config import ConfigError, Settings, check_duration_bounds, validate_model
from watchdog.config.models import Model, TimeOfDay
from watchdog.config.yamlsrc import Located, load_yaml
from watchdog.domain import procedure_code
from watchdog.durations import Duration, Unit
from watchdog.i18n import N_, _
from watchdog.shipped import shipped_path

KEYWORD_RECIPIENTS = ("assignee", "step_handler", "unit_head", "agency_head", "supervisors")
CHANNEL_ORDER = ("telegram", "email", "webhook", "file")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _working(value: Any) -> Duration:
    """Working time within the configuration's bounds (config.models.MAX_DURATION: about ten
    years; the calendar covers 1900-2200 only, so a larger delay is a typo)."""
    d = value if isinstance(value, Duration) else Duration.parse(value)
    if d.unit is Unit.CALENDAR_DAYS:
        raise ValueError(
            _('expected working time such as "1 working_day", got {value}').format(
                value=repr(value)
            )
        )
    return check_duration_bounds(d, value)


# Shortest `repeat`: a stage repeated more often than once a minute of working time would fire
# on every tick (and "0 working_days" would never leave its first instant).
MIN_REPEAT_SECONDS = 60
_MIN_REPEAT_TEXT = N_(
    'expected a repeat of at least one minute of working time, such as "1 working_day" or '
    '"30 working_minutes"'
)


def _short_repeat(value: Any, where: str = "") -> str:
    said = _("{problem}, got {value}").format(problem=_(_MIN_REPEAT_TEXT), value=repr(value))
    return f"{said} ({where})" if where else said


def _repeat(value: Any) -> Duration:
    """A working duration of at least MIN_REPEAT_SECONDS. Working days depend on the calendar's
    office hours; a fraction of a day is checked against every calendar by `load_rules`."""
    if not isinstance(value, Duration):
        try:
            Duration.parse(value)
        except ValueError:
            raise ValueError(_short_repeat(value)) from None
    d = _working(value)
    per_unit = {Unit.WORKING_HOURS: 3600, Unit.WORKING_MINUTES: 60}.get(d.unit)
    if d.amount == 0 or (per_unit and round(d.amount * per_unit) < MIN_REPEAT_SECONDS):
        raise ValueError(_short_repeat(value))
    return d


def _percent(value: Any) -> float:
    m = re.match(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$", str(value))
    if not m or not 0 < float(m.group(1)) <= 100:
        raise ValueError(
            _('expected a share of the time limit such as "75%", got {value}').format(
                value=repr(value)
            )
        )
    return float(m.group(1)) / 100


WorkingDuration = Annotated[Duration, BeforeValidator(_working)]
RepeatDuration = Annotated[Duration, BeforeValidator(_repeat)]
Share = Annotated[float, BeforeValidator(_percent)]


class WhenKind(StrEnum):
    REMAINING = "remaining"
    ELAPSED = "elapsed"
    OVERDUE = "overdue"
    ON_DUE_DAY = "on_due_day"
    IDLE = "idle"
    WAITING = "waiting"


class When(Model):
    """Exactly one condition."""

    remaining: WorkingDuration | None = None
    elapsed: Share | None = None
    overdue: WorkingDuration | None = None
    on_due_day: TimeOfDay | None = None
    idle: WorkingDuration | None = None
    waiting: WorkingDuration | None = None
    extended: bool | None = None  # qualifier: only when the case has (not) been extended yet

    _kind: WhenKind = PrivateAttr()

    @model_validator(mode="after")
    def _exactly_one(self) -> When:
        given = [k for k in WhenKind if getattr(self, k.value) is not None]
        if len(given) != 1:
            kinds = ", ".join(k.value for k in WhenKind)
            raise ValueError(
                _("expected exactly one of {kinds}, got {n}").format(kinds=kinds, n=len(given))
            )
        self._kind = given[0]  # evaluated for every case: resolved once here
        return self

    @property
    def kind(self) -> WhenKind:
        return self._kind

    @property
    def value(self) -> Any:
        return getattr(self, self._kind.value)


class Stage(Model):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    when: When
    scope: Literal["case", "step"] = "case"
    notify: tuple[str, ...] = Field(min_length=1)
    channels: tuple[Literal["telegram", "email", "webhook", "file"], ...] | None = None
    all_channels: bool = False
    repeat: RepeatDuration | None = None
    until_ack: bool = False
    inhibits: tuple[str, ...] = ()
    urgent: bool = False
    template: str | None = None
    attach: Literal["apology_letter"] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Stage:
        if self.until_ack and self.repeat is None:
            raise ValueError(_("until_ack needs repeat: it stops repeats once acknowledged"))
        if self.scope == "step" and self.when.kind is WhenKind.WAITING:
            raise ValueError(_("a waiting condition applies to the case, not to a step"))
        return self

    @property
    def template_name(self) -> str:
        return self.template or self.id


def _procedure_ref(value: Any) -> Any:
    """A procedure code or glob of `match.procedures`, in the form cases and the configuration
    use (domain.procedure_code): unquoted YAML reads `1.012790` as the number 1.01279, which is
    restored to "1.012790", never truncated; a number no code gives is a located error. A glob
    is kept as written."""
    if isinstance(value, str) and glob.has_magic(value):
        return value
    if isinstance(value, str | int | float):
        return procedure_code(value)
    return value


ProcedureRef = Annotated[str, BeforeValidator(_procedure_ref)]


class Match(Model):
    procedures: tuple[ProcedureRef, ...] = ()  # codes or globs
    fields: tuple[str, ...] = ()
    units: tuple[str, ...] = ()  # a unit and its whole subtree
    submitted_via: tuple[Literal["direct", "online", "postal"], ...] = ()

    @field_validator("procedures", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str | int | float) else value

    @field_validator("fields", "units", mode="before")
    @classmethod
    def _codes(cls, value: Any) -> Any:
        if isinstance(value, str | int | float):
            value = [value]
        return [str(v) for v in value] if isinstance(value, list) else value


class Policy(Model):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    match: Match = Match()
    continue_: bool = Field(False, alias="continue")
    stages: tuple[Stage, ...] = ()


class Digest(Model):
    name: str
    to: tuple[Literal["unit_heads", "agency_heads", "supervisors"], ...]
    schedule: str
    every_day: bool = False
    sections: tuple[Literal["overdue", "due_today", "due_soon", "waiting", "idle", "findings"], ...]
    # the most urgent lines of each section; the others are counted ("và N hồ sơ khác")
    max_lines: int = Field(30, ge=1)

    @field_validator("to", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        try:
            cron_trigger(value, None)
        except ValueError as e:
            raise ValueError(
                _('expected a cron expression such as "30 7 * * *": {why}').format(why=e)
            ) from None
        return value


_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def cron_trigger(expression: str, timezone: Any):
    """An APScheduler CronTrigger for a standard five-field cron expression.

    APScheduler 3 counts the day of the week from Monday = 0, so its `from_crontab("30 7 * *
    1-5")` fires Tuesday to Saturday; standard cron counts from Sunday = 0 (and 7). Numbers in
    the day-of-week field are turned into names first, so "1-5" means Monday to Friday."""
    from apscheduler.triggers.cron import CronTrigger

    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"expected 5 fields (minute hour day month weekday), got {len(fields)}")
    minute, hour, day, month, dow = fields
    return CronTrigger(
        minute=minute, hour=hour, day=day, month=month, day_of_week=_dow(dow), timezone=timezone
    )


def _dow(field: str) -> str:
    out: list[str] = []
    for token in field.split(","):
        base, _, step_text = token.partition("/")
        if not any(ch.isdigit() for ch in base) and not step_text:
            out.append(token)  # "*", or names such as "mon-fri"
            continue
        step = int(step_text) if step_text else 1
        if base == "*":
            lo, hi = 0, 6
        elif "-" in base:
            a, b = base.split("-", 1)
            lo, hi = _day_number(a), _day_number(b)
        else:
            lo = _day_number(base)
            hi = 6 if step_text else lo
        if hi < lo or step < 1:
            raise ValueError(f"day of week {token!r}: not a range cron accepts")
        for n in range(lo, hi + 1, step):
            name = _WEEKDAYS[n % 7]
            if name not in out:
                out.append(name)
    return ",".join(out)


def _day_number(text: str) -> int:
    if text.isdigit() and 0 <= int(text) <= 7:
        return int(text)
    if text.lower()[:3] in _WEEKDAYS:
        return _WEEKDAYS.index(text.lower()[:3])
    raise ValueError(f"day of week {text!r}: expected 0-7 or a name such as mon")


class RuleFile(Model):
    policies: tuple[Policy, ...] = ()
    digests: tuple[Digest, ...] = ()


@dataclass(frozen=True, slots=True)
class CompiledStage:
    """A stage with its identity across reloads (`policy/stage`) and its condition unpacked
    into plain attributes, since it is looked at for every case on every evaluation."""

    key: str
    policy: str
    stage: Stage
    kind: WhenKind = field(init=False)
    value: Any = field(init=False)
    extended: bool | None = field(init=False)
    step_scope: bool = field(init=False)
    repeat: Duration | None = field(init=False)
    until_ack: bool = field(init=False)
    inhibits: tuple[str, ...] = field(init=False)
    # `overdue: X` with X > 0: opens after the due, so it can wait while another window opens
    # first (`evaluate._windows`)
    deferrable: bool = field(init=False)

    def __post_init__(self) -> None:
        stage, set_ = self.stage, object.__setattr__
        set_(self, "kind", stage.when.kind)
        set_(self, "value", stage.when.value)
        set_(self, "extended", stage.when.extended)
        set_(self, "step_scope", stage.scope == "step")
        set_(self, "repeat", stage.repeat)
        set_(self, "until_ack", stage.until_ack)
        set_(self, "inhibits", tuple(f"{self.policy}/{i}" for i in stage.inhibits))
        set_(self, "deferrable", self.kind is WhenKind.OVERDUE and self.value.amount > 0)

    @classmethod
    def of(cls, policy: str, stage: Stage) -> CompiledStage:
        return cls(f"{policy}/{stage.id}", policy, stage)


@dataclass(frozen=True, eq=False)
class RuleSet:
    policies: tuple[Policy, ...]
    digests: tuple[Digest, ...]
    files: tuple[Path, ...]
    hash: str
    # Where each policy was written (its file's lines, its key path), for `check_rules`.
    origins: tuple[tuple[Located, tuple[str | int, ...]], ...] = field(default=(), repr=False)

    def stages_for(
        self,
        settings: Settings,
        procedure_code: str,
        unit_code: str,
        submission_channel: str | None,
    ) -> tuple[CompiledStage, ...]:
        """The stages that apply to a case, from the first matching policy (and `continue`s).

        Each criterion is matched once per distinct value into a bit mask over the policies;
        the stages are cached per combined mask, so a million cases cost a few dict lookups.
        """
        cache: dict[Any, Any] = self.__dict__.setdefault("_cache", {})
        get = cache.get
        mask = get(("p", procedure_code))
        if mask is None:
            mask = self._mask(
                cache, "p", procedure_code, lambda m: _procedure_ok(m, settings, procedure_code)
            )
        unit = get(("u", unit_code))
        if unit is None:
            unit = self._mask(cache, "u", unit_code, lambda m: _unit_ok(m, settings, unit_code))
        channel = get(("c", submission_channel))
        if channel is None:
            channel = self._mask(
                cache,
                "c",
                submission_channel,
                lambda m: not m.submitted_via or submission_channel in m.submitted_via,
            )
        mask &= unit & channel
        found = get(("stages", mask))
        if found is None:
            found = cache[("stages", mask)] = tuple(self._stages(mask))
        return found

    def _mask(self, cache: dict, kind: str, value: Any, ok) -> int:
        mask = cache.get((kind, value))
        if mask is None:
            mask = sum(1 << i for i, p in enumerate(self.policies) if ok(p.match))
            cache[(kind, value)] = mask
        return mask

    def _stages(self, mask: int):
        for i, policy in enumerate(self.policies):
            if not mask >> i & 1:
                continue
            for stage in policy.stages:
                yield CompiledStage.of(policy.name, stage)
            if not policy.continue_:
                return


def _procedure_ok(m: Match, settings: Settings, code: str) -> bool:
    if m.procedures and not any(fnmatchcase(code, g) for g in m.procedures):
        return False
    procedure = settings.procedures.get(code)
    return not m.fields or (procedure is not None and procedure.field in m.fields)


def _unit_ok(m: Match, settings: Settings, unit_code: str) -> bool:
    return not m.units or bool(_ancestors(settings, unit_code).intersection(m.units))


def _ancestors(settings: Settings, unit_code: str) -> set[str]:
    out, cur = set(), unit_code
    while cur is not None and cur not in out:
        out.add(cur)
        cur = settings.units[cur].parent if cur in settings.units else None
    return out


def rule_files(settings: Settings) -> list[Path]:
    """The files named by `rules:` (globs allowed), or the shipped defaults without the key."""
    if settings.config.rules is None:
        return [shipped_path("rules") / "default.yaml"]
    files: list[Path] = []
    for pattern in settings.config.rules:
        full = settings.resolve(pattern)
        matches = (
            sorted(Path(p) for p in glob.glob(str(full))) if glob.has_magic(pattern) else [full]
        )
        files.extend(matches)
    return files


def load_rules(settings: Settings, env: dict[str, str] | None = None) -> RuleSet:
    """Load and check every rule file; raises ConfigError listing every problem."""
    problems: list[str] = []
    policies: list[Policy] = []
    digests: list[Digest] = []
    digest = hashlib.sha256()
    files = rule_files(settings)
    if settings.config.rules and not files:
        raise ConfigError(
            [
                _("{file}: rules: no file matches {patterns}").format(
                    file=settings.file, patterns=list(settings.config.rules)
                )
            ]
        )
    seen_policies: dict[str, str] = {}
    origins: list[tuple[Located, tuple[str | int, ...]]] = []
    for file in files:
        located = load_yaml(file, env)
        digest.update(file.read_bytes())
        data = located.data if located.data is not None else {}
        if not isinstance(data, dict):
            problems.append(
                _("{file}:1: expected a mapping with policies and digests").format(file=file)
            )
            continue
        parsed: RuleFile | None = validate_model(RuleFile, data, located, problems)
        if parsed is None:
            continue
        for i, policy in enumerate(parsed.policies):
            where = ("policies", i, "name")
            if policy.name in seen_policies:
                problems.append(
                    located.error(
                        where,
                        _("policy {name} is already defined in {where}").format(
                            name=repr(policy.name), where=seen_policies[policy.name]
                        ),
                    )
                )
            seen_policies[policy.name] = f"{file}:{located.line_of(where)}"
            problems.extend(_check_policy(policy, ("policies", i), located, settings))
        policies.extend(parsed.policies)
        origins.extend((located, ("policies", i)) for i in range(len(parsed.policies)))
        digests.extend(parsed.digests)
    if problems:
        raise ConfigError(problems)
    # Procedures and calendars shape every instant the rules produce: they are part of the hash.
    digest.update(
        repr(
            sorted(
                (p.code, str(p.limit), p.on_supplement, [(s.code, str(s.allot)) for s in p.steps])
                for p in settings.config.procedures
            )
        ).encode()
    )
    digest.update(repr(sorted(settings.config.calendars.items())).encode())
    return RuleSet(
        tuple(policies), tuple(digests), tuple(files), digest.hexdigest()[:16], tuple(origins)
    )


def _check_policy(policy: Policy, at: tuple, located: Located, settings: Settings) -> list[str]:
    problems = []
    configured = {name for name in CHANNEL_ORDER if getattr(settings.channels, name)}
    ids = [s.id for s in policy.stages]
    for j, stage in enumerate(policy.stages):
        here = (*at, "stages", j)
        if ids.index(stage.id) != j:
            problems.append(
                located.error((*here, "id"), _("duplicate stage id {id}").format(id=repr(stage.id)))
            )
        for k, name in enumerate(stage.notify):
            ok = name in KEYWORD_RECIPIENTS or name in settings.officials or _EMAIL.match(name)
            if not ok:
                problems.append(
                    located.error(
                        (*here, "notify", k),
                        _(
                            "expected {keywords}, an official id or an e-mail address, got {value}"
                        ).format(keywords=", ".join(KEYWORD_RECIPIENTS), value=repr(name)),
                    )
                )
        for k, channel in enumerate(stage.channels or ()):
            if channel not in configured:
                problems.append(
                    located.error(
                        (*here, "channels", k),
                        _("channel {channel} is not configured under channels:").format(
                            channel=repr(channel)
                        ),
                    )
                )
        if stage.repeat is not None and stage.repeat.unit is Unit.WORKING_DAYS:
            short = {
                name: seconds
                for name, cal in settings.calendars.items()
                if (seconds := stage.repeat.working_seconds(cal)) < MIN_REPEAT_SECONDS
            }
            if short:
                where = ", ".join(
                    _("{seconds} s in calendar {name}").format(seconds=s, name=repr(name))
                    for name, s in short.items()
                )
                problems.append(
                    located.error((*here, "repeat"), _short_repeat(str(stage.repeat), where))
                )
        for k, other in enumerate(stage.inhibits):
            if other not in ids or other == stage.id:
                problems.append(
                    located.error(
                        (*here, "inhibits", k),
                        _("expected another stage id of this policy, got {value}").format(
                            value=repr(other)
                        ),
                    )
                )
    problems.extend(_check_match(policy.match, (*at, "match"), located, settings))
    return problems


def _check_match(m: Match, at: tuple, located: Located, settings: Settings) -> list[str]:
    """What `match` names exists: a rule naming a procedure, field or unit that is not
    configured would silently never match (or match less than its author meant)."""
    problems = []
    codes = settings.procedures
    for k, pattern in enumerate(m.procedures):
        if glob.has_magic(pattern):
            if not any(fnmatchcase(code, pattern) for code in codes):
                problems.append(
                    located.error(
                        (*at, "procedures", k),
                        _("no configured procedure matches {pattern}").format(
                            pattern=repr(pattern)
                        ),
                    )
                )
        elif pattern not in codes:
            problems.append(
                located.error(
                    (*at, "procedures", k),
                    _("no configured procedure has code {code}").format(code=repr(pattern))
                    + _did_you_mean(pattern, codes),
                )
            )
    fields = {p.field for p in settings.config.procedures if p.field is not None}
    for k, name in enumerate(m.fields):
        if name not in fields:
            problems.append(
                located.error(
                    (*at, "fields", k),
                    _("no configured procedure has field {name}").format(name=repr(name))
                    + _did_you_mean(name, fields),
                )
            )
    for k, unit in enumerate(m.units):
        if unit not in settings.units:
            problems.append(
                located.error(
                    (*at, "units", k),
                    _("unknown unit {code}").format(code=repr(unit))
                    + _did_you_mean(unit, settings.units),
                )
            )
    return problems


def _did_you_mean(value: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(value, sorted(known), n=1)
    return _(" (did you mean {value}?)").format(value=repr(close[0])) if close else ""


# ----- what `watchdog check` adds: whom each stage reaches ------------------------------------

NAMED_UNITS = 3  # units named in a problem before "and N more"


def check_rules(
    settings: Settings,
    rules: RuleSet,
    *,
    today: date | None = None,
    warnings: list[str] | None = None,
) -> list[str]:
    """Stages whose recipients reach nobody for cases at some unit: `file:line: key.path`
    problems, for `watchdog check` (the engine does not need them, so `load_rules` does not
    pay for them).

    For every unit a policy can match (its `match.units` subtrees, or all units), the stage's
    recipients that do not depend on the case (all but assignee and step_handler) are resolved
    with the engine's code (engine/recipients.py), on every day a stand-in can change (absences
    ending before `today` are ignored; None: all count), down to a channel address. A stage
    that reaches none of them at a unit is an error: it fires and nobody hears, or only the
    assignee, when the case has one. A recipient reaching nobody where the stage still reaches
    someone else is a warning, appended to `warnings` when given. The heads of the top unit
    have no agency above them: `agency_head` there is not reported.
    """
    from watchdog.engine.recipients import CASE_RECIPIENTS, UNIT_RECIPIENTS, StageReach

    problems: list[str] = []
    reach = StageReach(settings, since=today)
    tree = [u.code for _, u in settings.unit_tree()]
    origins = rules.origins or tuple(
        (Located(Path("rules"), None), ("policies", i)) for i in range(len(rules.policies))
    )
    for policy, (located, at) in zip(rules.policies, origins, strict=True):
        matched = _policy_units(settings, policy.match, tree)
        for j, stage in enumerate(policy.stages):
            here = (*at, "stages", j, "notify")
            fixed = [n for n in stage.notify if n not in CASE_RECIPIENTS]
            if not fixed:
                continue  # whom it reaches depends on the case alone
            by_unit = any(n in UNIT_RECIPIENTS for n in fixed) and bool(matched)
            units: list[str | None] = list(matched) if by_unit else [None]
            nobody: list[tuple[str | None, str]] = []
            lost: dict[int, list[tuple[str | None, str]]] = {}
            for unit in units:
                r = reach.of(stage, unit)
                if r.nobody is not None:
                    nobody.append((unit, r.nobody))
                for k, why in r.lost:
                    lost.setdefault(k, []).append((unit, why))
            if nobody:
                case_names = [
                    _(_CASE_RECIPIENT_NAMES.get(n, n)) for n in stage.notify if n in CASE_RECIPIENTS
                ]
                if len(case_names) > 1:
                    what = _("reaches only the {who} (nobody when the case has neither)").format(
                        who=_("{first} and the {second}").format(
                            first=case_names[0], second=case_names[1]
                        )
                    )
                elif case_names:
                    what = _("reaches only the {who} (nobody when the case has none)").format(
                        who=case_names[0]
                    )
                else:
                    what = _("reaches nobody")
                problems.append(
                    located.error(
                        here,
                        _("stage {stage} {what}").format(
                            stage=f"{policy.name}/{stage.id}", what=what
                        )
                        + _at_units(nobody, len(units)),
                    )
                )
            for k, gaps in lost.items():
                name = stage.notify[k]
                # the same for every unit unless the name depends on the unit
                where = (
                    _at_units(gaps, len(units)) if name in UNIT_RECIPIENTS else f": {gaps[0][1]}"
                )
                if warnings is not None:
                    warnings.append(
                        located.error(
                            (*here, k),
                            _(
                                "{name} reaches nobody{where}; stage {stage} still reaches its "
                                "other recipients there"
                            ).format(name=name, where=where, stage=f"{policy.name}/{stage.id}"),
                        )
                    )
    return problems


def _policy_units(settings: Settings, m: Match, tree: Sequence[str]) -> list[str]:
    """The units a policy can match, in tree order."""
    if not m.units:
        return list(tree)
    inside: set[str] = set()
    for code in m.units:
        if code in settings.units:
            inside |= settings.subtree(code)
    return [code for code in tree if code in inside]


def _at_units(gaps: Sequence[tuple[str | None, str]], of: int) -> str:
    """': why' for one gap without a unit, else the first units with their why and a count."""
    if gaps[0][0] is None:
        return f": {gaps[0][1]}"
    named = ", ".join(f"{unit} ({why})" for unit, why in gaps[:NAMED_UNITS])
    if len(gaps) > NAMED_UNITS:
        named += _(" and {n} more").format(n=len(gaps) - NAMED_UNITS)
    return _(" for cases at {n} of the {total} units the policy matches: {units}").format(
        n=len(gaps), total=of, units=named
    )


# How `check_rules` names the recipients that depend on the case.
_CASE_RECIPIENT_NAMES = {"assignee": N_("assignee"), "step_handler": N_("step handler")}
