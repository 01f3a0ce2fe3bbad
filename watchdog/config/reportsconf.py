"""`reports:`: on-time reports e-mailed on a schedule (issue 8). Imported by models.py."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from watchdog.config.models import Model, TimeOfDay


class ScheduledReportConfig(Model):
    name: str = Field(description="Name of the report, unique; it appears in the subject")
    every: Literal["month", "quarter"] = Field(
        description="The period covered: the month or the quarter that has just ended"
    )
    at: TimeOfDay = Field(
        "08:00",
        description="Time of day of sending, on the first working day after the period",
    )
    by: Literal["unit", "procedure", "official"] = Field(
        "unit", description="One row per unit, procedure or official"
    )
    metric: Literal["portal", "766"] = Field("portal", description="Which on-time figure")
    to: tuple[str, ...] = Field(
        (),
        description="Official ids or e-mail addresses; `[]` = the `supervisors`",
    )


class ReportsConfig(Model):
    scheduled: tuple[ScheduledReportConfig, ...] = Field(
        (),
        description="Reports e-mailed with the XLSX attached when a month or quarter ends",
    )
