"""Letters of a case (issue 8) over cases imported into SQLite and PostgreSQL: the apology letter
and the control sheet written by `watchdog letters ...`, opened again with python-docx (and the
HTML form parsed) and read back paragraph by paragraph, cell by cell."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest
from docx import Document

from tests.conftest import ROOT
from watchdog.cli import main
from watchdog.config import load_settings
from watchdog.letters.apology import apology_letter, date_line, propose_new_due
from watchdog.letters.control import control_sheet
from watchdog.letters.lookup import find_case
from watchdog.sources.fields import RowProblems, normalize_case
from watchdog.sources.ingest import upsert_cases
from watchdog.store import Store

VN = timezone(timedelta(hours=7))
CODE = "000.00.21.H59-261102-0001"
APPLICANT = "Trần Thị <Hoa> & Co"

CONFIG = """\
database: {{url: "{url}"}}
calendars:
  default: {{}}
units:
  - {{code: T, name: UBND tỉnh Bình Dương, heads: [lanhdao]}}
  - {{code: STP, name: Sở Tư pháp, parent: T, heads: [giamdoc]}}
  - {{code: STP.HC, name: Phòng Hành chính tư pháp, parent: STP, heads: [truongphong]}}
officials:
  - {{id: lanhdao, name: Lê Văn Lãnh, unit: T, email: lanh@example.vn}}
  - {{id: giamdoc, name: Võ Thị Giám, unit: STP, email: gd@example.vn}}
  - {{id: truongphong, name: Phạm Thị Trưởng, unit: STP.HC, email: truong@example.vn}}
  - {{id: chuyenvien, name: Nguyễn Văn Chuyên, unit: STP.HC, email: cv@example.vn}}
procedures:
  - code: "2.000488"
    name: Cấp Phiếu lý lịch tư pháp cho công dân Việt Nam
    limit: 10 working_days
    steps:
      - {{code: B1, name: Tiếp nhận và chuyển hồ sơ, allot: 0.5 working_days}}
      - {{code: B2, name: Thẩm định hồ sơ, allot: 7 working_days}}
      - {{code: B3, name: Trình lãnh đạo ký, allot: 2 working_days}}
      - {{code: B4, name: Trả kết quả, allot: 0.5 working_days}}
  - {{code: "1.000002", name: Thủ tục không chia bước, limit: 5 working_days}}
