"""`watchdog import FILE [--dry-run]` as a user runs it: a subprocess, exit status, stdout, stderr.

SPEC 8: machine output (one JSON summary line) on stdout; problems, progress and logs on stderr;
exit status 0 when every row was imported, 1 when any row was rejected or the file is unreadable.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

HEADER = "Mã hồ sơ,Mã TTHC,Đơn vị,Ngày tiếp nhận,Ngày hẹn trả,Trạng thái,Cán bộ thụ lý\n"
GOOD = (
    "HS-1,2.000488,STP.HC,02/03/2026 08:00,16/03/2026,Đang xử lý,chuyenvien\n"
    "HS-2,1.000001,STP,2026-03-02T09:30:00+07:00,,2,\n"
    "HS-3,1.000002,SXD,20260303101500,,,\n"
)
BAD = (
    "HS-4,2.000488,STP,31/02/2026 08:00,,,\n"  # row 5: no such day
    ",2.000488,STP,02/03/2026 08:00,,,\n"  # row 6: no case code
)


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    return tmp_path / "w.db"


@pytest.fixture
def config(small_config: Path, tmp_path: Path, db_file: Path) -> Path:
    """The shared small province, with the database in this test's folder."""
    lines = small_config.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("database:")
    lines[0] = f'database: {{url: "sqlite:///{db_file}"}}'
    path = tmp_path / "cli-config.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def watchdog(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "WATCHDOG_CONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "watchdog", "--config", str(config), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        cwd=config.parent,
        timeout=120,
    )


def summary(result: subprocess.CompletedProcess[str]) -> dict:
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    return json.loads(lines[0])


def case_codes(db_file: Path) -> list[str]:
    if not db_file.exists():
        return []
    with sqlite3.connect(db_file) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "cases" not in tables:
            return []
        return sorted(r[0] for r in conn.execute("SELECT case_code FROM cases"))


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_all_rows_good_exits_0(config: Path, db_file: Path, tmp_path: Path) -> None:
    result = watchdog(config, "import", str(write(tmp_path, "hoso.csv", HEADER + GOOD)))
    assert result.returncode == 0, result.stderr
    assert summary(result) == {
        "file": str(tmp_path / "hoso.csv"),
        "rows": 3,
        "inserted": 3,
        "updated": 0,
        "unchanged": 0,
        "rejected": 0,
        "unknown_procedures": {},
        "unknown_units": {},
        "dry_run": False,
    }
    assert "Traceback" not in result.stderr
    assert "not in the configuration" not in result.stderr
    assert case_codes(db_file) == ["HS-1", "HS-2", "HS-3"]

    again = watchdog(config, "import", str(tmp_path / "hoso.csv"))
    assert again.returncode == 0, again.stderr
    assert summary(again)["unchanged"] == 3
    assert summary(again)["inserted"] == 0


def test_codes_the_configuration_does_not_know_are_taken_and_counted(
    config: Path, db_file: Path, tmp_path: Path
) -> None:
    """Such cases are imported (the configuration may catch up), and the admin is told at
    once, not only by the engine's findings once the cases are evaluated."""
    rows = (
        "HS-1,9.999999,STP.HC,02/03/2026 08:00,,Đang xử lý,chuyenvien\n"
        "HS-2,9.999999,STP.HC,02/03/2026 08:00,,Đang xử lý,chuyenvien\n"
        "HS-3,2.000488,XA.MOI,02/03/2026 08:00,,Đang xử lý,chuyenvien\n"
        "HS-4,2.000488,STP.HC,02/03/2026 08:00,,Đang xử lý,chuyenvien\n"
    )
    result = watchdog(config, "import", str(write(tmp_path, "hoso.csv", HEADER + rows)))
    assert result.returncode == 0, result.stderr
    found = summary(result)
    assert found["inserted"] == 4
    assert found["unknown_procedures"] == {"9.999999": 2}
    assert found["unknown_units"] == {"XA.MOI": 1}
    lines = result.stderr.splitlines()
    assert (
        "warning: 2 case(s) of procedures not in the configuration (9.999999): no due is "
        "computed for them until the procedure is added"
    ) in lines
    assert any(
        line.startswith("warning: 1 case(s) of units not in the configuration (XA.MOI)")
        for line in lines
    )


