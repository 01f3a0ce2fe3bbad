"""`letters:`: the apology letter and the control sheet (issue 8). Imported by models.py."""

from __future__ import annotations

from pydantic import Field

from watchdog.config.base import Model


class LettersConfig(Model):
    apology_template: str | None = Field(
        None,
        description="DOCX template of the apology letter (Phiếu xin lỗi và hẹn lại ngày trả kết "
        "quả), relative to the configuration file's folder; unset = `templates/letters/"
        "apology.docx` beside the configuration file when there is one, else the shipped one. "
        "`watchdog check` validates its variables (docs/letters.md lists them)",
    )
    control_sheet_template: str | None = Field(
        None,
        description="DOCX template of the control sheet (Phiếu kiểm soát quá trình giải quyết hồ "
        "sơ); unset = `templates/letters/control_sheet.docx` beside the configuration file when "
        "there is one, else the shipped one. The HTML form is `templates/letters/"
        "control_sheet.html`",
    )
    agency: str | None = Field(
        None,
        description="First line of a letter's heading, the governing body (`UBND TỈNH ...`); the "
        "issuing agency below it is the case's unit just under the top of the tree. Unset = the "
        "name of the case's top unit (nothing when the case's unit is itself a top unit)",
    )
    place: str | None = Field(
        None,
        description='Place name of the date line ("Hà Nội, ngày ... tháng ... năm ..."); unset = '
        "a dotted blank to fill in",
    )
    signer_title: str = Field(
        "THỦ TRƯỞNG CƠ QUAN",
        description="Title above the signature of the apology letter (`GIÁM ĐỐC`, `CHỦ TỊCH`); "
        "the name under it is the first of the issuing agency's `heads`",
    )