letters: {{place: Thủ Dầu Một, signer_title: Giám đốc}}
"""

# Three snapshots of one case, as an export shows it over time: B1 at the desk, B2 with the
# official (finished late: 7 working days from 02/11 14:00 end on 11/11 14:00), B3 with the head.
SNAPSHOTS = [
    ("B1", "02/11/2026 09:00", "truongphong"),
    ("B2", "02/11/2026 14:00", "chuyenvien"),
    ("B3", "12/11/2026 10:00", "giamdoc"),
]


def at(text: str) -> datetime:
    return datetime.strptime(text, "%d/%m/%Y %H:%M").replace(tzinfo=VN)


def province(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(url=url), encoding="utf-8")
    return path


def load_case(store: Store, settings, snapshots=SNAPSHOTS, **extra: object) -> None:
    """The case imported once per snapshot, as `watchdog import` of successive exports would."""
    for step, started, handler in snapshots:
        raw = {
            "case_code": CODE,
            "procedure_code": "2.000488",
            "unit_code": "STP.HC",
            "received_at": "02/11/2026 09:00",
            "status": 4,
            "assignee": "chuyenvien",
            "applicant_name": APPLICANT,
            "current_step": step,
            "step_started_at": started,
            "step_handler": handler,
            "updated_at": started or "02/11/2026 09:00",
            **extra,
        }
        problems = RowProblems()
        record = normalize_case(raw, settings, problems)
        assert not problems, problems.problems
        upsert_cases(store, [record], at(started or "02/11/2026 09:00"))


@pytest.fixture
def setup(store: Store, db_url: str, tmp_path: Path):
    cfg = province(tmp_path, db_url)
    settings = load_settings(cfg, env={})
    load_case(store, settings)
    return cfg, settings


def paragraphs(doc) -> list[str]:
    return [p.text for p in doc.paragraphs]


def cells(table) -> list[list[str]]:
    return [[c.text for c in row.cells] for row in table.rows]


def test_apology_letter_read_back_from_the_docx(setup, tmp_path: Path, capsys) -> None:
    cfg, _settings = setup
    out = tmp_path / "letter.docx"
    reason = "Cần xác minh lý lịch tại Công an tỉnh <khẩn> & gửi lại."
    status = main(
        [
            *("--config", str(cfg), "letters", "apology", CODE),
            *("--now", "12/11/2026 16:00", "--reason", reason, "--out", str(out)),
        ]
    )
    err = capsys.readouterr().err
    assert status == 0
    assert f"written to {out}" in err
    assert "16/11/2026 09:00 -> proposed new appointment 18/11/2026 15:00" in err
    doc = Document(str(out))
    text = paragraphs(doc)
    assert "PHIẾU XIN LỖI VÀ HẸN LẠI NGÀY TRẢ KẾT QUẢ" in text
    assert f"Kính gửi: Ông/Bà {APPLICANT}" in text  # & and < survive as text
    body = "\n".join(text)
    assert (
        "Sở Tư pháp đã tiếp nhận hồ sơ của Ông/Bà đề nghị giải quyết thủ tục hành chính Cấp "
        "Phiếu lý lịch tư pháp cho công dân Việt Nam (mã thủ tục 2.000488), mã hồ sơ "
        f"{CODE}, tiếp nhận lúc 02/11/2026 09:00." in body
    )
    # received Mon 02/11 09:00 + 10 working days: due Mon 16/11 09:00
    assert "trả kết quả: 09:00 ngày 16/11/2026." in body
    assert f"Lý do: {reason}" in body
    # the appointment in force, plus the work its steps leave: B3 (2 days) and B4 (half a day)
    assert "xin hẹn lại thời gian trả kết quả vào 15:00 ngày 18/11/2026." in body
    heading, signature = doc.tables
    [[left, right]] = cells(heading)
    assert left.splitlines()[:2] == ["UBND TỈNH BÌNH DƯƠNG", "SỞ TƯ PHÁP"]
    assert "Số: ……/PXL" in left
    assert right.splitlines()[:2] == [
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Độc lập - Tự do - Hạnh phúc",
    ]
    assert "Thủ Dầu Một, ngày 12 tháng 11 năm 2026" in right
    [[receivers, signer]] = cells(signature)
    assert "- Lưu: VT, Phòng Hành chính tư pháp." in receivers
    lines = [line for line in signer.splitlines() if line]
    assert lines[0] == "GIÁM ĐỐC" and lines[-1] == "Võ Thị Giám"  # head of the issuing Sở


def test_apology_without_out_goes_to_a_named_file_and_warns(
    setup, tmp_path: Path, capsys, monkeypatch
) -> None:
    cfg, _settings = setup
    monkeypatch.chdir(tmp_path)
    # Friday 13/11 10:00: less than a working day before Monday 09:00 is left
    status = main(["--config", str(cfg), "letters", "apology", CODE, "--now", "13/11/2026 10:00"])
    captured = capsys.readouterr()
    assert status == 0
    assert captured.out == ""  # a binary file never goes to the terminal
    name = f"phieu-xin-loi-{CODE}.docx"
    assert f"written to {name}" in captured.err
    assert "less than the procedure's notice" in captured.err
    body = "\n".join(paragraphs(Document(str(tmp_path / name))))
    assert "Lý do: …" in body  # no --reason: a blank to fill in
    assert "Thủ Dầu Một, ngày 13 tháng 11 năm 2026" in cells(Document(name).tables[0])[0][1]


def test_unknown_case_is_one_line_and_status_1(setup, capsys) -> None:
    cfg, _settings = setup
    for command in (["apology"], ["control-sheet"]):
        status = main(["--config", str(cfg), "letters", *command, "000.NOPE"])
        err = capsys.readouterr().err
        assert status == 1
        assert err == "watchdog: no case with the code '000.NOPE'\n"


def test_apology_to_stdout_when_asked_and_not_a_terminal(setup) -> None:
    cfg, _settings = setup
    env = {**os.environ, "WATCHDOG_LANG": "en"}
    done = subprocess.run(
        [
            *(sys.executable, "-m", "watchdog", "--config", str(cfg), "letters", "apology"),
            *(CODE, "--out", "-", "--now", "12/11/2026 16:00"),
        ],
        capture_output=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    doc = Document(io.BytesIO(done.stdout))
    assert f"Kính gửi: Ông/Bà {APPLICANT}" in paragraphs(doc)
    assert b"written to" not in done.stderr


class _Rows(HTMLParser):
    """The cells of every row of the `steps` table, as text."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.classes: list[str] = []
        self._in = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("class") == "steps":
            self._in = True
        elif self._in and tag == "tr":
            self.rows.append([])
            self.classes.append(attrs.get("class") or "")
        elif self._in and tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "table":
            self._in = False
        elif self._in and tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


