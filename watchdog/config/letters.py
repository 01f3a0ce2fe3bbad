"""`letters:`: the apology letter and the control sheet (issue 8). Imported by models.py."""

from __future__ import annotations

from pydantic import Field

from watchdog.config.models import Model


class LettersConfig(Model):
    apology_template: str | None = Field(
        None,
        description="DOCX template of the apology letter (Phiếu xin lỗi và hẹn lại ngày trả kết "
        "quả), relative to the configuration file's folder; unset = the shipped one. `watchdog "
        "check` validates its variables",
    )
    control_sheet_template: str | None = Field(
        None,
        description="DOCX template of the control sheet (Phiếu kiểm soát quá trình giải quyết hồ "
        "sơ); unset = the shipped one",
    )
    agency: str | None = Field(
        None,
        description="Name of the issuing agency at the top of a letter (`UBND TỈNH ...`); unset "
        "= the name of the case's top unit",
    )
    place: str | None = Field(
        None,
        description='Place name of the date line ("Hà Nội, ngày ... tháng ... năm ..."); unset = '
        "no place name",
    )