def test_rejected_rows_exit_1_with_problems_on_stderr(
    config: Path, db_file: Path, tmp_path: Path
) -> None:
    result = watchdog(config, "import", str(write(tmp_path, "hoso.csv", HEADER + GOOD + BAD)))
    assert result.returncode == 1, result.stderr
    got = summary(result)
    assert (got["rows"], got["inserted"], got["rejected"]) == (5, 3, 2)
    problems = [line for line in result.stderr.splitlines() if ": row " in line]
    assert len(problems) == 2, result.stderr
    assert problems[0].startswith("hoso.csv: row 5, column Ngày tiếp nhận (received_at): ")
    assert "31/02/2026" in problems[0]
    assert problems[1] == "hoso.csv: row 6, column Mã hồ sơ (case_code): required value is missing"
    assert "Traceback" not in result.stderr
    assert case_codes(db_file) == ["HS-1", "HS-2", "HS-3"]  # the good rows are kept


def test_dry_run_leaves_the_database_without_cases(
    config: Path, db_file: Path, tmp_path: Path
) -> None:
    path = write(tmp_path, "hoso.csv", HEADER + GOOD + BAD)
    result = watchdog(config, "import", str(path), "--dry-run")
    assert result.returncode == 1, result.stderr  # rejected rows still fail a dry run
    got = summary(result)
    assert got["dry_run"] is True
    assert (got["rows"], got["inserted"], got["rejected"]) == (5, 3, 2)
    assert case_codes(db_file) == []

    good = write(tmp_path, "good.csv", HEADER + GOOD)
    result = watchdog(config, "import", str(good), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert summary(result)["inserted"] == 3
    assert case_codes(db_file) == []


def test_dry_run_writes_nothing_at_all(config: Path, db_file: Path, tmp_path: Path) -> None:
    """`--dry-run`: "check and count, write nothing" -- not the cases, nor anything else."""
    path = write(tmp_path, "good.csv", HEADER + GOOD)
    result = watchdog(config, "import", str(path), "--dry-run")
    assert result.returncode == 0, result.stderr
    if db_file.exists():
        with sqlite3.connect(db_file) as conn:
            query = "SELECT name FROM sqlite_master WHERE type = 'table'"
            tables = [r[0] for r in conn.execute(query) if r[0] != "alembic_version"]
            filled = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
        assert {t: n for t, n in filled.items() if n} == {}


def test_unreadable_file_exits_1_with_one_message(config: Path, tmp_path: Path) -> None:
    path = write(tmp_path, "hoso.xlsx", HEADER + GOOD)  # a CSV named .xlsx
    result = watchdog(config, "import", str(path))
    assert result.returncode == 1
    assert "hoso.xlsx" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_missing_column_exits_1_naming_it(config: Path, tmp_path: Path) -> None:
    path = write(tmp_path, "hoso.csv", "Mã hồ sơ,Mã TTHC,Ngày tiếp nhận\nA,2.000488,02/03/2026\n")
    result = watchdog(config, "import", str(path))
    assert result.returncode == 1
    assert "unit_code" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_unknown_columns_are_named_on_stderr(config: Path, tmp_path: Path) -> None:
    text = "Mã hồ sơ,Mã TTHC,Đơn vị,Ngày tiếp nhận,Ghi chú\nA,2.000488,STP,02/03/2026,gọi lại\n"
    result = watchdog(config, "import", str(write(tmp_path, "hoso.csv", text)))
    assert result.returncode == 0, result.stderr
    assert "Ghi chú" in result.stderr
    assert summary(result)["inserted"] == 1


def test_missing_config_is_a_usage_error(tmp_path: Path) -> None:
    result = watchdog(tmp_path / "khongco.yaml", "import", str(tmp_path / "x.csv"))
    assert result.returncode == 2
    assert "khongco.yaml" in result.stderr


def test_file_that_turns_non_utf8_writes_nothing_and_names_the_row(
    config: Path, db_file: Path, tmp_path: Path
) -> None:
    """Two full batches decode, then a cp1258 row: one line naming the row, nothing written."""
    good = "".join(f"HS-{i:05d},2.000488,STP,02/03/2026 08:00,,,\n" for i in range(4500))
    path = tmp_path / "hoso.csv"
    path.write_bytes((HEADER + good).encode("utf-8") + b"HS-X,2.000488,STP,02/03/2026,,\xd0ang,\n")
    result = watchdog(config, "import", str(path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if "hoso.csv" in line]
    assert len(lines) == 1, result.stderr
    assert "row 4502 is not valid UTF-8" in lines[0]
    assert "--encoding cp1258" in lines[0]
    assert case_codes(db_file) == []


def test_cp1258_file_with_encoding_option(config: Path, db_file: Path, tmp_path: Path) -> None:
    """`--encoding cp1258`: the file of older Vietnamese software imports, names composed."""
    text = "MaHoSo,MaTTHC,DonViXuLy,NgayTiepNhan,ChuHoSo\nHS-1,2.000488,STP,02/03/2026,"
    path = tmp_path / "cu.csv"
    path.write_bytes(text.encode("cp1258") + b"Nguy\xea\xden V\xe3n \xc2n\n")  # Nguyễn Văn Ân
    result = watchdog(config, "import", str(path), "--encoding", "cp1258")
    assert result.returncode == 0, result.stderr
    assert summary(result)["inserted"] == 1
    with sqlite3.connect(db_file) as conn:
        (name,) = conn.execute("SELECT applicant_name FROM cases").fetchone()
    assert name == "Nguyễn Văn Ân"  # NFC: one code point per letter with its marks
    assert len(name) == 13


def test_unknown_encoding_fails_naming_it(config: Path, tmp_path: Path) -> None:
    path = write(tmp_path, "hoso.csv", HEADER + GOOD)
    result = watchdog(config, "import", str(path), "--encoding", "tcvn3")
    assert result.returncode != 0
    assert "unknown encoding 'tcvn3'" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_old_xls_export_with_title_rows(config: Path, db_file: Path, tmp_path: Path) -> None:
    """`watchdog import hoso.xls`: an XLS (BIFF8) as older one-stop software saves it, with two
    title rows above the header (row 3). Row 4 holds the TTHC code as the number 2.000488 and
    the receipt as Excel's day 46084.375 (03/03/2026 09:00) in General cells, the assignee by
    full name (Nguyễn Văn Chuyên is chuyenvien) and the label "Đang giải quyết" (status 4);
    row 5 has a number that is no national code (1.0127901): rejected, exit status 1."""
    import xlwt

    wb = xlwt.Workbook(encoding="utf-8")
    ws = wb.add_sheet("DanhSach")
    rows = [
        ["SỞ TƯ PHÁP"],
        ["DANH SÁCH HỒ SƠ"],
        ["Mã hồ sơ", "Mã TTHC", "Đơn vị", "Ngày tiếp nhận", "Trạng thái", "Cán bộ thụ lý"],
        ["HS-1", 2.000488, "STP.HC", 46084.375, "Đang giải quyết", "Nguyễn Văn Chuyên"],
        ["HS-2", 1.0127901, "STP", 46084.5, "", ""],
    ]
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            ws.write(r, c, value)
    path = tmp_path / "hoso.xls"
    wb.save(str(path))

    result = watchdog(config, "import", str(path))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    got = summary(result)
    assert (got["rows"], got["inserted"], got["rejected"]) == (2, 1, 1)
    assert "hoso.xls: row 5, column Mã TTHC (procedure_code): the number 1.0127901" in (
        result.stderr
    )
    with sqlite3.connect(db_file) as conn:
        row = conn.execute(
            "SELECT procedure_code, received_at, status, assignee FROM cases"
        ).fetchone()
    assert row[0] == "2.000488"
    assert str(row[1]).startswith("2026-03-03 02:00:00")  # 09:00 +07:00, stored as UTC
    assert row[2:] == (4, "chuyenvien")