EXPECTED_ROWS = [
    [
        "1",
        "B1. Tiếp nhận và chuyển hồ sơ",
        "Phạm Thị Trưởng",
        "02/11/2026 09:00",
        "02/11/2026 15:00",
        "02/11/2026 14:00",
        "Đúng hạn",  # finished on its due day
    ],
    [
        "2",
        "B2. Thẩm định hồ sơ",
        "Nguyễn Văn Chuyên",
        "02/11/2026 14:00",
        "11/11/2026 14:00",
        "12/11/2026 10:00",
        "Quá hạn",
    ],
    [
        "3",
        "B3. Trình lãnh đạo ký",
        "Võ Thị Giám",
        "12/11/2026 10:00",
        "16/11/2026 10:00",
        "",
        "Đang xử lý trong hạn",
    ],
]


def test_control_sheet_html_lists_each_handover(setup, tmp_path: Path, capsys) -> None:
    cfg, _settings = setup
    out = tmp_path / "sheet.html"
    status = main(
        [
            *("--config", str(cfg), "letters", "control-sheet", CODE, "--format", "html"),
            *("--out", str(out), "--now", "13/11/2026 10:00"),
        ]
    )
    assert status == 0, capsys.readouterr().err
    html = out.read_text(encoding="utf-8")
    parser = _Rows()
    parser.feed(html)
    header, *rows = parser.rows
    assert header[0] == "STT" and header[-1].startswith("Kết quả")
    assert rows == EXPECTED_ROWS
    assert parser.classes[1:] == ["row-on_time", "row-late", "row-in_time"]
    assert "Trần Thị &lt;Hoa&gt; &amp; Co" in html and "<Hoa>" not in html
    assert '<html lang="vi">' in html and "@page { size: A4 landscape" in html


def test_control_sheet_docx_table(setup, tmp_path: Path, capsys) -> None:
    cfg, _settings = setup
    out = tmp_path / "sheet.docx"
    status = main(
        [
            *("--config", str(cfg), "letters", "control-sheet", CODE, "--out", str(out)),
            *("--now", "17/11/2026 10:00"),
        ]
    )
    assert status == 0, capsys.readouterr().err
    doc = Document(str(out))
    _heading, table = doc.tables
    header, *rows = cells(table)
    assert header == [
        "STT",
        "Bước xử lý",
        "Người xử lý",
        "Nhận hồ sơ lúc",
        "Hạn của bước",
        "Giao hồ sơ lúc",
        "Kết quả (trước hạn / đúng hạn / quá hạn)",
    ]
    # on 17/11 the head's step (due 16/11 10:00) and the case (due 16/11 09:00) are late
    assert rows == [*EXPECTED_ROWS[:2], [*EXPECTED_ROWS[2][:-1], "Đang xử lý quá hạn"]]
    text = "\n".join(paragraphs(doc))
    assert "PHIẾU KIỂM SOÁT QUÁ TRÌNH GIẢI QUYẾT HỒ SƠ" in text
    assert f"Người nộp hồ sơ: {APPLICANT}" in text
    assert "Tiếp nhận lúc: 02/11/2026 09:00; hẹn trả kết quả: 16/11/2026 09:00" in text
    assert "kết quả giải quyết: Đang xử lý quá hạn" in text
    assert "Chưa ghi nhận bước xử lý nào" not in text  # the empty-table note is left out
    assert "{%" not in text and "{{" not in text


def test_control_sheet_of_a_finished_case(store: Store, db_url: str, tmp_path: Path) -> None:
    settings = load_settings(province(tmp_path, db_url), env={})
    load_case(store, settings)
    # finished before the due: the head's step was done the next working day
    load_case(
        store,
        settings,
        [SNAPSHOTS[-1]],
        status=9,
        finished_at="13/11/2026 11:00",
    )
    record, events = find_case(store, CODE)
    sheet = control_sheet(record, events, settings)
    assert sheet.result_label == "Trước hạn"
    assert [r.result_label for r in sheet.rows] == ["Đúng hạn", "Quá hạn", "Trước hạn"]
    assert sheet.rows[-1].finished_at == at("13/11/2026 11:00")


def test_control_sheet_without_steps_says_so(store: Store, db_url: str, tmp_path: Path) -> None:
    cfg = province(tmp_path, db_url)
    settings = load_settings(cfg, env={})
    load_case(store, settings, [(None, None, None)], current_step=None, step_started_at=None)
    out = tmp_path / "empty.docx"
    assert main(["--config", str(cfg), "letters", "control-sheet", CODE, "--out", str(out)]) == 0
    doc = Document(str(out))
    assert len(cells(doc.tables[1])) == 1  # the header row only
    assert "Chưa ghi nhận bước xử lý nào của hồ sơ." in paragraphs(doc)


