"""`reports:`: on-time reports e-mailed on a schedule (issue 8). Imported by models.py.

What this section can check alone (unique names, the form of each recipient) is checked when it
is parsed; whether an official id in `to` exists needs the `officials` section:
`reference_problems` lists those, for `watchdog check`'s cross-reference pass.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Any, Literal

from pydantic import Field, field_validator

from watchdog.config.base import Model, TimeOfDay
from watchdog.i18n import _

SUPERVISORS = "supervisors"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def is_email(text: str) -> bool:
    return bool(_EMAIL.match(text))


class ScheduledReportConfig(Model):
    name: str = Field(
        description="Name of the report, unique; it appears in the subject and in the key that "
        "sends each period's report once per recipient",
    )
    every: Literal["month", "quarter"] = Field(
        description="The period covered: the calendar month or quarter that has just ended"
    )
    at: TimeOfDay = Field(
        time(8, 0),
        description="Time of day of sending (the default calendar's zone), on the first working "
        "day after the period; a daemon that was down then sends it up to 2 hours later, not "
        "after",
    )
    by: Literal["unit", "procedure", "official"] = Field(
        "unit", description="One row per unit, procedure or official"
    )
    metric: Literal["portal", "766"] = Field(
        "portal",
        description="Which on-time figure: `portal` (the provincial table) or `766` (indicator "
        "2.1 of Quyết định 766/QĐ-TTg); see docs/reports.md",
    )
    to: tuple[str, ...] = Field(
        (),
        description="Official ids, e-mail addresses or `supervisors`; `[]` = the `supervisors`. "
        "Sent by e-mail only: an official without `email` is skipped (logged)",
    )

    @field_validator("to", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("to")
    @classmethod
    def _recipients(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for who in value:
            if not who.strip():
                raise ValueError(_("expected an official id, an e-mail address or supervisors"))
            if "@" in who and not is_email(who):
                raise ValueError(
                    _("expected an e-mail address such as name@example.vn, got {value}").format(
                        value=repr(who)
                    )
                )
        return value


class ReportsConfig(Model):
    scheduled: tuple[ScheduledReportConfig, ...] = Field(
        (),
        description="Reports e-mailed with the XLSX attached when a month or quarter ends",
    )

    @field_validator("scheduled")
    @classmethod
    def _unique_names(
        cls, value: tuple[ScheduledReportConfig, ...]
    ) -> tuple[ScheduledReportConfig, ...]:
        seen: set[str] = set()
        for i, report in enumerate(value):
            if report.name in seen:
                raise ValueError(
                    _("[{index}].name: duplicate scheduled report name {name}").format(
                        index=i, name=repr(report.name)
                    )
                )
            seen.add(report.name)
        return value


def reference_problems(config: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """(key path, problem) for each `to` of `reports.scheduled` that names no official and is
    neither an e-mail address nor `supervisors`. `config` is the whole Config."""
    officials = {o.id for o in config.officials}
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for i, report in enumerate(config.reports.scheduled):
        for j, who in enumerate(report.to):
            if who == SUPERVISORS or who in officials or is_email(who):
                continue
            problems.append(
                (
                    ("reports", "scheduled", i, "to", j),
                    _("unknown official {id}").format(id=repr(who)),
                )
            )
    return problems