# ----- how the new appointment is chosen (pure, no database) ------------------------------------


def _facts(settings, procedure: str = "2.000488", **fields):
    from watchdog.domain import CaseRecord, Status

    record = CaseRecord(
        case_code="X",
        procedure_code=procedure,
        unit_code="STP.HC",
        received_at=at("02/11/2026 09:00"),
        status=Status.IN_PROGRESS,
        **fields,
    )
    return record, []


def test_new_appointment_without_steps_counts_the_limit_again(tmp_path: Path) -> None:
    settings = load_settings(province(tmp_path, "sqlite:///x.db"), env={})
    record, events = _facts(settings, "1.000002")
    letter = apology_letter(record, events, settings, at("06/11/2026 09:00"))
    # 5 working days: due Mon 09/11 09:00; counted again from there: Mon 16/11 09:00
    assert letter.original_due == at("09/11/2026 09:00")
    assert letter.new_due == at("16/11/2026 09:00")
    assert letter.warnings == ()


def test_new_appointment_before_any_step_counts_every_step(tmp_path: Path) -> None:
    settings = load_settings(province(tmp_path, "sqlite:///x.db"), env={})
    record, events = _facts(settings)
    letter = apology_letter(record, events, settings, at("03/11/2026 09:00"))
    # 16/11 09:00 + the 10 working days of all steps; Tuesday 24/11 is a holiday from 2026
    # (Ngày Văn hóa Việt Nam), so the count ends on Tuesday 01/12, not Monday 30/11
    assert letter.new_due == at("01/12/2026 09:00")


def test_a_letter_after_the_due_counts_from_now_and_says_it_is_late(tmp_path: Path) -> None:
    settings = load_settings(province(tmp_path, "sqlite:///x.db"), env={})
    record, events = _facts(
        settings, current_step="B4", step_started_at=at("16/11/2026 08:00"), step_handler="x"
    )
    letter = apology_letter(record, events, settings, at("17/11/2026 13:30"))
    assert "late" in letter.warnings
    # from 17/11 13:30: B4's half day, but never less than one working day (8 working hours:
    # 3.5 on Tuesday afternoon, 4.5 on Wednesday morning)
    assert letter.new_due == at("18/11/2026 11:30")


def test_an_extended_case_is_flagged(tmp_path: Path) -> None:
    from watchdog.domain import CaseEvent, EventKind

    settings = load_settings(province(tmp_path, "sqlite:///x.db"), env={})
    record, _ = _facts(settings)
    extended = CaseEvent(
        EventKind.EXTENDED,
        at("10/11/2026 09:00"),
        {"previous_due": "2026-11-16T09:00:00+07:00", "new_due": "2026-11-20T17:00:00+07:00"},
    )
    letter = apology_letter(record, [extended], settings, at("19/11/2026 09:00"))
    assert letter.original_due == at("20/11/2026 17:00")
    assert "extended" in letter.warnings


def test_unknown_procedure_and_no_due_proposes_nothing(tmp_path: Path) -> None:
    settings = load_settings(province(tmp_path, "sqlite:///x.db"), env={})
    record, events = _facts(settings, "9.999999")
    letter = apology_letter(record, events, settings, at("06/11/2026 09:00"))
    assert letter.new_due is None and "no_due" in letter.warnings


def test_date_line_as_official_documents_write_it() -> None:
    assert date_line(at("05/02/2026 10:00"), VN) == "ngày 05 tháng 02 năm 2026"
    assert date_line(at("13/11/2026 10:00"), VN) == "ngày 13 tháng 11 năm 2026"
    assert date_line(at("01/03/2026 10:00"), VN) == "ngày 01 tháng 3 năm 2026"


def test_propose_new_due_never_falls_before_a_working_day_later(tmp_path: Path) -> None:
    from watchdog.engine.deadline import timeline

    settings = load_settings(province(tmp_path, "sqlite:///x.db"), env={})
    record, events = _facts(settings)
    calendar = settings.calendar_for("STP.HC")
    procedure = settings.procedures["2.000488"]
    tl = timeline(record, events, procedure, calendar)
    for now in (at("03/11/2026 09:00"), at("16/11/2026 08:00"), at("20/11/2026 16:59")):
        proposed = propose_new_due(tl, procedure, calendar, now)
        base = max(tl.due, calendar.next_working_instant(now))
        assert calendar.working_seconds_between(base, proposed) >= calendar.day_seconds
